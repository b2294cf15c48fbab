// Canonical correlation analysis between X [n, d1] and Y [n, d2]: the correlations rho_i are the
// singular values of Lx^-1 Sxy Ly^-T, with Lx Lx^T = Sxx + ridge (any whitening gives the same rho).
// Mean CCA averages them; PWCCA (Morcos et al. 2018) weights each by how much of X its canonical
// variate accounts for. Cost n (d1^2 + d2^2 + d1 d2) for the covariances, then (d1 + d2)^3.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include "mint/core/symmetric_eigen.hpp"

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/detail/spectral.hpp"
#include "mint/similarity/measure.hpp"
#include "mint/similarity/running_moments.hpp"

namespace mint {

namespace detail {

/// Per-layer CCA work: the centred covariance (sums, not divided by n) and its ridged Cholesky factor.
template <class T>
struct cca_prepared : layer_moments<T> {
  dense covariance;
  Eigen::LLT<dense> cholesky;
};

/// The pass CCA needs, after checking the ridge.
inline linear_plan cca_plan(double epsilon, const similarity_context& where) {
  require_ridge(epsilon, "epsilon", where);
  return {{.gram = true}};
}

template <class T>
cca_prepared<T> cca_prepare_from(layer_moments<T> layer, double epsilon) {
  cca_prepared<T> p{std::move(layer), {}, {}};
  p.covariance = p.moments.centred_gram();
  require_finite(p.covariance.trace(), p.where);
  p.cholesky = ridged_cholesky(p.covariance, relative_ridge(p.covariance, epsilon), p.where, "epsilon");
  return p;
}

/// Lx^-1 Cxy Ly^-T: the cross-covariance in whitened coordinates; its singular values are the rho_i.
template <class T, class U>
dense whitened_cross(const cca_prepared<T>& a, const cca_prepared<U>& b, product_precision precision) {
  const dense left = a.cholesky.matrixL().solve(centred_cross(a, b, precision));
  return b.cholesky.matrixL().solve(left.transpose()).transpose();
}

/// Canonical correlations, descending, clamped to [0, 1]. (A template only to defer the eigensolver.)
template <class Dense>
vectord correlations_of(const Dense& whitened) {
  return squared_singular_values(whitened).cwiseMin(1.0).cwiseSqrt();
}

}  // namespace detail

/// Mean canonical correlation; also the measure similarity_matrix runs.
struct cca_options {
  double epsilon = 1e-6;  ///< ridge on each covariance, times its mean variance (0: exact CCA, needs full rank)
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const { return "mean CCA"; }

  detail::linear_plan plan(const similarity_context& where, index, index) const { return detail::cca_plan(epsilon, where); }

  template <class T>
  detail::cca_prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    return detail::cca_prepare_from(std::move(layer), epsilon);
  }

  template <tensor X>
  detail::cca_prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  /// The min(d1, d2) canonical correlations, descending.
  template <class T, class U>
  vectord correlations(const detail::cca_prepared<T>& a, const detail::cca_prepared<U>& b) const {
    return detail::correlations_of(detail::whitened_cross(a, b, precision));
  }

  template <class T, class U>
  double compare(const detail::cca_prepared<T>& a, const detail::cca_prepared<U>& b) const {
    return detail::require_finite(correlations(a, b).mean(), b.where);
  }
};

/// Projection-weighted CCA (Morcos et al. 2018): sum_i w_i rho_i with w_i proportional to
/// sum_j |<h_i, x_j>|, h_i the unit canonical variates of X and x_j its centred features.
/// Not symmetric: the weights come from X (swap the arguments for Y's).
struct pwcca_options {
  double epsilon = 1e-6;  ///< ridge on each covariance, times its mean variance
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = false;
  std::string name() const { return "PWCCA"; }

  detail::linear_plan plan(const similarity_context& where, index, index) const { return detail::cca_plan(epsilon, where); }

  template <class T>
  detail::cca_prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    return detail::cca_prepare_from(std::move(layer), epsilon);
  }

  template <tensor X>
  detail::cca_prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  template <class T, class U>
  double compare(const detail::cca_prepared<T>& a, const detail::cca_prepared<U>& b) const {
    const detail::dense m = detail::whitened_cross(a, b, precision);
    const index k = std::min(m.rows(), m.cols());
    // Left singular vectors of m from the eigenvectors of m m^T, largest first.
    const symmetric_eigen_result eig = symmetric_eigen(detail::dense(m * m.transpose()));
    const detail::dense u = eig.vectors.rowwise().reverse().leftCols(k);
    const vectord rho = eig.values.reverse().head(k).cwiseMax(0.0).cwiseMin(1.0).cwiseSqrt();
    // Canonical directions of X: a_i = Lx^-T u_i; <h_i, x_j> = (Cxx a_i)_j / sqrt(a_i' Cxx a_i).
    const detail::dense directions = a.cholesky.matrixU().solve(u);
    const detail::dense projections = a.covariance * directions;
    const vectord lengths = (directions.array() * projections.array()).colwise().sum().cwiseMax(0.0).sqrt().transpose();
    vectord weights = projections.cwiseAbs().colwise().sum().transpose();
    for (index i = 0; i < k; ++i) weights(i) = lengths(i) > 0.0 ? weights(i) / lengths(i) : 0.0;
    const double total = weights.sum();
    if (!(total > 0.0)) detail::require_finite(total, b.where);
    return detail::require_finite(weights.dot(rho) / total, b.where);
  }
};

