// Adam with decoupled weight decay (AdamW; Loshchilov and Hutter 2019) over one
// flat parameter buffer, with linear warm-up, optional linear or cosine decay,
// and clipping by the global gradient norm. O(parameters) per step, no allocation,
// split across threads with results that do not depend on how many.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// How the learning rate moves after warm-up.
enum class lr_decay : std::uint8_t { none, linear, cosine };

/// Adam's knobs; the defaults are the usual ones.
struct adam_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;    ///< decoupled: p -= lr * weight_decay * p
  double clip_norm = 0.0;       ///< clip the global gradient norm to this (0: off)
  std::int64_t warmup = 0;      ///< steps of linear warm-up from 0 to lr
  lr_decay decay = lr_decay::none;
  std::int64_t total_steps = 0; ///< for linear/cosine decay: lr reaches 0 at this step
};

/// Adam's state for one flat parameter buffer; step() updates parameters in place.
template <class T>
class adam {
public:
  adam() = default;
  adam(std::size_t size, adam_options options);

  /// The learning rate at a step (1-based), after warm-up and decay.
  double learning_rate(std::int64_t step) const;

  /// One update of `parameters` from `gradients` (same layout). Returns the gradient norm before clipping.
  double step(std::span<T> parameters, std::span<const T> gradients);

  std::int64_t steps() const noexcept { return steps_; }
  const adam_options& options() const noexcept { return options_; }
  /// The moment estimates, for checkpoints.
  std::span<double> first_moment() noexcept { return m_; }
  std::span<double> second_moment() noexcept { return v_; }
  std::span<const double> first_moment() const noexcept { return m_; }
  std::span<const double> second_moment() const noexcept { return v_; }
  void set_steps(std::int64_t steps) noexcept { steps_ = steps; }

private:
  template <class S>
  using array_of = Eigen::Array<S, Eigen::Dynamic, 1>;
  /// double, named through T so the moments' Eigen expressions are compiled with the rest of step().
  using moment_type = std::common_type_t<T, double>;
  /// Elements per chunk: the unit of work, and of the partial sums of the gradient norm.
  static constexpr index chunk_size = index(1) << 14;

  index chunks() const noexcept { return (index(m_.size()) + chunk_size - 1) / chunk_size; }
  std::pair<index, index> chunk(index c) const noexcept {
    const index begin = c * chunk_size;
    return {begin, std::min(chunk_size, index(m_.size()) - begin)};
  }

  /// sum g^2 in double: a partial sum per chunk, added in chunk order, so it does not depend on threads.
  double squared_norm(std::span<const T> gradients);

  adam_options options_{};
  std::vector<double> m_, v_, partial_;
  std::int64_t steps_ = 0;
};

#if MINT_CORE_BODIES
template <class T>
adam<T>::adam(std::size_t size, adam_options options)
    : options_(options), m_(size, 0.0), v_(size, 0.0), partial_(std::size_t(chunks())) {
  if (options.lr <= 0 || options.beta1 < 0 || options.beta1 >= 1 || options.beta2 < 0 || options.beta2 >= 1)
    throw argument_error("mint::adam", "options",
                         detail::str("has lr ", options.lr, ", beta1 ", options.beta1, ", beta2 ", options.beta2),
                         "needs lr > 0 and betas in [0, 1)");
  if (options.decay != lr_decay::none && options.total_steps <= options.warmup)
    throw argument_error("mint::adam", "options.total_steps", detail::str("is ", options.total_steps),
                         "needs more steps than warmup when the rate decays");
}

template <class T>
double adam<T>::learning_rate(std::int64_t step) const {
  double lr = options_.lr;
  if (options_.warmup > 0 && step <= options_.warmup) return lr * double(step) / double(options_.warmup);
  if (options_.decay == lr_decay::none) return lr;
  const double progress =
      std::clamp(double(step - options_.warmup) / double(options_.total_steps - options_.warmup), 0.0, 1.0);
  if (options_.decay == lr_decay::linear) return lr * (1.0 - progress);
  return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

template <class T>
double adam<T>::step(std::span<T> parameters, std::span<const T> gradients) {
  if (parameters.size() != m_.size() || gradients.size() != m_.size())
    throw shape_error("mint::adam::step", "parameters",
                      detail::str("has ", parameters.size(), " values and gradients ", gradients.size()),
                      detail::str("needs ", m_.size(), " each, as the optimizer was made for"));
  const double norm = std::sqrt(squared_norm(gradients));
  if (!std::isfinite(norm))
    throw numeric_error("mint::adam::step", "gradients", "hold a NaN or infinity", "needs finite gradients");
  const double scale = options_.clip_norm > 0 && norm > options_.clip_norm ? options_.clip_norm / norm : 1.0;
  ++steps_;
  const double lr = learning_rate(steps_);
  const double correction1 = 1.0 - std::pow(options_.beta1, double(steps_));
  const double correction2 = 1.0 - std::pow(options_.beta2, double(steps_));
  const double b1 = options_.beta1, b2 = options_.beta2, decay = lr * options_.weight_decay;
  // lr m_hat / (sqrt(v_hat) + eps) in PyTorch's arrangement (the corrections folded into a step
  // size and a factor on sqrt(v)): one division and one square root an element.
  const double epsilon = options_.epsilon, step_size = lr / correction1, root_correction2 = 1.0 / std::sqrt(correction2);
  // Element-wise, in chunks split across threads: each element's update is the same on any thread count.
  const index count = chunks();
  MINT_PARALLEL_FOR(double(m_.size()) * 12)
  for (index c = 0; c < count; ++c) {
    const auto [begin, size] = chunk(c);
    const auto g = Eigen::Map<const array_of<T>>(gradients.data() + begin, size).template cast<double>() * scale;
    Eigen::Map<array_of<moment_type>> m(m_.data() + begin, size), v(v_.data() + begin, size);
    Eigen::Map<array_of<T>> p(parameters.data() + begin, size);
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g.square();
    const auto old = p.template cast<double>();
    p = (old - step_size * m / (v.sqrt() * root_correction2 + epsilon) - decay * old).template cast<T>();
  }
  return norm;
}

template <class T>
double adam<T>::squared_norm(std::span<const T> gradients) {
  const index count = chunks();
  MINT_PARALLEL_FOR(double(gradients.size()) * 2)
  for (index c = 0; c < count; ++c) {
    const auto [begin, size] = chunk(c);
    partial_[std::size_t(c)] = Eigen::Map<const array_of<T>>(gradients.data() + begin, size).template cast<double>().square().sum();
  }
  double sum = 0;
  for (const double p : partial_) sum += p;
  return sum;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_CORE_ADAM(CORE) \
  CORE(class mint::adam<float>)   \
  CORE(class mint::adam<double>)
MINT_CORES_CORE_ADAM(MINT_CORE)
