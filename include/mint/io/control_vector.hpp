// llama.cpp control vectors: a GGUF file with general.architecture =
// "controlvector", controlvector.model_hint, controlvector.layer_count (u32 from
// repeng, i32 from llama.cpp: both read) and one 1-D F32 tensor direction.N per
// steered layer N >= 1, which llama.cpp adds (times a scale) to the output of
// block N (TransformerLens blocks.N.hook_resid_post). Read with the rules of
// llama.cpp's loader (common_control_vector_load_one in common/common.cpp, on the
// GGUF parser of ggml/src/gguf.cpp): what it loads mint reads to the same values,
// what it refuses is a format_error. Written so that loader accepts it. O(layers x d).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/gguf.hpp"
#include "mint/io/ndarray.hpp"

namespace mint {

/// A steering vector per layer, as llama.cpp's --control-vector files hold it.
///
/// One direction per layer: a file with several tensors for one layer (direction.2 and
/// direction.02, say) is read as their sum, which is what llama.cpp adds, and the writer
/// writes that one summed direction per layer.
struct control_vector {
  /// controlvector.model_hint: the model family it was made for ("llama", "mistral"...).
  /// Empty when absent or not a string (llama.cpp reads no metadata).
  std::string model_hint;
  /// Layer N (>= 1) -> the direction llama.cpp adds to block N's output; all of one length (n_embd).
  /// llama.cpp drops direction.N for N >= the model's n_layer when it applies the vector;
  /// mint knows no model here and keeps every layer.
  std::map<int, std::vector<float>> directions;
  /// controlvector.layer_count as read (for humans: llama.cpp ignores it); nullopt when absent
  /// or not an integer.
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

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// The layer llama.cpp's loader reads from a tensor name: the text before the first '.' must
/// be "direction", and the rest goes through std::stoi, i.e. strtol in base 10 (leading
/// C-locale spaces, an optional sign, digits, anything after them ignored) with values
/// outside int an error. nullopt where llama.cpp finds no number (it then refuses the file).
inline std::optional<std::int64_t> llama_direction_layer(std::string_view name) {
  const auto dot = name.find('.');
  if (dot == std::string_view::npos || name.substr(0, dot) != "direction") return std::nullopt;
  std::string_view rest = name.substr(dot + 1);
  while (!rest.empty() && (rest.front() == ' ' || (rest.front() >= '\t' && rest.front() <= '\r'))) rest.remove_prefix(1);
  const bool negative = !rest.empty() && rest.front() == '-';
  if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) rest.remove_prefix(1);
  std::uint64_t magnitude = 0;  // unsigned: from_chars then takes digits only, no second sign
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), magnitude);
  const std::uint64_t limit = std::uint64_t(std::numeric_limits<int>::max()) + (negative ? 1 : 0);
  if (ec != std::errc() || magnitude > limit) return std::nullopt;
  return negative ? -std::int64_t(magnitude) : std::int64_t(magnitude);
}

/// ggml_n_dims: the rank with trailing extents of 1 dropped (at least 1), which llama.cpp's
/// loader checks; a GGUF tensor of dims [n, 1] (or of no dims) is 1-D to it.
inline std::size_t ggml_rank(const std::vector<std::int64_t>& dims) {
  for (std::size_t d = dims.size(); d-- > 1;)
    if (dims[d] > 1) return d + 1;
  return 1;
}
#endif  // MINT_CORE_BODIES

/// read_control_vector and write_control_vector. A template (C is always char) so only the
/// units that call them compile them, and a program may compile them once (mint/core/compiled.hpp).
template <class C>
struct control_vector_core {
  static control_vector read(const gguf_file& file);
  static void write(const std::string& path, const control_vector& vector, const control_vector_options& options);
};

