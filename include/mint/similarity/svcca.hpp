// SVCCA (Raghu et al. 2017): keep each representation's top principal directions (those that
// explain a set fraction of its variance, 99% by default), then average the canonical correlations
// between the reduced representations. Cost n (d1^2 + d2^2 + d1 d2), then d^3 per layer for the
// eigendecomposition and k^3 per pair.
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

/// SVCCA; also the measure similarity_matrix runs.
struct svcca_options {
  double variance = 0.99;  ///< keep the fewest top directions that explain this fraction of the variance
  index directions = 0;    ///< when > 0, keep exactly this many directions instead (Raghu et al.'s tutorial uses 20-50)
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const {
    char text[48];
    if (directions > 0)
      std::snprintf(text, sizeof text, "SVCCA (%td directions)", directions);
    else
      std::snprintf(text, sizeof text, "SVCCA (%g%% variance)", variance * 100.0);
    return text;
  }

  /// Per-layer work: the kept principal directions, scaled to whiten (v_k / sqrt(lambda_k)).
  template <class T>
  struct prepared : detail::layer_moments<T> {
    detail::dense whitening;  ///< d x k
  };

  /// The pass SVCCA needs, after checking the options.
  detail::linear_plan plan(const similarity_context& where, index, index) const {
    if (!(variance > 0.0 && variance <= 1.0))
      throw argument_error(where.function, "variance", detail::str("is ", variance), "needs a fraction in (0, 1]");
    if (directions < 0)
      throw argument_error(where.function, "directions", detail::str("is ", directions), "needs a count >= 0");
    return {{.gram = true}};
  }

  template <tensor X>
  prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  /// The kept directions from the layer's covariance.
  template <class T>
  prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    prepared<T> p{std::move(layer), {}};
    const similarity_context& where = p.where;
    const detail::dense covariance = p.moments.centred_gram();
    detail::require_finite(covariance.trace(), where);
    const symmetric_eigen_result eig = symmetric_eigen(covariance);
    const vectord lambda = eig.values.reverse().cwiseMax(0.0);
    const double total = lambda.sum();
    if (!(total > 0.0))
      throw numeric_error(where.function, where.argument, "has no variance across examples",
                          "needs examples that differ");
    // Directions with variance at rounding level carry no signal and would blow up when whitened.
    const double floor = 1e-12 * lambda(0);
    index keep = 0;
    if (directions > 0) {
      keep = std::min(directions, index(lambda.size()));
    } else {
      double running = 0.0;
      while (keep < lambda.size() && running < variance * total * (1.0 - 1e-12)) running += lambda(keep++);
    }
    while (keep > 1 && !(lambda(keep - 1) > floor)) --keep;
    p.whitening = eig.vectors.rowwise().reverse().leftCols(keep) *
                  lambda.head(keep).cwiseSqrt().cwiseInverse().asDiagonal();
    return p;
  }

  /// The canonical correlations between the reduced representations, descending.
  template <class T, class U>
  vectord correlations(const prepared<T>& a, const prepared<U>& b) const {
    const detail::dense cross = detail::centred_cross(a, b, precision);
    const detail::dense whitened = a.whitening.transpose() * cross * b.whitening;
    return squared_to_correlations(detail::squared_singular_values(whitened));
  }

  template <class T, class U>
  double compare(const prepared<T>& a, const prepared<U>& b) const {
    return detail::require_finite(correlations(a, b).mean(), b.where);
  }

private:
  static vectord squared_to_correlations(const vectord& squared) { return squared.cwiseMin(1.0).cwiseSqrt(); }
};

/// SVCCA of X [n, d1] and Y [n, d2] (same examples): mean canonical correlation after keeping
/// the principal directions that explain options.variance of each one's variance.
template <tensor X, tensor Y>
double svcca(const X& x, const Y& y, const svcca_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::svcca");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_SVCCA(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::svcca_options)
MINT_CORES_SIMILARITY_SVCCA(MINT_CORE)
