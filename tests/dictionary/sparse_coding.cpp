// Sparse coding over a fixed dictionary: orthogonal matching pursuit (omp.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/lasso.hpp"
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

  const mint::matrixd got_d = md::omp(xd, dd, {.nonzeros = k});
  CHECK((got_d - cd).cwiseAbs().maxCoeff() < 1e-12);

  const mint::matrixf df = dd.cast<float>(), xf = xd.cast<float>();
  const mint::matrixf got_f = md::omp(xf, df, {.nonzeros = k});
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
    const mint::matrixd by_gram = md::omp_gram(gram, correlations, {.nonzeros = k});
    CHECK((by_gram - got_d).cwiseAbs().maxCoeff() == 0.0);
  }

  SUBCASE("the caller's view, strided input") {
    // x as a column-major copy (a strided view for mint), codes into a preallocated matrix.
    const Eigen::MatrixXf x_columns = xf;
    mint::matrixf out(n, atoms);
    md::omp(x_columns, df, out, {.nonzeros = k});
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
    const mint::matrixd c = md::omp(x, d, {.nonzeros = budget});
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
  const mint::matrixd loose = md::omp(x, d, {.nonzeros = 20, .tolerance = 0.5 * x.row(0).squaredNorm()});
  const mint::matrixd residual = x.row(0) - loose.row(0) * d;
  CHECK(residual.squaredNorm() <= 0.5 * x.row(0).squaredNorm() + 1e-12);
  CHECK((loose.row(0).array() != 0).count() < 20);
}

TEST_CASE("omp with a tolerance alone can use as many atoms as the signal has dimensions") {
  // 100 atoms in 80 dimensions, dense signals, residual target 1e-16 ||x||^2: the pursuit
  // must go on until the atoms span x (about 80 picks, past the workspace's first 64).
  const mint::matrixd d = unit_dictionary<double>(100, 80, 11);
  mint::matrixd x(3, 80);
  mint::rng(12).fill_normal(x);
  const mint::matrixd c = md::omp(x, d, {.tolerance = 1e-16 * x.rowwise().squaredNorm().minCoeff()});
  CHECK((x - c * d).rowwise().norm().maxCoeff() < 1e-6);
  CHECK((c.array() != 0).rowwise().count().minCoeff() > 64);
}

TEST_CASE("omp refuses bad input with clear errors") {
  const mint::matrixf d = unit_dictionary(10, 4, 5);
  mint::matrixf x(3, 4);
  x.setOnes();
  CHECK_THROWS_WITH_AS(md::omp(x, d, {}), doctest::Contains("needs nonzeros > 0 or tolerance > 0"), mint::argument_error);
  const mint::matrixf wrong(3, 5);
  CHECK_THROWS_WITH_AS(md::omp(wrong, d, {.nonzeros = 2}),
                       doctest::Contains("x has 5 columns; needs 4, the columns (dimensions) of the dictionary"),
                       mint::shape_error);
  mint::matrixf bad = x;
  bad(1, 2) = std::nanf("");
  CHECK_THROWS_WITH_AS(md::omp(bad, d, {.nonzeros = 2}), doctest::Contains("x holds a NaN"), mint::numeric_error);
  mint::matrixf small(2, 10);
  CHECK_THROWS_WITH_AS(md::omp(x, d, small, {.nonzeros = 2}), doctest::Contains("needs [3, 10]"), mint::shape_error);
  const mint::matrixf gram = d * d.transpose(), correlations = x * d.transpose();
  CHECK_THROWS_WITH_AS(md::omp_gram(gram, correlations, {.tolerance = 0.1}), doctest::Contains("squared norms"),
                       mint::argument_error);
  // A zero signal has a zero code; a zero atom is never picked.
  mint::matrixf with_zero = d;
  with_zero.row(3).setZero();
  mint::matrixf zero_x = x;
  zero_x.row(0).setZero();
  const mint::matrixf c = md::omp(zero_x, with_zero, {.nonzeros = 4});
  CHECK(c.row(0).isZero(0));
  CHECK(c.col(3).isZero(0));
}

// ---------------------------------------------------------------------------
// Lasso by coordinate descent (lasso.hpp)

