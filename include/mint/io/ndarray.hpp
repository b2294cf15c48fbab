// The arrays mint's readers return and its writers take. ndarray<T> owns its
// elements (any rank; C or Fortran order) and is a mint tensor; mapped_array<T>
// is a read-only view into a memory-mapped file that keeps the mapping alive;
// array_ref is a borrowed, type-erased array of any dtype for the writers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/mapped_file.hpp"

namespace mint {

/// A shape: extents of any rank (0 for a scalar), each >= 0.
using shape_t = std::vector<index>;

namespace detail {

/// Row-major strides (in elements) of a shape.
inline shape_t c_strides(const shape_t& shape) {
  shape_t strides(shape.size());
  index stride = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    strides[k] = stride;
    // Overflow is possible only when another extent is 0 (readers check the product first);
    // an empty array's strides are never used, so 0 will do.
    if (__builtin_mul_overflow(stride, std::max<index>(shape[k], 1), &stride)) stride = 0;
  }
  return strides;
}

/// Column-major (Fortran) strides of a shape.
inline shape_t fortran_strides(const shape_t& shape) {
  shape_t strides(shape.size());
  index stride = 1;
  for (std::size_t k = 0; k < shape.size(); ++k) {
    strides[k] = stride;
    if (__builtin_mul_overflow(stride, std::max<index>(shape[k], 1), &stride)) stride = 0;  // as in c_strides
  }
  return strides;
}

/// Product of the extents, with a shape_error when negative or overflowing.
inline index shape_size(const shape_t& shape, const char* function) {
  index n = 1;
  for (const index e : shape) {
    if (e < 0) throw shape_error(function, "shape", "holds " + shape_string(std::span<const index>(shape)), "needs extents >= 0");
    n = checked_multiply(n, e, function);
  }
  return n;
}

/// The view of an array of any rank: rank 0 as [1]; above rank 4 a shape_error.
template <class T>
tensor_view<T> view_of(T* data, const shape_t& shape, const shape_t& strides, const char* function) {
  if (shape.empty()) return tensor_view<T>(data, {index(1)});
  if (shape.size() > std::size_t(max_rank))
    throw shape_error(function, "array", detail::str("has rank ", shape.size(), " ", shape_string(std::span<const index>(shape))),
                      "needs rank 4 or less to be viewed; reshape it first");
  return tensor_view<T>(data, std::span<const index>(shape), std::span<const index>(strides));
}

/// Frees storage from allocate_elements.
struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

/// Uninitialized storage for n elements of a trivial type: 64-byte aligned, and for 4 MiB or more
/// 2 MiB aligned with transparent huge pages requested, so filling it takes far fewer page faults
/// (NumPy does the same for its large arrays).
template <class T>
std::unique_ptr<T[], free_deleter> allocate_elements(std::size_t n) {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>);
  constexpr std::size_t huge = std::size_t(1) << 21;
  const std::size_t bytes = std::max<std::size_t>(n, 1) * sizeof(T);
  const std::size_t alignment = bytes >= 2 * huge ? huge : 64;
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (alignment == huge) ::madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return std::unique_ptr<T[], free_deleter>(static_cast<T*>(p));
}

inline bool same_strides_as(const shape_t& shape, const shape_t& strides, const shape_t& expected) {
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (shape[k] > 1 && strides[k] != expected[k]) return false;
  return true;
}

}  // namespace detail

/// An owning array of any rank, in C (row-major) or Fortran order; a mint tensor up to rank 4.
template <element T>
class ndarray {
public:
  using value_type = T;

  /// An empty rank-1 array.
  ndarray() : shape_{0}, strides_{1} {}

  /// An array of `shape`, every element zero (false for bool).
  explicit ndarray(shape_t shape) : ndarray(uninitialized(std::move(shape))) {
    std::fill_n(data_.get(), size_, T{});
  }

  /// An array of `shape` holding `values` in row-major order (their count must match).
  ndarray(shape_t shape, std::span<const T> values) : ndarray(uninitialized(std::move(shape))) {
    if (index(values.size()) != size_)
      throw shape_error("mint::ndarray", "values", detail::str("has ", values.size(), " elements"),
                        detail::str("needs ", size_, ", the product of the shape ", detail::shape_string(std::span<const index>(shape_))));
    std::copy(values.begin(), values.end(), data_.get());
  }
  ndarray(shape_t shape, std::initializer_list<T> values)
      : ndarray(std::move(shape), std::span<const T>(values.begin(), values.size())) {}

