// NumPy's .npy files (format versions 1.0, 2.0 and 3.0): read into an ndarray,
// map without a copy, or write atomically. Little and big endian, C and Fortran
// order, bool, int8..int64, uint8..uint64, float16/32/64, and bfloat16 as the
// 2-byte void ('V2') that ml_dtypes' arrays save as. The header is checked
// against the file before any data is touched. Reading n bytes costs O(n).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/bytes.hpp"
#include "mint/io/detail/elements.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/ndarray.hpp"

namespace mint {

/// What an .npy header says, checked against the file.
struct npy_header {
  int major_version = 1;                          ///< 1, 2 or 3
  dtype type = dtype::float32;                    ///< element type
  std::endian byte_order = std::endian::native;   ///< of the stored elements
  bool fortran_order = false;                     ///< column-major storage
  shape_t shape;                                  ///< extents (empty for a scalar)
  std::uint64_t data_offset = 0;                  ///< where the elements start, from the start of the file
  std::uint64_t data_bytes = 0;                   ///< size of the elements
  /// Number of elements.
  index size() const { return index(data_bytes / dtype_size(type)); }
};

namespace detail {

inline constexpr std::uint64_t npy_max_header_bytes = std::uint64_t(1) << 20;
inline constexpr std::size_t npy_max_rank = 64;

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// Parses the Python dict literal of an .npy header: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
/// (A template only as npy_core is, C always char.)
template <class C>
class npy_dict_parser {
public:
  npy_dict_parser(std::string_view text, const byte_reader& where) : s_(text), where_(where) {}

  void parse(npy_header& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (seen_descr) fail("repeats the key 'descr'", "needs each key once");
        if (peek() == '[') fail("has a structured dtype (a list of fields)", "needs a plain numeric dtype");
        parse_descr(parse_string(), h);
        seen_descr = true;
      } else if (key == "fortran_order") {
        if (seen_order) fail("repeats the key 'fortran_order'", "needs each key once");
        h.fortran_order = parse_bool();
        seen_order = true;
      } else if (key == "shape") {
        if (seen_shape) fail("repeats the key 'shape'", "needs each key once");
        h.shape = parse_shape();
        seen_shape = true;
      } else {
        fail(str("has the unknown key '", key, "'"), "needs only 'descr', 'fortran_order' and 'shape'");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != '}') fail(str("has '", peek_printable(), "' after a value"), "needs ',' or '}'");
    }
    ++i_;
    skip_space();
    if (i_ != s_.size()) fail("has text after the header's closing brace", "needs only padding there");
    if (!seen_descr || !seen_order || !seen_shape)
      fail("lacks one of 'descr', 'fortran_order', 'shape'", "needs all three");
  }

private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  std::string peek_printable() const {
    const char c = peek();
    return c >= 32 && c < 127 ? std::string(1, c) : str("\\x", std::hex, int(static_cast<unsigned char>(c)));
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(str("has '", peek_printable(), "' at character ", i_, " of its header"), str("needs '", c, "'"));
    ++i_;
  }
  [[noreturn]] void fail(const std::string& got, const std::string& needs) const { where_.fail(got, needs); }

  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(str("has '", peek_printable(), "' where a quoted string belongs"), "needs a string");
    ++i_;
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\') fail("has an escape in a string", "needs plain strings");
      ++i_;
    }
    if (i_ >= s_.size()) fail("has a string that never closes", "needs a closing quote");
    return std::string(s_.substr(start, i_++ - start));
  }

  bool parse_bool() {
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    fail("has a fortran_order that is neither True nor False", "needs True or False");
  }

  shape_t parse_shape() {
    shape_t shape;
    expect('(');
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') fail(str("has '", peek_printable(), "' in its shape"), "needs non-negative integers");
      index value = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, peek() - '0', &value))
          fail("has an extent too large for a 64-bit integer", "needs extents below 2^63");
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long literal
      shape.push_back(value);
      if (shape.size() > npy_max_rank) fail(str("has more than ", npy_max_rank, " axes"), "needs a smaller rank");
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')') fail(str("has '", peek_printable(), "' in its shape"), "needs ',' or ')'");
    }
    ++i_;
    return shape;
  }

  void parse_descr(const std::string& d, npy_header& h) {
    auto bad = [&](const char* why) {
      fail(str("has the dtype '", d, "' (", why, ")"),
           "needs bool, int8..int64, uint8..uint64, float16/32/64 or bfloat16 ('V2')");
    };
    if (d.size() < 2) bad("too short");
    std::size_t k = 0;
    h.byte_order = std::endian::native;
    if (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') {
      if (d[0] == '<') h.byte_order = std::endian::little;
      if (d[0] == '>') h.byte_order = std::endian::big;
      k = 1;
    }
    const std::string_view code = std::string_view(d).substr(k);
    if (code == "b1" || code == "?") h.type = dtype::boolean;
    else if (code == "i1") h.type = dtype::int8;
    else if (code == "i2") h.type = dtype::int16;
    else if (code == "i4") h.type = dtype::int32;
    else if (code == "i8") h.type = dtype::int64;
    else if (code == "u1") h.type = dtype::uint8;
    else if (code == "u2") h.type = dtype::uint16;
    else if (code == "u4") h.type = dtype::uint32;
    else if (code == "u8") h.type = dtype::uint64;
    else if (code == "f2") h.type = dtype::float16;
    else if (code == "f4") h.type = dtype::float32;
    else if (code == "f8") h.type = dtype::float64;
    else if (code == "V2") h.type = dtype::bfloat16;
    else bad("not supported");
  }

  std::string_view s_;
  std::size_t i_ = 0;
  const byte_reader& where_;
};
#endif  // MINT_CORE_BODIES

