// Bounds-checked reading of untrusted bytes: a cursor over a span that throws
// mint::format_error (naming the function and the file) instead of reading past
// the end, little/big-endian loads, and overflow-checked size arithmetic.
// Every file reader in mint/io parses through this. Cost: O(1) per load.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "mint/core/error.hpp"

namespace mint::detail {

/// "file 'a.npy'": how io errors name their argument.
inline std::string file_argument(std::string_view name) { return str("file '", name, "'"); }

/// Throws format_error(function, file 'name', got, needs).
[[noreturn]] inline void format_fail(const char* function, std::string_view name, const std::string& got,
                                     const std::string& needs) {
  throw format_error(function, file_argument(name), got, needs);
}

/// Reverses the bytes of an integer.
template <std::unsigned_integral U>
constexpr U byteswap(U x) noexcept {
  if constexpr (sizeof(U) == 1) return x;
  else if constexpr (sizeof(U) == 2) return U(__builtin_bswap16(x));
  else if constexpr (sizeof(U) == 4) return U(__builtin_bswap32(x));
  else return U(__builtin_bswap64(x));
}

/// Loads an integer stored in the given byte order at p (any alignment).
template <class T>
T load(const std::byte* p, std::endian order = std::endian::little) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  using U = std::conditional_t<sizeof(T) == 1, std::uint8_t,
            std::conditional_t<sizeof(T) == 2, std::uint16_t,
            std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  static_assert(sizeof(T) == sizeof(U));
  U bits;
  std::memcpy(&bits, p, sizeof(U));
  if (order != std::endian::native) bits = byteswap(bits);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

/// Stores an integer in little-endian order at p.
template <class T>
void store_le(std::byte* p, T value) noexcept {
  using U = std::conditional_t<sizeof(T) == 1, std::uint8_t,
            std::conditional_t<sizeof(T) == 2, std::uint16_t,
            std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>>;
  U bits;
  std::memcpy(&bits, &value, sizeof(U));
  if constexpr (std::endian::native != std::endian::little) bits = byteswap(bits);
  std::memcpy(p, &bits, sizeof(U));
}

/// Appends an integer in little-endian order to a byte string.
template <class T>
void append_le(std::string& out, T value) {
  char buffer[sizeof(T)];
  store_le(reinterpret_cast<std::byte*>(buffer), value);
  out.append(buffer, sizeof(T));
}

/// True when a + b (or a * b) overflows 64 bits; otherwise out holds it.
inline bool add_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  return __builtin_add_overflow(a, b, &out);
}
inline bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  return __builtin_mul_overflow(a, b, &out);
}

/// x rounded up to a multiple of `alignment` (> 0); false when that overflows.
inline bool align_up(std::uint64_t x, std::uint64_t alignment, std::uint64_t& out) noexcept {
  const std::uint64_t rest = x % alignment;
  if (rest == 0) return out = x, true;
  return !add_overflows(x, alignment - rest, out);
}

/// A read cursor over untrusted bytes; every read checks the bounds first.
class byte_reader {
public:
  byte_reader(std::span<const std::byte> bytes, const char* function, std::string_view name)
      : bytes_(bytes), function_(function), name_(name) {}

  std::uint64_t position() const noexcept { return position_; }
  std::uint64_t size() const noexcept { return bytes_.size(); }
  std::uint64_t remaining() const noexcept { return bytes_.size() - position_; }
  const std::byte* here() const noexcept { return bytes_.data() + position_; }

  /// Moves to an absolute offset, which must lie inside the bytes.
  void seek(std::uint64_t offset, const char* what) {
    if (offset > bytes_.size())
      fail(str("places ", what, " at offset ", offset), str("needs it inside the file's ", bytes_.size(), " bytes"));
    position_ = offset;
  }

  /// Checks that n more bytes are there for `what`.
  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail(str("ends after ", bytes_.size(), " bytes, inside ", what, " at offset ", position_),
           str("needs ", n, " bytes there (the file is truncated or its header lies)"));
  }

  template <class T>
  T read(const char* what, std::endian order = std::endian::little) {
    need(sizeof(T), what);
    const T out = load<T>(here(), order);
    position_ += sizeof(T);
    return out;
  }

  /// The next n bytes, without a copy.
  std::span<const std::byte> take(std::uint64_t n, const char* what) {
    need(n, what);
    const auto out = bytes_.subspan(position_, n);
    position_ += n;
    return out;
  }

  std::string_view take_string(std::uint64_t n, const char* what) {
    const auto bytes = take(n, what);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  [[noreturn]] void fail(const std::string& got, const std::string& needs) const {
    format_fail(function_, name_, got, needs);
  }

  const char* function() const noexcept { return function_; }
  std::string_view name() const noexcept { return name_; }

private:
  std::span<const std::byte> bytes_;
  std::uint64_t position_ = 0;
  const char* function_;
  std::string_view name_;
};

}  // namespace mint::detail
