// ACDC (Conmy et al. 2023): automatic circuit discovery by greedy pruning. Receivers are
// visited in reverse topological order (the output first) and each one's incoming edges from
// the latest sender back; an edge is tentatively patched from the corrupt run on top of the
// edges already removed, and stays removed when the metric (a distance from the clean
// behaviour, lower is closer; by default the KL divergence from the clean run's next-token
// distribution at each row's last position) grows by less than the threshold tau. The edges
// left are the circuit. One forward per edge, each starting at the block of the receiver being
// visited (resumable_runtime): every edge removed so far feeds that block or a later one.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <span>
#include <vector>

#include "mint/circuits/edge_sets.hpp"
#include "mint/model/metrics.hpp"

namespace mint {

/// ACDC's threshold and how it compares.
struct acdc_options {
  double threshold = 0.01;  ///< tau: an edge goes when the metric grows by less than this
  /// Compare |change| with tau (for task metrics that may move either way, such as a logit
  /// difference); false compares the signed growth, as the paper does with the KL divergence.
  bool absolute = false;
};

/// The circuit ACDC keeps, and the passes it took.
struct acdc_result {
  std::vector<int> edges;  ///< the edges kept, ascending indices into graph.edges()
  double value = 0;        ///< the metric with every other edge patched from the corrupt run
  double threshold = 0;
  circuit_cost cost;
};

namespace detail {

template <runtime R, class M>
acdc_result acdc_prune(edge_runs<R>& runs, const edge_graph& graph, const M& metric, const acdc_options& options,
                       const char* function) {
  if (!(options.threshold >= 0) || !std::isfinite(options.threshold))
    throw argument_error(function, "options.threshold", detail::str("is ", options.threshold), "needs a finite tau >= 0");
  const circuit_cost before = runs.cost;
  std::vector<std::vector<int>> removed(1);
  double current = runs.run(metric, std::span<const std::vector<int>>(removed), 0)[0];
  for (int r = int(graph.receivers().size()) - 1; r >= 0; --r) {
    const auto& incoming = graph.incoming(r);
    for (auto e = incoming.rbegin(); e != incoming.rend(); ++e) {
      removed[0].push_back(*e);
      const double value = runs.run(metric, std::span<const std::vector<int>>(removed), 0)[0];
      const double change = value - current;
      if ((options.absolute ? std::abs(change) : change) < options.threshold) current = value;
      else removed[0].pop_back();
    }
  }
  acdc_result out;
  std::vector<bool> gone(graph.edges().size(), false);
  for (int e : removed[0]) gone[std::size_t(e)] = true;
  for (std::size_t e = 0; e < gone.size(); ++e)
    if (!gone[e]) out.edges.push_back(int(e));
  out.value = current;
  out.threshold = options.threshold;
  out.cost = {runs.cost.forwards - before.forwards, runs.cost.backwards - before.backwards,
              runs.cost.forward_equivalents - before.forward_equivalents};
  return out;
}

}  // namespace detail

/// ACDC on `graph` with a metric of the patched logits (evaluated with the clean tokens; lower
/// is closer to the clean behaviour). cost counts the pruning's forwards and the two cached runs.
template <runtime R, class M>
  requires(!std::same_as<M, acdc_options>)
acdc_result acdc(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                 const M& metric, const acdc_options& options = {}) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::acdc");
  const circuit_cost cached = runs.cost;
  acdc_result out = detail::acdc_prune(runs, graph, metric, options, "mint::acdc");
  out.cost.forwards += cached.forwards;
  out.cost.forward_equivalents += cached.forward_equivalents;
  return out;
}

/// ACDC with the paper's metric: the KL divergence from the clean run's next-token distribution
/// at each row's last valid position.
template <runtime R>
acdc_result acdc(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                 const acdc_options& options = {}) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::acdc");
  const circuit_cost cached = runs.cost;
  acdc_result out = detail::acdc_prune(runs, graph, kl_divergence(runs.clean_logits(), clean), options, "mint::acdc");
  out.cost.forwards += cached.forwards;
  out.cost.forward_equivalents += cached.forward_equivalents;
  return out;
}

/// ACDC at each threshold, sharing the two cached runs (ACDC's ROC sweep used 21 values of
/// tau = 10^linspace(-4, 0)). Each result's cost is its own pruning.
template <runtime R, class M>
std::vector<acdc_result> acdc_sweep(R& model, const edge_graph& graph, const token_batch& clean,
                                    const edge_source& corrupt, const M& metric, std::span<const double> thresholds,
                                    bool absolute = false) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::acdc_sweep");
  std::vector<acdc_result> out;
  for (double tau : thresholds)
    out.push_back(detail::acdc_prune(runs, graph, metric, {.threshold = tau, .absolute = absolute}, "mint::acdc_sweep"));
  return out;
}

/// acdc_sweep with the KL divergence from the clean run at each row's last valid position.
template <runtime R>
std::vector<acdc_result> acdc_sweep(R& model, const edge_graph& graph, const token_batch& clean,
                                    const edge_source& corrupt, std::span<const double> thresholds) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::acdc_sweep");
  const kl_divergence metric(runs.clean_logits(), clean);
  std::vector<acdc_result> out;
  for (double tau : thresholds)
    out.push_back(detail::acdc_prune(runs, graph, metric, {.threshold = tau}, "mint::acdc_sweep"));
  return out;
}

/// n thresholds 10^linspace(lowest, highest) (ACDC's sweep: 21, -4, 0).
inline std::vector<double> log_thresholds(int n = 21, double lowest = -4, double highest = 0) {
  if (n < 1)
    throw argument_error("mint::log_thresholds", "n", detail::str("is ", n), "needs at least 1");
  std::vector<double> out;
  for (int i = 0; i < n; ++i) out.push_back(std::pow(10.0, n == 1 ? lowest : lowest + (highest - lowest) * i / (n - 1)));
  return out;
}

}  // namespace mint
