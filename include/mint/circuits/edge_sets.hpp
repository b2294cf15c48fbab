// The metric with sets of edges patched, many sets per forward: what exact edge scores, ACDC
// and faithfulness curves share. In each copy of the clean batch, every edge s -> r of the
// copy's set makes receiver r see sender s's output from the corrupt run (r's input gets
// out_s corrupt - out_s current added, as patch_edges does). A runtime that resumes at a block
// (resumable_runtime) runs a copy from the earliest block its set's receivers are in, starting
// from the clean run's residual there: nothing before that block can change.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/ablation.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/replaced_runs.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// The passes a circuit method ran. forward_equivalents counts the blocks run, in whole forwards
/// of the batch: a pass over k copies of the batch from block l of L adds k (L - l) / L.
struct circuit_cost {
  index forwards = 0;
  index backwards = 0;
  double forward_equivalents = 0;
};

/// What a patched (removed) edge's receiver sees from its sender instead of the current output:
/// the sender's output on another input (a token_batch converts: the corrupt run, as ACDC and
/// auto-circuit patch), or an ablation of it (mint::ablation: zero, mean over a reference batch,
/// one resampled draw, given values). Only zero, mean or given values can see positional edges.
struct edge_source {
  edge_source(const token_batch& corrupt) : removal(ablation::run(corrupt)) {}  // NOLINT: converts on purpose
  edge_source(ablation a) : removal(std::move(a)) {}                             // NOLINT
  ablation removal;
};

/// How edge_set_metrics batches its runs.
struct edge_set_options {
  /// Rows per forward (each set is one copy of the batch's rows); 0: no bound.
  index max_batch = 0;
};

/// The metric for each edge set, and the passes that took.
struct edge_set_result {
  std::vector<double> values;
  circuit_cost cost;
};

namespace detail {

/// What the senders send when an edge is patched: their outputs on the corrupt input (one cached
/// run, whose logits are the run with every edge patched), or an ablation of each sender site.
template <runtime R>
class sender_replacements {
public:
  using T = scalar_t<R>;

  sender_replacements(R& model, const std::vector<std::string>& sites, const token_batch& clean,
                      const edge_source& source, const char* function) {
    const ablation& a = source.removal;
    if (a.what == ablation::kind::run) {
      if (clean.batch() != a.reference.batch() || clean.positions() != a.reference.positions())
        throw shape_error(function, "corrupt", detail::str("is [", a.reference.batch(), ", ", a.reference.positions(), "]"),
                          detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
      run_ = run_with_cache(model, a.reference, sites);
      return;
    }
    if (a.what == ablation::kind::resample && a.draws != 1)
      throw argument_error(function, "corrupt", detail::str("resamples ", a.draws, " draws"), "needs one draw");
    for (const auto& name : sites) values_.emplace_back(name, ablation_values(model, name, clean, a));
  }

  /// The replacement of a site's activation, [batch, ...] as the clean batch.
  tensor_view<const T> operator[](const std::string& name) const {
    if (values_.empty()) return run_.cache[name];
    for (const auto& [n, v] : values_)
      if (n == name) return v.view();
    return run_.cache[name];  // throws, naming the site
  }
  /// The logits with every sender replaced: the corrupt run's; empty for an ablation.
  const array<T>& logits() const noexcept { return run_.logits; }
  /// Whether a forward ran (the corrupt input's).
  bool ran() const noexcept { return values_.empty(); }

private:
  cached_run<T> run_;
  std::vector<std::pair<std::string, array<T>>> values_;
};

/// The clean run and the senders' replacements an edge method patches between, cached once: every
/// sender's output in both, and (for a resumable runtime) the clean residual entering each block.
template <runtime R>
class edge_runs {
public:
  using T = scalar_t<R>;

  edge_runs(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& source, const char* function)
      : model_(model), graph_(graph), clean_(clean), function_(function) {
    require_tokens(clean, function);
    const site_table& sites = model.sites();
    require_graph_of(sites, graph, function);
    for (const graph_node& s : graph.senders()) add_unique(sender_sites_, sites[s.site].name);
    for (const auto& info : sites) layers_ = std::max(layers_, info.layer + 1);
    std::vector<std::string> clean_sites = sender_sites_;
    if constexpr (resumable_runtime<R>)
      for (int l = 0; l < layers_; ++l)
        if (const site_id id = find_resid_pre(sites, l); id >= 0) add_unique(clean_sites, sites[id].name);
    replacements_ = std::make_unique<sender_replacements<R>>(model, sender_sites_, clean, source, function);
    clean_run_ = run_with_cache(model, clean, clean_sites);
    cost.forwards += replacements_->ran() ? 2 : 1;
    cost.forward_equivalents += replacements_->ran() ? 2 : 1;
  }

