// A linear probe direction: L2-regularised logistic regression separating positive from
// negative activations, w minimising sum_i log(1 + exp(-y_i (w.x_i + b))) + l2/2 |w|^2 (the
// intercept b unpenalised; scikit-learn's LogisticRegression(C = 1 / l2) minimises the same).
// Solved by Newton's method with step halving, in double, products in a fixed order (the same
// bits on any thread count). Cost per iteration: n d^2 for the Hessian and d^3 / 3 for its
// Cholesky factor, so suited to d up to a few thousand.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/products.hpp"
#include "mint/steering/reading.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// How logistic_probe fits.
struct probe_options {
  double l2 = 1.0;           ///< the penalty l2/2 |w|^2 (scikit-learn's C = 1 / l2); > 0
  int max_iterations = 100;  ///< Newton steps at most
  double tolerance = 1e-8;   ///< stop when the gradient's largest entry is below tolerance x (1 + rows)
};

/// A fitted probe: p(positive | x) = sigmoid(weights . x + bias).
template <class T>
struct probe_result {
  std::vector<T> weights;  ///< the probe direction, pointing towards the positives
  double bias = 0;
  double loss = 0;              ///< the objective at the solution (per the formula above)
  double train_accuracy = 0;    ///< fraction of rows classified right at threshold 0.5
  int iterations = 0;
  bool converged = false;
};

namespace detail {

/// logistic_probe's work, compiled once per scalar type (mint/core/compiled.hpp).
template <class T>
struct probe_core {
  static probe_result<T> fit(const matrix<T>& positive, const matrix<T>& negative, const probe_options& options);
};

#if MINT_CORE_BODIES
template <class T>
probe_result<T> probe_core<T>::fit(const matrix<T>& positive, const matrix<T>& negative, const probe_options& options) {
  const char* fn = "mint::logistic_probe";
  if (!(options.l2 > 0) || !std::isfinite(options.l2))
    throw argument_error(fn, "options.l2", detail::str("is ", options.l2), "needs a finite value > 0");
  if (!(options.tolerance > 0) || !std::isfinite(options.tolerance))
    throw argument_error(fn, "options.tolerance", detail::str("is ", options.tolerance), "needs a finite value > 0");
  if (options.max_iterations < 1)
    throw argument_error(fn, "options.max_iterations", detail::str("is ", options.max_iterations), "needs >= 1");
  if (positive.rows() < 1 || negative.rows() < 1 || positive.cols() != negative.cols() || positive.cols() < 1)
    throw shape_error(fn, "rows", detail::str("are [", positive.rows(), ", ", positive.cols(), "] positive and [",
                                              negative.rows(), ", ", negative.cols(), "] negative"),
                      "needs at least one row of each, of one non-zero width");
  const index n = positive.rows() + negative.rows(), d = positive.cols();
  // Rows with a trailing 1 for the intercept.
  matrixd x(n, d + 1);
  x.topLeftCorner(positive.rows(), d) = positive.template cast<double>();
  x.bottomLeftCorner(negative.rows(), d) = negative.template cast<double>();
  x.col(d).setOnes();
  if (!x.allFinite()) throw numeric_error(fn, "rows", "hold NaN or infinity", "needs finite activations");
  Eigen::VectorXd y = Eigen::VectorXd::Zero(n);
  y.head(positive.rows()).setOnes();
  Eigen::VectorXd penalty = Eigen::VectorXd::Constant(d + 1, options.l2);
  penalty(d) = 0;

  const auto objective = [&](const Eigen::VectorXd& w, Eigen::VectorXd& margin) {
    margin = x * w;
    double loss = 0;
    for (index i = 0; i < n; ++i) {
      const double m = y(i) > 0 ? margin(i) : -margin(i);  // log(1 + exp(-m)), stable
      loss += m > 0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
    }
    return loss + 0.5 * w.dot(penalty.cwiseProduct(w));
  };

  probe_result<T> out;
  Eigen::VectorXd w = Eigen::VectorXd::Zero(d + 1), margin, p(n), g(d + 1);
  matrixd weighted(n, d + 1), hessian(d + 1, d + 1);
  double loss = objective(w, margin);
  for (out.iterations = 0; out.iterations < options.max_iterations; ++out.iterations) {
    for (index i = 0; i < n; ++i) p(i) = 1 / (1 + std::exp(-margin(i)));
    g = x.transpose() * (p - y) + penalty.cwiseProduct(w);
    if (g.cwiseAbs().maxCoeff() < options.tolerance * (1 + double(n))) {
      out.converged = true;
      break;
    }
    for (index i = 0; i < n; ++i) weighted.row(i) = x.row(i) * std::max(p(i) * (1 - p(i)), 1e-12);
    fixed_order_product(x.transpose(), weighted, hessian);
    hessian.diagonal() += penalty;
    hessian(d, d) += 1e-12 * (1 + double(n));  // keeps the intercept's pivot positive when every p is 0 or 1
    const Eigen::VectorXd step = Eigen::MatrixXd(hessian).llt().solve(g);
    double t = 1, next = 0;
    Eigen::VectorXd trial, trial_margin;
    for (int halving = 0; halving < 40; ++halving, t *= 0.5) {
      trial = w - t * step;
      next = objective(trial, trial_margin);
      if (next <= loss) break;
    }
    if (!(next <= loss)) break;  // no descent left: at the optimum to rounding
    w = trial;
    margin = trial_margin;
    loss = next;
  }
  out.weights.resize(std::size_t(d));
  for (index j = 0; j < d; ++j) out.weights[std::size_t(j)] = T(w(j));
  out.bias = w(d);
  out.loss = loss;
  index right = 0;
  for (index i = 0; i < n; ++i) right += (margin(i) > 0) == (y(i) > 0);
  out.train_accuracy = double(right) / double(n);
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Fits the probe on rows of `positive` (label 1) and `negative` (label 0), [rows, features] each.
template <class T>
probe_result<T> logistic_probe(const matrix<T>& positive, const matrix<T>& negative, const probe_options& options = {}) {
  return detail::probe_core<T>::fit(positive, negative, options);
}

/// A probe's weights per site of the pairs, as a steering vector (each pointing to the positives).
template <class T>
steering_vector<T> probe_vector(const contrastive_activations<T>& pairs, const probe_options& options = {}) {
  detail::check_pairs(pairs, 1, "mint::probe_vector", "pairs");
  steering_vector<T> out;
  for (std::size_t s = 0; s < pairs.sites.size(); ++s)
    out.directions[pairs.sites[s]] = logistic_probe(pairs.positive[s], pairs.negative[s], options).weights;
  return out;
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_STEERING_PROBE(CORE) MINT_CORE_FD(CORE, mint::detail::probe_core)
MINT_CORES_STEERING_PROBE(MINT_CORE)
