// Sparse coding over a fixed dictionary: orthogonal matching pursuit (omp.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/omp.hpp"

namespace md = mint::dictionary;
using dictionary_test::sparse_codes;
using dictionary_test::unit_dictionary;

TEST_CASE("omp recovers exactly sparse codes, support and values") {
  // 128 random unit atoms in 64 dimensions (coherence about 0.45), 3 atoms a signal:
  // with this seed every one of the 300 supports is found. The values then solve a
  // 3 x 3 least-squares problem on a well-conditioned block, so float32 rounding
  // (about 1e-7 relative) leaves them within 1e-5 of the truth; double within 1e-12.
  const mint::index atoms = 128, dims = 64, n = 300, k = 3;
  const mint::matrixd dd = unit_dictionary<double>(atoms, dims, 1);
  const mint::matrixd cd = sparse_codes<double>(n, atoms, k, 2);
  const mint::matrixd xd = cd * dd;

  const mint::matrixd got_d = md::omp(xd, dd, {.atoms = k});
  CHECK((got_d - cd).cwiseAbs().maxCoeff() < 1e-12);

  const mint::matrixf df = dd.cast<float>(), xf = xd.cast<float>();
  const mint::matrixf got_f = md::omp(xf, df, {.atoms = k});
  mint::index wrong_support = 0;
  for (mint::index i = 0; i < n; ++i)
    for (mint::index j = 0; j < atoms; ++j) wrong_support += (got_f(i, j) != 0) != (cd(i, j) != 0);
  CHECK(wrong_support == 0);
  CHECK((got_f.cast<double>() - cd).cwiseAbs().maxCoeff() < 1e-5);

  SUBCASE("a tolerance alone stops at the true support") {
    // Asking for a residual below 1e-8 ||x||^2 with no atom limit: OMP needs the 3 true
    // atoms and, once they are in, the residual is zero (up to rounding), so it stops.
    const mint::vectord norms2 = xd.rowwise().squaredNorm();
    const mint::matrixd gram = dd * dd.transpose(), correlations = xd * dd.transpose();
    const mint::matrixd by_tolerance = md::omp_gram(gram, correlations, norms2, {.tolerance = 1e-8 * norms2.minCoeff()});
    CHECK((by_tolerance - cd).cwiseAbs().maxCoeff() < 1e-12);
    const mint::matrixd by_gram = md::omp_gram(gram, correlations, {.atoms = k});
    CHECK((by_gram - got_d).cwiseAbs().maxCoeff() == 0.0);
  }

  SUBCASE("the caller's view, strided input") {
    // x as a column-major copy (a strided view for mint), codes into a preallocated matrix.
    const Eigen::MatrixXf x_columns = xf;
    mint::matrixf out(n, atoms);
    md::omp(x_columns, df, out, {.atoms = k});
    CHECK((out - got_f).cwiseAbs().maxCoeff() == 0.0f);
  }
}

TEST_CASE("omp leaves a residual orthogonal to the atoms it picked, and stops on a budget") {
  // Dense (not sparse) signals: whatever OMP picks, the code is the least-squares fit on
  // its support, so D_I (x - c D)^T = 0 (to 1e-10 in double), with exactly `atoms` picks.
  const mint::matrixd d = unit_dictionary<double>(40, 20, 3);
  mint::matrixd x(25, 20);
  mint::rng(4).fill_normal(x);
  for (const mint::index budget : {1, 5, 12}) {
    const mint::matrixd c = md::omp(x, d, {.atoms = budget});
    const mint::matrixd residual = x - c * d;
    for (mint::index i = 0; i < x.rows(); ++i) {
      mint::index used = 0;
      for (mint::index j = 0; j < d.rows(); ++j) {
        if (c(i, j) == 0) continue;
        ++used;
        CHECK(std::abs(residual.row(i).dot(d.row(j))) < 1e-10);
      }
      CHECK(used == budget);
    }
  }
  // A tolerance stops earlier than the budget once the residual is small enough.
  const mint::matrixd loose = md::omp(x, d, {.atoms = 20, .tolerance = 0.5 * x.row(0).squaredNorm()});
  const mint::matrixd residual = x.row(0) - loose.row(0) * d;
  CHECK(residual.squaredNorm() <= 0.5 * x.row(0).squaredNorm() + 1e-12);
  CHECK((loose.row(0).array() != 0).count() < 20);
}

TEST_CASE("omp refuses bad input with clear errors") {
  const mint::matrixf d = unit_dictionary(10, 4, 5);
  mint::matrixf x(3, 4);
  x.setOnes();
  CHECK_THROWS_WITH_AS(md::omp(x, d, {}), doctest::Contains("needs atoms > 0 or tolerance > 0"), mint::argument_error);
  const mint::matrixf wrong(3, 5);
  CHECK_THROWS_WITH_AS(md::omp(wrong, d, {.atoms = 2}),
                       doctest::Contains("x has 5 columns; needs 4, the columns (dimensions) of the dictionary"),
                       mint::shape_error);
  mint::matrixf bad = x;
  bad(1, 2) = std::nanf("");
  CHECK_THROWS_WITH_AS(md::omp(bad, d, {.atoms = 2}), doctest::Contains("x holds a NaN"), mint::numeric_error);
  mint::matrixf small(2, 10);
  CHECK_THROWS_WITH_AS(md::omp(x, d, small, {.atoms = 2}), doctest::Contains("needs [3, 10]"), mint::shape_error);
  const mint::matrixf gram = d * d.transpose(), correlations = x * d.transpose();
  CHECK_THROWS_WITH_AS(md::omp_gram(gram, correlations, {.tolerance = 0.1}), doctest::Contains("squared norms"),
                       mint::argument_error);
  // A zero signal has a zero code; a zero atom is never picked.
  mint::matrixf with_zero = d;
  with_zero.row(3).setZero();
  mint::matrixf zero_x = x;
  zero_x.row(0).setZero();
  const mint::matrixf c = md::omp(zero_x, with_zero, {.atoms = 4});
  CHECK(c.row(0).isZero(0));
  CHECK(c.col(3).isZero(0));
}
