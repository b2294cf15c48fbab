// Linear CKA: invariances, the two routes agreeing, the debiased estimator, and
// values from Kornblith et al.'s reference code (NumPy) on the same data.
#include "mint/similarity/linear_cka.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <xtensor/xarray.hpp>

#include "common.hpp"
#include "mint/adapters/span.hpp"
#include "mint/adapters/xtensor.hpp"

using namespace similarity_test;

namespace {

// CKA from n x n Gram matrices exactly as Kornblith et al.'s notebook computes it (center_gram,
// including the unbiased centring), written independently of mint's code paths.
double reference_cka(const mint::matrixd& x, const mint::matrixd& y, bool debiased) {
  const auto centre = [&](Eigen::MatrixXd k) {
    const double n = double(k.rows());
    if (debiased) {
      k.diagonal().setZero();
      Eigen::VectorXd means = k.colwise().sum().transpose() / (n - 2);
      means.array() -= means.sum() / (2 * (n - 1));
      k.colwise() -= means;
      k.rowwise() -= means.transpose();
      k.diagonal().setZero();
    } else {
      Eigen::VectorXd means = k.colwise().mean().transpose();
      means.array() -= means.mean() / 2;
      k.colwise() -= means;
      k.rowwise() -= means.transpose();
    }
    return k;
  };
  const Eigen::MatrixXd k = centre(x * x.transpose()), l = centre(y * y.transpose());
  return k.cwiseProduct(l).sum() / (k.norm() * l.norm());
}

}  // namespace

