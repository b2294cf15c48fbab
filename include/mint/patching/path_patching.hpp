// Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023) on a runtime's residual edge
// graph: the effect of senders on receivers through the direct edges only. A patched edge
// s -> r makes receiver r see sender s's output from the corrupt run in place of its current
// one (edge_patching.hpp); everything else runs as in the clean input, so what moves, moves
// through r. path_patch() patches every edge from a sender set to a receiver set at once;
// path_patching() sweeps each sender into a receiver set, many senders per forward as copies
// of the batch. Exact: no linear approximation.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/patching/direction.hpp"
#include "mint/patching/edge_patching.hpp"

namespace mint {

/// The edges of `graph` from any of `senders` to any of `receivers` (node names).
inline std::vector<int> edges_between(const edge_graph& graph, const std::vector<std::string>& senders,
                                      const std::vector<std::string>& receivers) {
  std::vector<int> s, out;
  for (const auto& name : senders) s.push_back(graph.sender(name));
  for (const auto& name : receivers)
    for (int e : graph.incoming(graph.receiver(name)))
      if (std::find(s.begin(), s.end(), graph.edges()[std::size_t(e)].sender) != s.end()) out.push_back(e);
  return out;
}

/// Options of path_patching.
struct path_patching_options {
  std::vector<std::string> receivers{};  ///< receiver names ("L1H0.k", "mlp1.in", "resid_final"); required
  std::vector<std::string> senders{};    ///< senders swept; empty: every sender with an edge into a receiver
  /// noising (the paper's): the clean run with a sender's corrupt output along the paths, 1 for a
  /// path that carries nothing; denoising: the corrupt run with the clean output, 0 for nothing.
  patch_direction direction = patch_direction::noising;
  bool normalize = true;                 ///< (patched - corrupt) / (clean - corrupt); false: the metric as is
  index max_batch = 0;                   ///< rows per forward, at least the batch's; 0: every sender at once
};

/// What path_patching returns.
struct path_patching_result {
  double clean_value = 0, corrupt_value = 0;
  std::vector<std::string> senders;  ///< in the order swept
  std::vector<double> values;        ///< per sender: the metric with its edges into the receivers patched
};

/// The metric on the clean input with every edge from `senders` to `receivers` patched from the corrupt input.
template <runtime R, class M>
double path_patch(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt, const M& metric,
                  const std::vector<std::string>& senders, const std::vector<std::string>& receivers) {
  const auto edges = edges_between(graph, senders, receivers);
  const auto logits = patch_edges(model, graph, clean, corrupt, edges);
  return metric.value(logits, clean);
}

/// Sweeps each sender's edges into options.receivers, one sender per copy of the batch.
template <runtime R, class M>
path_patching_result path_patching(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt,
                                   const M& metric, const path_patching_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::path_patching";
  if (clean.batch() == 0 || clean.positions() == 0 || clean.batch() != corrupt.batch() ||
      clean.positions() != corrupt.positions())
    throw shape_error(fn, "clean/corrupt", detail::str("are [", clean.batch(), ", ", clean.positions(), "] and [",
                                                       corrupt.batch(), ", ", corrupt.positions(), "]"),
                      "needs two non-empty batches of the same shape");
  if (options.receivers.empty()) throw argument_error(fn, "options.receivers", "is empty", "needs receiver names");
  std::vector<int> receivers;
  for (const auto& name : options.receivers) receivers.push_back(graph.receiver(name));
  std::vector<int> senders;
  if (options.senders.empty()) {
    for (int r : receivers)
      for (int e : graph.incoming(r)) {
        const int s = graph.edges()[std::size_t(e)].sender;
        if (std::find(senders.begin(), senders.end(), s) == senders.end()) senders.push_back(s);
      }
    std::sort(senders.begin(), senders.end());
  } else {
    for (const auto& name : options.senders) senders.push_back(graph.sender(name));
  }
  const index batch = clean.batch();
  if (options.max_batch < 0 || (options.max_batch > 0 && options.max_batch < batch))
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));

  const site_table& sites = model.sites();
  std::vector<std::string> sender_sites;
  for (int s : senders) {
    const std::string& name = sites[graph.senders()[std::size_t(s)].site].name;
    if (std::find(sender_sites.begin(), sender_sites.end(), name) == sender_sites.end()) sender_sites.push_back(name);
  }
  path_patching_result out;
  for (int s : senders) out.senders.push_back(graph.senders()[std::size_t(s)].name);
  // The run patched and the one whose sender outputs go along the paths.
  const bool noising = options.direction == patch_direction::noising;
  const token_batch& base = noising ? clean : corrupt;
  const auto source_run = run_with_cache(model, noising ? corrupt : clean, sender_sites);
  hook_set<T> none;
  const double base_value = metric.value(model.forward(base, none), clean);
  const double source_value = metric.value(source_run.logits, clean);
  out.clean_value = noising ? base_value : source_value;
  out.corrupt_value = noising ? source_value : base_value;
  const double span = out.clean_value - out.corrupt_value;
  if (options.normalize && !(std::abs(span) > 0))
    throw argument_error(fn, "clean/corrupt", detail::str("give the same metric, ", out.clean_value),
                         "needs runs the metric tells apart to normalise (or normalize = false)");

  const index total = index(senders.size());
  const index per_pass = options.max_batch == 0 ? total : std::max<index>(1, options.max_batch / batch);
  for (index first = 0; first < total; first += per_pass) {
    const index copies = std::min(per_pass, total - first);
    const token_batch rows = detail::repeat_rows(base, copies);
    activation_cache<T> current(sites, sender_sites);
    current.reserve(rows.batch(), rows.positions());
    hook_set<T> hooks(sites);
    current.attach(hooks);  // senders come before their receivers, so these fill first
    for (int r : receivers) {
      const graph_node& receiver = graph.receivers()[std::size_t(r)];
      // Which copy's sender has an edge into this receiver.
      std::vector<int> sender_of(std::size_t(copies), -1);
      for (int e : graph.incoming(r))
        for (index k = 0; k < copies; ++k)
          if (graph.edges()[std::size_t(e)].sender == senders[std::size_t(first + k)]) sender_of[std::size_t(k)] = senders[std::size_t(first + k)];
      if (std::all_of(sender_of.begin(), sender_of.end(), [](int s) { return s < 0; })) continue;
      hooks.add(receiver.site, [&, receiver, sender_of](hook_call<T>& c) {
        for (index row = 0; row < c.activation.extent(0); ++row) {
          const int s = sender_of[std::size_t(row / batch)];
          if (s < 0) continue;
          const graph_node& sender = graph.senders()[std::size_t(s)];
          const site_info& info = sites[sender.site];
          const tensor_view<T> target = detail::node_part(c.activation, c.site, receiver.head, 0, fn).subview(row);
          tensor_view<const T> from = detail::node_part(source_run.cache[info.name], info, sender.head, 0, fn).subview(row % batch);
          tensor_view<const T> now = detail::node_part(current[info.name], info, sender.head, 0, fn).subview(row);
          if (info.axis_of(axis::pos) == 1) {  // the call's positions of the whole-sequence caches
            from = from.narrow(0, c.chunk_begin, c.chunk_end);
            now = now.narrow(0, c.chunk_begin, c.chunk_end);
          }
          detail::for_each_index(target.extents(), [&](const auto& i) {
            detail::element_at(target, i) += detail::element_at(from, i) - detail::element_at(now, i);
          });
        }
      }, {.needs = access::add});
    }
    const tensor_view<const T> logits = model.forward(rows, hooks);
    for (index k = 0; k < copies; ++k) {
      const double v = metric.value(logits.narrow(0, k * batch, (k + 1) * batch), clean);
      out.values.push_back(options.normalize ? (v - out.corrupt_value) / span : v);
    }
  }
  return out;
}

}  // namespace mint
