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
  const auto where_reference = detail::check_layers(reference, function, "reference", examples, first);
  const auto layers = std::int64_t(where_reference.size());
  std::vector<std::vector<similarity_context>> where_checkpoints;
  for (const auto& checkpoint : checkpoints) {
    const std::string name = detail::str("checkpoints[", where_checkpoints.size(), "]");
    where_checkpoints.push_back(detail::check_layers(checkpoint, function, name.c_str(), examples, first));
    if (std::int64_t(where_checkpoints.back().size()) != layers)
      throw shape_error(function, name, detail::str("holds ", where_checkpoints.back().size(), " layers"),
                        detail::str("needs ", layers, ", as the reference has"));
  }
  if (where_checkpoints.empty()) throw argument_error(function, "checkpoints", "is empty", "needs at least one checkpoint");
  const auto count = std::int64_t(where_checkpoints.size());
  progress_reporter progress(on_progress, "stage-wise similarity (" + measure.name() + ")", layers + count * layers);
  std::int64_t step = 0;
  const auto final_layers = detail::prepare_layers(reference, where_reference, measure, progress, step);
  matrixd out(count, layers);
  index c = 0;
  for (const auto& checkpoint : checkpoints) {
    index l = 0;
    for (const auto& layer : checkpoint) {
      const auto prepared = measure.prepare(layer, where_checkpoints[std::size_t(c)][std::size_t(l)]);
      out(c, l) = measure.compare(prepared, final_layers[std::size_t(l)]);
      progress.report(++step);
      ++l;
    }
    ++c;
  }
  return out;
}

}  // namespace mint
