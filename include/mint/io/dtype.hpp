// Element types of the files mint reads and writes: the dtype tag, its width
// and names, the 16-bit float types float16 (IEEE binary16) and bfloat16 (the
// top half of a float32), and element-wise conversion from file bytes (either
// byte order) to a C++ type. Conversions round to nearest even; O(n).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "mint/core/error.hpp"
#include "mint/io/detail/bytes.hpp"

namespace mint {

/// IEEE 754 binary16, stored as its 16 bits; converts to and from float.
struct float16 {
  std::uint16_t bits;  // no initializer: arrays of float16 allocate without a fill

  float16() = default;
  /// Rounds to nearest even; overflow gives infinity, NaN stays NaN.
  explicit float16(float value) noexcept : bits(from_float(value)) {}
  explicit operator float() const noexcept { return to_float(bits); }
  static constexpr float16 from_bits(std::uint16_t b) noexcept {
    float16 out{};
    out.bits = b;
    return out;
  }
  friend bool operator==(float16 a, float16 b) noexcept { return a.bits == b.bits; }

  static float to_float(std::uint16_t h) noexcept {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
      const float magnitude = float(mantissa) * 0x1p-24f;
      return sign ? -magnitude : magnitude;
    }
    const std::uint32_t bits32 = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13)
                                                : sign | ((exponent + 112) << 23) | (mantissa << 13);
    return std::bit_cast<float>(bits32);
  }

  static std::uint16_t from_float(float value) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    const auto sign = std::uint16_t((x >> 16) & 0x8000u);
    const std::uint32_t magnitude = x & 0x7fffffffu, exponent = magnitude >> 23;
    if (magnitude >= 0x7f800000u)  // infinity, or NaN kept quiet with its top payload bits
      return std::uint16_t(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u | ((magnitude >> 13) & 0x3ffu) : 0u));
    if (exponent >= 143) return std::uint16_t(sign | 0x7c00u);  // beyond 65520: infinity
    if (exponent < 113) {                                       // half subnormal (or zero)
      const std::uint32_t shift = 126 - exponent;
      if (exponent == 0 || shift > 24) return sign;
      const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
      std::uint32_t r = mantissa >> shift;
      const std::uint32_t rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
      if (rest > half || (rest == half && (r & 1u))) ++r;
      return std::uint16_t(sign | r);
    }
    std::uint32_t r = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3ffu);
    const std::uint32_t rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) ++r;  // a carry into the exponent is right
    return std::uint16_t(sign | r);
  }
};

/// bfloat16: the top 16 bits of a float32; converts to and from float.
struct bfloat16 {
  std::uint16_t bits;

  bfloat16() = default;
  /// Rounds to nearest even; NaN stays NaN.
  explicit bfloat16(float value) noexcept : bits(from_float(value)) {}
  explicit operator float() const noexcept { return to_float(bits); }
  static constexpr bfloat16 from_bits(std::uint16_t b) noexcept {
    bfloat16 out{};
    out.bits = b;
    return out;
  }
  friend bool operator==(bfloat16 a, bfloat16 b) noexcept { return a.bits == b.bits; }

  static float to_float(std::uint16_t b) noexcept { return std::bit_cast<float>(std::uint32_t(b) << 16); }
  static std::uint16_t from_float(float value) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
    if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x40u);
    return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  }
};

/// The element types mint's file formats carry.
enum class dtype : std::uint8_t {
  boolean, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, bfloat16, float32, float64
};

/// Every dtype, for loops in tests and tools.
inline constexpr dtype all_dtypes[] = {dtype::boolean, dtype::int8,    dtype::int16,    dtype::int32,  dtype::int64,
                                       dtype::uint8,   dtype::uint16,  dtype::uint32,   dtype::uint64, dtype::float16,
                                       dtype::bfloat16, dtype::float32, dtype::float64};

/// Bytes per element.
constexpr std::size_t dtype_size(dtype d) noexcept {
  switch (d) {
    case dtype::boolean: case dtype::int8: case dtype::uint8: return 1;
    case dtype::int16: case dtype::uint16: case dtype::float16: case dtype::bfloat16: return 2;
    case dtype::int32: case dtype::uint32: case dtype::float32: return 4;
    default: return 8;
  }
}

/// NumPy's name: "float32", "bool", "bfloat16".
constexpr std::string_view dtype_name(dtype d) noexcept {
  switch (d) {
    case dtype::boolean: return "bool";
    case dtype::int8: return "int8";
    case dtype::int16: return "int16";
    case dtype::int32: return "int32";
    case dtype::int64: return "int64";
    case dtype::uint8: return "uint8";
    case dtype::uint16: return "uint16";
    case dtype::uint32: return "uint32";
    case dtype::uint64: return "uint64";
    case dtype::float16: return "float16";
    case dtype::bfloat16: return "bfloat16";
    case dtype::float32: return "float32";
    default: return "float64";
  }
}

/// True for the floating-point dtypes.
constexpr bool is_floating(dtype d) noexcept {
  return d == dtype::float16 || d == dtype::bfloat16 || d == dtype::float32 || d == dtype::float64;
}

