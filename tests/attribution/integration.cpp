// Step rules of integrated gradients: their points, weights and the polynomials they integrate exactly.
#include "mint/attribution/integration.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

namespace {

double integrate_power(const mint::path_steps& s, int power) {
  double sum = 0.0;
  for (std::size_t i = 0; i < s.alphas.size(); ++i) sum += s.weights[i] * std::pow(s.alphas[i], power);
  return sum;
}

}  // namespace

TEST_CASE("every step rule's weights sum to 1 and its points lie on [0, 1], ascending") {
  for (const auto rule : {mint::step_rule::riemann_left, mint::step_rule::riemann_right, mint::step_rule::riemann_middle,
                          mint::step_rule::riemann_trapezoid, mint::step_rule::gauss_legendre})
    for (const int steps : {2, 3, 50}) {
      const mint::path_steps s = mint::integration_steps(rule, steps);
      CAPTURE(mint::to_string(rule));
      CAPTURE(steps);
      REQUIRE(s.alphas.size() == std::size_t(steps));
      CHECK(std::accumulate(s.weights.begin(), s.weights.end(), 0.0) == doctest::Approx(1.0).epsilon(1e-14));
      for (std::size_t i = 0; i < s.alphas.size(); ++i) {
        CHECK(s.alphas[i] >= 0.0);
        CHECK(s.alphas[i] <= 1.0);
        if (i > 0) CHECK(s.alphas[i] > s.alphas[i - 1]);
      }
    }
}

TEST_CASE("Riemann points follow Captum's conventions") {
  const auto left = mint::integration_steps(mint::step_rule::riemann_left, 4);
  const auto right = mint::integration_steps(mint::step_rule::riemann_right, 4);
  const auto middle = mint::integration_steps(mint::step_rule::riemann_middle, 4);
  const auto trapezoid = mint::integration_steps(mint::step_rule::riemann_trapezoid, 5);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(left.alphas[k] == double(k) / 4);
    CHECK(right.alphas[k] == double(k + 1) / 4);
    CHECK(middle.alphas[k] == (double(k) + 0.5) / 4);
  }
  CHECK(trapezoid.alphas.front() == 0.0);
  CHECK(trapezoid.alphas.back() == 1.0);
  CHECK(trapezoid.weights.front() == 0.125);
  CHECK(trapezoid.weights[2] == 0.25);
}

TEST_CASE("Gauss-Legendre with n points integrates every polynomial of degree up to 2n - 1 exactly") {
  // Exact in exact arithmetic; 1e-13 relative leaves room for rounding in 100 terms of x^99.
  for (const int n : {1, 2, 7, 50, 128}) {
    const mint::path_steps s = mint::integration_steps(mint::step_rule::gauss_legendre, n);
    for (int power = 0; power <= 2 * n - 1; ++power) {
      CAPTURE(n);
      CAPTURE(power);
      CHECK(integrate_power(s, power) == doctest::Approx(1.0 / (power + 1)).epsilon(1e-13));
    }
  }
  // The 2-point rule's nodes are (1 -+ 1/sqrt(3)) / 2.
  const auto two = mint::integration_steps(mint::step_rule::gauss_legendre, 2);
  CHECK(two.alphas[0] == doctest::Approx(0.5 - 0.5 / std::sqrt(3.0)).epsilon(1e-15));
}

TEST_CASE("the midpoint and trapezoid rules are exact for straight lines, left and right converge as 1/n") {
  for (const auto rule : {mint::step_rule::riemann_middle, mint::step_rule::riemann_trapezoid})
    CHECK(integrate_power(mint::integration_steps(rule, 7), 1) == doctest::Approx(0.5).epsilon(1e-15));
  // Left Riemann sums of x on n intervals give (n - 1) / (2n): error exactly 1/(2n).
  CHECK(integrate_power(mint::integration_steps(mint::step_rule::riemann_left, 10), 1) == doctest::Approx(0.45));
  CHECK(integrate_power(mint::integration_steps(mint::step_rule::riemann_right, 10), 1) == doctest::Approx(0.55));
}

TEST_CASE("too few steps is an argument_error naming the rule") {
  CHECK_THROWS_WITH_AS(mint::integration_steps(mint::step_rule::gauss_legendre, 0),
                       "mint::integration_steps: steps is 0; needs at least 1 for gauss_legendre", mint::argument_error);
  CHECK_THROWS_AS(mint::integration_steps(mint::step_rule::riemann_trapezoid, 1), mint::argument_error);
}
