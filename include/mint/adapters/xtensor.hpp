// xtensor arrays as mint tensors: xarray, xtensor, xtensor_fixed, xt::adapt
// results, and strided views of them (xt::view, xt::strided_view) that expose
// data(). Recognized by their members, not through xtensor's headers: including
// this header costs nothing and needs no xtensor installed (the user's own code
// includes xtensor, at x*.hpp in 0.24 or under xtensor/containers/ in newer releases).
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {
namespace detail {

/// An xtensor expression backed by strided memory: data() + data_offset(), shape(), strides().
/// Every xtensor expression names its expression_tag; the strided ones also give backstrides(),
/// which no Eigen or standard type has.
template <class E>
concept xtensor_strided = requires(E& x) {
  typename E::expression_tag;
  typename E::shape_type;
  typename E::strides_type;
  { x.data() } -> std::convertible_to<const void*>;
  { x.data_offset() } -> std::convertible_to<std::size_t>;
  { x.shape().size() } -> std::convertible_to<std::size_t>;
  { x.strides().size() } -> std::convertible_to<std::size_t>;
  x.backstrides();
};

template <class P, class E>
tensor_view<P> xtensor_view(P* data, const E& x) {
  const auto& shape = x.shape();
  const auto& strides = x.strides();
  const std::size_t rank = shape.size();
  if (rank < 1 || rank > std::size_t(max_rank))
    throw shape_error("mint::view", "xtensor expression", str("has rank ", rank),
                      str("needs rank 1 to ", max_rank));
  index extents[max_rank], steps[max_rank];
  for (std::size_t axis = 0; axis < rank; ++axis) {
    extents[axis] = index(shape[axis]);
    // xtensor gives axes of extent 1 a stride of 0; any stride is right for them.
    steps[axis] = index(strides[axis]);
  }
  return tensor_view<P>(data + x.data_offset(), std::span<const index>(extents, rank),
                        std::span<const index>(steps, rank));
}

}  // namespace detail

template <detail::xtensor_strided E>
struct tensor_adapter<E> {
  static auto view(E& x) { return detail::xtensor_view(x.data(), x); }
  static auto view(const E& x) { return detail::xtensor_view(x.data(), x); }
};

}  // namespace mint
