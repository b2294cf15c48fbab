// The errors mint throws. Every message names the function, the argument, what
// it got and what it needs:
//   "mint::linear_cka: y has 90 rows; needs 100, the rows of x"
#pragma once

// mint is C++20 throughout (concepts, std::span, designated initializers): say so
// first, before the compiler's own errors about what an older standard lacks.
#if (defined(_MSVC_LANG) ? _MSVC_LANG : __cplusplus) < 202002L
#error "mint needs C++20: compile with -std=c++20 (g++ 12 or clang++ 14 and up; Meson: cpp_std=c++20; CMake: target_compile_features(app PRIVATE cxx_std_20), which find_package(mint) brings)"
#endif

#include <cstddef>
#include <initializer_list>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mint {

/// Base of every error mint throws; `function()` and `argument()` say where.
class error : public std::runtime_error {
public:
  /// `got` reads after the argument ("has 90 rows"), `needs` after a semicolon ("needs 100").
  error(std::string function, std::string argument, const std::string& got, const std::string& needs)
      : std::runtime_error(function + ": " + argument + " " + got + "; " + needs),
        function_(std::move(function)),
        argument_(std::move(argument)) {}

  /// The public function that refused its input, e.g. "mint::linear_cka".
  const std::string& function() const noexcept { return function_; }
  /// The argument (or file) at fault, e.g. "y".
  const std::string& argument() const noexcept { return argument_; }

private:
  std::string function_;
  std::string argument_;
};

/// Extents that do not fit: wrong rank, mismatched sizes, a layout that forbids a reshape.
class shape_error : public error {
  using error::error;
};

/// A value out of its domain: a negative count, an unknown name, an empty selection.
class argument_error : public error {
  using error::error;
};

/// A file or buffer that is not what it claims: truncated, oversized, lying headers.
class format_error : public error {
  using error::error;
};

/// A computation that cannot go on: a singular matrix, a NaN in the data.
class numeric_error : public error {
  using error::error;
};

/// "[3, 4, 5]": extents (or strides) as mint's messages print them.
template <class Int>
std::string shape_string(std::span<const Int> extents) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < extents.size(); ++i) out << (i ? ", " : "") << extents[i];
  out << ']';
  return out.str();
}

template <class Int>
std::string shape_string(std::initializer_list<Int> extents) {
  return shape_string(std::span<const Int>(extents.begin(), extents.size()));
}

namespace detail {

/// Concatenates anything streamable, for building error messages.
template <class... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

using mint::shape_string;  // what messages inside mint call detail::shape_string

}  // namespace detail
}  // namespace mint
