// The angular shape metric: netrep's values, the alpha = 0 and alpha = 1 ends, the metric axioms.
#include "mint/similarity/shape_metric.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "common.hpp"
#include "mint/similarity/cca.hpp"
#include "mint/similarity/procrustes.hpp"

using namespace similarity_test;

TEST_CASE("the shape metric matches netrep's LinearMetric (angular) on the same data") {
  const auto [x, y] = linear_reference();
  // netrep's whiten (eigenvalues of Xc^T Xc clipped at 1e-7, variance preserved) and angular
  // distance after the optimal rotation, with Y zero-padded to 12 features, in NumPy float64.
  CHECK(mint::shape_distance(x, y, {.alpha = 1.0}) == doctest::Approx(1.1278427996646625).epsilon(1e-10));
  CHECK(mint::shape_distance(x, y, {.alpha = 0.5}) == doctest::Approx(1.1288836728845046).epsilon(1e-10));
  CHECK(mint::shape_distance(x, y, {.alpha = 0.0}) == doctest::Approx(1.1520734281536051).epsilon(1e-10));
}

TEST_CASE("alpha = 1 is angular Procrustes; alpha = 0 is the arccos of mean CCA") {
  const mint::matrixd x = gaussian(250, 8, 71);
  mint::matrixd y = gaussian(250, 8, 72);
  y.leftCols(5) += x.leftCols(5);
  const double procrustes = mint::procrustes_distance(x, y);
  CHECK(mint::shape_distance(x, y, {.alpha = 1.0}) == doctest::Approx(std::acos(1.0 - procrustes * procrustes / 2)).epsilon(1e-10));
  CHECK(mint::shape_distance(x, y, {.alpha = 0.0}) == doctest::Approx(std::acos(mint::mean_cca(x, y, {.epsilon = 0}))).epsilon(1e-9));
}

TEST_CASE("the shape metric's invariances follow alpha") {
  const mint::matrixd x = gaussian(250, 8, 73);
  mint::matrixd y = gaussian(250, 8, 74);
  y.leftCols(5) += x.leftCols(5);
  const mint::matrixd rotated = x * orthogonal(8, 75), stretched = x * invertible(8, 76);
  for (const double alpha : {0.0, 0.5, 1.0}) {
    const mint::shape_metric_options options{.alpha = alpha};
    CHECK(mint::shape_distance(x, rotated, options) < 1e-6);
    CHECK(mint::shape_distance(x, y, options) > 0.1);
  }
  CHECK(mint::shape_distance(x, stretched, {.alpha = 0.0}) < 1e-6);
  CHECK(mint::shape_distance(x, stretched, {.alpha = 1.0}) > 0.05);
}

TEST_CASE("the shape metric is symmetric and obeys the triangle inequality") {
  const mint::matrixd a = gaussian(200, 6, 77);
  const mint::matrixd b = a + gaussian(200, 6, 78);
  const mint::matrixd c = b * invertible(6, 79) + 0.5 * gaussian(200, 6, 80);
  for (const double alpha : {0.0, 0.3, 1.0}) {
    const mint::shape_metric_options o{.alpha = alpha};
    const double ab = mint::shape_distance(a, b, o), bc = mint::shape_distance(b, c, o), ac = mint::shape_distance(a, c, o);
    CHECK(ab == doctest::Approx(mint::shape_distance(b, a, o)).epsilon(1e-10));
    CHECK(ac <= ab + bc + 1e-12);
    CHECK(ac <= std::numbers::pi / 2 + 1e-12);
  }
  CHECK_THROWS_WITH_AS(mint::shape_distance(a, b, {.alpha = 1.5}),
                       "mint::shape_distance: alpha is 1.5; needs a value in [0, 1]", mint::argument_error);
}