  /// An array whose elements are left unset (for readers that fill them); Fortran order on request.
  static ndarray uninitialized(shape_t shape, bool fortran_order = false) {
    ndarray out;
    out.size_ = detail::shape_size(shape, "mint::ndarray");
    out.strides_ = fortran_order ? detail::fortran_strides(shape) : detail::c_strides(shape);
    out.shape_ = std::move(shape);
    out.data_ = detail::allocate_elements<T>(std::size_t(out.size_));
    return out;
  }

  /// A row-major copy of any tensor of T.
  template <tensor X>
    requires std::same_as<value_t<X>, std::remove_cv_t<T>>
  static ndarray copy_of(const X& x) {
    const auto v = mint::view(x);
    ndarray out = uninitialized(shape_t(v.extents().begin(), v.extents().end()));
    mint::copy(v, out.view());
    return out;
  }

  ndarray(const ndarray& other) : shape_(other.shape_), strides_(other.strides_), size_(other.size_) {
    data_ = detail::allocate_elements<T>(std::size_t(size_));
    std::copy_n(other.data_.get(), size_, data_.get());
  }
  ndarray& operator=(const ndarray& other) {
    if (this != &other) *this = ndarray(other);
    return *this;
  }
  ndarray(ndarray&&) noexcept = default;
  ndarray& operator=(ndarray&&) noexcept = default;

  /// Extents of every axis (empty for a scalar).
  const shape_t& shape() const noexcept { return shape_; }
  /// Strides of every axis, in elements.
  const shape_t& strides() const noexcept { return strides_; }
  /// Number of axes.
  int rank() const noexcept { return int(shape_.size()); }
  /// Number of elements.
  index size() const noexcept { return size_; }
  /// True when the elements lie in column-major order (and rank >= 2 makes it differ from row-major).
  bool is_fortran_order() const noexcept {
    return shape_.size() > 1 && !detail::same_strides_as(shape_, strides_, detail::c_strides(shape_));
  }

  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  /// The elements in memory order.
  std::span<T> values() noexcept { return {data_.get(), std::size_t(size_)}; }
  std::span<const T> values() const noexcept { return {data_.get(), std::size_t(size_)}; }

  /// The array as a view (rank 0 as [1]); a shape_error above rank 4.
  tensor_view<T> view() { return detail::view_of(data_.get(), shape_, strides_, "mint::ndarray::view"); }
  tensor_view<const T> view() const {
    return detail::view_of<const T>(data_.get(), shape_, strides_, "mint::ndarray::view");
  }

private:
  shape_t shape_;
  shape_t strides_;
  index size_ = 0;
  std::unique_ptr<T[], detail::free_deleter> data_ = detail::allocate_elements<T>(1);
};

/// A read-only array inside a memory-mapped file; holds the mapping open. A mint tensor up to rank 4.
template <element T>
class mapped_array {
public:
  using value_type = T;

  mapped_array() : shape_{0}, strides_{1} {}
  /// Used by the readers, which check the range, the alignment and the dtype first.
  mapped_array(file_ptr file, const T* data, shape_t shape, shape_t strides)
      : file_(std::move(file)), data_(data), shape_(std::move(shape)), strides_(std::move(strides)) {
    size_ = detail::shape_size(shape_, "mint::mapped_array");
  }

  const shape_t& shape() const noexcept { return shape_; }
  const shape_t& strides() const noexcept { return strides_; }
  int rank() const noexcept { return int(shape_.size()); }
  index size() const noexcept { return size_; }
  const T* data() const noexcept { return data_; }
  /// The file the data lives in.
  const file_ptr& file() const noexcept { return file_; }
  /// The array as a read-only view (rank 0 as [1]); a shape_error above rank 4.
  tensor_view<const T> view() const { return detail::view_of(data_, shape_, strides_, "mint::mapped_array::view"); }

private:
  file_ptr file_;
  const T* data_ = nullptr;
  shape_t shape_;
  shape_t strides_;
  index size_ = 0;
};

template <element T>
struct tensor_adapter<ndarray<T>> {
  static tensor_view<T> view(ndarray<T>& a) { return a.view(); }
  static tensor_view<const T> view(const ndarray<T>& a) { return a.view(); }
};

template <element T>
struct tensor_adapter<mapped_array<T>> {
  static tensor_view<const T> view(const mapped_array<T>& a) { return a.view(); }
};