  /// The metric with every edge patched: the corrupt run's, or (ablations) one more forward.
  template <class M>
  double all_patched(const M& metric) {
    if (replacements_->ran()) return metric.value(replacements_->logits().view(), clean_);
    std::vector<std::vector<int>> all(1);
    for (int e = 0; e < int(graph_.edges().size()); ++e) all[0].push_back(e);
    return run(metric, std::span<const std::vector<int>>(all), 0)[0];
  }

  const array<T>& clean_logits() const noexcept { return clean_run_.logits; }

  /// The metric (on the clean tokens) with each set patched; an empty set is the clean run.
  template <class M>
  std::vector<double> run(const M& metric, std::span<const std::vector<int>> sets, index max_batch) {
    const index batch = clean_.batch();
    if (max_batch < 0 || (max_batch > 0 && max_batch < batch))
      throw argument_error(function_, "options.max_batch", detail::str("is ", max_batch),
                           detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
    const site_table& sites = model_.sites();
    const auto& edges = graph_.edges();
    std::vector<double> out(sets.size());
    // Sets grouped by the block their runs start at (-1: the tokens).
    std::map<int, std::vector<std::size_t>> groups;
    for (std::size_t k = 0; k < sets.size(); ++k) {
      if (sets[k].empty()) {
        out[k] = metric.value(clean_run_.logits.view(), clean_);
        continue;
      }
      int start = layers_;
      for (int e : sets[k]) {
        if (e < 0 || e >= int(edges.size()))
          throw argument_error(function_, "edges", detail::str("holds ", e),
                               detail::str("needs indices below ", edges.size()));
        const site_info& info = sites[graph_.receivers()[std::size_t(edges[std::size_t(e)].receiver)].site];
        start = std::min(start, resumable_runtime<R> ? resume_layer(sites, info) : -1);
      }
      groups[start].push_back(k);
    }
    const index per_pass = max_batch == 0 ? index(sets.size()) : std::max<index>(1, max_batch / batch);
    for (const auto& [start, members] : groups)
      for (std::size_t first = 0; first < members.size(); first += std::size_t(per_pass)) {
        const std::span<const std::size_t> pass(members.data() + first,
                                                std::min(members.size() - first, std::size_t(per_pass)));
        run_pass(metric, sets, pass, start, out);
      }
    return out;
  }

  circuit_cost cost;

private:
  static void add_unique(std::vector<std::string>& names, const std::string& name) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }

