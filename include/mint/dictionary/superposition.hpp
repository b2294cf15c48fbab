// The toy model of superposition (Elhage et al. 2022, "Toy Models of Superposition"):
// n features squeezed through m < n hidden dimensions and back, x' = ReLU(W^T W x + b),
// W [m, n] (column W_i is feature i's direction), trained with Adam on the
// importance-weighted squared error sum_i I_i (x_i - x'_i)^2 over synthetic inputs
// whose features are zero with probability S (the sparsity) and Uniform[0, 1)
// otherwise. Dense features: only the m most important get a direction; sparse ones:
// more than m, in superposition. Cost per step: O(batch n m) (three thin products).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "mint/core/adam.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/dictionary/detail/views.hpp"

namespace mint::dictionary {

/// The model's shape and its data: feature i has importance decay^i and is zero with probability `sparsity`.
struct superposition_options {
  index features = 20;            ///< n
  index hidden = 5;               ///< m
  double importance_decay = 0.7;  ///< I_i = importance_decay^i (1: all equally important)
  double sparsity = 0.0;          ///< S, the probability that a feature is zero in a sample
  std::uint64_t seed = 0;         ///< W's initial values (Xavier normal); b starts at zero
};

/// How to train it; the defaults are Elhage et al.'s (10,000 steps of 1024, Adam at 1e-3).
struct superposition_training {
  index steps = 10000;
  index batch_size = 1024;
  adam_options adam{.lr = 1e-3};
  std::uint64_t seed = 0;       ///< the training data's stream
  progress_callback progress{}; ///< per step: "loss"
};

/// ReLU(W^T W x + b) with its exact gradient and a trainer.
template <class T = float>
class superposition_model {
public:
  explicit superposition_model(const superposition_options& options);

  /// n samples ([n, features], resized): each feature zero with probability S, else Uniform[0, 1).
  void sample(rng& r, index n, matrix<T>& x) const;

  /// x' = ReLU(x W^T W + b) for the rows of x ([batch, features]).
  template <tensor X>
  matrix<T> forward(const X& x) const {
    std::vector<T> converted;
    return forward_view(detail::view_as<T>(mint::view(x), converted));
  }

  /// The mean over rows of sum_i I_i (x_i - x'_i)^2.
  template <tensor X>
  double loss(const X& x) const {
    std::vector<T> converted;
    return loss_view(detail::view_as<T>(mint::view(x), converted));
  }

  /// The loss, with its gradient written into `gradient` (a store laid out as parameters(), e.g. zeros_like()).
  template <tensor X>
  double loss_and_gradient(const X& x, parameter_store<T>& gradient) const {
    std::vector<T> converted;
    return loss_and_gradient_view(detail::view_as<T>(mint::view(x), converted), gradient);
  }

  /// Trains with Adam on fresh samples each step; returns the mean loss over the last 100 steps.
  double train(const superposition_training& training);

  /// W, [hidden, features]; column i is feature i's direction.
  Eigen::Map<const matrix<T>> weights() const {
    return Eigen::Map<const matrix<T>>(parameters_["W"].data(), options_.hidden, options_.features);
  }
  Eigen::Map<matrix<T>> weights() { return Eigen::Map<matrix<T>>(parameters_["W"].data(), options_.hidden, options_.features); }
  /// b, [features].
  Eigen::Map<const vector<T>> bias() const { return Eigen::Map<const vector<T>>(parameters_["b"].data(), options_.features); }
  Eigen::Map<vector<T>> bias() { return Eigen::Map<vector<T>>(parameters_["b"].data(), options_.features); }
  /// Every parameter ("W", "b") in one flat buffer, for optimizers and files.
  parameter_store<T>& parameters() noexcept { return parameters_; }
  const parameter_store<T>& parameters() const noexcept { return parameters_; }
  /// I_i, [features].
  const vector<T>& importance() const noexcept { return importance_; }
  const superposition_options& options() const noexcept { return options_; }

  /// ||W_i|| per feature: near 1 for a represented feature, near 0 for a dropped one.
  vectord feature_norms() const;

