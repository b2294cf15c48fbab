// CCA, mean CCA and PWCCA: exact canonical correlations, invariance to invertible maps,
// and reference values from NumPy (QR-based CCA) on the same data.
#include "mint/similarity/cca.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "common.hpp"

using namespace similarity_test;

// linear_reference() (common.hpp): NumPy computed rho = svd(Qx^T Qy), Qx and Qy from QR of the centred
// data, and PWCCA with weights |H^T Xc| summed over features, H the unit canonical variates of X.

TEST_CASE("canonical correlations are exact on data built with known correlations") {
  Eigen::VectorXd rho(4), scale(4);
  rho << 0.95, 0.7, 0.4, 0.1;
  scale << 1, 1, 1, 1;
  const auto data = with_correlations(500, rho, scale, 41);
  const mint::vectord got = mint::canonical_correlations(data.x, data.y, {.epsilon = 0});
  REQUIRE(got.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(got(i) == doctest::Approx(rho(i)).epsilon(1e-10));
  CHECK(mint::mean_cca(data.x, data.y, {.epsilon = 0}) == doctest::Approx(rho.mean()).epsilon(1e-10));
}

TEST_CASE("PWCCA weights each correlation by its variate's share of X") {
  // X = Q1 diag(s): its canonical variates are its own (unit) columns, so weight_i is s_i / sum s.
  Eigen::VectorXd rho(3), scale(3);
  rho << 0.9, 0.5, 0.2;
  scale << 5, 1, 0.5;
  const auto data = with_correlations(400, rho, scale, 42);
  const double expected = scale.dot(rho) / scale.sum();
  CHECK(mint::pwcca(data.x, data.y, {.epsilon = 0}) == doctest::Approx(expected).epsilon(1e-9));
  // Not symmetric: from Y's side the weights differ.
  CHECK(std::abs(mint::pwcca(data.y, data.x, {.epsilon = 0}) - expected) > 0.01);
}

TEST_CASE("CCA is invariant to invertible linear maps and translations of either side") {
  const mint::matrixd x = gaussian(300, 10, 43);
  mint::matrixd y = gaussian(300, 8, 44);
  y.leftCols(4) += 0.6 * x.leftCols(4);
  const mint::vectord base = mint::canonical_correlations(x, y, {.epsilon = 0});
  const mint::matrixd mapped_x = ((x * invertible(10, 45)).rowwise() + Eigen::RowVectorXd::Constant(10, 3.0)).eval();
  const mint::matrixd mapped_y = y * invertible(8, 46);
  // The maps have condition number 20: rounding grows by about that much.
  CHECK((mint::canonical_correlations(mapped_x, mapped_y, {.epsilon = 0}) - base).cwiseAbs().maxCoeff() < 1e-10);
  CHECK(mint::pwcca(mapped_x, y, {.epsilon = 0}) != doctest::Approx(mint::pwcca(x, y, {.epsilon = 0})).epsilon(1e-3));
  CHECK(mint::mean_cca(x, x) == doctest::Approx(1.0).epsilon(1e-6));  // the default ridge moves it by ~1e-6
}

TEST_CASE("mean CCA and PWCCA match NumPy on the same data") {
  const auto d = linear_reference();
  const mint::vectord rho = mint::canonical_correlations(d.x, d.y, {.epsilon = 0});
  CHECK(rho(0) == doctest::Approx(0.7016368819239589).epsilon(1e-10));
  CHECK(rho(8) == doctest::Approx(0.09946632226664921).epsilon(1e-10));
  CHECK(mint::mean_cca(d.x, d.y, {.epsilon = 0}) == doctest::Approx(0.46949432654902995).epsilon(1e-10));
  CHECK(mint::pwcca(d.x, d.y, {.epsilon = 0}) == doctest::Approx(0.48283074799855).epsilon(1e-10));
  const mint::matrixf xf = d.x.cast<float>(), yf = d.y.cast<float>();
  CHECK(mint::mean_cca(xf, yf, {.epsilon = 0}) == doctest::Approx(0.46949432654902995).epsilon(1e-6));
}

TEST_CASE("CCA on a singular covariance asks for a ridge; the ridge makes it work") {
  mint::matrixd x = gaussian(100, 6, 47);
  x.col(5) = x.col(0) - x.col(1);  // collinear features
  const mint::matrixd y = gaussian(100, 4, 48);
  CHECK_THROWS_WITH_AS(mint::mean_cca(x, y, {.epsilon = 0}),
                       "mint::mean_cca: x has a singular covariance (constant or collinear features, or fewer examples "
                       "than features); needs epsilon > 0 (a ridge, e.g. 1e-4), or SVCCA, which keeps the directions "
                       "that carry variance",
                       mint::numeric_error);
  const double ridged = mint::mean_cca(x, y, {.epsilon = 1e-4});
  CHECK(ridged > 0.0);
  CHECK(ridged < 1.0);
  CHECK_THROWS_AS(mint::mean_cca(x, y, {.epsilon = -1.0}), mint::argument_error);
}
