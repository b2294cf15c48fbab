// Edge patching on a runtime's residual graph (as auto-circuit does): in one
// forward pass of the clean input, each patched edge s -> r makes receiver r
// see sender s's output from the corrupt run in place of its current output,
// by adding (out_s corrupt - out_s current) to r's input. Cost: one corrupt
// forward (cached) and one patched forward, whatever the number of edges.
#pragma once

#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// Logits [batch, pos, vocab] of `clean` with `edges` (indices into graph.edges()) patched from `corrupt`.
template <runtime R>
array<scalar_t<R>> patch_edges(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt,
                               std::span<const int> edges) {
  using T = scalar_t<R>;
  const char* fn = "mint::patch_edges";
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(fn, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
  const site_table& sites = model.sites();

  // Which senders and receivers take part, and the sites they live at.
  std::vector<std::vector<int>> patched_into(graph.receivers().size());
  std::vector<std::string> sender_sites;
  for (int e : edges) {
    if (e < 0 || e >= int(graph.edges().size()))
      throw argument_error(fn, "edges", detail::str("holds ", e), detail::str("needs indices below ", graph.edges().size()));
    const auto& edge = graph.edges()[std::size_t(e)];
    patched_into[std::size_t(edge.receiver)].push_back(edge.sender);
    const std::string& name = sites[graph.senders()[std::size_t(edge.sender)].site].name;
    if (std::find(sender_sites.begin(), sender_sites.end(), name) == sender_sites.end()) sender_sites.push_back(name);
  }

  const auto corrupt_run = run_with_cache(model, corrupt, sender_sites);
  activation_cache<T> current(sites, sender_sites);
  current.reserve(clean.batch(), clean.positions());
  hook_set<T> hooks(sites);
  current.attach(hooks);  // senders come before their receivers, so these fill first

  for (std::size_t r = 0; r < patched_into.size(); ++r) {
    if (patched_into[r].empty()) continue;
    hooks.add(graph.receivers()[r].site, [&, r](hook_call<T>& c) {
      auto target = as_matrix(detail::node_part(c.activation, c.site, graph.receivers()[r].head, 0, fn));
      for (int s : patched_into[r]) {
        const graph_node& sender = graph.senders()[std::size_t(s)];
        const site_info& info = sites[sender.site];
        target += as_matrix(detail::node_part(corrupt_run.cache[info.name], info, sender.head, 0, fn)) -
                  as_matrix(detail::node_part(current[info.name], info, sender.head, 0, fn));
      }
    }, {.needs = access::add});
  }
  const auto logits = model.forward(clean, hooks);
  return array<T>::copy_of(logits);
}

}  // namespace mint