TEST_CASE("linear CKA of a representation with itself is 1, and symmetric") {
  const mint::matrixd x = gaussian(120, 15, 1), y = gaussian(120, 7, 2);
  // 1e-12: a ratio of sums of ~1e4 products in double.
  CHECK(mint::linear_cka(x, x) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(mint::debiased_linear_cka(x, x) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(mint::linear_cka(x, y) == doctest::Approx(mint::linear_cka(y, x)).epsilon(1e-12));
}

TEST_CASE("linear CKA is invariant to orthogonal maps, isotropic scaling and translation, not to other linear maps") {
  const mint::matrixd x = gaussian(200, 12, 3);
  mint::matrixd y = gaussian(200, 12, 4);
  y.leftCols(6) += 0.8 * x.leftCols(6);
  for (const auto estimator : {mint::hsic_estimator::biased, mint::hsic_estimator::unbiased}) {
    const mint::linear_cka_options options{.estimator = estimator};
    const double base = mint::linear_cka(x, y, options);
    const mint::matrixd moved = ((3.5 * x * orthogonal(12, 5)).rowwise() + Eigen::RowVectorXd::Constant(12, 7.0)).eval();
    CHECK(mint::linear_cka(moved, y, options) == doctest::Approx(base).epsilon(1e-10));
    // A map with singular values from 1 to 20 changes it by far more than rounding.
    CHECK(std::abs(mint::linear_cka(mint::matrixd(x * invertible(12, 6)), y, options) - base) > 0.01);
  }
}

TEST_CASE("feature-space and Gram-space linear CKA agree to 1e-10 in double, biased and debiased") {
  mint::matrixd x = gaussian(150, 40, 7), y = gaussian(150, 25, 8);
  y.leftCols(10) += 0.5 * x.leftCols(10);
  x.array() += 4.0;  // far from 0: the shift before the products keeps this exact
  for (const auto estimator : {mint::hsic_estimator::biased, mint::hsic_estimator::unbiased}) {
    const double features = mint::linear_cka(x, y, {.estimator = estimator, .route = mint::cka_route::features});
    const double gram = mint::linear_cka(x, y, {.estimator = estimator, .route = mint::cka_route::gram});
    CHECK(std::abs(features - gram) < 1e-10);
    CHECK(std::abs(features - reference_cka(x, y, estimator == mint::hsic_estimator::unbiased)) < 1e-10);
  }
  // Wide data (d > n) takes the Gram route by itself, with the same value.
  const mint::matrixd wide_x = gaussian(30, 90, 9), wide_y = gaussian(30, 60, 10);
  CHECK(std::abs(mint::linear_cka(wide_x, wide_y) - reference_cka(wide_x, wide_y, false)) < 1e-10);
  CHECK(std::abs(mint::debiased_linear_cka(wide_x, wide_y) - reference_cka(wide_x, wide_y, true)) < 1e-10);
}

TEST_CASE("linear CKA matches Kornblith et al.'s reference code on the same data") {
  // rng(1): X [200, 30], Y [200, 20] Gaussian, Y[:, :10] += 0.5 X[:, :10]; values from their NumPy
  // functions (gram_linear, center_gram, cka) on this data.
  const auto [x, y] = cka_reference();
  CHECK(mint::linear_cka(x, y) == doctest::Approx(0.16686837300072163).epsilon(1e-10));
  CHECK(mint::debiased_linear_cka(x, y) == doctest::Approx(0.06658096056948726).epsilon(1e-10));
}

TEST_CASE("biased linear CKA is inflated at small n; debiased CKA stays near 0 for independent data") {
  // Independent Gaussian data, d = 200: REFERENCES.md gives ~0.2 at n = 32 and ~0.03 at n = 256
  // for the biased estimator, and near 0 for the debiased one. One draw's debiased value spreads
  // by ~0.05 at n = 32 and ~0.005 at n = 256, so the averages below are held to ~3.5 sigma.
  for (const mint::index n : {32, 256}) {
    const int draws = n == 32 ? 30 : 10;
    double biased = 0, debiased = 0;
    for (int s = 0; s < draws; ++s) {
      const mint::matrixd x = gaussian(n, 200, 100 + s), y = gaussian(n, 200, 200 + s);
      biased += mint::linear_cka(x, y) / draws;
      debiased += mint::debiased_linear_cka(x, y) / draws;
    }
    if (n == 32) CHECK(biased > 0.15);
    if (n == 256) CHECK(biased == doctest::Approx(0.03).epsilon(0.3));
    CHECK(std::abs(debiased) < (n == 32 ? 0.03 : 0.006));
  }
}

TEST_CASE("float32 activations agree with double to the float path's ~1e-6") {
  mint::matrixd x = gaussian(3000, 64, 11), y = gaussian(3000, 48, 12);
  y.leftCols(20) += 0.7 * x.leftCols(20);
  x.array() += 10.0;  // a large mean, as activations often have
  const mint::matrixf xf = x.cast<float>(), yf = y.cast<float>();
  for (const auto estimator : {mint::hsic_estimator::biased, mint::hsic_estimator::unbiased}) {
    const double exact = mint::linear_cka(x, y, {.estimator = estimator});
    CHECK(std::abs(mint::linear_cka(xf, yf, {.estimator = estimator}) - exact) < 1e-5);
    // float64 products of float32 data: only the rounding of the data to float remains.
    CHECK(std::abs(mint::linear_cka(xf, yf, {.estimator = estimator, .precision = mint::product_precision::float64}) - exact) < 1e-6);
  }
}

TEST_CASE("linear CKA takes any tensor type and layout: column-major, strided, xtensor, rank 3") {
  const mint::matrixd x = gaussian(64, 10, 13), y = gaussian(64, 6, 14);
  const double expected = mint::linear_cka(x, y);
  const Eigen::MatrixXd column_major = x;
  CHECK(mint::linear_cka(column_major, y) == doctest::Approx(expected).epsilon(1e-12));
  // Every other column of a wider matrix: a strided view.
  mint::matrixd wide(64, 20);
  for (mint::index j = 0; j < 10; ++j) wide.col(2 * j) = x.col(j);
  const mint::tensor_view<const double> strided(wide.data(), {64, 10}, {20, 2});
  CHECK(mint::linear_cka(strided, y) == doctest::Approx(expected).epsilon(1e-12));
  xt::xarray<double> xt_y = xt::zeros<double>({std::size_t(64), std::size_t(6)});
  mint::copy(y, xt_y);
  CHECK(mint::linear_cka(x, xt_y) == doctest::Approx(expected).epsilon(1e-12));
  // [batch, pos, d]: the leading axes merge into 64 examples.
  std::vector<double> flat(x.data(), x.data() + x.size());
  CHECK(mint::linear_cka(mint::view(flat, {8, 8, 10}), y) == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("linear CKA refuses bad input with messages naming the argument") {
  const mint::matrixd x = gaussian(100, 5, 15), y = gaussian(90, 5, 16);
  CHECK_THROWS_WITH_AS(mint::linear_cka(x, y),
                       "mint::linear_cka: y has 90 examples; needs 100, the examples of x (the same inputs, in the same order)",
                       mint::shape_error);
  const std::vector<double> vec(10, 1.0);
  CHECK_THROWS_AS(mint::linear_cka(vec, vec), mint::shape_error);
  const mint::matrixd constant = mint::matrixd::Constant(100, 5, 2.0);
  CHECK_THROWS_WITH_AS(mint::linear_cka(x, constant),
                       "mint::linear_cka: y has no variance across examples; needs examples that differ; CKA is 0/0 "
                       "for a constant representation",
                       mint::numeric_error);
  mint::matrixd with_nan = x;
  with_nan(3, 2) = std::nan("");
  CHECK_THROWS_AS(mint::linear_cka(with_nan, x), mint::numeric_error);
  const mint::matrixd three = gaussian(3, 5, 17);
  CHECK_THROWS_WITH_AS(mint::debiased_linear_cka(three, three),
                       "mint::debiased_linear_cka: x has 3 examples; needs at least 4 for the unbiased HSIC",
                       mint::shape_error);
}
