// mint::array<T>: an owned, contiguous, row-major tensor of rank 1 to 4, for
// results and caches. It is a mint tensor itself; resize() keeps its capacity,
// so a buffer sized once is reused without allocating.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <span>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// An owned row-major tensor of rank 1 to 4.
template <class T>
class array {
public:
  using value_type = T;

  array() = default;
  /// Zero-filled, of the given extents.
  explicit array(std::span<const index> extents) { resize(extents); }
  explicit array(std::initializer_list<index> extents) { resize(extents); }

  /// A copy of any tensor's elements, converted to T.
  template <tensor X>
    requires(!std::same_as<std::remove_cvref_t<X>, array>)
  static array copy_of(const X& x) {
    const auto v = mint::view(x);
    array out(v.extents());
    mint::copy(v, out.view());
    return out;
  }

  /// New extents; existing capacity is reused, new elements are zero. Contents are not preserved in place.
  void resize(std::span<const index> extents) {
    const tensor_view<T> shape_check(nullptr, extents);  // validates rank and extents
    extents_.assign(extents.begin(), extents.end());
    data_.assign(std::size_t(shape_check.size()), T{});
  }
  void resize(std::initializer_list<index> extents) {
    resize(std::span<const index>(extents.begin(), extents.size()));
  }

  tensor_view<T> view() { return extents_.empty() ? tensor_view<T>() : tensor_view<T>(data_.data(), extents_); }
  tensor_view<const T> view() const {
    return extents_.empty() ? tensor_view<const T>() : tensor_view<const T>(data_.data(), extents_);
  }

  T* data() noexcept { return data_.data(); }
  const T* data() const noexcept { return data_.data(); }
  index size() const noexcept { return index(data_.size()); }
  int rank() const noexcept { return extents_.empty() ? 1 : int(extents_.size()); }
  std::span<const index> extents() const noexcept { return extents_; }
  index extent(int axis) const { return view().extent(axis); }

  template <class... I>
  T& operator()(I... i) { return view()(index(i)...); }
  template <class... I>
  const T& operator()(I... i) const { return view()(index(i)...); }

  void fill(T value) { std::fill(data_.begin(), data_.end(), value); }

private:
  std::vector<T> data_;
  std::vector<index> extents_;
};

template <class T>
struct tensor_adapter<array<T>> {
  static tensor_view<T> view(array<T>& a) { return a.view(); }
  static tensor_view<const T> view(const array<T>& a) { return a.view(); }
};

}  // namespace mint
