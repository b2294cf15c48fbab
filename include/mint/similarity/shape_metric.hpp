// The angular shape metric of Williams et al. (2021, netrep's LinearMetric): arccos(||Xw^T Yw||_* /
// (||Xw||_F ||Yw||_F)) with Xw = Xc Zx, Zx = V diag(alpha + (1 - alpha) lambda^-1/2) V^T partial
// whitening from the eigendecomposition X_c^T X_c = V diag(lambda) V^T. alpha = 1: angular Procrustes;
// alpha = 0: CCA-like (full whitening). A metric: symmetric, triangle inequality. Cost n d^2, then d^3.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

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

namespace mint {

/// The angular shape distance, in radians in [0, pi/2]; also the measure similarity_matrix runs.
struct shape_metric_options {
  double alpha = 1.0;  ///< partial whitening: 1 rotations only (Procrustes), 0 any invertible linear map (CCA)
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = true;
  static constexpr bool is_symmetric = true;
  std::string name() const {
    char text[48];
    std::snprintf(text, sizeof text, "shape metric (alpha %g)", alpha);
    return text;
  }

  /// Per-layer work: the partial whitening Z (identity when alpha = 1) and ||X Z||_F.
  template <class T>
  struct prepared : detail::layer_moments<T> {
    detail::dense whitening;  ///< Z, d x d; empty when alpha = 1
    double norm = 0.0;        ///< ||Xc Z||_F
  };

  /// The pass the metric needs (Gram matrices to whiten unless alpha = 1), after checking alpha.
  detail::linear_plan plan(const similarity_context& where, index, index) const {
    if (!(alpha >= 0.0 && alpha <= 1.0))
      throw argument_error(where.function, "alpha", detail::str("is ", alpha), "needs a value in [0, 1]");
    return {{.gram = alpha < 1.0}};
  }

  template <tensor X>
  prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  template <class T>
  prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    prepared<T> p{std::move(layer), {}, 0.0};
    const similarity_context& where = p.where;
    const bool whiten = alpha < 1.0;
    if (!whiten) {
      p.norm = std::sqrt(detail::require_finite(p.moments.centred_sum_squares(), where));
    } else {
      const detail::dense covariance = p.moments.centred_gram();
      detail::require_finite(covariance.trace(), where);
      const symmetric_eigen_result eig = symmetric_eigen(covariance);
      const vectord lambda = eig.values.cwiseMax(0.0);
      // netrep clips the eigenvalues of Xc^T Xc at 1e-7 before taking lambda^-1/2.
      const vectord scale = (alpha + (1.0 - alpha) * lambda.cwiseMax(1e-7).array().rsqrt()).matrix();
      p.whitening = eig.vectors * scale.asDiagonal() * eig.vectors.transpose();
      p.norm = std::sqrt(scale.cwiseAbs2().dot(lambda));
    }
    if (!(p.norm > 0.0))
      throw numeric_error(where.function, where.argument, "has no variance across examples",
                          "needs examples that differ");
    return p;
  }

  template <class T, class U>
  double compare(const prepared<T>& a, const prepared<U>& b) const {
    detail::dense c = detail::centred_cross(a, b, precision);
    if (a.whitening.size() > 0) c = a.whitening * c;
    if (b.whitening.size() > 0) c = c * b.whitening;
    const double cosine = detail::normalized_nuclear_norm(c, a.norm * b.norm);
    return detail::require_finite(std::acos(cosine), b.where);
  }
};

/// The angular shape distance between X [n, d1] and Y [n, d2] (same examples), in radians.
template <tensor X, tensor Y>
double shape_distance(const X& x, const Y& y, const shape_metric_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::shape_distance");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_SHAPE_METRIC(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::shape_metric_options)
MINT_CORES_SIMILARITY_SHAPE_METRIC(MINT_CORE)
