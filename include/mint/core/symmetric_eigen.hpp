// Eigenvalues and eigenvectors of a symmetric matrix (covariances, Gram matrices).
// Eigen's SelfAdjointEigenSolver by default. Define MINT_USE_LAPACK and link a
// LAPACK (OpenBLAS carries one; mint's build does both with -Dblas=openblas) to
// take LAPACK's divide-and-conquer dsyevd instead: about 1.6x faster with
// eigenvectors at d = 768 on this project's machines, and what NumPy's eigh runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"

#if defined(MINT_USE_LAPACK)
#ifndef MINT_LAPACK_INT
/// LAPACK's integer: int for the usual LP64 builds. An ILP64 build (64-bit integers) needs this
/// defined as a 64-bit type and, when its symbols carry a suffix (OpenBLAS's dsyevd_64_), that name too.
#define MINT_LAPACK_INT int
#endif
#ifndef MINT_LAPACK_DSYEVD
#define MINT_LAPACK_DSYEVD "dsyevd_"  ///< the Fortran symbol of dsyevd
#endif
// Declared under a name of mint's own, bound to the Fortran symbol, so it cannot clash with
// another header's declaration of dsyevd_ (Eigen's lapacke.h under EIGEN_USE_LAPACKE, MKL's).
// The trailing lengths are the hidden ones gfortran passes for character arguments.
extern "C" void mint_lapack_dsyevd(const char* jobz, const char* uplo, const MINT_LAPACK_INT* n, double* a,
                                   const MINT_LAPACK_INT* lda, double* w, double* work, const MINT_LAPACK_INT* lwork,
                                   MINT_LAPACK_INT* iwork, const MINT_LAPACK_INT* liwork, MINT_LAPACK_INT* info,
                                   std::size_t jobz_length, std::size_t uplo_length) __asm__(MINT_LAPACK_DSYEVD);
#endif

namespace mint {

/// A symmetric matrix's eigenvalues, ascending, and (when asked) its unit eigenvectors as columns.
struct symmetric_eigen_result {
  vectord values;
  Eigen::MatrixXd vectors;  ///< column i belongs to values(i); empty when not asked for
};

namespace detail {

#if defined(MINT_USE_LAPACK)
/// LAPACK's dsyevd on a copy of the lower triangle; false when it cannot run (sizes beyond
/// LAPACK's integers) or did not converge, and Eigen's solver takes over.
inline bool lapack_symmetric_eigen(const Eigen::MatrixXd& a, bool vectors, symmetric_eigen_result& out) {
  using lapack_integer = MINT_LAPACK_INT;
  constexpr double largest = double(std::numeric_limits<lapack_integer>::max());
  if (double(a.rows()) > largest) return false;
  const lapack_integer n = lapack_integer(a.rows()), lda = std::max<lapack_integer>(n, 1);
  const char jobz = vectors ? 'V' : 'N', uplo = 'L';
  Eigen::MatrixXd work_matrix = a;
  out.values.resize(n);
  lapack_integer info = 0, lwork = -1, liwork = -1, iwork_size = 0;
  double work_size = 0.0;
  mint_lapack_dsyevd(&jobz, &uplo, &n, work_matrix.data(), &lda, out.values.data(), &work_size, &lwork, &iwork_size,
                     &liwork, &info, 1, 1);
  if (info != 0 || !(work_size >= 1.0 && work_size <= largest)) return false;
  lwork = lapack_integer(work_size);
  liwork = iwork_size;
  std::vector<double> work(std::size_t(std::max<lapack_integer>(lwork, 1)));
  std::vector<lapack_integer> iwork(std::size_t(std::max<lapack_integer>(liwork, 1)));
  mint_lapack_dsyevd(&jobz, &uplo, &n, work_matrix.data(), &lda, out.values.data(), work.data(), &lwork, iwork.data(),
                     &liwork, &info, 1, 1);
  if (info != 0) return false;
  if (vectors) out.vectors = std::move(work_matrix);
  return true;
}
#endif

}  // namespace detail

// symmetric_eigen differs with MINT_USE_LAPACK, so it lives in an inline namespace named after
// the choice: units built each way may share a program, each calling its own version.
#if defined(MINT_USE_LAPACK)
#define MINT_EIGENSOLVER_NAMESPACE with_lapack
#else
#define MINT_EIGENSOLVER_NAMESPACE with_eigen
#endif

inline namespace MINT_EIGENSOLVER_NAMESPACE {

/// The eigendecomposition of the square symmetric matrix `a` (its lower triangle is read). A
/// template (Dense is Eigen::MatrixXd) so only the units that call it compile the solver.
template <class Dense>
symmetric_eigen_result symmetric_eigen(const Dense& a, bool vectors = true) {
  static_assert(std::is_same_v<typename Dense::Scalar, double>, "mint::symmetric_eigen takes a double matrix");
  if (a.rows() != a.cols())
    throw shape_error("mint::symmetric_eigen", "a", mint::detail::str("is ", a.rows(), " x ", a.cols()),
                      "needs a square matrix");
  if (!a.template triangularView<Eigen::Lower>().toDenseMatrix().allFinite())
    throw numeric_error("mint::symmetric_eigen", "a", "holds a NaN or infinity in its lower triangle",
                        "needs finite values");
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

}  // namespace MINT_EIGENSOLVER_NAMESPACE

}  // namespace mint
