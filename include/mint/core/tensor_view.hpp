// tensor_view<T>: a pointer, a rank (1 to 4), extents and strides counted in
// elements. Everything numeric enters mint as one. It owns nothing; copying a
// view is free. Like std::mdspan with a strided layout, kept small.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>

#include "mint/core/error.hpp"

namespace mint {

/// Index and extent type of every view: signed, as Eigen::Index is.
using index = std::ptrdiff_t;

/// The largest rank a view may have: [batch, pos, head, d_head] needs four.
inline constexpr int max_rank = 4;

namespace detail {

/// a * b, or a shape_error when it overflows.
inline index checked_multiply(index a, index b, const char* function) {
  index out = 0;
  if (__builtin_mul_overflow(a, b, &out))
    throw shape_error(function, "extents", str("multiply to more than ", PTRDIFF_MAX, " elements"),
                      "needs a size that fits in std::ptrdiff_t");
  return out;
}

/// A contiguous range of integers other than index (std::array<std::size_t, 2>, std::vector<int>, ...).
template <class R>
concept other_integer_range =
    std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
    std::integral<std::ranges::range_value_t<R>> && !std::same_as<std::ranges::range_value_t<R>, bool> &&
    !std::same_as<std::ranges::range_value_t<R>, index>;

template <class R>
concept integer_range = other_integer_range<R> || std::convertible_to<const R&, std::span<const index>>;

/// Up to max_rank indices converted from another integer type, each checked to fit.
struct index_list {
  std::array<index, max_rank> values{};
  std::size_t size = 0;
  std::span<const index> span() const noexcept { return {values.data(), size}; }
};

template <class R>
index_list to_index_list(const R& range, const char* argument) {
  index_list out;
  if constexpr (std::convertible_to<const R&, std::span<const index>>) {
    const std::span<const index> s = range;
    if (s.size() > std::size_t(max_rank))
      throw shape_error("mint::tensor_view", argument, str("has ", s.size(), " entries"), str("needs 1 to ", max_rank));
    std::copy(s.begin(), s.end(), out.values.begin());
    out.size = s.size();
  } else {
    if (std::ranges::size(range) > std::size_t(max_rank))
      throw shape_error("mint::tensor_view", argument, str("has ", std::ranges::size(range), " entries"),
                        str("needs 1 to ", max_rank));
    for (const auto v : range) {
      if (!std::in_range<index>(v))
        throw shape_error("mint::tensor_view", argument, str("holds ", v), "needs values that fit std::ptrdiff_t");
      out.values[out.size++] = index(v);
    }
  }
  return out;
}

}  // namespace detail

/// A strided view of rank 1 to 4 over memory someone else owns.
template <class T>
class tensor_view {
public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  /// An empty rank-1 view.
  constexpr tensor_view() noexcept = default;

  /// A contiguous row-major view of `extents` starting at `data`.
  tensor_view(T* data, std::span<const index> extents) : data_(data) {
    set_extents(extents, "mint::tensor_view");
    // Checked: with an extent of 0 elsewhere, the product of the others may still overflow.
    index stride = 1;
    for (int axis = rank_ - 1; axis >= 0; --axis) {
      strides_[axis] = stride;
      if (axis > 0) stride = detail::checked_multiply(stride, std::max<index>(extents_[axis], 1), "mint::tensor_view");
    }
  }

  tensor_view(T* data, std::initializer_list<index> extents)
      : tensor_view(data, std::span<const index>(extents.begin(), extents.size())) {}

  /// Extents of any integer type (std::array<std::size_t, 2>, std::vector<int>, ...), each checked to fit an index.
  template <detail::other_integer_range Extents>
  tensor_view(T* data, const Extents& extents) : tensor_view(data, detail::to_index_list(extents, "extents").span()) {}

  /// A view with explicit strides, counted in elements (not bytes).
  tensor_view(T* data, std::span<const index> extents, std::span<const index> strides) : data_(data) {
    set_extents(extents, "mint::tensor_view");
    if (strides.size() != extents.size())
      throw shape_error("mint::tensor_view", "strides", detail::str("has ", strides.size(), " entries"),
                        detail::str("needs one per axis (", extents.size(), ")"));
    for (int axis = 0; axis < rank_; ++axis) {
      if (strides[axis] < 0)
        throw shape_error("mint::tensor_view", "strides", "holds " + detail::shape_string(strides),
                          "needs strides >= 0 (reverse a view by copying it)");
      strides_[axis] = strides[axis];
    }
  }

