// Exact edge scores: for every edge, the change of the metric when that edge alone is patched
// from the corrupt run. The ground truth EAP, EAP-IG and ACDC approximate. Patching an edge
// changes only its receiver's input, so the edges into one block's receivers run as copies of
// the batch through that block and the ones after it, from the clean residual there
// (resumable_runtime); edges into the final residual run the last block only.
#pragma once

#include <span>
#include <vector>

#include "mint/circuits/edge_sets.hpp"
#include "mint/circuits/scores.hpp"

namespace mint {

/// How exact_edge_scores batches its runs.
struct exact_score_options {
  /// Rows per forward (each edge is one copy of the batch's rows); 0: every edge into a block's
  /// receivers in one forward. Bound it on large graphs: a forward holds max_batch rows.
  index max_batch = 0;
};

/// For every edge of `graph`, metric(clean with that edge patched from corrupt) - metric(clean);
/// `corrupt` is another input or an ablation (edge_source).
template <runtime R, class M>
edge_scores exact_edge_scores(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                              const M& metric, const exact_score_options& options = {}) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::exact_edge_scores");
  std::vector<std::vector<int>> sets(graph.edges().size());
  for (std::size_t e = 0; e < sets.size(); ++e) sets[e] = {int(e)};
  edge_scores out;
  out.values = runs.run(metric, std::span<const std::vector<int>>(sets), options.max_batch);
  out.clean_value = metric.value(runs.clean_logits().view(), clean);
  out.corrupt_value = runs.all_patched(metric);
  for (double& v : out.values) v -= out.clean_value;
  out.cost = runs.cost;
  return out;
}

}  // namespace mint
