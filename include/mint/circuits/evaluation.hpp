// How good a found circuit or an edge scoring is: against a known edge set (ROC AUC,
// precision and recall), against the exact scores (rank correlation, top-k overlap), and by
// what it does (the faithfulness curve: the metric recovered by the top k edges alone, the rest
// patched from the corrupt run, for many k in batched passes).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mint/circuits/edge_sets.hpp"
#include "mint/core/error.hpp"
#include "mint/model/site_values.hpp"
#include "mint/similarity/detail/rank.hpp"

namespace mint {

/// The indices of named edges (sender, receiver), as a known circuit lists them.
inline std::vector<int> edge_indices(const edge_graph& graph,
                                     const std::vector<std::pair<std::string, std::string>>& names) {
  std::vector<int> out;
  for (const auto& [s, r] : names) out.push_back(graph.edge(s, r));
  return out;
}

namespace detail {

/// Per edge: 1 in the truth, 0 outside it, -1 excluded.
inline std::vector<int> edge_labels(std::size_t edges, std::span<const int> truth, std::span<const int> excluded,
                                    const char* function) {
  std::vector<int> label(edges, 0);
  auto mark = [&](std::span<const int> list, int value, const char* name) {
    for (int e : list) {
      if (e < 0 || std::size_t(e) >= edges)
        throw argument_error(function, name, detail::str("holds ", e), detail::str("needs edge indices below ", edges));
      label[std::size_t(e)] = value;
    }
  };
  mark(truth, 1, "truth");
  mark(excluded, -1, "excluded");  // excluded wins
  std::size_t positives = 0, negatives = 0;
  for (int l : label) positives += l == 1, negatives += l == 0;
  if (positives == 0 || negatives == 0)
    throw argument_error(function, "truth", detail::str("leaves ", positives, " edges in and ", negatives, " out"),
                         "needs at least one of each");
  return label;
}

/// Throws a named error when a scoring holds NaN or infinity.
inline void require_scores(std::span<const double> scores, const char* function, const char* argument) {
  require_finite(tensor_view<const double>(scores.data(), {index(scores.size())}), function, argument);
}

/// Edge indices by |score|, largest first (ties: lower index first).
inline std::vector<int> by_magnitude(std::span<const double> scores) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return std::abs(scores[std::size_t(a)]) > std::abs(scores[std::size_t(b)]); });
  return order;
}

}  // namespace detail

/// ROC AUC of ranking edges by |score| against a known edge set: the chance that a circuit edge
/// scores above an edge outside it (ties count half). Excluded edges (such as positional edges
/// no patching between inputs of one length can see) count as neither.
inline double roc_auc(std::span<const double> scores, std::span<const int> truth, std::span<const int> excluded = {}) {
  detail::require_scores(scores, "mint::roc_auc", "scores");
  const auto label = detail::edge_labels(scores.size(), truth, excluded, "mint::roc_auc");
  std::vector<double> magnitude;
  std::vector<int> kept;
  for (std::size_t e = 0; e < scores.size(); ++e)
    if (label[e] >= 0) magnitude.push_back(std::abs(scores[e])), kept.push_back(label[e]);
  const auto rank = detail::average_ranks<double, double>(magnitude);
  double positives = 0, rank_sum = 0;
  for (std::size_t i = 0; i < kept.size(); ++i)
    if (kept[i] == 1) positives += 1, rank_sum += rank[i];
  const double negatives = double(kept.size()) - positives;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);  // Mann-Whitney U / (P N)
}

/// Precision and recall of a found circuit (edge indices) against a known edge set.
struct precision_recall {
  double precision = 0;  ///< found circuit edges that are true / found (1 when nothing was found)
  double recall = 0;     ///< true edges found / true edges
  double false_positive_rate = 0;  ///< edges outside the truth found / edges outside the truth
};

