// Sparse coding over a fixed dictionary: orthogonal matching pursuit (omp.hpp), the lasso by
// coordinate descent (lasso.hpp) and by LARS (lars.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/lars.hpp"
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

TEST_CASE("float32 omp with a budget near the signal's dimension agrees with double") {
  // 3-sparse signals over 128 random unit atoms in 64 dimensions, asked for d - 1, d and
  // d + 1 atoms. Once the 3 true atoms are in, the residual is rounding noise (about 1e-7
  // of ||x|| in float, 1e-16 in double); picking atoms to fit it once made float32 return
  // codes up to 94 (true values at most 1.5) and pick 65 atoms in 64 dimensions, and made
  // double pick 65 too. The pursuit now stops there in both types: the 3 true atoms, values
  // within 1e-5 of the truth in float (as at k = 3 above) and 1e-12 in double.
  const mint::index atoms = 128, dims = 64, n = 300;
  const mint::matrixd dd = unit_dictionary<double>(atoms, dims, 1);
  const mint::matrixd cd = sparse_codes<double>(n, atoms, 3, 2);
  const mint::matrixd xd = cd * dd;
  const mint::matrixf df = dd.cast<float>(), xf = xd.cast<float>();
  for (const mint::index budget : {dims - 1, dims, dims + 1}) {
    CAPTURE(budget);
    const mint::matrixd got_d = md::omp(xd, dd, {.nonzeros = budget});
    const mint::matrixf got_f = md::omp(xf, df, {.nonzeros = budget});
    CHECK((got_d - cd).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((got_f.cast<double>() - cd).cwiseAbs().maxCoeff() < 1e-5);
    CHECK((got_f.cast<double>() - got_d).cwiseAbs().maxCoeff() < 1e-5);
    CHECK((got_f.array() != 0).rowwise().count().maxCoeff() == 3);
  }

  // Dense signals: every pick is real signal until the atoms span x (64 of them). Float and
  // double may pick different atoms near the end (near-ties), so compare what does not
  // depend on the choice: never more atoms than dimensions, an exact fit from d atoms on
  // (residual at rounding level: 1e-4 of ||x|| in float, measured 1e-5; 1e-10 in double),
  // and codes of the same size (measured: the largest |code| agrees to 1e-5; once 94 in float).
  mint::matrixd x(50, dims);
  mint::rng(4).fill_normal(x);
  const mint::matrixf xf_dense = x.cast<float>();
  for (const mint::index budget : {dims - 1, dims, dims + 1}) {
    CAPTURE(budget);
    const mint::matrixd got_d = md::omp(x, dd, {.nonzeros = budget});
    const mint::matrixf got_f = md::omp(xf_dense, df, {.nonzeros = budget});
    CHECK((got_d.array() != 0).rowwise().count().maxCoeff() == std::min(budget, dims));
    CHECK((got_f.array() != 0).rowwise().count().maxCoeff() <= dims);
    CHECK(std::abs(got_f.cwiseAbs().maxCoeff() - got_d.cwiseAbs().maxCoeff()) < 1e-3 * got_d.cwiseAbs().maxCoeff());
    if (budget >= dims) {
      const mint::vectord norms = x.rowwise().norm();
      CHECK(((x - got_d * dd).rowwise().norm().array() / norms.array()).maxCoeff() < 1e-10);
      CHECK((((xf_dense - got_f * df).rowwise().norm()).cast<double>().array() / norms.array()).maxCoeff() < 1e-4);
    }
  }
}

TEST_CASE("omp refuses a budget larger than the number of atoms, as scikit-learn does") {
  // scikit-learn raises "The number of atoms cannot be more than the number of features"
  // (its features are our atoms); mint throws an argument_error naming the budget.
  const mint::matrixd d = unit_dictionary<double>(10, 4, 5);
  mint::matrixd x(3, 4);
  mint::rng(6).fill_normal(x);
  CHECK_THROWS_WITH_AS(md::omp(x, d, {.nonzeros = 11}),
                       doctest::Contains("mint::dictionary::omp: options.nonzeros is 11; needs at most 10, the number of atoms"),
                       mint::argument_error);
  const mint::matrixd gram = d * d.transpose(), correlations = x * d.transpose();
  CHECK_THROWS_WITH_AS(md::omp_gram(gram, correlations, {.nonzeros = 11}),
                       doctest::Contains("mint::dictionary::omp_gram: options.nonzeros is 11; needs at most 10"),
                       mint::argument_error);
  // All the atoms is allowed; in 4 dimensions the pursuit stops at 4 (the atoms span x).
  const mint::matrixd all = md::omp(x, d, {.nonzeros = 10});
  CHECK((all.array() != 0).rowwise().count().maxCoeff() == 4);
  CHECK((x - all * d).cwiseAbs().maxCoeff() < 1e-12);
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

// ---------------------------------------------------------------------------
// Lasso by LARS (lars.hpp)

namespace {

// 0.5 ||x_i - c_i D||^2 + alpha ||c_i||_1 summed over the rows.
double lars_objective(const mint::matrixd& x, const mint::matrixd& d, const mint::matrixd& c, double alpha) {
  return 0.5 * (x - c * d).squaredNorm() + alpha * c.cwiseAbs().sum();
}

// Random problems: unit atoms, signals 4-sparse plus noise (as the lasso tests use).
struct lars_problem {
  mint::matrixd d, x;
};
lars_problem lars_random_problem(mint::index atoms, mint::index dims, mint::index n, std::uint64_t seed) {
  lars_problem p;
  p.d = unit_dictionary<double>(atoms, dims, seed);
  mint::matrixd noise(n, dims);
  mint::rng(seed + 1).fill_normal(noise, 0.0, 0.05);
  p.x = sparse_codes<double>(n, atoms, 4, seed + 2) * p.d + noise;
  return p;
}

}  // namespace

TEST_CASE("lars matches scikit-learn's sparse_encode(algorithm='lasso_lars')") {
  // Values from scikit-learn 1.2.1 (Debian's python3-sklearn), float64, on the lasso test's problem:
  //   D[i, j] = cos(1.3 i + 0.7 j^2 + 0.1 i j) (8 x 5), X[s, j] = sin(0.9 s + 1.7 j + 0.3) (3 x 5)
  //   C = sparse_encode(X, D, algorithm="lasso_lars", alpha=a, positive=p)   (LassoLars(alpha=a / 5))
  //   print(np.array2string(C, precision=13, floatmode="fixed", separator=", "))
  // Along the way the paths drop coefficients, at levels 0.682, 0.227, 0.103 and 0.032 (row 1)
  // and 0.948 (row 2), and with positive codes at 0.500 (row 1), as
  // lars_path_gram(D @ x, D @ D.T, n_samples=5, method="lasso") shows: 4, 5, 2 and 1 drops for
  // the four settings below. Tolerance 1e-10: both sides compute the same breakpoints in
  // float64 by different but stable factorizations of the same 1-4 atom blocks (rounding
  // about 1e-15 a step, amplified by their condition numbers, at most about 100 here;
  // measured 4e-14); the figures carry 13 decimals.
  const mint::matrixd d = lasso_dictionary(), x = lasso_signals();
  struct reference {
    double alpha;
    bool positive;
    mint::index drops;
    std::vector<double> codes;
  };
  const std::vector<reference> references = {
      {0.1, false, 4, {-0.7910183489794, -0.2165095459231, 0, 0, 0, 0, -0.5223275554439, -1.3424297263818,
                    0.0141513120259, 0, 0, -0.7227746960894, 0, 0, -0.1874035427017, -0.4380219851839,
                    0.9058823931868, 0.9404572910935, 0, 0, 0, 0, 0.3702681399425, 0.4159020221724}},
      {0.02, false, 5, {-1.1053599387122, -0.4318604995312, 0, 0, 0, 0, -0.7299593085484, -1.6572803612059,
                     0.0929722886103, 0.5716301781736, 0, 0, 0, 0, -0.1189414627286, -0.7403299242183,
                     1.2202239829197, 1.1558082447017, 0, 0, 0, 0, 0.5778998930470, 0.7307526569965}},
      {0.5, false, 2, {0, 0, 0, 0, 0, 0, 0, -0.5723377391720,
                    0, 0, 0, -0.1040898336656, 0.1583474507597, 0.7280431553611, 0, 0,
                    0.3631101347299, 0.4431939723174, 0, 0, 0, 0, 0, 0}},
      {0.1, true, 1, {0, 0, 0.2897986443949, 0, 0.3242879202314, 0.7056713443765, 0, 0,
                   0, 0.2499981143691, 0, 0, 0.2257538838890, 0.8373013512907, 0, 0,
                   0.9058823931868, 0.9404572910935, 0, 0, 0, 0, 0.3702681399425, 0.4159020221724}},
  };
  for (const auto& ref : references) {
    CAPTURE(ref.alpha);
    CAPTURE(ref.positive);
    const md::lars_options options{.alpha = ref.alpha, .positive = ref.positive};
    mint::matrixd c(3, 8);
    const md::lars_report report = md::lars(x, d, c, options);
    const Eigen::Map<const mint::matrixd> expected(ref.codes.data(), 3, 8);
    CHECK((c - expected).cwiseAbs().maxCoeff() < 1e-10);
    // The same support, exactly: no coefficient is left at a rounding-level value.
    CHECK(((c.array() != 0) == (expected.array() != 0)).all());
    CHECK(report.limited == 0);
    CHECK(report.singular == 0);
    CHECK(report.drops == ref.drops);
    CHECK((md::lars(x, d, options) - c).cwiseAbs().maxCoeff() == 0.0);
  }
  // float32: the same codes to float precision (rounding 6e-8 relative, times the conditioning
  // of at most about 100; measured 2.4e-7).
  const mint::matrixf cf = md::lars(x.cast<float>().eval(), d.cast<float>().eval(), {.alpha = 0.1});
  CHECK((cf.cast<double>() - Eigen::Map<const mint::matrixd>(references[0].codes.data(), 3, 8)).cwiseAbs().maxCoeff() <
        1e-5);
}

TEST_CASE("lars and coordinate descent reach the same lasso solution, which satisfies the optimality conditions") {
  // 64 random unit atoms in 32 dimensions, 40 signals 4-sparse plus noise, alphas from sparse
  // to dense codes. LARS is exact up to rounding; coordinate descent at tolerance 1e-14 stops
  // with a duality gap of 1e-14 ||x||^2, which with active blocks this well conditioned puts
  // its codes within about 1e-9 of the optimum (measured 9e-10 at worst, positive at alpha
  // 0.02): 1e-8 leaves room.
  const lars_problem p = lars_random_problem(64, 32, 40, 21);
  for (const bool positive : {false, true}) {
    for (const double alpha : {0.02, 0.2, 1.0}) {
      CAPTURE(positive);
      CAPTURE(alpha);
      mint::matrixd c(p.x.rows(), 64);
      const md::lars_report report = md::lars(p.x, p.d, c, {.alpha = alpha, .positive = positive});
      CHECK(report.limited == 0);
      CHECK(report.singular == 0);
      CHECK(c.allFinite());
      if (positive) CHECK(c.minCoeff() >= 0.0);
      const mint::matrixd cd =
          md::lasso(p.x, p.d, {.alpha = alpha, .max_iterations = 1000000, .tolerance = 1e-14, .positive = positive});
      CHECK((c - cd).cwiseAbs().maxCoeff() < 1e-8);
      // KKT: D_j . r = alpha sign(c_j) on the support and |D_j . r| <= alpha off it, to rounding
      // (1e-12: the correlations are O(1) sums of 32 products, kept current over tens of steps;
      // measured 1.4e-15).
      CHECK(kkt_violation(p.x, p.d, c, alpha, positive) < 1e-12);
      // The Gram form on the same products gives the same codes, bit for bit.
      const mint::matrixd gram = p.d * p.d.transpose(), correlations = p.x * p.d.transpose();
      mint::matrixd by_gram(p.x.rows(), 64);
      md::lars_gram(gram, correlations, by_gram, {.alpha = alpha, .positive = positive});
      CHECK((by_gram - c).cwiseAbs().maxCoeff() == 0.0);
    }
  }
}

TEST_CASE("lars gives zero codes from max |D x| up and one atom just below") {
  const lars_problem p = lars_random_problem(64, 32, 10, 31);
  const mint::matrixd correlations = p.x * p.d.transpose();
  const double alpha_max = correlations.cwiseAbs().maxCoeff();
  CHECK(md::lars(p.x, p.d, {.alpha = alpha_max}).isZero(0));
  CHECK(md::lars(p.x, p.d, {.alpha = 10 * alpha_max}).isZero(0));
  // Just below a row's max |D_j x| (by less than half the gap to the next atom, so no other
  // atom can reach the level first), the row uses exactly its strongest atom, with the
  // soft-thresholded value (|D_j x| - alpha) / ||D_j||^2 = delta (unit atoms), to rounding.
  const mint::index row = 0;
  mint::index j = 0;
  mint::vectord magnitudes = correlations.row(row).cwiseAbs().transpose();
  const double top = magnitudes.maxCoeff(&j);
  magnitudes(j) = 0;
  const double delta = std::min(1e-3, 0.5 * (top - magnitudes.maxCoeff()));
  REQUIRE(delta > 0);
  const mint::matrixd x_row = p.x.row(row);
  const mint::matrixd c = md::lars(x_row, p.d, {.alpha = top - delta});
  CHECK((c.array() != 0).count() == 1);
  CHECK(std::abs(c(0, j) - std::copysign(delta, correlations(row, j))) < 1e-12);
  // A zero signal gives zero codes, even at alpha 0.
  const mint::matrixd zero = mint::matrixd::Zero(2, 32);
  CHECK(md::lars(zero, p.d, {.alpha = 0.0}).isZero(0));
  // At alpha 0 the path runs to its end: 64 atoms span the 32 dimensions, so the codes fit x
  // exactly (1e-10: rounding of O(1) sums, measured 2e-14), through 32 atoms at most, with
  // the atoms that became dependent left out rather than turned into NaN.
  mint::matrixd c0(p.x.rows(), 64);
  const md::lars_report report = md::lars(p.x, p.d, c0, {.alpha = 0.0});
  CHECK(c0.allFinite());
  CHECK(report.limited == 0);
  CHECK((p.x - c0 * p.d).cwiseAbs().maxCoeff() < 1e-10);
  CHECK((c0.array() != 0).rowwise().count().maxCoeff() <= 32);
}

TEST_CASE("lars with max_atoms stops on the lasso path with at most that many atoms") {
  // Stopped early, each code is the lasso solution for the level where it stopped: its
  // active correlations share one magnitude lambda_i, and the others are below it.
  const lars_problem p = lars_random_problem(64, 32, 30, 41);
  const md::lars_options full{.alpha = 0.01};
  mint::matrixd c_full(30, 64);
  md::lars(p.x, p.d, c_full, full);
  for (const mint::index budget : {0, 1, 3, 6}) {
    CAPTURE(budget);
    mint::matrixd c(30, 64);
    const md::lars_report report = md::lars(p.x, p.d, c, {.alpha = 0.01, .max_atoms = budget});
    CHECK((c.array() != 0).rowwise().count().maxCoeff() <= budget);
    CHECK(report.limited > 0);
    const mint::matrixd g = (p.x - c * p.d) * p.d.transpose();
    for (mint::index i = 0; i < 30; ++i) {
      const double level = g.row(i).cwiseAbs().maxCoeff();
      CHECK(level >= 0.01);
      CHECK(kkt_violation(p.x.row(i), p.d, c.row(i), level, false) < 1e-12);  // as in the KKT test
    }
  }
  // A budget of all the atoms changes nothing.
  CHECK((md::lars(p.x, p.d, {.alpha = 0.01, .max_atoms = 64}) - c_full).cwiseAbs().maxCoeff() == 0.0);
  // max_steps also stops a path early, at a point on it.
  mint::matrixd c(30, 64);
  const md::lars_report report = md::lars(p.x, p.d, c, {.alpha = 0.01, .max_steps = 2});
  CHECK(report.steps == 2);
  CHECK(report.limited == 30);
  CHECK((c.array() != 0).rowwise().count().maxCoeff() <= 2);
}

TEST_CASE("lars on collinear atoms stays finite and optimal") {
  // Atom 64 duplicates atom 5, 65 is -2 times atom 9, 66 is a combination of atoms 1 and 2,
  // 67 is zero: each added atom is in the span of others, so the codes are not unique, but
  // the optimal objective is. LARS must not produce a NaN, must satisfy the optimality
  // conditions (1e-12 as above) and reach coordinate descent's objective (1e-9: CD's duality
  // gap at tolerance 1e-14 is 1e-14 sum ||x||^2, about 1e-11 here).
  const lars_problem p = lars_random_problem(64, 32, 30, 51);
  mint::matrixd d(68, 32);
  d.topRows(64) = p.d;
  d.row(64) = p.d.row(5);
  d.row(65) = -2.0 * p.d.row(9);
  d.row(66) = 0.6 * p.d.row(1) - 0.8 * p.d.row(2);
  d.row(67).setZero();
  // Signals that use the copied atoms, so the copies are strong candidates.
  mint::matrixd x = p.x;
  for (mint::index i = 0; i < x.rows(); ++i) x.row(i) += 0.8 * p.d.row(5) - 0.5 * p.d.row(9) + 0.7 * p.d.row(1);
  mint::index skipped = 0;  // signals that met a dependent atom: the path under test must run
  for (const bool positive : {false, true}) {
    for (const double alpha : {0.01, 0.2}) {
      CAPTURE(positive);
      CAPTURE(alpha);
      mint::matrixd c(x.rows(), 68);
      const md::lars_report report = md::lars(x, d, c, {.alpha = alpha, .positive = positive});
      skipped += report.singular;
      CHECK(c.allFinite());
      CHECK(report.limited == 0);
      CHECK(c.col(67).isZero(0));
      CHECK(kkt_violation(x, d, c, alpha, positive) < 1e-12);
      const mint::matrixd by_cd =
          md::lasso(x, d, {.alpha = alpha, .max_iterations = 1000000, .tolerance = 1e-14, .positive = positive});
      CHECK(std::abs(lars_objective(x, d, c, alpha) - lars_objective(x, d, by_cd, alpha)) < 1e-9);
    }
  }
  // The same dictionary twice over: every atom has an exact copy, so the optimum is that of
  // the 64 atoms alone (objectives to 1e-10: both exact, O(1) sums of squares).
  mint::matrixd twice(128, 32);
  twice << p.d, p.d;
  mint::matrixd c(x.rows(), 128);
  skipped += md::lars(x, twice, c, {.alpha = 0.05}).singular;
  CHECK(skipped > 0);
  CHECK(c.allFinite());
  CHECK(kkt_violation(x, twice, c, 0.05, false) < 1e-12);
  const mint::matrixd once = md::lars(x, p.d, {.alpha = 0.05});
  CHECK(std::abs(lars_objective(x, twice, c, 0.05) - lars_objective(x, p.d, once, 0.05)) < 1e-10);
}

TEST_CASE("lars refuses bad input with clear errors") {
  const mint::matrixd d = lasso_dictionary(), x = lasso_signals();
  CHECK_THROWS_WITH_AS(md::lars(x, d, {.alpha = -1}),
                       doctest::Contains("mint::dictionary::lars: options.alpha is -1; needs a finite alpha >= 0"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lars(x, d, {.alpha = std::nan("")}), doctest::Contains("needs a finite alpha >= 0"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lars(x, d, {.alpha = HUGE_VAL}), doctest::Contains("needs a finite alpha >= 0"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lars(x, d, {.max_atoms = -2}), doctest::Contains("needs -1 (no limit) or a count >= 0"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lars(x, d, {.max_steps = 0}), doctest::Contains("options.max_steps is 0; needs at least 1"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::lars(x, d.leftCols(4).eval(), {}),
                       doctest::Contains("x has 5 columns; needs 4, the columns (dimensions) of the dictionary"),
                       mint::shape_error);
  mint::matrixd bad = x;
  bad(1, 2) = std::nan("");
  CHECK_THROWS_WITH_AS(md::lars(bad, d, {}), doctest::Contains("x holds a NaN"), mint::numeric_error);
  mint::matrixd bad_d = d;
  bad_d(0, 0) = HUGE_VAL;
  CHECK_THROWS_WITH_AS(md::lars(x, bad_d, {}), doctest::Contains("dictionary holds a NaN or infinity"),
                       mint::numeric_error);
  mint::matrixd small(3, 7);
  CHECK_THROWS_WITH_AS(md::lars(x, d, small, {}), doctest::Contains("codes has extents [3, 7]; needs [3, 8]"),
                       mint::shape_error);
  const mint::matrixd gram = d * d.transpose(), correlations = x * d.transpose();
  mint::matrixd out(3, 8);
  CHECK_THROWS_WITH_AS(md::lars_gram(gram.leftCols(7).eval(), correlations, out, {}),
                       doctest::Contains("mint::dictionary::lars_gram: gram has 7 columns; needs 8, a square matrix"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(md::lars_gram(gram, correlations.leftCols(7).eval(), out, {}),
                       doctest::Contains("correlations has 7 columns; needs 8, the atoms of gram"), mint::shape_error);
  mint::matrixd bad_c = correlations;
  bad_c(2, 3) = std::nan("");
  CHECK_THROWS_WITH_AS(md::lars_gram(gram, bad_c, out, {}), doctest::Contains("correlations holds a NaN"),
                       mint::numeric_error);
  CHECK_THROWS_WITH_AS(md::lars_gram(gram, correlations, out, {.alpha = -0.5}),
                       doctest::Contains("lars_gram: options.alpha is -0.5"), mint::argument_error);
}
