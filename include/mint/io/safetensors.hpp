// safetensors files (Hugging Face): an 8-byte little-endian header length, a
// JSON header (parsed with nlohmann-json) naming each tensor's dtype, shape and
// data_offsets, then the data. Checked as the format's reference implementation
// checks: header length bounded, offsets contiguous from 0 with no gaps or
// overlaps, sizes equal to shape product times width, the data area exactly
// covered. Read (copy, converting on request) or map without a copy; write
// atomically with every tensor aligned. O(header) to open, O(bytes) to read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/bytes.hpp"
#include "mint/io/detail/elements.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/json.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/ndarray.hpp"

namespace mint {

/// One tensor of a safetensors file, checked against the file.
struct safetensors_entry {
  std::string name;
  dtype type = dtype::float32;
  shape_t shape;
  std::uint64_t data_offset = 0;  ///< from the start of the file
  std::uint64_t data_bytes = 0;
};

/// The safetensors name of a dtype: "F32", "BF16", "BOOL".
constexpr std::string_view safetensors_dtype_name(dtype d) noexcept {
  switch (d) {
    case dtype::boolean: return "BOOL";
    case dtype::int8: return "I8";
    case dtype::int16: return "I16";
    case dtype::int32: return "I32";
    case dtype::int64: return "I64";
    case dtype::uint8: return "U8";
    case dtype::uint16: return "U16";
    case dtype::uint32: return "U32";
    case dtype::uint64: return "U64";
    case dtype::float16: return "F16";
    case dtype::bfloat16: return "BF16";
    case dtype::float32: return "F32";
    default: return "F64";
  }
}

namespace detail {

/// The reference implementation's bound on the header's length.
inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

#if MINT_CORE_BODIES  // used only by the cores' bodies
inline std::optional<dtype> safetensors_dtype(std::string_view name) {
  for (const dtype d : all_dtypes)
    if (safetensors_dtype_name(d) == name) return d;
  return std::nullopt;
}
#endif  // MINT_CORE_BODIES

/// safetensors_file. A template (C is always char) so only the units that open a file compile
/// the JSON parsing behind it, and a program may compile it once (mint/core/compiled.hpp).
template <class C>
class basic_safetensors_file {
public:
  explicit basic_safetensors_file(const std::string& path) : basic_safetensors_file(mapped_file::open(path)) {}
  explicit basic_safetensors_file(file_ptr file);

  /// Tensor names in the order their data is stored.
  const std::vector<std::string>& names() const noexcept { return names_; }
  bool contains(std::string_view name) const { return entries_.find(name) != entries_.end(); }
  /// The dtype, shape and place of a tensor.
  const safetensors_entry& entry(std::string_view name) const { return find(name, "mint::safetensors_file::entry"); }
  /// The free-form string map under "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// Reads a tensor into a new array; F16/BF16/F64/integers convert to T with read_options{.convert = true}.
  template <element T>
  ndarray<T> read(std::string_view name, const read_options& options = {}) const {
    constexpr const char* function = "mint::safetensors_file::read";
    const auto& e = find(name, function);
    return read_elements<T>(*file_, e.data_offset, e.type, std::endian::little, e.shape, false, options, function,
                            str("tensor '", e.name, "' "));
  }

  /// Maps a tensor without a copy (its dtype must be T's and its data aligned for T).
  template <element T>
  mapped_array<T> map(std::string_view name) const {
    constexpr const char* function = "mint::safetensors_file::map";
    const auto& e = find(name, function);
    return map_elements<T>(file_, e.data_offset, e.type, std::endian::little, e.shape, c_strides(e.shape), function,
                           str("tensor '", e.name, "' "));
  }

  const file_ptr& file() const noexcept { return file_; }

private:
  const safetensors_entry& find(std::string_view name, const char* function) const;
  static std::uint64_t json_count(const json& v, const byte_reader& r, const std::string& tensor, const char* what);

