// Linear regression R^2: exact fits, independent data, ridge, invariances.
#include "mint/similarity/regression.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "common.hpp"

using namespace similarity_test;

TEST_CASE("R^2 is 1 when Y is a linear map of X, near 0 for independent data, and matches NumPy") {
  const mint::matrixd x = gaussian(400, 10, 81);
  const mint::matrixd y = (x * gaussian(10, 6, 82)).rowwise() + Eigen::RowVectorXd::Constant(6, 3.0);
  CHECK(mint::linear_regression_r2(x, y, {.ridge = 0}) == doctest::Approx(1.0).epsilon(1e-10));
  // Independent: R^2 is d1 / (n - 1) in expectation (= 0.025 here).
  CHECK(mint::linear_regression_r2(x, gaussian(400, 6, 83), {.ridge = 0}) < 0.06);
  const auto [a, b] = linear_reference();
  // NumPy: 1 - ||Yc - Xc lstsq(Xc, Yc)||^2 / ||Yc||^2, and the ridge (0.1 x mean variance) by solve.
  CHECK(mint::linear_regression_r2(a, b, {.ridge = 0}) == doctest::Approx(0.2979932546870877).epsilon(1e-10));
  CHECK(mint::linear_regression_r2(a, b, {.ridge = 0.1}) == doctest::Approx(0.2955926770030476).epsilon(1e-10));
}

TEST_CASE("R^2 is invariant to invertible maps of X and to rotation and scale of Y, and not symmetric") {
  const mint::matrixd x = gaussian(300, 8, 84);
  mint::matrixd y = gaussian(300, 5, 85);
  y.leftCols(3) += x.leftCols(3);
  const double base = mint::linear_regression_r2(x, y, {.ridge = 0});
  CHECK(mint::linear_regression_r2(mint::matrixd(x * invertible(8, 86)), mint::matrixd(2.0 * y * orthogonal(5, 87)), {.ridge = 0}) ==
        doctest::Approx(base).epsilon(1e-10));
  CHECK(std::abs(mint::linear_regression_r2(y, x, {.ridge = 0}) - base) > 0.05);
}

TEST_CASE("R^2 asks for a ridge only when X must predict from a singular covariance") {
  const mint::matrixd wide = gaussian(20, 30, 88), y = gaussian(20, 3, 89);
  CHECK_THROWS_AS(mint::linear_regression_r2(wide, y, {.ridge = 0}), mint::numeric_error);
  CHECK(mint::linear_regression_r2(y, wide, {.ridge = 0}) < 1.0);  // the wide side is only the target
  const double ridged = mint::linear_regression_r2(wide, y, {.ridge = 1e-3});
  CHECK(ridged > 0.99);  // 30 features fit 20 examples almost exactly
  CHECK_THROWS_AS(mint::linear_regression_r2(y, mint::matrixd(mint::matrixd::Ones(20, 2))), mint::numeric_error);
}
