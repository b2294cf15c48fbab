// Training a toy model (the transformer, the LSTM, or any model with parameters(),
// forward(tokens) and backward(dlogits, gradients)): Adam over its flat parameters on a task's
// batches, with a seeded, deterministic loop (batch k comes from rng(seed, k),
// so a run resumed at step k continues exactly). Cost per step: one forward
// and one backward of the batch.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/core/adam.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/random.hpp"
#include "mint/model/metrics.hpp"
#include "mint/toy/tasks.hpp"
#include "mint/toy/transformer.hpp"

namespace mint::toy {

/// How to train.
struct train_options {
  std::int64_t steps = 1000;
  index batch = 64;
  adam_options optimizer{.lr = 1e-3};
  std::uint64_t seed = 0;  ///< batches come from rng(seed, step)
};

/// Loss and accuracy (argmax = target) over a batch's labelled positions.
struct evaluation {
  double loss = 0;
  double accuracy = 0;
};

/// Fraction of labelled positions whose highest logit is the target.
template <class T>
double accuracy(const tensor_view<const T>& logits, const labelled_batch& batch) {
  index correct = 0;
  for (std::size_t i = 0; i < batch.targets.size(); ++i) {
    const auto row = logits.subview(batch.rows[i]).subview(batch.positions[i]);
    index best = 0;
    for (index j = 1; j < row.extent(0); ++j)
      if (row(j) > row(best)) best = j;
    correct += best == batch.targets[i];
  }
  return double(correct) / double(batch.targets.size());
}

/// What the trainer and evaluate() need of a model.
template <class M>
concept trainable_model = requires(M& m, const token_batch& tokens, tensor_view<const typename M::scalar_type> dlogits,
                                   parameter_store<typename M::scalar_type>& gradients) {
  { m.parameters() } -> std::same_as<parameter_store<typename M::scalar_type>&>;
  { m.forward(tokens) } -> std::convertible_to<tensor_view<const typename M::scalar_type>>;
  m.backward(dlogits, gradients);
};

/// Cross-entropy and accuracy of `model` on the labelled positions of `batch`.
template <class Model>
  requires requires(Model& m, const token_batch& tokens) { m.forward(tokens); }
evaluation evaluate(Model& model, const labelled_batch& batch) {
  const auto logits = model.forward(batch.tokens);
  const target_cross_entropy loss{batch.rows, batch.positions, batch.targets};
  return {loss.value(logits, batch.tokens), accuracy(logits, batch)};
}

/// What a training run measured.
struct train_report {
  evaluation last;          ///< on the last training batch
  std::int64_t steps = 0;
  double seconds = 0;
  double tokens_per_second = 0;
};

}  // namespace mint::toy

namespace mint::detail {
/// trainer<Task, T> with a scalar T trains a transformer<T>; with a model type, that model.
template <class M>
struct trained_model {
  using type = M;
};
template <class M>
  requires std::is_floating_point_v<M>
struct trained_model<M> {
  using type = toy::transformer<M>;
};
}  // namespace mint::detail

namespace mint::toy {

/// Trains a model on a task (anything with sample(rng&, batch) -> labelled_batch). `Model` is
/// the model's type, or a scalar type for a transformer of it (trainer<Task, double>).
template <class Task, class Model = float>
class trainer {
public:
  using model_type = typename detail::trained_model<Model>::type;
  using scalar_type = typename model_type::scalar_type;
  static_assert(trainable_model<model_type>, "needs parameters(), forward(tokens) and backward(dlogits, gradients)");

  trainer(model_type& model, Task task, train_options options)
      : model_(model),
        task_(std::move(task)),
        options_(options),
        gradients_(model.parameters().zeros_like()),
        optimizer_(std::size_t(model.parameters().size()), with_total(options)) {}

  /// One step; returns the batch's loss and accuracy before the update.
  evaluation step() {
    rng r(options_.seed, std::uint64_t(optimizer_.steps()));
    const labelled_batch batch = task_.sample(r, options_.batch);
    const auto logits = model_.forward(batch.tokens);
    const target_cross_entropy loss{batch.rows, batch.positions, batch.targets};
    dlogits_.resize(logits.extents());
    const double value = loss.gradient(logits, batch.tokens, dlogits_.view());
    const evaluation seen{value, toy::accuracy(logits, batch)};
    std::fill(gradients_.flat().begin(), gradients_.flat().end(), scalar_type(0));
    model_.backward(dlogits_.view(), gradients_);
    optimizer_.step(model_.parameters().flat(), gradients_.flat());
    tokens_ += batch.tokens.batch() * batch.tokens.positions();
    return seen;
  }

  /// Steps until options.steps are done, reporting progress ("step", loss, accuracy, tokens/s).
  train_report run(const progress_callback& on_progress = {}) {
    progress_reporter progress(on_progress, "train", options_.steps);
    const auto start = std::chrono::steady_clock::now();
    const index tokens_before = tokens_;
    train_report report;
    while (optimizer_.steps() < options_.steps) {
      report.last = step();
      if (progress.active()) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress.report(optimizer_.steps(), {{"loss", report.last.loss},
                                             {"accuracy", report.last.accuracy},
                                             {"tokens/s", double(tokens_ - tokens_before) / std::max(s, 1e-9)}});
      }
    }
    report.steps = optimizer_.steps();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.tokens_per_second = double(tokens_ - tokens_before) / std::max(report.seconds, 1e-9);
    return report;
  }

  adam<scalar_type>& optimizer() noexcept { return optimizer_; }
  const Task& task() const noexcept { return task_; }

private:
  static adam_options with_total(const train_options& o) {
    adam_options a = o.optimizer;
    if (a.total_steps == 0) a.total_steps = o.steps;
    return a;
  }

  model_type& model_;
  Task task_;
  train_options options_;
  parameter_store<scalar_type> gradients_;
  adam<scalar_type> optimizer_;
  array<scalar_type> dlogits_;
  index tokens_ = 0;
};

// A transformer<T> deduces trainer<Task, T> (the type it always had); any other model, trainer<Task, Model>.
template <class Task, class T>
trainer(transformer<T>&, Task, train_options) -> trainer<Task, T>;
template <class Task, class Model>
trainer(Model&, Task, train_options) -> trainer<Task, Model>;

}  // namespace mint::toy
