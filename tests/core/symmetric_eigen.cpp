// The symmetric eigensolver: Eigen's, or LAPACK's dsyevd in a build with MINT_USE_LAPACK
// (mint's -Dblas=openblas; CI's clang++ stage builds that way, so both paths run in CI).
#include "mint/core/symmetric_eigen.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "mint/core/random.hpp"

namespace {

// A x A^T + a diagonal shift: symmetric, with a spread of eigenvalues including near-repeats.
Eigen::MatrixXd random_symmetric(Eigen::Index d, std::uint64_t seed) {
  mint::rng rng(seed);
  Eigen::MatrixXd a(d, d);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = rng.normal();
  Eigen::MatrixXd s = a * a.transpose();
  s.diagonal().array() -= 0.5 * double(d);  // some eigenvalues negative
  return s;
}

}  // namespace

TEST_CASE("symmetric_eigen reconstructs the matrix with orthonormal vectors and ascending values") {
  for (const Eigen::Index d : {1, 2, 7, 64, 200}) {
    CAPTURE(d);
    const Eigen::MatrixXd a = random_symmetric(d, 11 + std::uint64_t(d));
    const mint::symmetric_eigen_result e = mint::symmetric_eigen(a);
    REQUIRE(e.values.size() == d);
    REQUIRE(e.vectors.rows() == d);
    REQUIRE(e.vectors.cols() == d);
    for (Eigen::Index i = 1; i < d; ++i) CHECK(e.values(i) >= e.values(i - 1));
    // Backward-stable solvers: residuals of order d x eps x ||A||; 1e-11 leaves room at d = 200.
    const double scale = a.norm();
    CHECK((e.vectors * e.values.asDiagonal() * e.vectors.transpose() - a).norm() <= 1e-11 * scale);
    CHECK((e.vectors.transpose() * e.vectors - Eigen::MatrixXd::Identity(d, d)).norm() <= 1e-11 * std::sqrt(double(d)));
    // Values alone agree with the values of the full decomposition.
    const mint::symmetric_eigen_result values_only = mint::symmetric_eigen(a, false);
    CHECK(values_only.vectors.size() == 0);
    CHECK((values_only.values - e.values).cwiseAbs().maxCoeff() <= 1e-11 * scale);
  }
}

TEST_CASE("symmetric_eigen reads the lower triangle, and takes empty and exactly known matrices") {
  Eigen::MatrixXd a(3, 3);
  a << 2, 99, 99,  //
      1, 2, 99,    //
      0, 1, 2;     // tridiagonal [1 2 1]: eigenvalues 2 - sqrt(2), 2, 2 + sqrt(2)
  const mint::symmetric_eigen_result e = mint::symmetric_eigen(a);
  // Exact in theory; 1e-14 covers rounding in a 3 x 3 solve.
  CHECK(std::abs(e.values(0) - (2 - std::sqrt(2.0))) <= 1e-14);
  CHECK(std::abs(e.values(1) - 2) <= 1e-14);
  CHECK(std::abs(e.values(2) - (2 + std::sqrt(2.0))) <= 1e-14);
  // The eigenvector of 2 is (1, 0, -1) / sqrt(2), up to sign.
  CHECK(std::abs(std::abs(e.vectors(0, 1)) - std::sqrt(0.5)) <= 1e-14);
  CHECK(std::abs(e.vectors(1, 1)) <= 1e-14);
  const mint::symmetric_eigen_result empty = mint::symmetric_eigen(Eigen::MatrixXd(0, 0));
  CHECK(empty.values.size() == 0);
  CHECK(empty.vectors.size() == 0);
}

TEST_CASE("symmetric_eigen refuses a matrix that is not square or not finite") {
  CHECK_THROWS_WITH_AS(mint::symmetric_eigen(Eigen::MatrixXd(2, 3)),
                       doctest::Contains("mint::symmetric_eigen: a is 2 x 3; needs a square matrix"), mint::shape_error);
  Eigen::MatrixXd a = Eigen::MatrixXd::Identity(3, 3);
  a(2, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(mint::symmetric_eigen(a), mint::numeric_error);
  a(2, 0) = 0;
  a(0, 2) = std::numeric_limits<double>::infinity();  // the upper triangle is never read
  CHECK(mint::symmetric_eigen(a).values.allFinite());
}
