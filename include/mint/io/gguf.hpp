// GGUF files (llama.cpp/ggml; version 3, and 2 for reading): the header, every
// metadata value type (integers of each width, floats, bool, strings, nested
// arrays) and the tensor infos, checked as llama.cpp's parser checks them;
// tensor data of plain types (F32, F16, BF16, F64, I8..I64) read or mapped,
// quantized types listed with their byte ranges. Opening parses only the header
// (pages of tensor data are never touched): O(metadata). A writer for small
// files such as control vectors. Little-endian files only.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
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

/// The type tag of a GGUF metadata value (numbering as in the file).
enum class gguf_type : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12
};

/// The name GGUF tools print: "u32", "str", "arr".
constexpr std::string_view gguf_type_name(gguf_type t) noexcept {
  constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
  return std::uint32_t(t) < 13 ? names[std::uint32_t(t)] : "?";
}

struct gguf_value;

/// A homogeneous GGUF array (elements may themselves be arrays).
struct gguf_array {
  gguf_type element_type = gguf_type::uint8;
  std::vector<gguf_value> values;
};

/// One GGUF metadata value: its type tag and the value.
struct gguf_value {
  using variant = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t, float,
                               bool, std::string, gguf_array, std::uint64_t, std::int64_t, double>;
  variant value;

