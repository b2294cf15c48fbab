// What every file format's reader and writer share about elements: the elements a header
// describes read into a new array (converting as allowed) or mapped without a copy, and the
// checks a writer makes of the array it is given. npy, npz, safetensors and GGUF use them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/io/detail/bytes.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/ndarray.hpp"

namespace mint::detail {

[[noreturn]] inline void dtype_mismatch(const char* function, std::string_view name, std::string_view what, dtype got,
                                        dtype wanted) {
  format_fail(function, name, str("holds ", what, what.empty() ? "" : "of ", dtype_name(got)),
              str("needs ", dtype_name(wanted), ", or read_options{.convert = true} to convert"));
}

/// Reads the elements an npy/safetensors/gguf header describes into a new array, converting as allowed.
template <element T>
ndarray<T> read_elements(const mapped_file& file, std::uint64_t offset, dtype type, std::endian order, shape_t shape,
                         bool fortran_order, const read_options& options, const char* function, std::string_view what) {
  if (type != dtype_of<T> && !options.convert) dtype_mismatch(function, file.name(), what, type, dtype_of<T>);
  auto out = ndarray<T>::uninitialized(std::move(shape), fortran_order);
  const std::size_t width = dtype_size(type), n = std::size_t(out.size());
  if (type == dtype_of<T> && !std::is_same_v<T, bool> && (order == std::endian::native || width == 1)) {
    file.read_at(offset, out.data(), n * width);  // straight into the array
    return out;
  }
  constexpr std::size_t chunk = 1 << 16;  // elements converted per read
  std::vector<std::byte> buffer(std::min(n, chunk) * width);
  for (std::size_t done = 0; done < n; done += chunk) {
    const std::size_t count = std::min(chunk, n - done);
    file.read_at(offset + done * width, buffer.data(), count * width);
    convert_elements(type, order, buffer.data(), std::ptrdiff_t(width), out.data() + done, count);
  }
  return out;
}

/// The elements as a mapped array: the dtype must be T's, native order, aligned.
template <element T>
mapped_array<T> map_elements(const file_ptr& file, std::uint64_t offset, dtype type, std::endian order, shape_t shape,
                             shape_t strides, const char* function, std::string_view what) {
  if (type != dtype_of<T>)
    format_fail(function, file->name(), str("holds ", what, what.empty() ? "" : "of ", dtype_name(type)),
                str("needs ", dtype_name(dtype_of<T>), " to be mapped without a copy (read and convert instead)"));
  if (order != std::endian::native && dtype_size(type) > 1)
    format_fail(function, file->name(), str("holds ", what, what.empty() ? "data " : "", "in the other byte order"),
                "needs native byte order to be mapped (read it instead, which swaps the bytes)");
  const std::byte* p = file->bytes().data() + offset;
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
    format_fail(function, file->name(), str("holds ", what, what.empty() ? "data " : "", "at offset ", offset, ", not a multiple of ", alignof(T)),
                "needs aligned data to be mapped (read it instead, which copies)");
  if constexpr (std::is_same_v<T, bool>) {
    const index n = shape_size(shape, function);
    for (index i = 0; i < n; ++i)
      if (std::to_integer<unsigned>(p[i]) > 1)
        format_fail(function, file->name(), str("holds ", what, "a bool byte that is neither 0 nor 1"),
                    "needs 0 or 1 to be mapped as bool (read it instead)");
  }
  return mapped_array<T>(file, reinterpret_cast<const T*>(p), std::move(shape), std::move(strides));
}

/// Checks that every size a writer computes from `a` fits, and that it has data.
inline void check_writable(const array_ref& a, const char* function) {
  if (a.strides.size() != a.shape.size())
    throw shape_error(function, "array", str("has ", a.strides.size(), " strides for ", a.shape.size(), " axes"),
                      "needs one stride per axis");
  // Every size a writer computes must fit: the element count (size() checks it), the byte count,
  // and the furthest element's offset. A wrapped product would write a short file or read past
  // the caller's buffer.
  const index n = a.size();
  checked_multiply(n, index(dtype_size(a.type)), function);
  index furthest = 0;
  for (std::size_t k = 0; k < a.shape.size() && n > 0; ++k) {
    if (a.strides[k] < 0)
      throw shape_error(function, "array", "has strides " + shape_string(std::span<const index>(a.strides)),
                        "needs strides >= 0");
    if (__builtin_add_overflow(furthest, checked_multiply(a.shape[k] - 1, a.strides[k], function), &furthest))
      throw shape_error(function, "array", "has extents and strides whose furthest element overflows",
                        "needs offsets that fit in std::ptrdiff_t");
  }
  checked_multiply(furthest + (n > 0 ? 1 : 0), index(dtype_size(a.type)), function);
  if (a.data == nullptr && n > 0) throw argument_error(function, "array", "has no data", "needs a pointer");
}

}  // namespace mint::detail