  /// Per feature, sum over j != i of (W_i / ||W_i|| . W_j)^2: how much others share its direction
  /// (0 for a feature with a dimension of its own; Elhage et al.'s superposition measure).
  vectord interference() const;

  /// Features with ||W_i|| above the threshold.
  index represented(double threshold = 0.5) const;

private:
  // The work of forward, loss and loss_and_gradient on x read as T.
  matrix<T> forward_view(const tensor_view<const T>& x) const;
  double loss_view(const tensor_view<const T>& x) const;
  double loss_and_gradient_view(const tensor_view<const T>& x, parameter_store<T>& gradient) const;

  matrix<T> checked_input(const char* function, const tensor_view<const T>& v) const;

  // Forward, loss and (when asked) the gradient: with H = X W^T and Y = H W + b,
  // dY = (2/B) I (ReLU(Y) - X) [Y > 0], dW = H^T dY + (dY W^T)^T X, db = column sums of dY.
  struct workspace {
    matrix<T> hidden, pre, error, dhidden;
  };

  double evaluate(const matrix<T>& x, parameter_store<T>* gradient, workspace& ws) const {
    auto& hidden = ws.hidden;
    auto& pre = ws.pre;
    auto& error = ws.error;
    auto& dhidden = ws.dhidden;
    const index batch = x.rows();
    if (batch == 0) return 0.0;
    const auto w = weights();
    hidden.noalias() = x * w.transpose();
    pre.noalias() = hidden * w;
    pre.rowwise() += bias().transpose();
    error = pre.cwiseMax(T(0)) - x;
    const double loss =
        (error.template cast<double>().array().square().rowwise() * importance_.template cast<double>().transpose().array())
            .sum() / double(batch);
    if (gradient) {
      const T scale = T(2) / T(batch);
      error = (error.array().rowwise() * importance_.transpose().array()) * scale;
      error = (pre.array() > T(0)).select(error, T(0));  // now dL/dY
      Eigen::Map<matrix<T>> dw(gradient->operator[]("W").data(), options_.hidden, options_.features);
      Eigen::Map<vector<T>> db(gradient->operator[]("b").data(), options_.features);
      dw.noalias() = hidden.transpose() * error;
      dhidden.noalias() = error * w.transpose();
      dw.noalias() += dhidden.transpose() * x;
      db = error.colwise().sum().transpose();
    }
    return loss;
  }