  tensor_view(T* data, std::initializer_list<index> extents, std::initializer_list<index> strides)
      : tensor_view(data, std::span<const index>(extents.begin(), extents.size()),
                    std::span<const index>(strides.begin(), strides.size())) {}

  /// Extents and strides of any integer types, each checked to fit an index.
  template <detail::integer_range Extents, detail::integer_range Strides>
    requires(detail::other_integer_range<Extents> || detail::other_integer_range<Strides>)
  tensor_view(T* data, const Extents& extents, const Strides& strides)
      : tensor_view(data, detail::to_index_list(extents, "extents").span(), detail::to_index_list(strides, "strides").span()) {}

  /// A view of T converts to a view of const T.
  template <class U>
    requires(std::is_const_v<T> && std::same_as<const U, T>)
  constexpr tensor_view(const tensor_view<U>& other) noexcept  // NOLINT: implicit on purpose
      : data_(other.data()), rank_(other.rank()) {
    std::copy(other.extents().begin(), other.extents().end(), extents_.begin());
    std::copy(other.strides().begin(), other.strides().end(), strides_.begin());
  }

  /// Pointer to element (0, ..., 0).
  constexpr T* data() const noexcept { return data_; }
  /// Number of axes, 1 to 4.
  constexpr int rank() const noexcept { return rank_; }
  /// Extent of one axis.
  constexpr index extent(int axis) const noexcept { return assert(axis >= 0 && axis < rank_), extents_[axis]; }
  /// Stride of one axis, in elements.
  constexpr index stride(int axis) const noexcept { return assert(axis >= 0 && axis < rank_), strides_[axis]; }
  /// All extents.
  constexpr std::span<const index> extents() const noexcept { return {extents_.data(), std::size_t(rank_)}; }
  /// All strides, in elements.
  constexpr std::span<const index> strides() const noexcept { return {strides_.data(), std::size_t(rank_)}; }

  /// Number of elements: the product of the extents.
  constexpr index size() const noexcept {
    index n = 1;
    for (int axis = 0; axis < rank_; ++axis) n *= extents_[axis];
    return n;
  }
  constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements lie densely in row-major order (axes of extent 1 may have any stride).
  constexpr bool is_contiguous() const noexcept {
    if (empty()) return true;
    index expected = 1;
    for (int axis = rank_ - 1; axis >= 0; --axis) {
      if (extents_[axis] == 1) continue;
      if (strides_[axis] != expected) return false;
      expected *= extents_[axis];
    }
    return true;
  }

  /// Unchecked element access (asserted in debug builds).
  constexpr T& operator()(index i) const noexcept {
    assert(rank_ == 1 && in_bounds(0, i));
    return data_[i * strides_[0]];
  }
  constexpr T& operator()(index i, index j) const noexcept {
    assert(rank_ == 2 && in_bounds(0, i) && in_bounds(1, j));
    return data_[i * strides_[0] + j * strides_[1]];
  }
  constexpr T& operator()(index i, index j, index k) const noexcept {
    assert(rank_ == 3 && in_bounds(0, i) && in_bounds(1, j) && in_bounds(2, k));
    return data_[i * strides_[0] + j * strides_[1] + k * strides_[2]];
  }
  constexpr T& operator()(index i, index j, index k, index l) const noexcept {
    assert(rank_ == 4 && in_bounds(0, i) && in_bounds(1, j) && in_bounds(2, k) && in_bounds(3, l));
    return data_[i * strides_[0] + j * strides_[1] + k * strides_[2] + l * strides_[3]];
  }