namespace detail {
template <class T>
struct dtype_of_impl;
template <> struct dtype_of_impl<bool> { static constexpr dtype value = dtype::boolean; };
template <> struct dtype_of_impl<std::int8_t> { static constexpr dtype value = dtype::int8; };
template <> struct dtype_of_impl<std::int16_t> { static constexpr dtype value = dtype::int16; };
template <> struct dtype_of_impl<std::int32_t> { static constexpr dtype value = dtype::int32; };
template <> struct dtype_of_impl<std::int64_t> { static constexpr dtype value = dtype::int64; };
template <> struct dtype_of_impl<std::uint8_t> { static constexpr dtype value = dtype::uint8; };
template <> struct dtype_of_impl<std::uint16_t> { static constexpr dtype value = dtype::uint16; };
template <> struct dtype_of_impl<std::uint32_t> { static constexpr dtype value = dtype::uint32; };
template <> struct dtype_of_impl<std::uint64_t> { static constexpr dtype value = dtype::uint64; };
template <> struct dtype_of_impl<float16> { static constexpr dtype value = dtype::float16; };
template <> struct dtype_of_impl<bfloat16> { static constexpr dtype value = dtype::bfloat16; };
template <> struct dtype_of_impl<float> { static constexpr dtype value = dtype::float32; };
template <> struct dtype_of_impl<double> { static constexpr dtype value = dtype::float64; };
// long long and unsigned long long are distinct from int64_t/uint64_t on LP64 Linux.
template <class T>
  requires(std::is_same_v<T, long long> && !std::is_same_v<long long, std::int64_t> && sizeof(long long) == 8)
struct dtype_of_impl<T> : dtype_of_impl<std::int64_t> {};
template <class T>
  requires(std::is_same_v<T, unsigned long long> && !std::is_same_v<unsigned long long, std::uint64_t> &&
           sizeof(unsigned long long) == 8)
struct dtype_of_impl<T> : dtype_of_impl<std::uint64_t> {};
}  // namespace detail

/// A C++ type that maps to a dtype (bool, fixed-width integers, float16, bfloat16, float, double).
template <class T>
concept element = requires { detail::dtype_of_impl<std::remove_cv_t<T>>::value; };

/// The dtype of a C++ element type.
template <element T>
inline constexpr dtype dtype_of = detail::dtype_of_impl<std::remove_cv_t<T>>::value;

namespace detail {

/// Calls f with a value-initialized object of the C++ type of dtype d.
template <class F>
decltype(auto) visit_dtype(dtype d, F&& f) {
  switch (d) {
    case dtype::boolean: return f(bool{});
    case dtype::int8: return f(std::int8_t{});
    case dtype::int16: return f(std::int16_t{});
    case dtype::int32: return f(std::int32_t{});
    case dtype::int64: return f(std::int64_t{});
    case dtype::uint8: return f(std::uint8_t{});
    case dtype::uint16: return f(std::uint16_t{});
    case dtype::uint32: return f(std::uint32_t{});
    case dtype::uint64: return f(std::uint64_t{});
    case dtype::float16: return f(float16::from_bits(0));
    case dtype::bfloat16: return f(bfloat16::from_bits(0));
    case dtype::float32: return f(float{});
    default: return f(double{});
  }
}

/// One element of type From (stored at p in byte order `order`) converted to To.
template <class To, class From>
To convert_one(const std::byte* p, std::endian order) noexcept {
  if constexpr (std::is_same_v<From, bool>) {
    return static_cast<To>(std::to_integer<unsigned>(*p) != 0);  // any non-zero byte is true
  } else if constexpr (std::is_same_v<From, float16> || std::is_same_v<From, bfloat16>) {
    const auto bits = load<std::uint16_t>(p, order);
    if constexpr (std::is_same_v<To, From>) return From::from_bits(bits);
    else {
      const float value = From::to_float(bits);
      if constexpr (std::is_same_v<To, float16> || std::is_same_v<To, bfloat16>) return To(value);
      else return static_cast<To>(value);
    }
  } else {
    const From value = load<From>(p, order);
    if constexpr (std::is_same_v<To, float16> || std::is_same_v<To, bfloat16>) return To(static_cast<float>(value));
    else return static_cast<To>(value);
  }
}

/// n elements of dtype `from` (byte order `order`, `stride_bytes` apart) converted into dst.
template <class To>
void convert_elements(dtype from, std::endian order, const std::byte* src, std::ptrdiff_t stride_bytes, To* dst,
                      std::size_t n) {
  if (from == dtype_of<To> && (order == std::endian::native || dtype_size(from) == 1) &&
      stride_bytes == std::ptrdiff_t(sizeof(To)) && !std::is_same_v<To, bool>) {
    std::memcpy(static_cast<void*>(dst), src, n * sizeof(To));
    return;
  }
  visit_dtype(from, [&](auto tag) {
    using From = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) dst[i] = convert_one<To, From>(src + std::ptrdiff_t(i) * stride_bytes, order);
  });
}

}  // namespace detail
}  // namespace mint
