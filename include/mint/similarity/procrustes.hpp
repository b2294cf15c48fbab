// Orthogonal Procrustes distance: min over orthogonal Q of ||X - Y Q||_F with X and Y centred and
// scaled to unit Frobenius norm, which equals sqrt(2 - 2 ||X^T Y||_*) (nuclear norm; Schoenemann 1966,
// Williams et al. 2021). Cost n d1 d2 for the cross-product, then d^3; no Gram of either side.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <Eigen/Core>
#include <Eigen/SVD>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/detail/spectral.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// Procrustes distance, in [0, sqrt(2)]; also the measure similarity_matrix runs.
struct procrustes_options {
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = true;
  static constexpr bool is_symmetric = true;
  std::string name() const { return "Procrustes distance"; }

  /// Per-layer work: the shift, sums and squared norm (one pass, no products).
  template <class T>
  struct prepared : detail::layer_moments<T> {
    double norm = 0.0;  ///< ||X - mean||_F
  };

  detail::linear_plan plan(const similarity_context&, index, index) const { return {}; }

  template <tensor X>
  prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  template <class T>
  prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    prepared<T> p{std::move(layer), 0.0};
    const similarity_context& where = p.where;
    p.norm = std::sqrt(detail::require_finite(p.moments.centred_sum_squares(), where));
    if (!(p.norm > 0.0))
      throw numeric_error(where.function, where.argument, "has no variance across examples",
                          "needs examples that differ (it cannot be scaled to unit norm)");
    return p;
  }

  /// The centred cross-product X^T Y (d1 x d2).
  template <class T, class U>
  detail::dense cross(const prepared<T>& a, const prepared<U>& b) const {
    return detail::centred_cross(a, b, precision);
  }

  template <class T, class U>
  double compare(const prepared<T>& a, const prepared<U>& b) const {
    const detail::dense c = cross(a, b);
    const double cosine = detail::normalized_nuclear_norm(c, a.norm * b.norm);
    return detail::require_finite(std::sqrt(std::max(0.0, 2.0 - 2.0 * cosine)), b.where);
  }
};

/// Procrustes distance between X [n, d1] and Y [n, d2] (same examples): 0 when one is a rotation,
/// translation and scaling of the other; sqrt(2) at most.
template <tensor X, tensor Y>
double procrustes_distance(const X& x, const Y& y, const procrustes_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::procrustes_distance");
}

namespace detail {

/// procrustes_rotation over float and double views.
template <class T, class U>
struct procrustes_rotation_core {
  static matrixd run(const procrustes_options& options, const tensor_view<const T>& x, const tensor_view<const U>& y);
};

#if MINT_CORE_BODIES
template <class T, class U>
matrixd procrustes_rotation_core<T, U>::run(const procrustes_options& options, const tensor_view<const T>& x,
                                            const tensor_view<const U>& y) {
  const char* function = "mint::procrustes_rotation";
  const similarity_context where_x{function, "x"}, where_y{function, "y"};
  const auto rows_x = example_rows(x, where_x);
  const auto rows_y = example_rows(y, where_y);
  require_same_examples(rows_x.extent(0), where_x, rows_y.extent(0), where_y);
  const auto prepared_x = options.prepare(rows_x, where_x);
  const dense c = options.cross(options.prepare(rows_y, where_y), prepared_x);
  return matrixd(orthogonal_factor(c));
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// The orthogonal Q [d2, d1] that best maps centred Y onto centred X (min ||X - Y Q||_F): Q = U V^T
/// from the SVD Y^T X = U S V^T. With d1 != d2 its columns (or rows) are orthonormal.
template <tensor X, tensor Y>
matrixd procrustes_rotation(const X& x, const Y& y, const procrustes_options& options = {}) {
  return detail::procrustes_rotation_core<value_t<const X>, value_t<const Y>>::run(options, detail::measure_view(x),
                                                                                  detail::measure_view(y));
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_PROCRUSTES(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::procrustes_options) \
  MINT_CORE_FD2(CORE, mint::detail::procrustes_rotation_core)
MINT_CORES_SIMILARITY_PROCRUSTES(MINT_CORE)