  file_ptr file_;
  std::vector<std::string> names_;
  std::map<std::string, safetensors_entry, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
};

#if MINT_CORE_BODIES
template <class C>
const safetensors_entry& basic_safetensors_file<C>::find(std::string_view name, const char* function) const {
  const auto it = entries_.find(name);
  if (it == entries_.end())
    throw argument_error(function, "name", str("'", name, "' is not in ", file_->name()),
                         str("needs one of its ", names_.size(), " tensors"));
  return it->second;
}

template <class C>
std::uint64_t basic_safetensors_file<C>::json_count(const json& v, const byte_reader& r, const std::string& tensor,
                                                    const char* what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return std::uint64_t(v.get<std::int64_t>());
  r.fail(str("gives tensor '", tensor, "' the ", what, " ", v.dump()), "needs non-negative integers");
}

template <class C>
basic_safetensors_file<C>::basic_safetensors_file(file_ptr file) : file_(std::move(file)) {
  constexpr const char* function = "mint::safetensors_file";
  byte_reader r(file_->bytes(), function, file_->name());
  const auto n = r.read<std::uint64_t>("the header length");
  if (n > safetensors_max_header)
    r.fail(str("claims a header of ", n, " bytes"), str("needs at most ", safetensors_max_header));
  const auto text = r.take_string(n, "the JSON header");
  if (text.empty() || text.front() != '{') r.fail("has a header that does not start with '{'", "needs a JSON object");
  const json header = json_core<C>::parse(text, file_->name(), function, 64);
  const std::uint64_t data_start = r.position(), data_size = r.remaining();

  std::vector<safetensors_entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) r.fail("has a __metadata__ that is not an object", "needs a map of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) r.fail(str("has the __metadata__ value '", k, "' that is not a string"), "needs strings");
        metadata_.emplace(k, v.template get<std::string>());
      }
      continue;
    }
    if (!value.is_object()) r.fail(str("describes tensor '", key, "' with ", value.dump()), "needs an object");
    const auto d = value.find("dtype"), s = value.find("shape"), o = value.find("data_offsets");
    if (d == value.end() || s == value.end() || o == value.end())
      r.fail(str("describes tensor '", key, "' without dtype, shape or data_offsets"), "needs all three");
    safetensors_entry e;
    e.name = key;
    const auto type = d->is_string() ? safetensors_dtype(d->template get<std::string>()) : std::nullopt;
    if (!type)
      r.fail(str("gives tensor '", key, "' the dtype ", d->dump()),
             "needs one of BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64");
    e.type = *type;
    if (!s->is_array()) r.fail(str("gives tensor '", key, "' the shape ", s->dump()), "needs a list");
    if (!o->is_array() || o->size() != 2) r.fail(str("gives tensor '", key, "' the data_offsets ", o->dump()), "needs [begin, end]");
    std::uint64_t count = 1;
    for (const auto& extent : *s) {
      const std::uint64_t x = json_count(extent, r, key, "shape");
      if (x > std::uint64_t(PTRDIFF_MAX) || mul_overflows(count, x, count) || count > std::uint64_t(PTRDIFF_MAX))
        r.fail(str("gives tensor '", key, "' the shape ", s->dump(), " whose product overflows"), "needs a sane shape");
      e.shape.push_back(index(x));
    }
    const std::uint64_t begin = json_count((*o)[0], r, key, "data_offsets"), end = json_count((*o)[1], r, key, "data_offsets");
    std::uint64_t bytes = 0;
    if (mul_overflows(count, dtype_size(e.type), bytes) || end < begin || end - begin != bytes)
      r.fail(str("gives tensor '", key, "' the data_offsets [", begin, ", ", end, ") for ", s->dump(), " of ",
                 safetensors_dtype_name(e.type)),
             str("needs end - begin = ", count, " elements x ", dtype_size(e.type), " bytes"));
    e.data_offset = begin;  // relative to the data area until the checks below
    e.data_bytes = bytes;
    entries.push_back(std::move(e));
  }
  // Sorted by offset, the tensors must tile the data area exactly: no gap, no overlap, nothing after.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::pair(a.data_offset, a.data_bytes) < std::pair(b.data_offset, b.data_bytes);
  });
  std::uint64_t expected = 0;
  for (auto& e : entries) {
    if (e.data_offset != expected)
      r.fail(str("places tensor '", e.name, "' at data offset ", e.data_offset),
             str("needs ", expected, ", right after the tensor before it (no gaps or overlaps)"));
    expected = e.data_offset + e.data_bytes;
    if (expected > data_size)
      r.fail(str("places tensor '", e.name, "' beyond its ", data_size, " bytes of data"), "needs the whole tensor in the file");
    e.data_offset += data_start;
  }
  if (expected != data_size)
    r.fail(str("holds ", data_size, " bytes of data but its tensors cover ", expected),
           "needs the tensors to cover the data area exactly");
  for (auto& e : entries) {
    names_.push_back(e.name);
    std::string name = e.name;
    entries_.emplace(std::move(name), std::move(e));
  }
}
#endif  // MINT_CORE_BODIES

