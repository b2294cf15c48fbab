// Eigen dense types as mint tensors: Matrix, Array, Map, Ref, Block and
// Transpose of those; row- or column-major; any strides. Vectors (known at
// compile time to have one row or column) give rank-1 views.
#pragma once

#include <concepts>

#include <Eigen/Core>

#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {
namespace detail {

/// An Eigen dense object whose coefficients sit in memory at data() with strides.
template <class E>
concept eigen_direct_access =
    std::derived_from<E, Eigen::DenseBase<E>> && (int(E::Flags) & Eigen::DirectAccessBit) != 0;

template <class E, class P>
tensor_view<P> eigen_view(P* data, const E& x) {
  if constexpr (E::IsVectorAtCompileTime)
    return tensor_view<P>(data, {index(x.size())}, {index(x.innerStride())});
  else
    return tensor_view<P>(data, {index(x.rows()), index(x.cols())}, {index(x.rowStride()), index(x.colStride())});
}

}  // namespace detail

template <detail::eigen_direct_access E>
struct tensor_adapter<E> {
  static auto view(E& x) { return detail::eigen_view(x.data(), x); }
  static auto view(const E& x) { return detail::eigen_view(x.data(), x); }
};

}  // namespace mint