  /// Checked element access: throws shape_error on a wrong count or an index out of range.
  template <std::integral... I>
  T& at(I... indices) const {
    const std::array<index, sizeof...(I)> at_index{static_cast<index>(indices)...};
    if (int(sizeof...(I)) != rank_)
      throw shape_error("mint::tensor_view::at", "indices", detail::str("has ", sizeof...(I), " entries"),
                        detail::str("needs one per axis of a rank-", rank_, " view"));
    index offset = 0;
    for (int axis = 0; axis < rank_; ++axis) {
      if (!in_bounds(axis, at_index[axis]))
        throw shape_error("mint::tensor_view::at", "indices",
                          detail::str(detail::shape_string(std::span<const index>(at_index)), " fall outside ",
                                      detail::shape_string(extents())),
                          "needs 0 <= index < extent on every axis");
      offset += at_index[axis] * strides_[axis];
    }
    return data_[offset];
  }

  /// The view at position `i` of the first axis, one rank lower.
  tensor_view subview(index i) const {
    if (rank_ < 2)
      throw shape_error("mint::tensor_view::subview", "view", "has rank 1",
                        "needs rank 2 or more (use operator() for an element)");
    check_first_axis(i, i + 1, "mint::tensor_view::subview");
    tensor_view out;
    out.data_ = data_ + i * strides_[0];
    out.rank_ = rank_ - 1;
    std::copy(extents_.begin() + 1, extents_.begin() + rank_, out.extents_.begin());
    std::copy(strides_.begin() + 1, strides_.begin() + rank_, out.strides_.begin());
    return out;
  }
  tensor_view operator[](index i) const { return subview(i); }

  /// Positions [begin, end) of the first axis, same rank.
  tensor_view slice(index begin, index end) const {
    check_first_axis(begin, end, "mint::tensor_view::slice");
    tensor_view out = *this;
    out.data_ = data_ + (end > begin ? begin * strides_[0] : 0);
    out.extents_[0] = end - begin;
    return out;
  }

  /// Positions [begin, end) of any axis, same rank (torch's narrow).
  tensor_view narrow(int axis, index begin, index end) const {
    check_axis(axis, "mint::tensor_view::narrow");
    if (begin < 0 || end < begin || end > extents_[axis])
      throw shape_error("mint::tensor_view::narrow", "range",
                        detail::str("[", begin, ", ", end, ") of axis ", axis),
                        detail::str("needs 0 <= begin <= end <= ", extents_[axis]));
    tensor_view out = *this;
    out.data_ = data_ + (end > begin ? begin * strides_[axis] : 0);
    out.extents_[axis] = end - begin;
    return out;
  }

  /// Position `i` of any axis, one rank lower (torch's select).
  tensor_view select(int axis, index i) const {
    check_axis(axis, "mint::tensor_view::select");
    if (rank_ < 2)
      throw shape_error("mint::tensor_view::select", "view", "has rank 1", "needs rank 2 or more");
    if (i < 0 || i >= extents_[axis])
      throw shape_error("mint::tensor_view::select", "i", detail::str("is ", i, " on axis ", axis),
                        detail::str("needs 0 <= i < ", extents_[axis]));
    tensor_view out;
    out.data_ = data_ + i * strides_[axis];
    out.rank_ = rank_ - 1;
    for (int a = 0, b = 0; a < rank_; ++a) {
      if (a == axis) continue;
      out.extents_[b] = extents_[a];
      out.strides_[b] = strides_[a];
      ++b;
    }
    return out;
  }

  /// The same elements under new extents, without a copy; a shape_error when the layout forbids it.
  tensor_view reshape(std::span<const index> new_extents) const;
  tensor_view reshape(std::initializer_list<index> new_extents) const {
    return reshape(std::span<const index>(new_extents.begin(), new_extents.size()));
  }

  /// A rank-2 view with its axes swapped.
  tensor_view transposed() const {
    if (rank_ != 2)
      throw shape_error("mint::tensor_view::transposed", "view", detail::str("has rank ", rank_), "needs rank 2");
    tensor_view out = *this;
    std::swap(out.extents_[0], out.extents_[1]);
    std::swap(out.strides_[0], out.strides_[1]);
    return out;
  }

private:
  template <class U>
  friend class tensor_view;

  constexpr bool in_bounds(int axis, index i) const noexcept { return i >= 0 && i < extents_[axis]; }

