// Edge attribution patching (EAP, Syed et al. 2023) and its integrated-gradients form (EAP-IG,
// Hanna et al. 2024): every edge's exact score estimated at once. EAP:
//   score(s -> r) = sum over rows, positions, features of (out_s corrupt - out_s clean) * dM/d(in_r)
// with the gradient at the clean run: 2 forwards and 1 backward for all edges. EAP-IG replaces
// the gradient by its average along the straight path between the corrupt and the clean input
// embeddings, e_a = e_corrupt + a (e_clean - e_corrupt), at the points of a step rule (default
// 5 left Riemann points, a = 0, 1/5, ..., 4/5, as the paper's README); the points run as copies
// of the batch. Its activations path moves one sender site's outputs at a time instead
// (out_a = out_corrupt + a (out_clean - out_corrupt), every other site computed as it comes) and
// scores that site's edges from the gradients it gives: a path per site, so the integral follows
// each sender rather than the input. (The paper's code adds every site's path into every edge;
// here a sender's edges see its own path only.) The sums over senders and receivers are one
// product [senders, n] x [n, receivers].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mint/attribution/detail/passes.hpp"
#include "mint/attribution/integration.hpp"
#include "mint/circuits/detail/edge_gradient_sums.hpp"
#include "mint/circuits/edge_sets.hpp"
#include "mint/circuits/scores.hpp"

