// Step rules for integrated gradients: where on the straight path from the baseline
// (alpha = 0) to the input (alpha = 1) the gradient is taken, and with what weight. The
// weights sum to 1, so sum_k w_k g(alpha_k) approximates the path integral of g. Captum's
// rules and conventions (its `method` names without the prefix): `steps` is the number of
// points; Riemann left, right and middle take steps intervals of 1/steps, the trapezoid rule
// steps points on both ends (steps - 1 intervals), Gauss-Legendre the steps-point rule on
// [0, 1] (Captum's default, with 50 steps), exact for polynomials of degree 2 steps - 1.
#pragma once

#include <cmath>
#include <numbers>
#include <string_view>
#include <vector>

#include "mint/core/error.hpp"

namespace mint {

/// How integrated gradients places its steps on the path.
enum class step_rule {
  riemann_left,       ///< alpha_k = k / n, k = 0..n-1
  riemann_right,      ///< alpha_k = (k + 1) / n
  riemann_middle,     ///< alpha_k = (k + 1/2) / n
  riemann_trapezoid,  ///< alpha_k = k / (n - 1), end points weighted by half (n >= 2)
  gauss_legendre,     ///< the n-point Gauss-Legendre rule mapped to [0, 1] (Captum's default)
};

inline std::string_view to_string(step_rule rule) noexcept {
  switch (rule) {
    case step_rule::riemann_left: return "riemann_left";
    case step_rule::riemann_right: return "riemann_right";
    case step_rule::riemann_middle: return "riemann_middle";
    case step_rule::riemann_trapezoid: return "riemann_trapezoid";
    case step_rule::gauss_legendre: return "gauss_legendre";
  }
  return "unknown";
}

/// Points on the path and their weights (summing to 1).
struct path_steps {
  std::vector<double> alphas;
  std::vector<double> weights;
};

/// The `steps` points and weights of `rule` on [0, 1].
inline path_steps integration_steps(step_rule rule, int steps) {
  const int minimum = rule == step_rule::riemann_trapezoid ? 2 : 1;
  if (steps < minimum)
    throw argument_error("mint::integration_steps", "steps", detail::str("is ", steps),
                         detail::str("needs at least ", minimum, " for ", to_string(rule)));
  const auto n = std::size_t(steps);
  path_steps out{std::vector<double>(n), std::vector<double>(n, 1.0 / double(steps))};
  switch (rule) {
    case step_rule::riemann_left:
      for (std::size_t k = 0; k < n; ++k) out.alphas[k] = double(k) / double(n);
      break;
    case step_rule::riemann_right:
      for (std::size_t k = 0; k < n; ++k) out.alphas[k] = double(k + 1) / double(n);
      break;
    case step_rule::riemann_middle:
      for (std::size_t k = 0; k < n; ++k) out.alphas[k] = (double(k) + 0.5) / double(n);
      break;
    case step_rule::riemann_trapezoid:
      for (std::size_t k = 0; k < n; ++k) {
        out.alphas[k] = double(k) / double(n - 1);
        out.weights[k] = (k == 0 || k + 1 == n ? 0.5 : 1.0) / double(n - 1);
      }
      break;
    case step_rule::gauss_legendre:
      // Roots of the Legendre polynomial P_n by Newton's method from Tricomi's estimate, each
      // with weight 2 / ((1 - x^2) P_n'(x)^2) on [-1, 1]; halved and shifted onto [0, 1]. The
      // roots are symmetric, so half are found and mirrored.
      for (std::size_t i = 0; i < (n + 1) / 2; ++i) {
        double x = std::cos(std::numbers::pi * (double(i) + 0.75) / (double(n) + 0.5));
        double derivative = 0.0;
        for (int iteration = 0; iteration < 100; ++iteration) {
          double p = 1.0, previous = 0.0;  // P_j(x) and P_{j-1}(x) by the three-term recurrence
          for (std::size_t j = 1; j <= n; ++j) {
            const double next = ((2.0 * double(j) - 1.0) * x * p - (double(j) - 1.0) * previous) / double(j);
            previous = p;
            p = next;
          }
          derivative = double(n) * (x * p - previous) / (x * x - 1.0);
          const double step = p / derivative;
          x -= step;
          if (std::abs(step) < 1e-16) break;
        }
        const double weight = 1.0 / ((1.0 - x * x) * derivative * derivative);  // 2 / (...) halved
        out.alphas[i] = 0.5 * (1.0 - x);
        out.alphas[n - 1 - i] = 0.5 * (1.0 + x);
        out.weights[i] = out.weights[n - 1 - i] = weight;
      }
      break;
  }
  return out;
}

}  // namespace mint