  void set_extents(std::span<const index> extents, const char* function) {
    if (extents.empty() || extents.size() > std::size_t(max_rank))
      throw shape_error(function, "extents", detail::str("has rank ", extents.size()),
                        detail::str("needs rank 1 to ", max_rank));
    index total = 1;
    for (std::size_t axis = 0; axis < extents.size(); ++axis) {
      if (extents[axis] < 0)
        throw shape_error(function, "extents", "holds " + detail::shape_string(extents), "needs extents >= 0");
      total = detail::checked_multiply(total, extents[axis], function);
      extents_[axis] = extents[axis];
    }
    rank_ = int(extents.size());
  }

  void check_axis(int axis, const char* function) const {
    if (axis < 0 || axis >= rank_)
      throw shape_error(function, "axis", detail::str("is ", axis), detail::str("needs 0 <= axis < ", rank_));
  }

  void check_first_axis(index begin, index end, const char* function) const {
    if (begin < 0 || end < begin || end > extents_[0])
      throw shape_error(function, "range", detail::str("[", begin, ", ", end, ") of the first axis"),
                        detail::str("needs 0 <= begin <= end <= ", extents_[0]));
  }

  T* data_ = nullptr;
  int rank_ = 1;
  std::array<index, max_rank> extents_{0, 1, 1, 1};
  std::array<index, max_rank> strides_{1, 0, 0, 0};
};

template <class T>
tensor_view<T> tensor_view<T>::reshape(std::span<const index> new_extents) const {
  const char* function = "mint::tensor_view::reshape";
  tensor_view out;
  out.data_ = data_;
  out.set_extents(new_extents, function);
  if (out.size() != size())
    throw shape_error(function, "extents",
                      detail::str(detail::shape_string(new_extents), " hold ", out.size(), " elements"),
                      detail::str("needs ", size(), ", as the view ", detail::shape_string(extents()), " has"));
  if (empty()) return tensor_view(data_, new_extents);

  // Axes of extent 1 do not constrain the layout; drop them on both sides.
  std::array<int, max_rank> old_axes{}, new_axes{};
  int n_old = 0, n_new = 0;
  for (int a = 0; a < rank_; ++a)
    if (extents_[a] != 1) old_axes[n_old++] = a;
  for (int a = 0; a < out.rank_; ++a)
    if (out.extents_[a] != 1) new_axes[n_new++] = a;

  // Match runs of old and new axes with equal products. A run of old axes can be
  // merged or split only when it is one strided block: stride[k] = stride[k+1] * extent[k+1].
  int i = 0, j = 0;
  while (i < n_old) {
    int i_end = i, j_end = j;
    index old_product = extents_[old_axes[i]], new_product = out.extents_[new_axes[j]];
    while (old_product != new_product) {
      if (old_product < new_product)
        old_product *= extents_[old_axes[++i_end]];
      else
        new_product *= out.extents_[new_axes[++j_end]];
    }
    for (int k = i; k < i_end; ++k) {
      const int a = old_axes[k], b = old_axes[k + 1];
      if (strides_[a] != strides_[b] * extents_[b])
        throw shape_error(function, "extents",
                          detail::str(detail::shape_string(new_extents), " would merge axes of the layout with extents ",
                                      detail::shape_string(extents()), " and strides ",
                                      detail::shape_string(strides()), " that are not adjacent in memory"),
                          "needs merged axes to be contiguous with each other; copy the view first");
    }
    index stride = strides_[old_axes[i_end]];
    for (int k = j_end; k >= j; --k) {
      out.strides_[new_axes[k]] = stride;
      stride *= out.extents_[new_axes[k]];
    }
    i = i_end + 1;
    j = j_end + 1;
  }
  // New axes of extent 1 take the stride a dense layout would give them.
  for (int a = out.rank_ - 1; a >= 0; --a)
    if (out.extents_[a] == 1) out.strides_[a] = a + 1 < out.rank_ ? out.strides_[a + 1] * out.extents_[a + 1] : 1;
  return out;
}

/// True when two views have the same rank and extents.
template <class T, class U>
constexpr bool same_shape(const tensor_view<T>& a, const tensor_view<U>& b) noexcept {
  return std::ranges::equal(a.extents(), b.extents());
}

}  // namespace mint