/// Reading and writing .npy headers. A template (C is always char) so only the units that read
/// or write a file compile it, and a program may compile it once (mint/core/compiled.hpp).
template <class C>
struct npy_core {
  /// Parses and checks the .npy file that occupies [offset, offset + length) of `bytes`.
  static npy_header parse(std::span<const std::byte> bytes, std::uint64_t offset, std::uint64_t length,
                          const char* function, std::string_view name);
  /// The .npy bytes before the data: magic, version, length and the padded dict (a multiple of 64 bytes).
  static std::string preamble(const array_ref& a, bool fortran_order);
  /// write_npy.
  static void write(const std::string& path, const array_ref& array);

private:
  static std::string descr(dtype d);
};

#if MINT_CORE_BODIES
template <class C>
npy_header npy_core<C>::parse(std::span<const std::byte> bytes, std::uint64_t offset, std::uint64_t length,
                              const char* function, std::string_view name) {
  byte_reader r(bytes.subspan(offset, length), function, name);
  const auto magic = r.take_string(6, "the magic string");
  if (magic != std::string_view("\x93NUMPY", 6)) r.fail("does not start with \\x93NUMPY", "needs an .npy file");
  npy_header h;
  h.major_version = std::to_integer<int>(r.take(2, "the version")[0]);
  std::uint64_t header_bytes = 0;
  if (h.major_version == 1) header_bytes = r.read<std::uint16_t>("the header length");
  else if (h.major_version == 2 || h.major_version == 3) header_bytes = r.read<std::uint32_t>("the header length");
  else r.fail(str("has format version ", h.major_version), "needs version 1, 2 or 3");
  if (header_bytes > npy_max_header_bytes)
    r.fail(str("claims a header of ", header_bytes, " bytes"), str("needs at most ", npy_max_header_bytes));
  const auto text = r.take_string(header_bytes, "the header");
  npy_dict_parser<C>(text, r).parse(h);
  const index count = [&] {
    index n = 1;
    for (const index e : h.shape)
      if (__builtin_mul_overflow(n, e, &n)) r.fail(str("has the shape ", shape_string(std::span<const index>(h.shape)), " whose product overflows"), "needs a size below 2^63");
    return n;
  }();
  std::uint64_t data_bytes = 0;
  if (mul_overflows(std::uint64_t(count), dtype_size(h.type), data_bytes))
    r.fail("has a data size that overflows 64 bits", "needs a sane shape");
  if (data_bytes > r.remaining())
    r.fail(str("has the shape ", shape_string(std::span<const index>(h.shape)), " of ", dtype_name(h.type), ", ", data_bytes,
               " bytes, but only ", r.remaining(), " bytes follow the header"),
           "needs the whole array in the file (is it truncated?)");
  h.data_offset = offset + r.position();
  h.data_bytes = data_bytes;
  return h;
}
#endif  // MINT_CORE_BODIES

inline shape_t npy_strides(const npy_header& h) {
  return h.fortran_order ? fortran_strides(h.shape) : c_strides(h.shape);
}

