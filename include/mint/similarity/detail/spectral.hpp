// Internals: the small dense linear algebra the CCA family, Procrustes and
// regression share, all on d x d matrices after the pass over the data:
// a ridged Cholesky factor, squared singular values through the eigenvalues of
// the smaller Gram matrix, and nuclear norms. Cost d^3; nothing here sees n.
#pragma once

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/SVD>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/symmetric_eigen.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// The ridge added to a covariance: epsilon times its mean variance, so it scales with the data.
MINT_LAZY double relative_ridge(const dense& covariance, double epsilon) {
  return epsilon * covariance.trace() / double(std::max<index>(covariance.rows(), 1));
}

/// Throws argument_error unless a ridge-like option is finite and >= 0.
inline void require_ridge(double value, const char* name, const similarity_context& where) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw argument_error(where.function, name, str("is ", value), "needs a finite value >= 0");
}

/// The decompositions the measures share, on d x d matrices of S (double): a core (see
/// mint/core/compiled.hpp), so a program built with separate compilation instantiates Eigen's
/// LLT, eigensolver and BDCSVD (~15 s of compile time) once, not in every measure's unit.
template <class S>
struct dense_algebra {
  using matrix_type = dense_of<S>;
  static Eigen::LLT<matrix_type> ridged_cholesky(const matrix_type& covariance, double ridge,
                                                 const similarity_context& where, const char* option);
  static vectord squared_singular_values(const matrix_type& m);
  static double nuclear_norm(const matrix_type& m, bool accurate);
  static double normalized_nuclear_norm(const matrix_type& cross, double scale);
  static matrix_type orthogonal_factor(const matrix_type& m);
};

#if MINT_CORE_BODIES
template <class S>
Eigen::LLT<dense_of<S>> dense_algebra<S>::ridged_cholesky(const matrix_type& covariance, double ridge,
                                                          const similarity_context& where, const char* option) {
  matrix_type a = covariance;
  a.diagonal().array() += ridge;
  Eigen::LLT<matrix_type> llt(a);
  const double scale = std::max(a.diagonal().maxCoeff(), 0.0);
  const bool singular = llt.info() != Eigen::Success || !(scale > 0.0) ||
                        !((llt.matrixLLT().diagonal().array().square() > 1e-14 * scale).all());
  if (singular)
    throw numeric_error(where.function, where.argument,
                        "has a singular covariance (constant or collinear features, or fewer examples than features)",
                        str("needs ", option, " > 0 (a ridge, e.g. 1e-4), or SVCCA, which keeps the directions that carry variance"));
  return llt;
}

template <class S>
vectord dense_algebra<S>::squared_singular_values(const matrix_type& m) {
  const matrix_type gram = m.rows() <= m.cols() ? matrix_type(m * m.transpose()) : matrix_type(m.transpose() * m);
  return symmetric_eigen(gram, false).values.reverse().cwiseMax(0.0);
}

template <class S>
double dense_algebra<S>::nuclear_norm(const matrix_type& m, bool accurate) {
  if (m.size() == 0) return 0.0;
  if (accurate) return Eigen::BDCSVD<matrix_type>(m).singularValues().sum();
  return squared_singular_values(m).cwiseSqrt().sum();
}

template <class S>
double dense_algebra<S>::normalized_nuclear_norm(const matrix_type& cross, double scale) {
  double cosine = nuclear_norm(cross, false) / scale;
  if (cosine > 0.99) cosine = nuclear_norm(cross, true) / scale;
  return std::clamp(cosine, 0.0, 1.0);
}

template <class S>
dense_of<S> dense_algebra<S>::orthogonal_factor(const matrix_type& m) {
  Eigen::BDCSVD<matrix_type> svd(m, Eigen::ComputeThinU | Eigen::ComputeThinV);
  return svd.matrixU() * svd.matrixV().transpose();
}
#endif  // MINT_CORE_BODIES

// The functions below are templates (Dense is always `dense`) so that only the units that call
// them instantiate dense_algebra; as inline functions they would cost that in every unit that
// includes mint.hpp.

/// The Cholesky factor of covariance + ridge I; a numeric_error names the way out when it is singular.
template <class Dense>
auto ridged_cholesky(const Dense& covariance, double ridge, const similarity_context& where, const char* option) {
  return dense_algebra<typename Dense::Scalar>::ridged_cholesky(covariance, ridge, where, option);
}

/// Squared singular values of m, descending, min(rows, cols) of them, from the eigenvalues of
/// the smaller of m m^T and m^T m (a third of an SVD's time; accurate to ~1e-16 x the largest).
template <class Dense>
vectord squared_singular_values(const Dense& m) {
  return dense_algebra<typename Dense::Scalar>::squared_singular_values(m);
}

/// sum of the singular values of m. `accurate` takes an SVD (about 3x the time), exact for
/// tiny singular values too; otherwise square roots of squared_singular_values, whose small
/// values carry an error up to ~1e-8 x the largest.
template <class Dense>
double nuclear_norm(const Dense& m, bool accurate) {
  return dense_algebra<typename Dense::Scalar>::nuclear_norm(m, accurate);
}

/// The nuclear norm of `cross` over `scale`, a cosine in [0, 1]. Near 1 (nearly identical
/// representations) a distance built on it cancels, so it is recomputed with the exact SVD there.
template <class Dense>
double normalized_nuclear_norm(const Dense& cross, double scale) {
  return dense_algebra<typename Dense::Scalar>::normalized_nuclear_norm(cross, scale);
}

/// U V^T from the thin SVD m = U S V^T: the orthogonal factor of m's polar decomposition.
template <class Dense>
Dense orthogonal_factor(const Dense& m) {
  return dense_algebra<typename Dense::Scalar>::orthogonal_factor(m);
}

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_DETAIL_SPECTRAL(CORE) CORE(struct mint::detail::dense_algebra<double>)
MINT_CORES_SIMILARITY_DETAIL_SPECTRAL(MINT_CORE)