/// write_safetensors (C is always char, as for basic_safetensors_file).
template <class C>
struct safetensors_core {
  static void write(const std::string& path, const std::vector<std::pair<std::string, array_ref>>& tensors,
                    const std::map<std::string, std::string>& metadata);
};

#if MINT_CORE_BODIES
template <class C>
void safetensors_core<C>::write(const std::string& path, const std::vector<std::pair<std::string, array_ref>>& tensors,
                                const std::map<std::string, std::string>& metadata) {
  constexpr const char* function = "mint::write_safetensors";
  std::vector<std::size_t> order(tensors.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    order[k] = k;
    check_writable(tensors[k].second, function);
    if (tensors[k].first == "__metadata__" || tensors[k].first.empty())
      throw argument_error(function, "tensors", str("has the name '", tensors[k].first, "'"), "needs non-empty names other than __metadata__");
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto wa = dtype_size(tensors[a].second.type), wb = dtype_size(tensors[b].second.type);
    return wa != wb ? wa > wb : tensors[a].first < tensors[b].first;
  });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const std::size_t k : order) {
    const auto& [name, a] = tensors[k];
    if (header.contains(name)) throw argument_error(function, "tensors", str("holds '", name, "' twice"), "needs unique names");
    const std::uint64_t bytes = std::uint64_t(a.size()) * dtype_size(a.type);
    header[name] = {{"dtype", safetensors_dtype_name(a.type)}, {"shape", a.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  atomic_file out(path);
  std::string length;
  append_le(length, std::uint64_t(text.size()));
  out.write(length);
  out.write(text);
  for (const std::size_t k : order) for_each_chunk(tensors[k].second, false, [&](const void* p, std::size_t n) { out.write(p, n); });
  out.commit();
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// A safetensors file opened for reading: its tensors by name, and its __metadata__.
using safetensors_file = detail::basic_safetensors_file<char>;

/// Reads every tensor of a safetensors file, converted as `options` allow.
template <element T>
std::map<std::string, ndarray<T>> read_safetensors(const std::string& path, const read_options& options = {}) {
  const safetensors_file file(path);
  std::map<std::string, ndarray<T>> out;
  for (const auto& name : file.names()) out.emplace(name, file.read<T>(name, options));
  return out;
}

/// Writes named tensors (any mint tensor, ndarray or array_ref; stored row-major) and string
/// metadata as a safetensors file, atomically. Tensors are laid out widest dtype first, so each
/// starts at a multiple of its element size (the header is padded to 8 bytes).
template <class C = char>  // a template only so units that never write one compile nothing of it
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, array_ref>>& tensors,
                       const std::map<std::string, std::string>& metadata = {}) {
  detail::safetensors_core<C>::write(path, tensors, metadata);
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_SAFETENSORS(CORE)                   \
  CORE(class mint::detail::basic_safetensors_file<char>) \
  CORE(struct mint::detail::safetensors_core<char>)
MINT_CORES_IO_SAFETENSORS(MINT_CORE)