  gguf_value() = default;
  // One constructor per type, implicit on purpose: the C++ type is the GGUF type tag. Each is a
  // template (C is always char), so a unit builds the variant only for the types it stores.
  template <class C = char> gguf_value(std::uint8_t v) : value(std::in_place_type<std::uint8_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::int8_t v) : value(std::in_place_type<std::int8_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::uint16_t v) : value(std::in_place_type<std::uint16_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::int16_t v) : value(std::in_place_type<std::int16_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::uint32_t v) : value(std::in_place_type<std::uint32_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::int32_t v) : value(std::in_place_type<std::int32_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(float v) : value(std::in_place_type<float>, v) {}  // NOLINT
  template <class C = char> gguf_value(bool v) : value(std::in_place_type<bool>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::string v) : value(std::in_place_type<std::string>, std::move(v)) {}  // NOLINT
  template <class C = char> gguf_value(const char* v) : value(std::in_place_type<std::string>, v) {}  // NOLINT
  template <class C = char> gguf_value(gguf_array v) : value(std::in_place_type<gguf_array>, std::move(v)) {}  // NOLINT
  template <class C = char> gguf_value(std::uint64_t v) : value(std::in_place_type<std::uint64_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(std::int64_t v) : value(std::in_place_type<std::int64_t>, v) {}  // NOLINT
  template <class C = char> gguf_value(double v) : value(std::in_place_type<double>, v) {}  // NOLINT

  /// The type tag (the variant's index is the GGUF numbering).
  gguf_type type() const noexcept { return gguf_type(value.index()); }
  /// The value as exactly T (a std::bad_variant_access when it is another type).
  template <class T>
  const T& get() const { return std::get<T>(value); }
  /// Any integer type (and bool) as int64; nullopt for other types or a u64 above INT64_MAX.
  /// (as_integer and as_number are templates, C always char, so only the units that call them
  /// compile their visits.)
  template <class C = char>
  std::optional<std::int64_t> as_integer() const {
    return std::visit([](const auto& v) -> std::optional<std::int64_t> {
      using V = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<V, std::uint64_t>) {
        if (v > std::uint64_t(INT64_MAX)) return std::nullopt;
        return std::int64_t(v);
      } else if constexpr (std::is_integral_v<V>) {
        return std::int64_t(v);
      } else {
        return std::nullopt;
      }
    }, value);
  }
  /// f32 or f64 as double (integers too); nullopt for strings and arrays.
  template <class C = char>
  std::optional<double> as_number() const {
    return std::visit([](const auto& v) -> std::optional<double> {
      using V = std::decay_t<decltype(v)>;
      if constexpr (std::is_arithmetic_v<V>) return double(v);
      else return std::nullopt;
    }, value);
  }
  /// The string, or nullptr when the value is not a string.
  const std::string* as_string() const noexcept { return std::get_if<std::string>(&value); }
  /// The array, or nullptr when the value is not an array.
  const gguf_array* as_array() const noexcept { return std::get_if<gguf_array>(&value); }
};

/// A ggml tensor type: its number in the file, name, and bytes per block of elements.
struct ggml_type_info {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block_size;   ///< elements per block
  std::uint32_t block_bytes;  ///< bytes per block
};

/// Every ggml type a GGUF file may hold (ids 4, 5, 31-33, 36-38 were removed from ggml).
inline constexpr ggml_type_info ggml_types[] = {
    {0, "F32", 1, 4},        {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},     {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},  {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50}, {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},       {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},       {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},  {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
};

/// The ggml type with this id, or nullptr.
inline const ggml_type_info* find_ggml_type(std::uint32_t id) noexcept {
  for (const auto& t : ggml_types)
    if (t.id == id) return &t;
  return nullptr;
}

/// The dtype a plain ggml type stores (F32, F16, BF16, F64, I8..I64); nullopt for quantized types.
inline std::optional<dtype> ggml_dtype(std::uint32_t id) noexcept {
  switch (id) {
    case 0: return dtype::float32;
    case 1: return dtype::float16;
    case 24: return dtype::int8;
    case 25: return dtype::int16;
    case 26: return dtype::int32;
    case 27: return dtype::int64;
    case 28: return dtype::float64;
    case 30: return dtype::bfloat16;
    default: return std::nullopt;
  }
}

/// One tensor of a GGUF file, checked against the file.
struct gguf_tensor_info {
  std::string name;
  std::vector<std::int64_t> dims;  ///< ggml order: dims[0] varies fastest
  std::uint32_t type = 0;          ///< ggml type id (see ggml_types)
  std::uint64_t offset = 0;        ///< from the start of the data block, as stored
  std::uint64_t data_offset = 0;   ///< from the start of the file
  std::uint64_t data_bytes = 0;
  /// Row-major (NumPy) shape: the dims reversed.
  shape_t shape() const { return shape_t(dims.rbegin(), dims.rend()); }
  /// The ggml type's name ("F32", "Q4_K").
  std::string_view type_name() const noexcept { return find_ggml_type(type)->name; }
};

namespace detail {

inline constexpr std::uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr std::uint32_t gguf_default_alignment = 32;
inline constexpr std::size_t ggml_max_name = 64;
inline constexpr int gguf_max_array_depth = 8;

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// The smallest encoding of a value of type t (a string's or array's empty form), to bound counts.
inline std::uint64_t gguf_min_bytes(gguf_type t) {
  constexpr std::uint64_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
  return sizes[std::uint32_t(t)];
}

/// Reads GGUF strings and metadata values (a template only as its users are, C always char).
template <class C>
class gguf_parser {
public:
  explicit gguf_parser(byte_reader& r) : r_(r) {}

  std::string read_string(const char* what) {
    const auto n = r_.read<std::uint64_t>(what);
    return std::string(r_.take_string(n, what));
  }

  gguf_value read_value(std::uint32_t raw_type, int depth);

private:
  byte_reader& r_;
};

template <class C>
gguf_value gguf_parser<C>::read_value(std::uint32_t raw_type, int depth) {
  if (raw_type > 12) r_.fail(str("has the value type ", raw_type, " at offset ", r_.position()), "needs a GGUF type 0 to 12");
  const auto t = gguf_type(raw_type);
  switch (t) {
    case gguf_type::uint8: return r_.read<std::uint8_t>("a value");
    case gguf_type::int8: return r_.read<std::int8_t>("a value");
    case gguf_type::uint16: return r_.read<std::uint16_t>("a value");
    case gguf_type::int16: return r_.read<std::int16_t>("a value");
    case gguf_type::uint32: return r_.read<std::uint32_t>("a value");
    case gguf_type::int32: return r_.read<std::int32_t>("a value");
    case gguf_type::float32: return r_.read<float>("a value");
    case gguf_type::boolean: return r_.read<std::uint8_t>("a value") != 0;  // any non-zero byte is true, as in llama.cpp
    case gguf_type::string: return read_string("a string value");
    case gguf_type::uint64: return r_.read<std::uint64_t>("a value");
    case gguf_type::int64: return r_.read<std::int64_t>("a value");
    case gguf_type::float64: return r_.read<double>("a value");
    case gguf_type::array: break;
  }
  if (depth >= gguf_max_array_depth) r_.fail(str("nests arrays deeper than ", gguf_max_array_depth), "needs flatter metadata");
  gguf_array a;
  const auto element = r_.read<std::uint32_t>("an array's type");
  if (element > 12) r_.fail(str("has an array of value type ", element), "needs a GGUF type 0 to 12");
  a.element_type = gguf_type(element);
  const auto count = r_.read<std::uint64_t>("an array's length");
  if (count > r_.remaining() / gguf_min_bytes(a.element_type))
    r_.fail(str("claims an array of ", count, " values with ", r_.remaining(), " bytes left"), "needs them in the file");
  a.values.reserve(std::size_t(count));
  for (std::uint64_t k = 0; k < count; ++k) {
    if (a.element_type == gguf_type::array) {
      a.values.push_back(read_value(std::uint32_t(gguf_type::array), depth + 1));
    } else {
      a.values.push_back(read_value(element, depth + 1));
    }
  }
  return a;
}
#endif  // MINT_CORE_BODIES

/// print_gguf_value (C is always char, as for the file classes below).
template <class C>
struct gguf_core {
  static void print(std::ostream& out, const gguf_value& v, std::size_t max_items);
};

#if MINT_CORE_BODIES
template <class C>
void gguf_core<C>::print(std::ostream& out, const gguf_value& v, std::size_t max_items) {
  std::visit([&](const auto& x) {
    using V = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<V, std::string>) out << '"' << x << '"';
    else if constexpr (std::is_same_v<V, bool>) out << (x ? "true" : "false");
    else if constexpr (std::is_same_v<V, gguf_array>) {
      out << '[';
      for (std::size_t k = 0; k < x.values.size() && k < max_items; ++k) {
        if (k) out << ", ";
        print(out, x.values[k], max_items);
      }
      if (x.values.size() > max_items) out << ", ... (" << x.values.size() << " items)";
      out << ']';
    } else if constexpr (sizeof(V) == 1) out << int(x);
    else out << x;
  }, v.value);
}
#endif  // MINT_CORE_BODIES

/// gguf_file. A template (C is always char) so only the units that open a file compile the
/// parser behind it, and a program may compile it once (mint/core/compiled.hpp).
template <class C>
class basic_gguf_file {
public:
  /// Opens (memory-maps) the file and parses its header; tensor data is not read.
  explicit basic_gguf_file(const std::string& path) : basic_gguf_file(mapped_file::open(path)) {}
  explicit basic_gguf_file(file_ptr file);

  /// 2 or 3.
  std::uint32_t version() const noexcept { return version_; }
  /// general.alignment, or 32.
  std::uint32_t alignment() const noexcept { return alignment_; }
  /// Where the data block starts in the file.
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  /// Every key and value, in file order.
  const std::vector<std::pair<std::string, gguf_value>>& metadata() const noexcept { return metadata_; }
  /// The value of a key, or nullptr.
  const gguf_value* find(std::string_view key) const {
    const auto it = keys_.find(key);
    return it == keys_.end() ? nullptr : &metadata_[it->second].second;
  }
  /// An integer value of any width (u32 and i32 alike); an argument_error when absent or not an integer.
  std::int64_t integer(std::string_view key) const;
  /// A string value; an argument_error when absent or not a string.
  const std::string& string(std::string_view key) const;

  /// Tensor infos in file order.
  const std::vector<gguf_tensor_info>& tensors() const noexcept { return tensors_; }
  /// The info of a tensor; an argument_error when absent.
  const gguf_tensor_info& tensor(std::string_view name) const { return find_tensor(name, "mint::gguf_file::tensor"); }
  /// The raw bytes of any tensor (quantized ones included); touching them reads them from disk.
  std::span<const std::byte> tensor_bytes(std::string_view name) const {
    const auto& t = find_tensor(name, "mint::gguf_file::tensor_bytes");
    return file_->bytes().subspan(std::size_t(t.data_offset), std::size_t(t.data_bytes));
  }

  /// Reads a plain tensor (F32, F16, BF16, F64, I8..I64) in row-major shape; converts with .convert.
  template <element T>
  ndarray<T> read(std::string_view name, const read_options& options = {}) const {
    constexpr const char* function = "mint::gguf_file::read";
    const auto& t = find_tensor(name, function);
    return read_elements<T>(*file_, t.data_offset, plain_dtype(t, function), std::endian::little, t.shape(), false,
                            options, function, str("tensor '", t.name, "' "));
  }

  /// Maps a plain tensor without a copy (its dtype must be T's).
  template <element T>
  mapped_array<T> map(std::string_view name) const {
    constexpr const char* function = "mint::gguf_file::map";
    const auto& t = find_tensor(name, function);
    const shape_t shape = t.shape();
    return map_elements<T>(file_, t.data_offset, plain_dtype(t, function), std::endian::little, shape, c_strides(shape),
                           function, str("tensor '", t.name, "' "));
  }

  const file_ptr& file() const noexcept { return file_; }

private:
  const gguf_value& at(std::string_view key, const char* function) const;
  const gguf_tensor_info& find_tensor(std::string_view name, const char* function) const;
  dtype plain_dtype(const gguf_tensor_info& t, const char* function) const;

  file_ptr file_;
  std::uint32_t version_ = 3;
  std::uint32_t alignment_ = gguf_default_alignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, gguf_value>> metadata_;
  std::map<std::string, std::size_t, std::less<>> keys_;
  std::vector<gguf_tensor_info> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

#if MINT_CORE_BODIES
template <class C>
std::int64_t basic_gguf_file<C>::integer(std::string_view key) const {
  const gguf_value& v = at(key, "mint::gguf_file::integer");
  const auto i = v.as_integer();
  if (!i) throw argument_error("mint::gguf_file::integer", str("key '", key, "'"),
                               str("holds a ", gguf_type_name(v.type()), " in ", file_->name()), "needs an integer");
  return *i;
}

template <class C>
const std::string& basic_gguf_file<C>::string(std::string_view key) const {
  const gguf_value& v = at(key, "mint::gguf_file::string");
  if (!v.as_string())
    throw argument_error("mint::gguf_file::string", str("key '", key, "'"),
                         str("holds a ", gguf_type_name(v.type()), " in ", file_->name()), "needs a string");
  return *v.as_string();
}

template <class C>
const gguf_value& basic_gguf_file<C>::at(std::string_view key, const char* function) const {
  const gguf_value* v = find(key);
  if (!v) throw argument_error(function, str("key '", key, "'"), str("is not in ", file_->name()), "needs a key the file has");
  return *v;
}

template <class C>
const gguf_tensor_info& basic_gguf_file<C>::find_tensor(std::string_view name, const char* function) const {
  const auto it = tensor_index_.find(name);
  if (it == tensor_index_.end())
    throw argument_error(function, "name", str("'", name, "' is not a tensor of ", file_->name()),
                         str("needs one of its ", tensors_.size(), " tensors"));
  return tensors_[it->second];
}

template <class C>
dtype basic_gguf_file<C>::plain_dtype(const gguf_tensor_info& t, const char* function) const {
  const auto d = ggml_dtype(t.type);
  if (!d)
    format_fail(function, file_->name(), str("holds tensor '", t.name, "' as ", t.type_name()),
                "needs F32, F16, BF16, F64 or I8..I64 to read it (quantized types are listed, not decoded)");
  return *d;
}

template <class C>
basic_gguf_file<C>::basic_gguf_file(file_ptr file) : file_(std::move(file)) {
  constexpr const char* function = "mint::gguf_file";
  byte_reader r(file_->bytes(), function, file_->name());
  const auto magic = r.read<std::uint32_t>("the magic");
  if (magic != gguf_magic) r.fail("does not start with GGUF", "needs a GGUF file");
  version_ = r.read<std::uint32_t>("the version");
  if (version_ == 0) r.fail("has GGUF version 0", "needs version 2 or 3");
  if (version_ == 1) r.fail("has GGUF version 1", "needs version 2 or 3 (convert it with a current llama.cpp)");
  if (version_ > 0xffff) r.fail(str("has the version ", version_, " (a big-endian file?)"), "needs a little-endian GGUF file");
  if (version_ > 3) r.fail(str("has GGUF version ", version_), "needs version 2 or 3");
  const auto n_tensors = r.read<std::uint64_t>("the tensor count");
  const auto n_kv = r.read<std::uint64_t>("the metadata count");
  if (n_kv > r.remaining() / 13) r.fail(str("claims ", n_kv, " metadata keys"), "needs them in the file");
  if (n_tensors > r.remaining() / 24) r.fail(str("claims ", n_tensors, " tensors"), "needs them in the file");

  gguf_parser<C> p(r);
  metadata_.reserve(std::size_t(n_kv));
  for (std::uint64_t k = 0; k < n_kv; ++k) {
    std::string key = p.read_string("a metadata key");
    if (key.empty()) r.fail(str("has an empty key (metadata entry ", k, ")"), "needs a name for every key");
    const auto type = r.read<std::uint32_t>("a value type");
    gguf_value value = p.read_value(type, 0);
    if (!keys_.emplace(key, metadata_.size()).second) r.fail(str("holds the key '", key, "' twice"), "needs unique keys");
    metadata_.emplace_back(std::move(key), std::move(value));
  }
  if (const gguf_value* a = find("general.alignment")) {
    const auto* u = std::get_if<std::uint32_t>(&a->value);
    if (!u || *u == 0 || (*u & (*u - 1)) != 0)
      r.fail("has a general.alignment that is not a u32 power of two", "needs a u32 power of two");
    alignment_ = *u;
  }

  tensors_.reserve(std::size_t(n_tensors));
  std::uint64_t expected = 0;  // tensors are packed in order, each padded to the alignment
  for (std::uint64_t k = 0; k < n_tensors; ++k) {
    gguf_tensor_info t;
    t.name = p.read_string("a tensor name");
    if (t.name.size() >= ggml_max_name)
      r.fail(str("has a tensor name of ", t.name.size(), " bytes"), str("needs fewer than ", ggml_max_name));
    const auto n_dims = r.read<std::uint32_t>("a tensor's rank");
    if (n_dims > 4) r.fail(str("gives tensor '", t.name, "' ", n_dims, " dimensions"), "needs at most 4");
    std::int64_t count = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto extent = r.read<std::int64_t>("a tensor's dimensions");
      if (extent < 0 || __builtin_mul_overflow(count, extent, &count))
        r.fail(str("gives tensor '", t.name, "' a dimension of ", extent, " (or too many elements)"), "needs a sane shape");
      t.dims.push_back(extent);
    }
    t.type = r.read<std::uint32_t>("a tensor's type");
    const ggml_type_info* info = find_ggml_type(t.type);
    if (!info) r.fail(str("gives tensor '", t.name, "' the ggml type ", t.type), "needs a known ggml type");
    const std::int64_t row = t.dims.empty() ? 1 : t.dims[0];  // ggml gives a tensor of no dims ne[0] = 1
    if (row % info->block_size != 0)
      r.fail(str("gives tensor '", t.name, "' rows of ", row, " ", info->name, " elements"),
             str("needs a multiple of the block size ", info->block_size));
    if (mul_overflows(std::uint64_t(count) / info->block_size, info->block_bytes, t.data_bytes))
      r.fail(str("gives tensor '", t.name, "' ", count, " elements whose size overflows 64 bits"), "needs a sane shape");
    t.offset = r.read<std::uint64_t>("a tensor's offset");
    if (t.offset != expected)
      r.fail(str("places tensor '", t.name, "' at data offset ", t.offset),
             str("needs ", expected, " (tensors packed in order, each padded to ", alignment_, " bytes)"));
    std::uint64_t padded = 0;
    if (!align_up(t.data_bytes, alignment_, padded) || add_overflows(expected, padded, expected))
      r.fail("has tensor sizes that overflow 64 bits", "needs a sane file");
    if (!tensor_index_.emplace(t.name, tensors_.size()).second)
      r.fail(str("holds the tensor '", t.name, "' twice"), "needs unique tensor names");
    tensors_.push_back(std::move(t));
  }
  if (!align_up(r.position(), alignment_, data_offset_)) r.fail("has an impossible data offset", "needs a sane file");
  for (auto& t : tensors_) {
    std::uint64_t end = 0;
    if (add_overflows(data_offset_, t.offset, t.data_offset) || add_overflows(t.data_offset, t.data_bytes, end) ||
        end > file_->size())
      r.fail(str("places tensor '", t.name, "' (", t.data_bytes, " bytes at data offset ", t.offset, ") past its end"),
             str("needs the data inside the file's ", file_->size(), " bytes (is it truncated?)"));
  }
}
#endif  // MINT_CORE_BODIES

/// gguf_writer (C is always char, as for basic_gguf_file).
template <class C>
class basic_gguf_writer {
public:
  explicit basic_gguf_writer(std::string path) : path_(std::move(path)) {}

  /// Sets a metadata key (replacing an earlier value of the same key). general.alignment must be a u32 power of two.
  void set(const std::string& key, gguf_value value);

  /// Adds a tensor; the array's row-major shape is written reversed, as ggml's dims. The elements
  /// are copied now (in row-major order), so the array may go away before commit(); this writer
  /// is meant for control vectors and other small files, not for multi-gigabyte models.
  void add_tensor(const std::string& name, const array_ref& array);

  /// Writes the file and renames it into place.
  void commit();

private:
  static void append_string(std::string& out, const std::string& s) {
    append_le(out, std::uint64_t(s.size()));
    out += s;
  }
  static void check_value(const gguf_value& v, const std::string& key, int depth);
  static void append_value(std::string& out, const gguf_value& v);

  std::string path_;
  std::uint32_t alignment_ = gguf_default_alignment;
  std::vector<std::pair<std::string, gguf_value>> metadata_;
  struct tensor {
    std::string name;
    dtype type;
    shape_t shape;
    std::vector<std::byte> bytes;
  };
  std::vector<tensor> tensors_;
};

#if MINT_CORE_BODIES
template <class C>
void basic_gguf_writer<C>::set(const std::string& key, gguf_value value) {
  constexpr const char* function = "mint::gguf_writer::set";
  if (key == "general.alignment") {
    const auto* u = std::get_if<std::uint32_t>(&value.value);
    if (!u || *u == 0 || (*u & (*u - 1)) != 0)
      throw argument_error(function, "general.alignment", "is not a u32 power of two", "needs e.g. std::uint32_t(32)");
    alignment_ = *u;
  }
  check_value(value, key, 0);
  for (auto& [k, v] : metadata_)
    if (k == key) return void(v = std::move(value));
  metadata_.emplace_back(key, std::move(value));
}

template <class C>
void basic_gguf_writer<C>::add_tensor(const std::string& name, const array_ref& array) {
  constexpr const char* function = "mint::gguf_writer::add_tensor";
  check_writable(array, function);
  if (name.empty() || name.size() >= ggml_max_name)
    throw argument_error(function, "name", str("'", name, "' has ", name.size(), " bytes"), "needs 1 to 63 bytes");
  if (array.shape.empty() || array.shape.size() > 4)
    throw shape_error(function, "array", str("has rank ", array.shape.size()), "needs rank 1 to 4");
  for (const auto& t : tensors_)
    if (t.name == name) throw argument_error(function, "name", str("'", name, "' was added already"), "needs unique names");
  bool known = false;
  for (const auto& t : ggml_types)
    if (ggml_dtype(t.id) == array.type) known = true;
  if (!known)
    throw argument_error(function, "array", str("holds ", dtype_name(array.type)),
                         "needs float32, float16, bfloat16, float64 or int8..int64 (ggml has no unsigned or bool types)");
  tensor t{name, array.type, array.shape, {}};
  t.bytes.reserve(std::size_t(array.size()) * dtype_size(array.type));
  for_each_chunk(array, false, [&](const void* p, std::size_t n) {
    t.bytes.insert(t.bytes.end(), static_cast<const std::byte*>(p), static_cast<const std::byte*>(p) + n);
  });
  tensors_.push_back(std::move(t));
}

template <class C>
void basic_gguf_writer<C>::commit() {
  atomic_file out(path_);
  std::string head;
  append_le(head, gguf_magic);
  append_le(head, std::uint32_t(3));
  append_le(head, std::uint64_t(tensors_.size()));
  append_le(head, std::uint64_t(metadata_.size()));
  for (const auto& [key, value] : metadata_) {
    append_string(head, key);
    append_le(head, std::uint32_t(value.type()));
    append_value(head, value);
  }
  std::uint64_t offset = 0;
  for (const auto& t : tensors_) {
    append_string(head, t.name);
    append_le(head, std::uint32_t(t.shape.size()));
    for (std::size_t d = t.shape.size(); d-- > 0;) append_le(head, std::uint64_t(t.shape[d]));
    std::uint32_t type = 0;
    for (const auto& g : ggml_types)
      if (ggml_dtype(g.id) == t.type) type = g.id;
    append_le(head, type);
    append_le(head, offset);
    offset += (t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  out.write(head);
  out.write_zeros((alignment_ - head.size() % alignment_) % alignment_);
  for (const auto& t : tensors_) {
    out.write(std::span<const std::byte>(t.bytes));
    out.write_zeros((alignment_ - t.bytes.size() % alignment_) % alignment_);  // llama.cpp reads this padding too
  }
  out.commit();
}

template <class C>
void basic_gguf_writer<C>::check_value(const gguf_value& v, const std::string& key, int depth) {
  const gguf_array* a = v.as_array();
  if (!a) return;
  if (depth >= gguf_max_array_depth)
    throw argument_error("mint::gguf_writer::set", str("key '", key, "'"), "nests arrays too deeply", "needs flatter values");
  for (const auto& x : a->values) {
    if (x.type() != a->element_type)
      throw argument_error("mint::gguf_writer::set", str("key '", key, "'"),
                           str("holds a ", gguf_type_name(x.type()), " in an array of ", gguf_type_name(a->element_type)),
                           "needs every element of the array's type");
    check_value(x, key, depth + 1);
  }
}

template <class C>
void basic_gguf_writer<C>::append_value(std::string& out, const gguf_value& v) {
  std::visit([&](const auto& x) {
    using V = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<V, std::string>) append_string(out, x);
    else if constexpr (std::is_same_v<V, bool>) out += char(x ? 1 : 0);
    else if constexpr (std::is_same_v<V, gguf_array>) {
      append_le(out, std::uint32_t(x.element_type));
      append_le(out, std::uint64_t(x.values.size()));
      for (const auto& e : x.values) append_value(out, e);
    } else append_le(out, x);
  }, v.value);
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Prints a value as GGUF dumps do; arrays longer than `max_items` end with "...".
template <class C = char>  // a template only so units that never print one compile nothing of it
void print_gguf_value(std::ostream& out, const gguf_value& v, std::size_t max_items = 8) {
  detail::gguf_core<C>::print(out, v, max_items);
}

/// A GGUF file opened for reading: metadata in file order, tensor infos, and the plain tensors' data.
using gguf_file = detail::basic_gguf_file<char>;

/// Writes a GGUF version 3 file: metadata in the order set, then tensors of plain dtypes
/// (float32, float16, bfloat16, float64, int8..int64), each padded to the alignment. commit()
/// puts the file in place atomically; a writer destroyed before it leaves any old file intact.
using gguf_writer = detail::basic_gguf_writer<char>;

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_GGUF(CORE)                   \
  CORE(struct mint::detail::gguf_core<char>)      \
  CORE(class mint::detail::basic_gguf_file<char>) \
  CORE(class mint::detail::basic_gguf_writer<char>)
MINT_CORES_IO_GGUF(MINT_CORE)
