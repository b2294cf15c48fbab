// Stage-wise model diffing: how similar each layer is, at each saved checkpoint of a training
// run, to the same layer of a reference model (usually the final one), under any measure. Shows
// which layers settle first. The reference's per-layer work is done once; cost per checkpoint is
// one prepare and one compare per layer.
#pragma once

#include <cstdint>
#include <ranges>
#include <string>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/similarity/measure.hpp"
#include "mint/similarity/similarity_matrix.hpp"

namespace mint {

/// A range of checkpoints, each a range of per-layer activations.
template <class R>
concept checkpoint_range = std::ranges::forward_range<R> && layer_range<std::ranges::range_value_t<R>>;

/// A checkpoints x layers matrix: measure(layer l at checkpoint c, layer l of the reference).
/// Every checkpoint holds the reference's layers, on the reference's examples.
template <checkpoint_range C, layer_range R, similarity_measure M>
matrixd stagewise_similarity(const C& checkpoints, const R& reference, const M& measure,
                             const progress_callback& on_progress = {}) {
  const char* function = "mint::stagewise_similarity";
  index examples = -1;
  similarity_context first;
  const auto final_layers = detail::check_layers(reference, function, "reference", examples, first);
  const auto layers = std::int64_t(final_layers.rows.size());
  using T = value_t<const std::ranges::range_value_t<std::ranges::range_value_t<C>>>;
  std::vector<detail::checked_layers<T>> stages;
  for (const auto& checkpoint : checkpoints) {
    const std::string name = detail::str("checkpoints[", stages.size(), "]");
    stages.push_back(detail::check_layers(checkpoint, function, name.c_str(), examples, first));
    if (std::int64_t(stages.back().rows.size()) != layers)
      throw shape_error(function, name, detail::str("holds ", stages.back().rows.size(), " layers"),
                        detail::str("needs ", layers, ", as the reference has"));
  }
  if (stages.empty()) throw argument_error(function, "checkpoints", "is empty", "needs at least one checkpoint");
  const auto count = std::int64_t(stages.size());
  progress_reporter progress(on_progress, "stage-wise similarity (" + measure.name() + ")", layers + count * layers);
  using U = value_t<const std::ranges::range_value_t<R>>;
  return detail::measure_core<M, T, U>::stagewise(measure, stages, final_layers, progress);
}

}  // namespace mint
