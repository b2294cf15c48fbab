// The bridge between views and Eigen, both ways: Eigen dense types (mint::matrixf
// among them) are mint tensors, and views become Eigen::Map with their strides, so
// algorithms do their linear algebra in Eigen without copying. Every header that
// takes tensors includes it, so mint's own result types work everywhere.
#pragma once

#include <concepts>
#include <type_traits>

#include <Eigen/Core>

#include "mint/core/error.hpp"
#include "mint/core/memory.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

// ---- Eigen types as mint tensors ----------------------------------------------------
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

// Maps, refs and blocks point into someone else's coefficients: their temporaries may be viewed.
template <class P, int O, class S>
inline constexpr bool enable_borrowed_tensor<Eigen::Map<P, O, S>> = true;
template <class P, int O, class S>
inline constexpr bool enable_borrowed_tensor<Eigen::Ref<P, O, S>> = true;
template <class X, int R, int C, bool I>
inline constexpr bool enable_borrowed_tensor<Eigen::Block<X, R, C, I>> = true;

// ---- views as Eigen maps ------------------------------------------------------------

/// The matrices mint returns: dynamic, row-major (rows are examples).
template <class T>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matrixf = matrix<float>;
using matrixd = matrix<double>;

/// The vectors mint returns.
template <class T>
using vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
using vectorf = vector<float>;
using vectord = vector<double>;

namespace detail {
template <class T, class Plain>
using const_like = std::conditional_t<std::is_const_v<T>, const Plain, Plain>;
}

/// A row-major Map over a view of any strides (const when T is const).
template <class T>
using matrix_map = Eigen::Map<detail::const_like<T, matrix<std::remove_const_t<T>>>, Eigen::Unaligned,
                              Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

/// A vector Map over a rank-1 view of any stride.
template <class T>
using vector_map =
    Eigen::Map<detail::const_like<T, vector<std::remove_const_t<T>>>, Eigen::Unaligned, Eigen::InnerStride<>>;

namespace detail {

/// Rank 2 as is; rank 3 and 4 with the leading axes merged ([batch, pos, d] -> [batch*pos, d]).
template <class T>
tensor_view<T> as_rank2(const tensor_view<T>& v, const char* function) {
  if (v.rank() == 2) return v;
  if (v.rank() == 1)
    throw shape_error(function, "x", "has rank 1", "needs rank 2 or more (rows x columns)");
  try {
    return v.reshape({v.size() / std::max<index>(v.extent(v.rank() - 1), 1), v.extent(v.rank() - 1)});
  } catch (const shape_error&) {
    throw shape_error(function, "x",
                      "has extents " + shape_string(v.extents()) + " and strides " + shape_string(v.strides()) +
                          ", whose leading axes cannot merge into rows",
                      "needs leading axes contiguous with each other; copy it first");
  }
}

}  // namespace detail

/// The view as an Eigen matrix without a copy; ranks 3 and 4 merge their leading axes into rows.
template <class T>
matrix_map<T> as_matrix(const tensor_view<T>& v) {
  const tensor_view<T> m = detail::as_rank2(v, "mint::as_matrix");
  return matrix_map<T>(m.data(), m.extent(0), m.extent(1), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(m.stride(0), m.stride(1)));
}

template <class X>
  requires(viewable<X> && !detail::a_tensor_view<X>)
auto as_matrix(X&& x) {
  return as_matrix(mint::view(x));
}

/// The view as an Eigen vector without a copy; higher ranks must flatten without a copy.
template <class T>
vector_map<T> as_vector(const tensor_view<T>& v) {
  const tensor_view<T> flat = v.rank() == 1 ? v : v.reshape({v.size()});
  return vector_map<T>(flat.data(), flat.extent(0), Eigen::InnerStride<>(flat.stride(0)));
}

template <class X>
  requires(viewable<X> && !detail::a_tensor_view<X>)
auto as_vector(X&& x) {
  return as_vector(mint::view(x));
}

/// Calls f with the fastest Map the layout allows: row-major with unit column
/// stride, column-major with unit row stride, or fully strided. Eigen's
/// products and vectorized loops need a unit inner stride to avoid a copy.
template <class T, class F>
decltype(auto) visit_matrix(const tensor_view<T>& v, F&& f) {
  using Plain = std::remove_const_t<T>;
  using RowMajor = detail::const_like<T, Eigen::Matrix<Plain, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
  using ColMajor = detail::const_like<T, Eigen::Matrix<Plain, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>>;
  const tensor_view<T> m = detail::as_rank2(v, "mint::visit_matrix");
  const index rows = m.extent(0), cols = m.extent(1);
  if (m.stride(1) == 1 || cols <= 1)
    return f(Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>(m.data(), rows, cols,
                                                                          Eigen::OuterStride<>(rows > 1 ? m.stride(0) : cols)));
  if (m.stride(0) == 1 || rows <= 1)
    return f(Eigen::Map<ColMajor, Eigen::Unaligned, Eigen::OuterStride<>>(m.data(), rows, cols,
                                                                          Eigen::OuterStride<>(m.stride(1))));
  return f(as_matrix(m));
}

template <tensor X, class F>
  requires(!detail::a_tensor_view<X>)
decltype(auto) visit_matrix(X&& x, F&& f) {
  return visit_matrix(mint::view(x), std::forward<F>(f));
}

/// An owned row-major copy, converted to Out (the tensor's own element type by default).
template <class Out = void, tensor X>
auto to_matrix(const X& x) {
  using Value = value_t<const X>;
  using Result = std::conditional_t<std::is_void_v<Out>, Value, Out>;
  const auto m = as_matrix(mint::view(x));
  return detail::allocating("mint::to_matrix", "x", double(m.rows()) * double(m.cols()) * sizeof(Result),
                            [&] { return matrix<Result>(m.template cast<Result>()); });
}

}  // namespace mint
