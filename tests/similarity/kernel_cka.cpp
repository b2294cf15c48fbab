// RBF-kernel CKA: Kornblith et al.'s reference values, invariances, the median rule.
#include "mint/similarity/kernel_cka.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.hpp"

using namespace similarity_test;

TEST_CASE("RBF CKA matches Kornblith et al.'s reference code on the same data") {
  // rng(1): X [200, 30], Y [200, 20], Y[:, :10] += 0.5 X[:, :10]; their gram_rbf(x, 0.8) (median over
  // all n^2 squared distances) with center_gram and cka, in NumPy float64.
  const auto [x, y] = cka_reference();
  CHECK(mint::kernel_cka(x, y, {.bandwidth = 0.8}) == doctest::Approx(0.27064366181846494).epsilon(1e-10));
  CHECK(mint::kernel_cka(x, y, {.bandwidth = 0.8, .estimator = mint::hsic_estimator::unbiased}) ==
        doctest::Approx(0.06578109954660516).epsilon(1e-10));
  // float32 kernels agree to ~1e-7 relative here (the kernel entries carry float rounding).
  const mint::matrixf xf = x.cast<float>(), yf = y.cast<float>();
  CHECK(mint::kernel_cka(xf, yf, {.bandwidth = 0.8}) == doctest::Approx(0.27064366181846494).epsilon(1e-6));
}

TEST_CASE("RBF CKA with the median bandwidth is invariant to rotation, translation and isotropic scaling") {
  const mint::matrixd x = gaussian(150, 8, 21);
  mint::matrixd y = gaussian(150, 8, 22);
  y.leftCols(4) += x.leftCols(4);
  const double base = mint::kernel_cka(x, y);
  const mint::matrixd moved = ((0.01 * x * orthogonal(8, 23)).rowwise() + Eigen::RowVectorXd::Constant(8, -5.0)).eval();
  CHECK(mint::kernel_cka(moved, y) == doctest::Approx(base).epsilon(1e-9));
  CHECK(mint::kernel_cka(x, x) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(std::abs(mint::kernel_cka(mint::matrixd(x * invertible(8, 24)), y) - base) > 0.01);
}

TEST_CASE("the median of all n^2 squared distances is read from the upper triangle") {
  // n = 4: 16 entries = 4 diagonal zeros + 6 values twice; the median averages sorted entries 7 and 8.
  std::vector<double> upper{5, 1, 4, 2, 6, 3};
  std::vector<double> all(4, 0.0);
  for (double v : upper) all.insert(all.end(), {v, v});
  std::sort(all.begin(), all.end());
  CHECK(mint::detail::median_with_diagonal(upper, 4) == doctest::Approx(0.5 * (all[7] + all[8])));
  std::vector<double> odd{1, 2, 3};  // n = 3: 9 entries, the 5th: 0 0 0 1 1 2 2 3 3 -> 1
  CHECK(mint::detail::median_with_diagonal(odd, 3) == 1.0);
}

TEST_CASE("RBF CKA refuses a bad bandwidth and identical examples") {
  const mint::matrixd x = gaussian(20, 3, 25);
  CHECK_THROWS_WITH_AS(mint::kernel_cka(x, x, {.bandwidth = 0.0}),
                       "mint::kernel_cka: bandwidth is 0; needs a finite value > 0", mint::argument_error);
  mint::matrixd mostly_same = mint::matrixd::Zero(20, 3);
  mostly_same.row(0).setOnes();
  CHECK_THROWS_AS(mint::kernel_cka(x, mostly_same), mint::numeric_error);
}