namespace {

// The small problem the scikit-learn values below were computed on.
mint::matrixd lasso_dictionary() {
  mint::matrixd d(8, 5);
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 5; ++j) d(i, j) = std::cos(1.3 * i + 0.7 * j * j + 0.1 * i * j);
  return d;
}
mint::matrixd lasso_signals() {
  mint::matrixd x(3, 5);
  for (int s = 0; s < 3; ++s)
    for (int j = 0; j < 5; ++j) x(s, j) = std::sin(0.9 * s + 1.7 * j + 0.3);
  return x;
}

// Optimality of 0.5 ||x - c D||^2 + alpha ||c||_1: with g = D (x - c D)^T, g_j = alpha sign(c_j)
// where c_j != 0 and |g_j| <= alpha where c_j = 0 (for c >= 0: g_j <= alpha at zeros).
double kkt_violation(const mint::matrixd& x, const mint::matrixd& d, const mint::matrixd& c, double alpha,
                     bool positive) {
  const mint::matrixd g = (x - c * d) * d.transpose();
  double worst = 0;
  for (mint::index i = 0; i < c.rows(); ++i)
    for (mint::index j = 0; j < c.cols(); ++j) {
      const double v = c(i, j) != 0 ? std::abs(g(i, j) - alpha * (c(i, j) > 0 ? 1 : -1))
                                     : std::max(0.0, (positive ? g(i, j) : std::abs(g(i, j))) - alpha);
      worst = std::max(worst, v);
    }
  return worst;
}

}  // namespace

TEST_CASE("lasso matches scikit-learn's sparse_encode(algorithm='lasso_cd') and Lasso") {
  // Values from scikit-learn 1.2.1 (Debian's python3-sklearn), float64:
  //   D[i, j] = cos(1.3 i + 0.7 j^2 + 0.1 i j) (8 x 5), X[s, j] = sin(0.9 s + 1.7 j + 0.3) (3 x 5)
  //   sparse_encode(X, D, algorithm="lasso_cd", alpha=a, positive=p)          (tol 1e-4, max_iter 1000)
  //   Lasso(alpha=0.1 / 5, fit_intercept=False, tol=1e-14, max_iter=1000000).fit(D.T, X.T).coef_
  // printed with np.array2string(C, precision=10, floatmode="fixed"). The default run stops
  // row 1 of alpha 0.1 at 1000 sweeps short of the optimum (0.01206 against 0.01415): mint
  // runs the same sweeps in the same order with the same stopping rule, so it must stop at
  // the same point. Tolerance 1e-8: both sides are float64 and coordinate descent forgets
  // rounding differences (a contraction), the figures carry 10 decimals.
  const mint::matrixd d = lasso_dictionary(), x = lasso_signals();
  struct reference {
    double alpha;
    bool positive;
    std::vector<double> codes;
  };
  const std::vector<reference> references = {
      {0.1, false, {-0.7911721913, -0.2166003120, 0, 0, 0, 0, -0.5224038428, -1.3425721571,
                    0.0120630776, 0, 0, -0.7064535770, 0, 0.0292887091, -0.1893843138, -0.4232016509,
                    0.9060096610, 0.9405323784, 0, 0, 0, 0, 0.3703312495, 0.4160198496}},
      {0.5, false, {0, 0, 0, 0, 0, 0, 0, -0.5723377392,
                    0, 0, 0, -0.1046616570, 0.1584331615, 0.7274889282, 0, 0,
                    0.3631102010, 0.4431939529, 0, 0, 0, 0, 0, 0}},
      {0.1, true, {0, 0, 0.2885315582, 0, 0.3231231006, 0.7054050542, 0, 0,
                   0, 0.2500764741, 0, 0, 0.2258018552, 0.8372194940, 0, 0,
                   0.9057092294, 0.9403551255, 0, 0, 0, 0, 0.3701822714, 0.4157417031}},
  };
  for (const auto& ref : references) {
    CAPTURE(ref.alpha);
    CAPTURE(ref.positive);
    const mint::matrixd c = md::lasso(x, d, {.alpha = ref.alpha, .positive = ref.positive});
    const Eigen::Map<const mint::matrixd> expected(ref.codes.data(), 3, 8);
    CHECK((c - expected).cwiseAbs().maxCoeff() < 1e-8);
  }
  const std::vector<double> tight = {-0.7910183490, -0.2165095459, 0, 0, 0, 0, -0.5223275554, -1.3424297264,
                                     0.0141513120, 0, 0, -0.7227746961, 0, 0, -0.1874035427, -0.4380219852,
                                     0.9058823932, 0.9404572911, 0, 0, 0, 0, 0.3702681399, 0.4159020222};
  const mint::matrixd c = md::lasso(x, d, {.alpha = 0.1, .max_iterations = 1000000, .tolerance = 1e-14});
  CHECK((c - Eigen::Map<const mint::matrixd>(tight.data(), 3, 8)).cwiseAbs().maxCoeff() < 1e-8);
  CHECK(kkt_violation(x, d, c, 0.1, false) < 1e-9);
}