/// A borrowed array of any dtype and rank: what the writers take. It does not own its elements.
struct array_ref {
  dtype type = dtype::float32;
  shape_t shape;
  shape_t strides;  ///< in elements, >= 0
  const void* data = nullptr;

  array_ref() = default;
  /// Raw memory of a dtype, row-major.
  array_ref(dtype t, shape_t s, const void* p) : type(t), shape(std::move(s)), data(p) { strides = detail::c_strides(shape); }
  /// Raw memory of a dtype with explicit strides in elements.
  array_ref(dtype t, shape_t s, shape_t st, const void* p)
      : type(t), shape(std::move(s)), strides(std::move(st)), data(p) {
    if (strides.size() != shape.size())
      throw shape_error("mint::array_ref", "strides", detail::str("has ", strides.size(), " entries"),
                        detail::str("needs one per axis (", shape.size(), ")"));
  }
  template <element T>
  array_ref(const ndarray<T>& a) : array_ref(dtype_of<T>, a.shape(), a.strides(), a.data()) {}  // NOLINT: implicit on purpose
  template <element T>
  array_ref(const mapped_array<T>& a) : array_ref(dtype_of<T>, a.shape(), a.strides(), a.data()) {}  // NOLINT
  /// Any mint tensor whose elements map to a dtype (Eigen matrices, views, std::vector with the span adapter).
  template <tensor X>
    requires(element<value_t<const X>> && !std::is_same_v<std::remove_cvref_t<X>, array_ref>)
  array_ref(const X& x) {  // NOLINT: implicit on purpose
    const auto v = mint::view(x);
    type = dtype_of<value_t<const X>>;
    shape.assign(v.extents().begin(), v.extents().end());
    strides.assign(v.strides().begin(), v.strides().end());
    data = v.data();
  }

  /// Number of elements.
  index size() const { return detail::shape_size(shape, "mint::array_ref"); }
  /// True when the elements lie densely in row-major order.
  bool is_c_contiguous() const { return detail::same_strides_as(shape, strides, detail::c_strides(shape)); }
  /// True when the elements lie densely in column-major order.
  bool is_fortran_contiguous() const {
    return detail::same_strides_as(shape, strides, detail::fortran_strides(shape));
  }
};

namespace detail {

/// Hands the elements of `a` to sink(const void*, bytes) in row-major (or, when
/// `fortran` is set, column-major) order: one call when the layout is dense,
/// otherwise one per contiguous run, gathered through a small buffer.
template <class Sink>
void for_each_chunk(const array_ref& a, bool fortran, Sink&& sink) {
  const std::size_t width = dtype_size(a.type);
  const index n = a.size();
  if (n == 0) return;
  if (fortran ? a.is_fortran_contiguous() : a.is_c_contiguous()) {
    sink(a.data, std::size_t(n) * width);
    return;
  }
  // Walk the axes in output order, innermost last.
  const std::size_t rank = a.shape.size();
  std::vector<std::size_t> order(rank);
  for (std::size_t k = 0; k < rank; ++k) order[k] = fortran ? rank - 1 - k : k;
  const std::size_t inner = order[rank - 1];
  const index inner_extent = a.shape[inner], inner_stride = a.strides[inner];
  std::vector<std::byte> row(std::size_t(inner_extent) * width);
  std::vector<index> counter(rank, 0);
  const auto* base = static_cast<const std::byte*>(a.data);
  for (index done = 0; done < n; done += inner_extent) {
    index offset = 0;
    for (std::size_t k = 0; k + 1 < rank; ++k) offset += counter[order[k]] * a.strides[order[k]];
    const std::byte* start = base + std::size_t(offset) * width;
    if (inner_stride == 1) {
      sink(start, row.size());
    } else {
      for (index j = 0; j < inner_extent; ++j)
        std::memcpy(row.data() + std::size_t(j) * width, start + std::size_t(j * inner_stride) * width, width);
      sink(row.data(), row.size());
    }
    for (std::size_t k = rank - 1; k-- > 0;) {  // odometer over the outer axes
      if (++counter[order[k]] < a.shape[order[k]]) break;
      counter[order[k]] = 0;
    }
  }
}

}  // namespace detail
}  // namespace mint

namespace mint {

/// How a reader turns a file's elements into T.
struct read_options {
  /// false: the file's dtype must be T's (else a format_error); true: any dtype converts to T
  /// (float16/bfloat16/float64 to float, integers to float, ...), rounding to nearest.
  bool convert = false;
};

}  // namespace mint