#if MINT_CORE_BODIES
template <class C>
std::string npy_core<C>::descr(dtype d) {
  const char order = dtype_size(d) == 1 ? '|' : (std::endian::native == std::endian::little ? '<' : '>');
  switch (d) {
    case dtype::boolean: return "|b1";
    case dtype::int8: return "|i1";
    case dtype::uint8: return "|u1";
    case dtype::bfloat16: return str(order, "V2");
    default: break;
  }
  const char kind = d == dtype::float16 || d == dtype::float32 || d == dtype::float64 ? 'f'
                    : (d == dtype::uint16 || d == dtype::uint32 || d == dtype::uint64) ? 'u' : 'i';
  return str(order, kind, dtype_size(d));
}

template <class C>
std::string npy_core<C>::preamble(const array_ref& a, bool fortran_order) {
  std::string dict = "{'descr': '" + descr(a.type) + "', 'fortran_order': " + (fortran_order ? "True" : "False") +
                     ", 'shape': (";
  for (std::size_t k = 0; k < a.shape.size(); ++k) dict += str(a.shape[k], a.shape.size() == 1 ? "," : (k + 1 < a.shape.size() ? ", " : ""));
  dict += "), }";
  const bool v1 = dict.size() + 11 + 64 < 65536;
  const std::size_t fixed = v1 ? 10 : 12;
  const std::size_t total = (fixed + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - fixed - dict.size() - 1, ' ');
  dict += '\n';
  std::string out("\x93NUMPY", 6);
  out += char(v1 ? 1 : 2);
  out += char(0);
  if (v1) append_le(out, std::uint16_t(dict.size()));
  else append_le(out, std::uint32_t(dict.size()));
  return out + dict;
}

template <class C>
void npy_core<C>::write(const std::string& path, const array_ref& array) {
  check_writable(array, "mint::write_npy");
  atomic_file out(path);
  const bool fortran = array.shape.size() > 1 && !array.is_c_contiguous() && array.is_fortran_contiguous();
  out.write(preamble(array, fortran));
  for_each_chunk(array, fortran, [&](const void* p, std::size_t n) { out.write(p, n); });
  out.commit();
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Reads and checks the header of an .npy file without reading its data. (read_npy_header and
/// write_npy are templates, C always char, so only the units that call them compile them.)
template <class C = char>
npy_header read_npy_header(const file_ptr& file) {
  return detail::npy_core<C>::parse(file->bytes(), 0, file->size(), "mint::read_npy_header", file->name());
}
template <class C = char>
npy_header read_npy_header(const std::string& path) {
  const file_ptr file = mapped_file::open(path);
  return detail::npy_core<C>::parse(file->bytes(), 0, file->size(), "mint::read_npy_header", file->name());
}

/// Reads an .npy file into an owning array (Fortran order kept as strides; big endian swapped).
template <element T>
ndarray<T> read_npy(const file_ptr& file, const read_options& options = {}) {
  constexpr const char* function = "mint::read_npy";
  const npy_header h = detail::npy_core<char>::parse(file->bytes(), 0, file->size(), function, file->name());
  return detail::read_elements<T>(*file, h.data_offset, h.type, h.byte_order, h.shape, h.fortran_order, options,
                                  function, "");
}
template <element T>
ndarray<T> read_npy(const std::string& path, const read_options& options = {}) {
  return read_npy<T>(mapped_file::open(path), options);
}

/// Maps an .npy file without a copy; its dtype must be T's, in native byte order.
template <element T>
mapped_array<T> map_npy(const file_ptr& file) {
  constexpr const char* function = "mint::map_npy";
  const npy_header h = detail::npy_core<char>::parse(file->bytes(), 0, file->size(), function, file->name());
  return detail::map_elements<T>(file, h.data_offset, h.type, h.byte_order, h.shape, detail::npy_strides(h), function, "");
}
template <element T>
mapped_array<T> map_npy(const std::string& path) {
  return map_npy<T>(mapped_file::open(path));
}

/// Writes an array (any mint tensor, ndarray or array_ref) as an .npy file, atomically.
/// A Fortran-ordered layout is written as is; any other layout in C order.
template <class C = char>
void write_npy(const std::string& path, const array_ref& array) {
  detail::npy_core<C>::write(path, array);
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_NPY(CORE) CORE(struct mint::detail::npy_core<char>)
MINT_CORES_IO_NPY(MINT_CORE)
