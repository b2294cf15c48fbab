// Linear regression fit: R^2 of predicting Y [n, d2] from X [n, d1] by (ridge) least squares,
// 1 - ||Yc - Xc B||_F^2 / ||Yc||_F^2 with B = (Xc^T Xc + ridge I)^-1 Xc^T Yc. Without a ridge it is
// ||Q_X^T Yc||_F^2 / ||Yc||_F^2 (Kornblith et al. 2019, section 4). Not symmetric. Cost n (d1^2 + d1 d2), then d^3.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include <Eigen/Cholesky>
#include <Eigen/Core>

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

/// R^2 of a linear fit of y from x; also the measure similarity_matrix runs (rows predict columns).
struct linear_regression_options {
  double ridge = 1e-6;  ///< added to Xc^T Xc, times its mean variance (0: ordinary least squares, needs full rank)
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = false;
  std::string name() const { return "linear regression R^2"; }

  /// Per-layer work: covariance sums and the ridged Cholesky factor (used when the layer predicts).
  template <class T>
  struct prepared : detail::layer_moments<T> {
    Eigen::LLT<detail::dense> cholesky;
    std::optional<numeric_error> singular;  ///< why the layer cannot predict (thrown only if it is asked to)
    double ridge = 0.0;            ///< absolute ridge
    double total_variance = 0.0;   ///< ||Xc||_F^2
  };

  detail::linear_plan plan(const similarity_context& where, index, index) const {
    detail::require_ridge(ridge, "ridge", where);
    return {{.gram = true}};
  }

  template <tensor X>
  prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    return detail::prepare_by_moments(*this, x, where);
  }

  template <class T>
  prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    prepared<T> p{std::move(layer), {}, std::nullopt, 0.0, 0.0};
    const similarity_context& where = p.where;
    const detail::dense covariance = p.moments.centred_gram();
    p.total_variance = detail::require_finite(covariance.trace(), where);
    if (!(p.total_variance > 0.0))
      throw numeric_error(where.function, where.argument, "has no variance across examples",
                          "needs examples that differ (R^2 is 0/0 for a constant target)");
    p.ridge = detail::relative_ridge(covariance, ridge);
    try {
      p.cholesky = detail::ridged_cholesky(covariance, p.ridge, where, "ridge");
    } catch (const numeric_error& e) {
      p.singular = e;
    }
    return p;
  }

  template <class T, class U>
  double compare(const prepared<T>& x, const prepared<U>& y) const {
    detail::require_same_examples(x.rows.extent(0), x.where, y.rows.extent(0), y.where);
    if (x.singular) throw *x.singular;
    const detail::dense cross = detail::centred_cross(x, y, precision);
    // With L L^T = Xc^T Xc + r I and W = L^-1 Xc^T Yc, B = L^-T W and the explained sum of squares
    // 2 tr(B^T Xc^T Yc) - tr(B^T Xc^T Xc B) is ||W||^2 + r ||B||^2.
    const detail::dense w = x.cholesky.matrixL().solve(cross);
    double explained = w.squaredNorm();
    if (x.ridge > 0.0) explained += x.ridge * x.cholesky.matrixU().solve(w).squaredNorm();
    return detail::require_finite(explained / y.total_variance, y.where);
  }
};

/// R^2 of predicting Y [n, d2] from X [n, d1] with a linear map (same examples), in [0, 1].
template <tensor X, tensor Y>
double linear_regression_r2(const X& x, const Y& y, const linear_regression_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::linear_regression_r2");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_REGRESSION(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::linear_regression_options)
MINT_CORES_SIMILARITY_REGRESSION(MINT_CORE)