namespace detail {

/// canonical_correlations from streamed moments (C is always char: compiled once, in the cores).
template <class C>
struct cca_moments_core {
  static vectord run(const basic_running_moments<C>& moments, const cca_options& options);
};

#if MINT_CORE_BODIES
template <class C>
vectord cca_moments_core<C>::run(const basic_running_moments<C>& moments, const cca_options& options) {
  const similarity_context where{"mint::canonical_correlations", "moments"};
  if (moments.paired_dims() == 0 || !moments.keeps_scatter())
    throw argument_error(where.function, "moments", moments.paired_dims() == 0 ? "has no paired rows" : "keeps means only",
                         "needs a running_moments built with paired_dims > 0 and scatter = true");
  if (moments.rows() < 2)
    throw argument_error(where.function, "moments", str("holds ", moments.rows(), " rows"), "needs at least 2");
  require_ridge(options.epsilon, "options.epsilon", where);
  const dense cx = moments.scatter(), cy = moments.paired_scatter(), cxy = moments.cross_scatter();
  const auto lx = ridged_cholesky(cx, relative_ridge(cx, options.epsilon), where, "options.epsilon");
  const auto ly = ridged_cholesky(cy, relative_ridge(cy, options.epsilon), where, "options.epsilon");
  const dense left = lx.matrixL().solve(cxy);
  return correlations_of(dense(ly.matrixL().solve(left.transpose()).transpose()));
}
#endif  // MINT_CORE_BODIES

/// canonical_correlations over float and double views.
template <class T, class U>
struct canonical_correlations_core {
  static vectord run(const cca_options& options, const tensor_view<const T>& x, const tensor_view<const U>& y);
};

#if MINT_CORE_BODIES
template <class T, class U>
vectord canonical_correlations_core<T, U>::run(const cca_options& options, const tensor_view<const T>& x,
                                               const tensor_view<const U>& y) {
  const char* function = "mint::canonical_correlations";
  const similarity_context where_x{function, "x"}, where_y{function, "y"};
  const auto rows_x = example_rows(x, where_x);
  const auto rows_y = example_rows(y, where_y);
  require_same_examples(rows_x.extent(0), where_x, rows_y.extent(0), where_y);
  require_examples(rows_x, 2, where_x);
  require_examples(rows_y, 2, where_y);
  auto [layer_x, layer_y] = prepare_layer_pair(rows_x, where_x, rows_y, where_y, options.precision,
                                               options.plan(where_x, 0, 0).what);
  const auto prepared_x = options.prepare_from(std::move(layer_x));
  return options.correlations(prepared_x, options.prepare_from(std::move(layer_y)));
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// The canonical correlations of X [n, d1] and Y [n, d2], descending (min(d1, d2) of them).
template <tensor X, tensor Y>
vectord canonical_correlations(const X& x, const Y& y, const cca_options& options = {}) {
  return detail::canonical_correlations_core<value_t<const X>, value_t<const Y>>::run(options, detail::measure_view(x),
                                                                                     detail::measure_view(y));
}

/// The canonical correlations of streamed moments (a running_moments with paired rows, possibly
/// reduced across ranks): what canonical_correlations(x, y) gives on the rows added, to rounding.
inline vectord canonical_correlations(const running_moments& moments, const cca_options& options = {}) {
  return detail::cca_moments_core<char>::run(moments, options);
}

/// Mean canonical correlation of X [n, d1] and Y [n, d2] (same examples).
template <tensor X, tensor Y>
double mean_cca(const X& x, const Y& y, const cca_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::mean_cca");
}

/// Projection-weighted CCA of X [n, d1] and Y [n, d2], weighted by X's canonical variates.
template <tensor X, tensor Y>
double pwcca(const X& x, const Y& y, const pwcca_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::pwcca");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_CCA(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::cca_options) \
  MINT_SIMILARITY_CORES(CORE, mint::pwcca_options) \
  MINT_CORE_FD2(CORE, mint::detail::canonical_correlations_core) \
  CORE(struct mint::detail::cca_moments_core<char>)
MINT_CORES_SIMILARITY_CCA(MINT_CORE)
