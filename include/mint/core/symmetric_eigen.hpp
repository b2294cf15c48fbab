// Eigenvalues and eigenvectors of a symmetric matrix (covariances, Gram matrices).
// Eigen's SelfAdjointEigenSolver by default. Define MINT_USE_LAPACK and link a
// LAPACK (OpenBLAS carries one; mint's build does both with -Dblas=openblas) to
// take LAPACK's divide-and-conquer dsyevd instead: about 1.6x faster with
// eigenvectors at d = 768 on this project's machines, and what NumPy's eigh runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "mint/core/eigen.hpp"

#if defined(MINT_USE_LAPACK)
#ifndef MINT_LAPACK_INT
#define MINT_LAPACK_INT int  ///< LAPACK's integer: int for the usual LP64 builds, define it for ILP64
#endif
// The Fortran symbol, with the hidden lengths gfortran passes for character arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const MINT_LAPACK_INT* n, double* a,
                        const MINT_LAPACK_INT* lda, double* w, double* work, const MINT_LAPACK_INT* lwork,
                        MINT_LAPACK_INT* iwork, const MINT_LAPACK_INT* liwork, MINT_LAPACK_INT* info,
                        std::size_t jobz_length, std::size_t uplo_length);
#endif

namespace mint {

/// A symmetric matrix's eigenvalues, ascending, and (when asked) its unit eigenvectors as columns.
struct symmetric_eigen_result {
  vectord values;
  Eigen::MatrixXd vectors;  ///< column i belongs to values(i); empty when not asked for
};

namespace detail {

#if defined(MINT_USE_LAPACK)
/// LAPACK's dsyevd on a copy of the lower triangle; false when it did not converge.
inline bool lapack_symmetric_eigen(const Eigen::MatrixXd& a, bool vectors, symmetric_eigen_result& out) {
  using lapack_int = MINT_LAPACK_INT;
  const lapack_int n = lapack_int(a.rows()), lda = std::max<lapack_int>(n, 1);
  const char jobz = vectors ? 'V' : 'N', uplo = 'L';
  Eigen::MatrixXd work_matrix = a;
  out.values.resize(n);
  lapack_int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
  double work_size = 0.0;
  dsyevd_(&jobz, &uplo, &n, work_matrix.data(), &lda, out.values.data(), &work_size, &lwork, &iwork_size, &liwork,
          &info, 1, 1);
  if (info != 0) return false;
  lwork = lapack_int(work_size);
  liwork = iwork_size;
  std::vector<double> work(std::size_t(std::max<lapack_int>(lwork, 1)));
  std::vector<lapack_int> iwork(std::size_t(std::max<lapack_int>(liwork, 1)));
  dsyevd_(&jobz, &uplo, &n, work_matrix.data(), &lda, out.values.data(), work.data(), &lwork, iwork.data(), &liwork,
          &info, 1, 1);
  if (info != 0) return false;
  if (vectors) out.vectors = std::move(work_matrix);
  return true;
}
#endif

}  // namespace detail

/// The eigendecomposition of the symmetric matrix `a` (its lower triangle is read). A template
/// (Dense is Eigen::MatrixXd) so only the units that call it compile the solver.
template <class Dense>
symmetric_eigen_result symmetric_eigen(const Dense& a, bool vectors = true) {
  symmetric_eigen_result out;
  if (a.size() == 0) return out;
#if defined(MINT_USE_LAPACK)
  if (detail::lapack_symmetric_eigen(a, vectors, out)) return out;
#endif
  Eigen::SelfAdjointEigenSolver<Dense> solver(a, vectors ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
  out.values = solver.eigenvalues();
  if (vectors) out.vectors = solver.eigenvectors();
  return out;
}

}  // namespace mint