/// Precision and recall of `circuit` against `truth` (edges in `excluded` count as neither).
inline precision_recall circuit_precision_recall(std::span<const int> circuit, std::size_t edges,
                                                 std::span<const int> truth, std::span<const int> excluded = {}) {
  const auto label = detail::edge_labels(edges, truth, excluded, "mint::circuit_precision_recall");
  double found = 0, hits = 0, positives = 0, negatives = 0, false_hits = 0;
  std::vector<bool> in(edges, false);
  for (int e : circuit) {
    if (e < 0 || std::size_t(e) >= edges)
      throw argument_error("mint::circuit_precision_recall", "circuit", detail::str("holds ", e),
                           detail::str("needs edge indices below ", edges));
    in[std::size_t(e)] = true;
  }
  for (std::size_t e = 0; e < edges; ++e) {
    if (label[e] < 0) continue;
    positives += label[e] == 1, negatives += label[e] == 0;
    if (!in[e]) continue;
    found += 1, hits += label[e] == 1, false_hits += label[e] == 0;
  }
  return {found > 0 ? hits / found : 1.0, hits / positives, false_hits / negatives};
}

/// ROC AUC of circuits found at several thresholds (an ACDC sweep): the area under the
/// (false positive rate, recall) points joined by straight lines, with (0, 0) and (1, 1) added.
inline double circuits_roc_auc(std::span<const std::vector<int>> circuits, std::size_t edges, std::span<const int> truth,
                               std::span<const int> excluded = {}) {
  std::vector<std::pair<double, double>> points{{0.0, 0.0}, {1.0, 1.0}};
  for (const auto& c : circuits) {
    const auto pr = circuit_precision_recall(c, edges, truth, excluded);
    points.emplace_back(pr.false_positive_rate, pr.recall);
  }
  std::sort(points.begin(), points.end());
  double area = 0;
  for (std::size_t i = 1; i < points.size(); ++i)
    area += (points[i].first - points[i - 1].first) * (points[i].second + points[i - 1].second) / 2;
  return area;
}

/// Spearman's rank correlation of two scorings of the same edges (optionally of their top k by
/// |b|, the reference's, only; k = 0: all). Ranks by value, ties sharing their mean rank.
inline double rank_correlation(std::span<const double> a, std::span<const double> b, std::size_t top = 0) {
  const char* fn = "mint::rank_correlation";
  if (a.size() != b.size() || a.size() < 2)
    throw argument_error(fn, "a", detail::str("holds ", a.size(), " scores and b ", b.size()),
                         "needs two scorings of the same edges, at least 2");
  detail::require_scores(a, fn, "a");
  detail::require_scores(b, fn, "b");
  std::vector<double> x(a.begin(), a.end()), y(b.begin(), b.end());
  if (top > 0 && top < a.size()) {
    const auto order = detail::by_magnitude(b);
    x.clear(), y.clear();
    for (std::size_t i = 0; i < top; ++i) x.push_back(a[std::size_t(order[i])]), y.push_back(b[std::size_t(order[i])]);
  }
  const auto rx = detail::average_ranks<double, double>(x), ry = detail::average_ranks<double, double>(y);
  const double mean = (double(rx.size()) + 1) / 2;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

/// The share of the top k edges by |a| that are also among the top k by |b|.
inline double top_k_overlap(std::span<const double> a, std::span<const double> b, std::size_t k) {
  if (a.size() != b.size() || k == 0 || k > a.size())
    throw argument_error("mint::top_k_overlap", "k", detail::str("is ", k, " for ", a.size(), " and ", b.size(), " scores"),
                         "needs two scorings of the same edges and 1 <= k <= their count");
  detail::require_scores(a, "mint::top_k_overlap", "a");
  detail::require_scores(b, "mint::top_k_overlap", "b");
  auto top = [&](std::span<const double> s) {
    auto order = detail::by_magnitude(s);
    order.resize(k);
    std::sort(order.begin(), order.end());
    return order;
  };
  const auto x = top(a), y = top(b);
  std::vector<int> both;
  std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(both));
  return double(both.size()) / double(k);
}

