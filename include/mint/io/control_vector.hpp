// llama.cpp control vectors: a GGUF file with general.architecture =
// "controlvector", controlvector.model_hint, controlvector.layer_count (u32 from
// repeng, i32 from llama.cpp: both read) and one 1-D F32 tensor direction.N per
// steered layer N >= 1, which llama.cpp adds (times a scale) to the output of
// block N (TransformerLens blocks.N.hook_resid_post). Read with the rules
// llama.cpp's loader enforces; written so that loader accepts it. O(layers x d).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/gguf.hpp"
#include "mint/io/ndarray.hpp"

namespace mint {

/// A steering vector per layer, as llama.cpp's --control-vector files hold it.
struct control_vector {
  /// controlvector.model_hint: the model family it was made for ("llama", "mistral"...).
  std::string model_hint;
  /// Layer N (>= 1) -> the direction llama.cpp adds to block N's output; all of one length (n_embd).
  std::map<int, std::vector<float>> directions;
  /// controlvector.layer_count as read (for humans: llama.cpp ignores it); nullopt when absent.
  std::optional<std::int64_t> layer_count;

  /// The length of the directions (0 when there are none).
  index n_embd() const noexcept { return directions.empty() ? 0 : index(directions.begin()->second.size()); }
};

/// How write_control_vector stores controlvector.layer_count.
struct control_vector_options {
  /// gguf_type::int32 as llama.cpp's cvector-generator writes it, or gguf_type::uint32 as repeng does.
  gguf_type layer_count_type = gguf_type::int32;
};

namespace detail {

/// read_control_vector and write_control_vector. A template (C is always char) so only the
/// units that call them compile them, and a program may compile them once (mint/core/compiled.hpp).
template <class C>
struct control_vector_core {
  static control_vector read(const gguf_file& file);
  static void write(const std::string& path, const control_vector& vector, const control_vector_options& options);
};

template <class C>
control_vector control_vector_core<C>::read(const gguf_file& file) {
  constexpr const char* function = "mint::read_control_vector";
  const std::string& name = file.file()->name();
  control_vector out;
  if (const gguf_value* hint = file.find("controlvector.model_hint")) {
    if (!hint->as_string()) format_fail(function, name, "has a controlvector.model_hint that is not a string", "needs a string");
    out.model_hint = *hint->as_string();
  }
  if (const gguf_value* count = file.find("controlvector.layer_count")) {
    out.layer_count = count->as_integer();
    if (!out.layer_count || count->type() == gguf_type::boolean)
      format_fail(function, name, str("has a controlvector.layer_count of type ", gguf_type_name(count->type())),
                  "needs an integer (u32 or i32)");
  }
  if (file.tensors().empty()) format_fail(function, name, "holds no tensors", "needs direction.N tensors");
  for (const auto& t : file.tensors()) {
    int layer = 0;
    const std::string_view prefix = "direction.";
    const std::string_view number = std::string_view(t.name).substr(std::min(t.name.size(), prefix.size()));
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), layer);
    if (!t.name.starts_with(prefix) || number.empty() || ec != std::errc() || end != number.data() + number.size() || layer < 1)
      format_fail(function, name, str("holds the tensor '", t.name, "'"), "needs only direction.N tensors with N >= 1");
    if (t.type != 0 || t.dims.size() != 1)
      format_fail(function, name, str("holds ", t.name, " as ", t.type_name(), " of rank ", t.dims.size()), "needs an F32 vector");
    const auto values = file.read<float>(t.name);
    std::vector<float> direction(values.values().begin(), values.values().end());
    if (!out.directions.empty() && index(direction.size()) != out.n_embd())
      format_fail(function, name, str("holds ", t.name, " of length ", direction.size()),
                  str("needs every direction of one length (", out.n_embd(), ")"));
    out.directions.emplace(layer, std::move(direction));
  }
  return out;
}

template <class C>
void control_vector_core<C>::write(const std::string& path, const control_vector& vector, const control_vector_options& options) {
  constexpr const char* function = "mint::write_control_vector";
  if (vector.directions.empty()) throw argument_error(function, "vector", "has no directions", "needs at least one layer");
  for (const auto& [layer, direction] : vector.directions) {
    if (layer < 1)
      throw argument_error(function, "vector", str("has a direction for layer ", layer),
                           "needs layers >= 1 (llama.cpp never steers block 0's input; direction.N goes after block N)");
    if (direction.empty() || index(direction.size()) != vector.n_embd())
      throw shape_error(function, "vector", str("has layer ", layer, "'s direction of length ", direction.size()),
                        str("needs every direction of one non-zero length (", vector.n_embd(), ")"));
  }
  if (options.layer_count_type != gguf_type::int32 && options.layer_count_type != gguf_type::uint32)
    throw argument_error(function, "options.layer_count_type", str("is ", gguf_type_name(options.layer_count_type)), "needs int32 or uint32");
  gguf_writer out(path);
  out.set("general.architecture", "controlvector");
  out.set("controlvector.model_hint", vector.model_hint);
  const auto count = vector.directions.size();
  if (options.layer_count_type == gguf_type::int32) out.set("controlvector.layer_count", std::int32_t(count));
  else out.set("controlvector.layer_count", std::uint32_t(count));
  for (const auto& [layer, direction] : vector.directions)
    out.add_tensor(str("direction.", layer), array_ref(dtype::float32, {index(direction.size())}, direction.data()));
  out.commit();
}

}  // namespace detail

/// Reads a control vector; a format_error unless every tensor is an F32 vector named direction.N
/// (N >= 1), all of the same length, and controlvector.layer_count (when present) is an integer.
/// (read_control_vector and write_control_vector are templates, C always char, so only the units
/// that call them compile them.)
template <class C = char>
control_vector read_control_vector(const gguf_file& file) {
  return detail::control_vector_core<C>::read(file);
}
template <class C = char>
control_vector read_control_vector(const std::string& path) {
  return detail::control_vector_core<C>::read(gguf_file(path));
}

/// Writes a control vector llama.cpp loads (--control-vector FILE): GGUF v3, 32-byte alignment,
/// direction.N in layer order, layer_count = the number of directions (as repeng and llama.cpp write it).
template <class C = char>
void write_control_vector(const std::string& path, const control_vector& vector, const control_vector_options& options = {}) {
  detail::control_vector_core<C>::write(path, vector, options);
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_CONTROL_VECTOR(CORE) CORE(struct mint::detail::control_vector_core<char>)
MINT_CORES_IO_CONTROL_VECTOR(MINT_CORE)