  template <class M>
  void run_pass(const M& metric, std::span<const std::vector<int>> sets, std::span<const std::size_t> pass, int start,
                std::vector<double>& out) {
    const site_table& sites = model_.sites();
    const auto& edges = graph_.edges();
    const index batch = clean_.batch(), copies = index(pass.size());
    // Per copy, the edges into each receiver; and the sender sites whose output a patch can
    // change (those after one of the copy's receivers): their current values are cached.
    std::vector<std::vector<std::vector<int>>> into(pass.size(), std::vector<std::vector<int>>(graph_.receivers().size()));
    std::vector<site_id> receiver_sites;
    std::vector<std::string> changing;
    for (std::size_t k = 0; k < pass.size(); ++k) {
      site_id first_receiver = site_id(sites.size());
      for (int e : sets[pass[k]]) {
        const graph_edge& edge = edges[std::size_t(e)];
        into[k][std::size_t(edge.receiver)].push_back(edge.sender);
        const site_id r = graph_.receivers()[std::size_t(edge.receiver)].site;
        first_receiver = std::min(first_receiver, r);
        if (std::find(receiver_sites.begin(), receiver_sites.end(), r) == receiver_sites.end()) receiver_sites.push_back(r);
      }
      for (int e : sets[pass[k]]) {
        const site_id s = graph_.senders()[std::size_t(edges[std::size_t(e)].sender)].site;
        if (s > first_receiver) add_unique(changing, sites[s].name);
      }
    }
    const token_batch rows = repeat_rows(clean_, copies);
    hook_set<T> hooks(sites);
    activation_cache<T> current(sites, changing);
    if (!changing.empty()) {
      current.reserve(rows.batch(), rows.positions());
      current.attach(hooks);  // senders come before the receivers they feed, so these fill first
    }
    // Per sender, whether its current output is cached (else the clean run's is current).
    std::vector<bool> cached(graph_.senders().size(), false);
    for (std::size_t s = 0; s < cached.size(); ++s)
      cached[s] = std::find(changing.begin(), changing.end(), sites[graph_.senders()[s].site].name) != changing.end();
    for (const site_id id : receiver_sites) {
      const site_info& info = sites[id];
      std::vector<std::size_t> at_site;  // the receivers at this site
      for (std::size_t r = 0; r < graph_.receivers().size(); ++r)
        if (graph_.receivers()[r].site == id) at_site.push_back(r);
      hooks.add(id, [&, at_site](hook_call<T>& c) {
        for (index row = 0; row < c.activation.extent(0); ++row) {
          const std::size_t k = std::size_t(row / batch);
          const index b = row % batch;
          for (const std::size_t r : at_site) {
            if (into[k][r].empty()) continue;
            auto target = as_matrix(node_part(c.activation.subview(row), info, graph_.receivers()[r].head, 1, function_));
            for (const int s : into[k][r]) {
              const graph_node& sender = graph_.senders()[std::size_t(s)];
              const site_info& from = sites[sender.site];
              const auto window = [&](tensor_view<const T> full, index r0) {
                return node_part(row_window(full, from, r0, c.chunk_begin, c.chunk_end), from, sender.head, 1, function_);
              };
              const bool changed = cached[std::size_t(s)] && current.filled(from.name);
              target += as_matrix(window((*replacements_)[from.name], b)) -
                        as_matrix(changed ? window(current[from.name], row) : window(clean_run_.cache[from.name], b));
            }
          }
        }
      }, {.needs = access::add});
    }
    tensor_view<const T> logits;
    if constexpr (resumable_runtime<R>) {
      if (start >= 0) {
        const tensor_view<const T> own = clean_run_.cache[sites[find_resid_pre(sites, start)].name];
        resid_.resize({copies * batch, own.extent(1), own.extent(2)});
        for (index k = 0; k < copies; ++k) mint::copy(own, resid_.view().narrow(0, k * batch, (k + 1) * batch));
        logits = model_.forward_from(start, std::as_const(resid_).view(), rows, hooks);
      }
    }
    if (logits.empty()) logits = model_.forward(rows, hooks);
    if (logits.rank() != 3 || logits.extent(0) != rows.batch())
      throw shape_error(function_, "logits", "have extents " + shape_string(logits.extents()),
                        detail::str("need [", rows.batch(), ", ", rows.positions(), ", vocab] from the runtime's forward"));
    for (index k = 0; k < copies; ++k)
      out[pass[std::size_t(k)]] = metric.value(logits.narrow(0, k * batch, (k + 1) * batch), clean_);
    cost.forwards += 1;
    cost.forward_equivalents += double(copies) * double(layers_ - std::max(start, 0)) / double(std::max(layers_, 1));
  }

  R& model_;
  const edge_graph& graph_;
  const token_batch& clean_;
  const char* function_;
  int layers_ = 0;
  std::vector<std::string> sender_sites_;
  std::unique_ptr<sender_replacements<R>> replacements_;
  cached_run<T> clean_run_;
  array<T> resid_;
};

}  // namespace detail

/// The metric (evaluated on the clean tokens) on the clean batch with each edge set (indices
/// into graph.edges()) patched from `corrupt` (another input, or an ablation); an empty set gives
/// the clean run's value. Costs two cached runs and one forward per pass of sets
/// (options.max_batch bounds a pass).
template <runtime R, class M>
edge_set_result edge_set_metrics(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                                 const M& metric, std::span<const std::vector<int>> sets,
                                 const edge_set_options& options = {}) {
  detail::edge_runs<R> runs(model, graph, clean, corrupt, "mint::edge_set_metrics");
  edge_set_result out;
  out.values = runs.run(metric, sets, options.max_batch);
  out.cost = runs.cost;
  return out;
}

}  // namespace mint
