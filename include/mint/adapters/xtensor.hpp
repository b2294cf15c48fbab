// xtensor arrays as mint tensors: xarray, xtensor, xtensor_fixed, xt::adapt
// results, and strided views of them (xt::view, xt::strided_view) that expose
// data(). Every xtensor include lives in this one header: xtensor 0.24 keeps
// them at xtensor/x*.hpp, newer releases under xtensor/containers/ and friends.
#pragma once

#include <concepts>
#include <type_traits>

#include <xtensor/xexpression.hpp>
#include <xtensor/xutils.hpp>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {
namespace detail {

/// An xtensor expression backed by strided memory: data() + data_offset(), shape(), strides().
template <class E>
concept xtensor_strided = xt::is_xexpression<E>::value && requires(E& x) {
  { x.data() } -> std::convertible_to<const void*>;
  x.data_offset();
  x.shape();
  x.strides();
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