#if MINT_CORE_BODIES
template <class C>
control_vector control_vector_core<C>::read(const gguf_file& file) {
  constexpr const char* function = "mint::read_control_vector";
  const std::string& name = file.file()->name();
  const std::uint64_t size = file.file()->size();

  // First what llama.cpp's GGUF parser (ggml/src/gguf.cpp) refuses and gguf_file reads.
  // The loader asks the parser for the data too, and the parser then reads the whole data
  // block, padding after the last tensor included. gguf_file does not need that padding:
  // llama.cpp's model loader maps files and never reads it, so files without it are models
  // llama.cpp runs, and gguf_file opens them.
  if (!file.tensors().empty()) {
    const auto& last = file.tensors().back();
    std::uint64_t padded = 0, end = 0;
    if (!align_up(last.data_bytes, file.alignment(), padded) || add_overflows(last.offset, padded, end) ||
        add_overflows(file.data_offset(), end, end) || end > size)
      format_fail(function, name,
                  str("ends after ", size, " bytes, inside its data block, whose padding after the last tensor ('",
                      last.name, "') to ", file.alignment(), " bytes ends at ", end),
                  "needs the whole data block, padding included: llama.cpp's GGUF parser reads it and refuses the file");
  }
  for (const auto& [key, value] : file.metadata()) {
    // gguf_file reads arrays of arrays as gguf-py does; llama.cpp's parser refuses them.
    if (const gguf_array* a = value.as_array(); a && a->element_type == gguf_type::array)
      format_fail(function, name, str("holds the key '", key, "' as an array of arrays"),
                  "needs flat arrays: llama.cpp's GGUF parser refuses nested ones");
  }

  // The loader reads no metadata; mint keeps these two when they have the types writers use.
  control_vector out;
  if (const gguf_value* hint = file.find("controlvector.model_hint"); hint && hint->as_string()) out.model_hint = *hint->as_string();
  if (const gguf_value* count = file.find("controlvector.layer_count"); count && count->type() != gguf_type::boolean)
    out.layer_count = count->as_integer();

  if (file.tensors().empty()) format_fail(function, name, "holds no tensors", "needs direction.N tensors (llama.cpp refuses the file)");
  // ggml keeps names as C strings: llama.cpp sees a name up to its first NUL byte, and its
  // parser refuses two names equal that far (gguf_file, comparing whole names, does not).
  const auto c_name_of = [](const std::string& s) { return std::string_view(s).substr(0, s.find('\0')); };
  std::vector<std::string_view> c_names;
  for (const auto& t : file.tensors()) c_names.push_back(c_name_of(t.name));
  std::sort(c_names.begin(), c_names.end());
  if (const auto twice = std::adjacent_find(c_names.begin(), c_names.end()); twice != c_names.end())
    format_fail(function, name, str("holds two tensors named '", *twice, "' up to a NUL byte"),
                "needs unique names (llama.cpp's GGUF parser compares them as C strings and refuses the file)");
  for (const auto& t : file.tensors()) {
    const std::string_view c_name = c_name_of(t.name);
    const auto layer = llama_direction_layer(c_name);
    if (!layer || *layer < 1)
      format_fail(function, name, str("holds the tensor '", c_name, "'", layer ? str(", of layer ", *layer) : std::string()),
                  "needs only direction.N tensors with N >= 1 (N read as std::stoi reads it; llama.cpp refuses the file)");
    if (t.type != 0 || ggml_rank(t.dims) != 1)
      format_fail(function, name,
                  str("holds ", c_name, " as ", t.type_name(), " of dims ", shape_string(std::span<const std::int64_t>(t.dims)),
                      " (ggml order)"),
                  "needs an F32 vector (dims of 1 after the first are ignored)");
    const auto values = file.read<float>(t.name);
    const auto length = values.values().size();
    if (length == 0)
      format_fail(function, name, str("holds ", c_name, " with no values"),
                  "needs n_embd > 0 values (llama.cpp loads it, but applying it fails: no model has n_embd 0)");
    if (!out.directions.empty() && index(length) != out.n_embd())
      format_fail(function, name, str("holds ", c_name, " of length ", length),
                  str("needs every direction of one length (", out.n_embd(), ")"));
    // llama.cpp adds every tensor of a layer, in file order, into a buffer of zeros; so does
    // mint, to the same floats (a -0.0 comes out +0.0 there too).
    auto& direction = out.directions[int(*layer)];
    direction.resize(length, 0.0f);
    const auto source = values.values();
    for (std::size_t k = 0; k < length; ++k) direction[k] += source[k];
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
  // llama.cpp loads NaN and infinity without a word and adds them to every activation.
  for (const auto& [layer, direction] : vector.directions)
    for (std::size_t k = 0; k < direction.size(); ++k)
      if (!std::isfinite(direction[k]))
        throw argument_error(function, "vector", str("has ", direction[k], " at layer ", layer, ", index ", k),
                             "needs finite values (llama.cpp would add it to the residual stream)");
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
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Reads a control vector as llama.cpp's loader does. Accepted: tensors named direction.N,
/// N read as std::stoi reads it ("direction.01" and "direction.2.weight" are layers 1 and 2),
/// N >= 1; F32 of one dimension after dropping trailing dims of 1 ([n, 1] is a vector of n);
/// all of one non-zero length; several tensors of one layer are summed in file order.
/// A format_error, naming the file, for anything else llama.cpp refuses: another name, N < 1,
/// another type or rank, lengths that differ, a data block without the padding after its
/// last tensor, nested metadata arrays. Metadata is not checked (llama.cpp reads none):
/// model_hint and layer_count are kept when they are a string and an integer.
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
/// one direction.N per layer in layer order (a layer holds one direction: to give llama.cpp two
/// for a layer, write their sum), layer_count = the number of directions (as repeng and
/// llama.cpp write it). An argument_error for a NaN or infinite value, a shape_error for
/// directions of different or zero lengths; nothing is written then (the file is replaced atomically).
template <class C = char>
void write_control_vector(const std::string& path, const control_vector& vector, const control_vector_options& options = {}) {
  detail::control_vector_core<C>::write(path, vector, options);
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_CONTROL_VECTOR(CORE) CORE(struct mint::detail::control_vector_core<char>)
MINT_CORES_IO_CONTROL_VECTOR(MINT_CORE)