/// Which circuit sizes faithfulness_curve evaluates, and how it batches.
struct faithfulness_options {
  /// Circuit sizes (edge counts); empty: 0, the edge count and up to 48 sizes evenly between.
  std::vector<index> sizes{};
  index max_batch = 0;  ///< rows per forward (each size is one copy of the batch); 0: every size at once
  double share = 0.8;   ///< the recovered share smallest_recovering looks for
};

/// The metric recovered by circuits of growing size: the top k edges by |score| kept, every
/// other edge patched from the corrupt run.
struct faithfulness_result {
  std::vector<index> sizes;
  std::vector<double> values;     ///< the metric with the top `size` edges kept
  std::vector<double> recovered;  ///< (value - corrupt) / (clean - corrupt): 0 at no edges, 1 at all
  double clean_value = 0, corrupt_value = 0;
  double area = 0;                ///< of recovered over size / edges in [0, 1], trapezoids between the sizes
  index smallest_recovering = -1;  ///< the smallest size recovering >= options.share (0.8); -1: none
  circuit_cost cost;
};

/// The faithfulness curve of an edge scoring (exact, EAP, EAP-IG, or any per-edge score).
template <runtime R, class M>
faithfulness_result faithfulness_curve(R& model, const edge_graph& graph, const token_batch& clean,
                                       const edge_source& corrupt, const M& metric, std::span<const double> scores,
                                       const faithfulness_options& options = {}) {
  const char* fn = "mint::faithfulness_curve";
  const std::size_t edges = graph.edges().size();
  if (scores.size() != edges)
    throw argument_error(fn, "scores", detail::str("holds ", scores.size(), " values"),
                         detail::str("needs one per edge of the graph, ", edges));
  detail::require_scores(scores, fn, "scores");
  faithfulness_result out;
  out.sizes = options.sizes;
  if (out.sizes.empty()) {
    const index steps = std::min<index>(index(edges), 49);
    for (index i = 0; i <= steps; ++i) out.sizes.push_back(index(std::llround(double(edges) * double(i) / double(steps))));
  }
  for (index k : out.sizes)
    if (k < 0 || std::size_t(k) > edges)
      throw argument_error(fn, "options.sizes", detail::str("holds ", k), detail::str("needs sizes from 0 to ", edges));
  const auto order = detail::by_magnitude(scores);
  std::vector<std::vector<int>> sets;  // the complement of each circuit, then everything patched
  for (index k : out.sizes) sets.emplace_back(order.begin() + k, order.end());
  detail::edge_runs<R> runs(model, graph, clean, corrupt, fn);
  out.values = runs.run(metric, std::span<const std::vector<int>>(sets), options.max_batch);
  out.clean_value = metric.value(runs.clean_logits().view(), clean);
  out.corrupt_value = runs.all_patched(metric);
  const double span = out.clean_value - out.corrupt_value;
  for (double v : out.values) out.recovered.push_back(span != 0 ? (v - out.corrupt_value) / span : 0.0);
  std::vector<std::size_t> by_size(out.sizes.size());
  std::iota(by_size.begin(), by_size.end(), std::size_t(0));
  std::stable_sort(by_size.begin(), by_size.end(), [&](std::size_t a, std::size_t b) { return out.sizes[a] < out.sizes[b]; });
  for (std::size_t i = 0; i < by_size.size(); ++i) {
    const std::size_t j = by_size[i];
    if (out.smallest_recovering < 0 && out.recovered[j] >= options.share) out.smallest_recovering = out.sizes[j];
    if (i > 0) {
      const std::size_t p = by_size[i - 1];
      out.area += double(out.sizes[j] - out.sizes[p]) / double(edges) * (out.recovered[j] + out.recovered[p]) / 2;
    }
  }
  out.cost = runs.cost;
  return out;
}

}  // namespace mint