namespace mint {

/// What EAP-IG moves from the corrupt run to the clean one.
enum class eap_ig_path : std::uint8_t {
  inputs,      ///< the input embeddings, every sender along (the paper's EAP-IG-inputs; one path)
  activations  ///< one sender site's outputs at a time, the rest clean (EAP-IG-activations; a path per site)
};

/// How eap_ig_scores integrates.
struct eap_ig_options {
  int steps = 5;                              ///< points on the path
  step_rule rule = step_rule::riemann_left;   ///< where on the path (integration.hpp)
  std::string site{};                         ///< inputs path: where inputs are interpolated; empty: the runtime's embedding site
  index max_batch = 0;                        ///< rows per forward (steps x batch rows in all); 0: every step at once
  eap_ig_path path = eap_ig_path::inputs;     ///< what is interpolated
};

/// EAP scores of every edge of `graph` (the metric evaluated on the clean tokens; its gradient
/// taken on the clean run).
template <differentiable_runtime R, class M>
edge_scores eap_scores(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                       const M& metric) {
  using T = scalar_t<R>;
  const char* fn = "mint::eap_scores";
  detail::require_tokens(clean, fn);
  const site_table& sites = model.sites();
  detail::require_graph_of(sites, graph, fn);
  edge_scores out;
  const detail::sender_replacements<R> replaced(model, detail::node_sites(sites, graph.senders()), clean, corrupt, fn);
  out.corrupt_value = replaced.ran() ? metric.value(replaced.logits().view(), clean) : std::nan("");
  detail::edge_gradient_sums<T> sums(sites, graph, clean.batch(), fn);
  hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
  sums.attach_deltas(hooks, [&](const std::string& name) { return replaced[name]; });
  sums.attach_gradients(grad_hooks, 1);
  const tensor_view<const T> logits = model.forward(clean, hooks);
  array<T> dlogits(logits.extents());
  out.clean_value = metric.gradient(logits, clean, dlogits);
  model.backward(std::as_const(dlogits).view(), grad_hooks);
  out.values = sums.scores();
  out.cost = {.forwards = replaced.ran() ? 2 : 1, .backwards = 1, .forward_equivalents = replaced.ran() ? 2.0 : 1.0};
  return out;
}

/// EAP-IG scores of every edge of `graph`: the gradient averaged over the points of options.rule
/// on the path from the corrupt run (a = 0) to the clean one (a = 1): of the input embeddings, or
/// (options.path activations) of each sender site's outputs in turn, scoring that site's edges.
template <differentiable_runtime R, class M>
edge_scores eap_ig_scores(R& model, const edge_graph& graph, const token_batch& clean, const edge_source& corrupt,
                          const M& metric, const eap_ig_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::eap_ig_scores";
  detail::require_tokens(clean, fn);
  const index batch = clean.batch();
  if (options.max_batch < 0 || (options.max_batch > 0 && options.max_batch < batch))
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  if (options.path != eap_ig_path::inputs && options.path != eap_ig_path::activations)
    throw argument_error(fn, "options.path", detail::str("is ", int(options.path)), "needs inputs or activations");
  if (options.path == eap_ig_path::activations && !options.site.empty())
    throw argument_error(fn, "options.site", "is '" + options.site + "'",
                         "needs to be empty on the activations path (it interpolates the senders' own sites)");
  const path_steps path = integration_steps(options.rule, options.steps);
  const site_table& sites = model.sites();
  detail::require_graph_of(sites, graph, fn);
  const bool inputs = options.path == eap_ig_path::inputs;
  std::vector<std::string> cached = detail::node_sites(sites, graph.senders());
  // What moves: the input site, or each sender site in turn.
  std::vector<site_id> moving;
  if (inputs) {
    moving.push_back(detail::attribution_site(sites, options.site, access::read | access::write, fn));
    if (std::find(cached.begin(), cached.end(), sites[moving[0]].name) == cached.end()) cached.push_back(sites[moving[0]].name);
  } else {
    for (const auto& name : cached) moving.push_back(detail::attribution_site(sites, name, access::read | access::write, fn));
  }

  // The corrupt run cached; the clean one leaves the senders' deltas and the moving sites' values.
  edge_scores out;
  const detail::sender_replacements<R> replaced(model, cached, clean, corrupt, fn);
  out.corrupt_value = replaced.ran() ? metric.value(replaced.logits().view(), clean) : std::nan("");
  detail::edge_gradient_sums<T> sums(sites, graph, batch, fn);
  std::vector<std::string> moving_names;
  for (const site_id m : moving) moving_names.push_back(sites[m].name);
  activation_cache<T> clean_values(sites, moving_names);
  clean_values.reserve(batch, clean.positions());
  {
    hook_set<T> hooks(sites);
    sums.attach_deltas(hooks, [&](const std::string& name) { return replaced[name]; });
    clean_values.attach(hooks);
    out.clean_value = metric.value(model.forward(clean, hooks), clean);
  }
  out.cost = {.forwards = replaced.ran() ? 2 : 1, .backwards = 0, .forward_equivalents = replaced.ran() ? 2.0 : 1.0};

  // The points as copies of the batch, each copy's dlogits weighted, max_batch rows a pass.
  const index steps = index(path.alphas.size());
  const index per_pass = options.max_batch == 0 ? steps : std::max<index>(1, options.max_batch / batch);
  for (const site_id at : moving) {
    const site_info& info = sites[at];
    const tensor_view<const T> from = replaced[info.name], to = clean_values[info.name];
    for (index first = 0; first < steps; first += per_pass) {
      const index copies = std::min(per_pass, steps - first);
      const token_batch rows = detail::repeat_rows(clean, copies);
      hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
      hooks.add(at, [&](hook_call<T>& c) {
        for (index r = 0; r < c.activation.extent(0); ++r) {
          const T a = T(path.alphas[std::size_t(first + r / batch)]);
          const index b = r % batch;
          auto dst = as_matrix(c.activation.subview(r));
          const auto f = as_matrix(detail::row_window(from, info, b, c.chunk_begin, c.chunk_end));
          const auto t = as_matrix(detail::row_window(to, info, b, c.chunk_begin, c.chunk_end));
          dst = f + a * (t - f);
        }
      }, {.needs = access::write});
      sums.attach_gradients(grad_hooks, copies, inputs ? std::string() : info.name);
      const tensor_view<const T> logits = model.forward(rows, hooks);
      array<T> dlogits(logits.extents());
      for (index k = 0; k < copies; ++k) {
        tensor_view<T> g = dlogits.view().narrow(0, k * batch, (k + 1) * batch);
        metric.gradient(logits.narrow(0, k * batch, (k + 1) * batch), clean, g);
        as_vector(g) *= T(path.weights[std::size_t(first + k)]);
      }
      model.backward(std::as_const(dlogits).view(), grad_hooks);
      out.cost.forwards += 1;
      out.cost.backwards += 1;
      out.cost.forward_equivalents += double(copies);
    }
  }
  out.values = sums.scores();
  return out;
}

}  // namespace mint
