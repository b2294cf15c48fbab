// Internals: the small dense linear algebra the CCA family, Procrustes and
// regression share, all on d x d matrices after the pass over the data:
// a ridged Cholesky factor, squared singular values through the eigenvalues of
// the smaller Gram matrix, and nuclear norms. Cost d^3; nothing here sees n.
#pragma once

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include "mint/core/symmetric_eigen.hpp"
#include <Eigen/SVD>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// The ridge added to a covariance: epsilon times its mean variance, so it scales with the data.
inline double relative_ridge(const dense& covariance, double epsilon) {
  return epsilon * covariance.trace() / double(std::max<index>(covariance.rows(), 1));
}

/// Throws argument_error unless a ridge-like option is finite and >= 0.
inline void require_ridge(double value, const char* name, const similarity_context& where) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw argument_error(where.function, name, str("is ", value), "needs a finite value >= 0");
}

/// The Cholesky factor of covariance + ridge I; a numeric_error names the way out when it is singular.
/// (A template, Dense always `dense`, so only units that call it instantiate Eigen's LLT.)
template <class Dense>
Eigen::LLT<Dense> ridged_cholesky(const Dense& covariance, double ridge, const similarity_context& where,
                                  const char* option) {
  Dense a = covariance;
  a.diagonal().array() += ridge;
  Eigen::LLT<Dense> llt(a);
  const double scale = std::max(a.diagonal().maxCoeff(), 0.0);
  const bool singular = llt.info() != Eigen::Success || !(scale > 0.0) ||
                        !((llt.matrixLLT().diagonal().array().square() > 1e-14 * scale).all());
  if (singular)
    throw numeric_error(where.function, where.argument,
                        "has a singular covariance (constant or collinear features, or fewer examples than features)",
                        str("needs ", option, " > 0 (a ridge, e.g. 1e-4), or SVCCA, which keeps the directions that carry variance"));
  return llt;
}

// The decompositions below sit in templates (Dense is always `dense`) so that only the units that
// call them instantiate Eigen's eigensolver (~3 s of compile time) and BDCSVD (~10 s); as inline
// functions they cost that in every unit that includes mint.hpp.

/// Squared singular values of m, descending, min(rows, cols) of them, from the eigenvalues of
/// the smaller of m m^T and m^T m (a third of an SVD's time; accurate to ~1e-16 x the largest).
template <class Dense>
vectord squared_singular_values(const Dense& m) {
  const Dense gram = m.rows() <= m.cols() ? Dense(m * m.transpose()) : Dense(m.transpose() * m);
  return symmetric_eigen(gram, false).values.reverse().cwiseMax(0.0);
}

/// sum of the singular values of m. `accurate` takes an SVD (about 3x the time), exact for
/// tiny singular values too; otherwise square roots of squared_singular_values, whose small
/// values carry an error up to ~1e-8 x the largest.
template <class Dense>
double nuclear_norm(const Dense& m, bool accurate) {
  if (m.size() == 0) return 0.0;
  if (accurate) return Eigen::BDCSVD<Dense>(m).singularValues().sum();
  return squared_singular_values(m).cwiseSqrt().sum();
}

/// The nuclear norm of `cross` over `scale`, a cosine in [0, 1]. Near 1 (nearly identical
/// representations) a distance built on it cancels, so it is recomputed with the exact SVD there.
template <class Dense>
double normalized_nuclear_norm(const Dense& cross, double scale) {
  double cosine = nuclear_norm(cross, false) / scale;
  if (cosine > 0.99) cosine = nuclear_norm(cross, true) / scale;
  return std::clamp(cosine, 0.0, 1.0);
}

}  // namespace mint::detail
