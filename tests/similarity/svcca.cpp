// SVCCA: the principal directions kept, and agreement with mean CCA when all are kept.
#include "mint/similarity/svcca.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "common.hpp"
#include "mint/similarity/cca.hpp"

using namespace similarity_test;

TEST_CASE("SVCCA keeping every direction is mean CCA; keeping the top ones matches NumPy") {
  const auto [x, y] = linear_reference();
  CHECK(mint::svcca(x, y, {.variance = 1.0}) == doctest::Approx(mint::mean_cca(x, y, {.epsilon = 0})).epsilon(1e-10));
  // NumPy: project each centred side on its top 5 eigenvectors of X^T X, then mean CCA.
  CHECK(mint::svcca(x, y, {.directions = 5}) == doctest::Approx(0.395660030534339).epsilon(1e-10));
  CHECK(mint::svcca(x, y) == doctest::Approx(0.46949432654903006).epsilon(1e-10));
}

TEST_CASE("SVCCA drops low-variance noise directions that plain CCA overfits") {
  // Three strong shared directions, plus 40 weak independent noise features on each side at n = 120:
  // CCA finds spurious correlations in the noise; SVCCA at 99% keeps mostly the shared signal.
  const mint::index n = 120;
  const mint::matrixd signal = gaussian(n, 3, 51);
  mint::matrixd x(n, 43), y(n, 43);
  x << signal * 10.0, gaussian(n, 40, 52) * 0.01;
  y << signal * orthogonal(3, 53) * 10.0, gaussian(n, 40, 54) * 0.01;
  const double svcca = mint::svcca(x, y, {.variance = 0.99});
  CHECK(svcca > 0.99);
  CHECK(mint::mean_cca(x, y, {.epsilon = 0}) < svcca - 0.05);
  CHECK(mint::svcca(x, y, {.directions = 3}) == doctest::Approx(1.0).epsilon(1e-8));
  CHECK_THROWS_AS(mint::svcca(x, y, {.variance = 0.0}), mint::argument_error);
  CHECK_THROWS_AS(mint::svcca(x, y, {.directions = -2}), mint::argument_error);
}