  superposition_options options_;
  parameter_store<T> parameters_;
  vector<T> importance_;
};

#if MINT_CORE_BODIES
template <class T>
superposition_model<T>::superposition_model(const superposition_options& options) : options_(options) {
  constexpr const char* function = "mint::dictionary::superposition_model";
  if (options.features < 1 || options.hidden < 1)
    throw argument_error(function, "options",
                         detail::str("has features ", options.features, " and hidden ", options.hidden),
                         "needs both >= 1");
  if (!(options.importance_decay > 0) || !std::isfinite(options.importance_decay))
    throw argument_error(function, "options.importance_decay", detail::str("is ", options.importance_decay),
                         "needs a positive number");
  if (!(options.sparsity >= 0 && options.sparsity < 1))
    throw argument_error(function, "options.sparsity", detail::str("is ", options.sparsity),
                         "needs a probability in [0, 1)");
  parameters_.add("W", {options.hidden, options.features});
  parameters_.add("b", {options.features});
  importance_.resize(options.features);
  for (index i = 0; i < options.features; ++i) importance_(i) = T(std::pow(options.importance_decay, double(i)));
  // Xavier normal on [m, n]: standard deviation sqrt(2 / (m + n)).
  rng(options.seed, 0x70E5).fill_normal(parameters_["W"], 0.0,
                                        std::sqrt(2.0 / double(options.hidden + options.features)));
}

template <class T>
void superposition_model<T>::sample(rng& r, index n, matrix<T>& x) const {
  if (n < 0) throw argument_error("mint::dictionary::superposition_model::sample", "n", detail::str("is ", n), "needs n >= 0");
  x.resize(n, options_.features);
  for (index s = 0; s < n; ++s)
    for (index i = 0; i < options_.features; ++i) {
      const bool on = r.uniform() >= options_.sparsity;
      const double value = r.uniform();
      x(s, i) = on ? T(value) : T(0);
    }
}

template <class T>
matrix<T> superposition_model<T>::forward_view(const tensor_view<const T>& x) const {
  const matrix<T> xm = checked_input("mint::dictionary::superposition_model::forward", x);
  matrix<T> hidden = xm * weights().transpose();
  matrix<T> out = hidden * weights();
  out.rowwise() += bias().transpose();
  return out.cwiseMax(T(0));
}

template <class T>
double superposition_model<T>::loss_view(const tensor_view<const T>& x) const {
  const matrix<T> xm = checked_input("mint::dictionary::superposition_model::loss", x);
  workspace scratch;
  return evaluate(xm, nullptr, scratch);
}

template <class T>
double superposition_model<T>::loss_and_gradient_view(const tensor_view<const T>& x, parameter_store<T>& gradient) const {
  const matrix<T> xm = checked_input("mint::dictionary::superposition_model::loss_and_gradient", x);
  if (gradient.size() != parameters_.size())
    throw shape_error("mint::dictionary::superposition_model::loss_and_gradient", "gradient",
                      detail::str("has ", gradient.size(), " values"),
                      detail::str("needs ", parameters_.size(), ", the layout of parameters()"));
  workspace scratch;
  return evaluate(xm, &gradient, scratch);
}

template <class T>
double superposition_model<T>::train(const superposition_training& training) {
  if (training.steps < 0 || training.batch_size < 1)
    throw argument_error("mint::dictionary::superposition_model::train", "training",
                         detail::str("has steps ", training.steps, " and batch_size ", training.batch_size),
                         "needs steps >= 0 and batch_size >= 1");
  adam<T> optimizer(std::size_t(parameters_.size()), training.adam);
  parameter_store<T> gradient = parameters_.zeros_like();
  rng r(training.seed, 0xDA7A);
  progress_reporter reporter(training.progress, "superposition", training.steps);
  matrix<T> x;
  workspace scratch;
  double recent = 0;
  index counted = 0;
  for (index step = 1; step <= training.steps; ++step) {
    sample(r, training.batch_size, x);
    const double l = evaluate(x, &gradient, scratch);
    optimizer.step(parameters_.flat(), std::span<const T>(gradient.flat()));
    if (step > training.steps - 100) recent += l, ++counted;
    reporter.report(step, {{"loss", l}});
  }
  return counted ? recent / double(counted) : 0.0;
}

template <class T>
vectord superposition_model<T>::feature_norms() const { return weights().template cast<double>().colwise().norm().transpose();
}

template <class T>
vectord superposition_model<T>::interference() const {
  const matrixd w = weights().template cast<double>();
  const matrixd dots = w.transpose() * w;  // [n, n]
  vectord out(options_.features);
  for (index i = 0; i < options_.features; ++i) {
    const double norm = std::sqrt(dots(i, i));
    if (norm == 0) {
      out(i) = 0;
      continue;
    }
    out(i) = (dots.row(i).squaredNorm() - dots(i, i) * dots(i, i)) / (norm * norm);
  }
  return out;
}

template <class T>
index superposition_model<T>::represented(double threshold) const { return (feature_norms().array() > threshold).count();
}

template <class T>
matrix<T> superposition_model<T>::checked_input(const char* function, const tensor_view<const T>& v) const {
  if (v.rank() != 2 || v.extent(1) != options_.features)
    throw shape_error(function, "x", "has extents " + detail::shape_string(v.extents()),
                      detail::str("needs [batch, ", options_.features, "] (one column per feature)"));
  matrix<T> m = as_matrix(v).template cast<T>();
  if (!m.allFinite()) throw numeric_error(function, "x", "holds a NaN or infinity", "needs finite values");
  return m;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_SUPERPOSITION(CORE)            \
  CORE(class mint::dictionary::superposition_model<float>)   \
  CORE(class mint::dictionary::superposition_model<double>)
MINT_CORES_DICTIONARY_SUPERPOSITION(MINT_CORE)
