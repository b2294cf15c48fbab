// The tensor adapter: the one customization point that makes a type a mint
// tensor. Specialize mint::tensor_adapter<T> with a static view(T&) (or
// view(const T&)) returning a tensor_view; mint::view(x) then works on T, and
// every algorithm accepts it.
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// Specialize for your type: `static tensor_view<E> view(T&)` and/or `view(const T&)`.
template <class T>
struct tensor_adapter;

/// A view is a tensor of itself.
template <class T>
struct tensor_adapter<tensor_view<T>> {
  static tensor_view<T> view(const tensor_view<T>& x) noexcept { return x; }
};

namespace detail {

template <class V>
struct is_tensor_view : std::false_type {};
template <class T>
struct is_tensor_view<tensor_view<T>> : std::true_type {};

template <class V>
concept a_tensor_view = is_tensor_view<std::remove_cvref_t<V>>::value;

template <class X>
using adapter_of = tensor_adapter<std::remove_cvref_t<X>>;

}  // namespace detail

/// X is a tensor when its adapter turns an X& into a tensor_view.
template <class X>
concept tensor = requires(X& x) {
  { detail::adapter_of<X>::view(x) } -> detail::a_tensor_view;
};

/// True for tensor types whose views point elsewhere, not into the object itself (a view, a
/// map, a span): mint::view takes a temporary of them. Specialize it for your own such type.
template <class T>
inline constexpr bool enable_borrowed_tensor = false;
template <class T>
inline constexpr bool enable_borrowed_tensor<tensor_view<T>> = true;

/// A tensor whose view outlives the expression `x` names: an lvalue, or a borrowed type. The view
/// of a temporary container would dangle, so mint::view refuses one at compile time.
template <class X>
concept viewable = tensor<X> && (std::is_lvalue_reference_v<X> || enable_borrowed_tensor<std::remove_cvref_t<X>>);

/// The view of any tensor (of a temporary only when it is a borrowed type: keep a container in a variable).
template <class X>
  requires viewable<X>
auto view(X&& x) {
  return detail::adapter_of<X>::view(x);
}

/// The view type of a tensor, e.g. tensor_view<const float> for a const Eigen::MatrixXf.
template <tensor X>
using view_t = decltype(mint::view(std::declval<X&>()));

/// The element type as stored, without const: float for a const Eigen::MatrixXf.
template <tensor X>
using value_t = typename view_t<X>::value_type;

/// A tensor whose elements are of type T (const or not).
template <class X, class T>
concept tensor_of = tensor<X> && std::same_as<value_t<X>, T>;

/// A tensor that may be written through.
template <class X>
concept mutable_tensor = tensor<X> && !std::is_const_v<typename view_t<X>::element_type>;

/// Copies src into dst element by element, converting the element type; the extents must match.
template <tensor Src, mutable_tensor Dst>
void copy(const Src& src, Dst&& dst) {
  const auto from = mint::view(src);
  const auto to = mint::view(dst);
  if (!same_shape(from, to))
    throw shape_error("mint::copy", "dst", "has extents " + detail::shape_string(to.extents()),
                      "needs the extents of src, " + detail::shape_string(from.extents()));
  using To = typename decltype(to)::value_type;
  const index n0 = from.extent(0);
  switch (from.rank()) {
    case 1:
      for (index i = 0; i < n0; ++i) to(i) = static_cast<To>(from(i));
      break;
    case 2:
      for (index i = 0; i < n0; ++i)
        for (index j = 0; j < from.extent(1); ++j) to(i, j) = static_cast<To>(from(i, j));
      break;
    default:  // ranks 3 and 4 recurse along the first axis
      for (index i = 0; i < n0; ++i) mint::copy(from.subview(i), to.subview(i));
  }
}

/// Sets every element of a tensor to `value`.
template <mutable_tensor Dst>
void fill(Dst&& dst, typename view_t<Dst>::value_type value) {
  const auto to = mint::view(dst);
  if (to.rank() == 1) {
    for (index i = 0; i < to.extent(0); ++i) to(i) = value;
  } else {
    for (index i = 0; i < to.extent(0); ++i) mint::fill(to.subview(i), value);
  }
}

}  // namespace mint