TEST_CASE("lasso solutions satisfy the optimality conditions; warm starts and the Gram form agree") {
  // 64 random unit atoms in 32 dimensions, signals 4-sparse plus noise. At tolerance 1e-12
  // the duality gap bounds the objective's error by 1e-12 ||x||^2, and the subgradient
  // conditions then hold to about 1e-6 in double (sqrt of the gap, times the atoms' scale).
  const mint::index atoms = 64, dims = 32, n = 40;
  const mint::matrixd d = unit_dictionary<double>(atoms, dims, 7);
  mint::matrixd noise(n, dims);
  mint::rng(9).fill_normal(noise, 0.0, 0.05);
  const mint::matrixd x = sparse_codes<double>(n, atoms, 4, 8) * d + noise;
  for (const bool positive : {false, true}) {
    const md::lasso_options options{.alpha = 0.2, .max_iterations = 100000, .tolerance = 1e-12, .positive = positive};
    mint::matrixd c = mint::matrixd::Zero(n, atoms);
    const md::lasso_report report = md::lasso(x, d, c, options);
    CHECK(report.unconverged == 0);
    CHECK(kkt_violation(x, d, c, 0.2, positive) < 1e-6);
    if (positive) CHECK(c.minCoeff() >= 0.0);
    // From the solution itself, one sweep confirms it.
    const md::lasso_report again = md::lasso(x, d, c, options);
    CHECK(again.iterations == 1);
    // The Gram form on the same products gives the same codes.
    const mint::matrixd gram = d * d.transpose(), correlations = x * d.transpose();
    const mint::vectord norms2 = x.rowwise().squaredNorm();
    mint::matrixd by_gram = mint::matrixd::Zero(n, atoms);
    md::lasso_gram(gram, correlations, norms2, by_gram, options);
    CHECK((by_gram - c).cwiseAbs().maxCoeff() < 1e-9);
  }
  // float32 signals: the same solution to float precision (the gap scale is 1e-7 relative).
  const mint::matrixf cf = md::lasso(x.cast<float>().eval(), d.cast<float>().eval(), {.alpha = 0.2, .tolerance = 1e-8});
  const mint::matrixd cd = md::lasso(x, d, {.alpha = 0.2, .max_iterations = 100000, .tolerance = 1e-12});
  CHECK((cf.cast<double>() - cd).cwiseAbs().maxCoeff() < 1e-3);
  // alpha above max |D x| gives all zeros (the smallest alpha with an empty solution).
  const double alpha_max = (x * d.transpose()).cwiseAbs().maxCoeff();
  CHECK(md::lasso(x, d, {.alpha = alpha_max * 1.0001}).isZero(0));
  CHECK_FALSE(md::lasso(x, d, {.alpha = alpha_max * 0.99}).isZero(0));
}

TEST_CASE("lasso refuses bad input with clear errors") {
  const mint::matrixd d = lasso_dictionary(), x = lasso_signals();
  CHECK_THROWS_WITH_AS(md::lasso(x, d, {.alpha = -1}), doctest::Contains("needs alpha >= 0"), mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lasso(x, d, {.max_iterations = 0}), doctest::Contains("needs at least 1"),
                       mint::argument_error);
  mint::matrixd warm = mint::matrixd::Zero(3, 8);
  warm(0, 0) = std::nan("");
  CHECK_THROWS_WITH_AS(md::lasso(x, d, warm, {}), doctest::Contains("needs a finite warm start"), mint::numeric_error);
  CHECK_THROWS_AS(md::lasso(x, d.leftCols(4).eval(), {}), mint::shape_error);
}
