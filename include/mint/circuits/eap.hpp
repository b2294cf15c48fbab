// Edge attribution patching (EAP, Syed et al. 2023) and its integrated-gradients form (EAP-IG,
// Hanna et al. 2024): every edge's exact score estimated at once. EAP:
//   score(s -> r) = sum over rows, positions, features of (out_s corrupt - out_s clean) * dM/d(in_r)
// with the gradient at the clean run: 2 forwards and 1 backward for all edges. EAP-IG replaces
// the gradient by its average along the straight path between the corrupt and the clean input
// embeddings, e_a = e_corrupt + a (e_clean - e_corrupt), at the points of a step rule (default
// 5 left Riemann points, a = 0, 1/5, ..., 4/5, as the paper's README); the points run as copies
// of the batch. The sums over senders and receivers are one product [senders, n] x [n, receivers].
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mint/attribution/detail/passes.hpp"
#include "mint/attribution/integration.hpp"
#include "mint/circuits/edge_sets.hpp"
#include "mint/circuits/scores.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/products.hpp"

namespace mint {

/// How eap_ig_scores integrates.
struct eap_ig_options {
  int steps = 5;                              ///< points on the path
  step_rule rule = step_rule::riemann_left;   ///< where on the path (integration.hpp)
  std::string site{};                         ///< where inputs are interpolated; empty: the runtime's embedding site
  index max_batch = 0;                        ///< rows per forward (steps x batch rows in all); 0: every step at once
};

namespace detail {

/// Sites (by name, in order) the nodes live at.
inline std::vector<std::string> node_sites(const site_table& sites, const std::vector<graph_node>& nodes) {
  std::vector<std::string> out;
  for (const graph_node& n : nodes)
    if (std::find(out.begin(), out.end(), sites[n.site].name) == out.end()) out.push_back(sites[n.site].name);
  return out;
}

/// Each node's slice of its site (taken from get(site name), [batch, ...]) as a row of the result.
template <class T, class Get>
matrix<T> node_rows(const site_table& sites, const std::vector<graph_node>& nodes, Get get, const char* function) {
  matrix<T> out;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const site_info& info = sites[nodes[i].site];
    const tensor_view<const T> part = node_part(tensor_view<const T>(get(info.name)), info, nodes[i].head, 0, function);
    if (i == 0) out.resize(index(nodes.size()), part.size());
    if (part.size() != out.cols())
      throw shape_error(function, "graph",
                        detail::str("node '", nodes[i].name, "' holds ", part.size(), " values, node '", nodes[0].name,
                                    "' ", out.cols()),
                        "needs every sender and receiver as wide as the residual stream");
    mint::copy(part, tensor_view<T>(out.row(index(i)).data(), part.extents()));
  }
  return out;
}

/// score(s -> r) = (out_s corrupt - out_s clean) . grad_r for every edge; each argument maps a
/// site's name to its [batch, ...] values.
template <class T, class Clean, class Corrupt, class Grad>
std::vector<double> eap_products(const site_table& sites, const edge_graph& graph, Clean clean, Corrupt corrupt,
                                 Grad grad, const char* function) {
  const matrix<T> deltas = node_rows<T>(sites, graph.senders(), corrupt, function) -
                           node_rows<T>(sites, graph.senders(), clean, function);
  const matrix<T> gradients = node_rows<T>(sites, graph.receivers(), grad, function);
  if (deltas.cols() != gradients.cols())
    throw shape_error(function, "graph", detail::str("has senders of ", deltas.cols(), " values and receivers of ",
                                                     gradients.cols()),
                      "needs every sender and receiver as wide as the residual stream");
  matrix<T> all(deltas.rows(), gradients.rows());
  fixed_order_product(deltas, gradients.transpose(), all);
  std::vector<double> out;
  out.reserve(graph.edges().size());
  for (const graph_edge& e : graph.edges()) out.push_back(double(all(e.sender, e.receiver)));
  return out;
}

template <class T>
void require_filled(const activation_cache<T>& cache, const std::vector<std::string>& names, const char* what,
                    const char* function) {
  for (const auto& name : names)
    if (!cache.filled(name))
      throw argument_error(function, "graph", "site '" + name + "' was not reached by the " + what,
                           std::string("needs sites the runtime's ") + what + " reaches");
}

}  // namespace detail

/// EAP scores of every edge of `graph` (the metric evaluated on the clean tokens; its gradient
/// taken on the clean run).
template <differentiable_runtime R, class M>
edge_scores eap_scores(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt,
                       const M& metric) {
  using T = scalar_t<R>;
  const char* fn = "mint::eap_scores";
  detail::require_tokens(clean, fn);
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(fn, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
  const site_table& sites = model.sites();
  const auto senders = detail::node_sites(sites, graph.senders()), receivers = detail::node_sites(sites, graph.receivers());
  edge_scores out;
  const auto corrupt_run = run_with_cache(model, corrupt, senders);
  out.corrupt_value = metric.value(corrupt_run.logits.view(), clean);

  activation_cache<T> acts(sites, senders), grads(sites, receivers);
  acts.reserve(clean.batch(), clean.positions());
  grads.reserve(clean.batch(), clean.positions());
  hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
  acts.attach(hooks);
  grads.attach(grad_hooks);
  const tensor_view<const T> logits = model.forward(clean, hooks);
  array<T> dlogits(logits.extents());
  out.clean_value = metric.gradient(logits, clean, dlogits);
  model.backward(std::as_const(dlogits).view(), grad_hooks);
  detail::require_filled(acts, senders, "forward", fn);
  detail::require_filled(grads, receivers, "backward", fn);
  out.values = detail::eap_products<T>(
      sites, graph, [&](const std::string& n) { return acts[n]; },
      [&](const std::string& n) { return corrupt_run.cache[n]; }, [&](const std::string& n) { return grads[n]; }, fn);
  out.cost = {.forwards = 2, .backwards = 1, .forward_equivalents = 2};
  return out;
}

/// EAP-IG scores of every edge of `graph`: the gradient averaged over the points of options.rule
/// on the path from the corrupt input embeddings (a = 0) to the clean ones (a = 1).
template <differentiable_runtime R, class M>
edge_scores eap_ig_scores(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt,
                          const M& metric, const eap_ig_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::eap_ig_scores";
  detail::require_tokens(clean, fn);
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(fn, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
  const index batch = clean.batch();
  if (options.max_batch < 0 || (options.max_batch > 0 && options.max_batch < batch))
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  const path_steps path = integration_steps(options.rule, options.steps);
  const site_table& sites = model.sites();
  const site_id input = detail::attribution_site(sites, options.site, access::read | access::write, fn);
  const site_info& input_info = sites[input];
  auto senders = detail::node_sites(sites, graph.senders());
  const auto receivers = detail::node_sites(sites, graph.receivers());
  std::vector<std::string> cached = senders;
  if (std::find(cached.begin(), cached.end(), input_info.name) == cached.end()) cached.push_back(input_info.name);

  edge_scores out;
  const auto corrupt_run = run_with_cache(model, corrupt, cached);
  const auto clean_run = run_with_cache(model, clean, cached);
  out.corrupt_value = metric.value(corrupt_run.logits.view(), clean);
  out.clean_value = metric.value(clean_run.logits.view(), clean);
  out.cost = {.forwards = 2, .backwards = 0, .forward_equivalents = 2};
  const tensor_view<const T> from = corrupt_run.cache[input_info.name], to = clean_run.cache[input_info.name];

  // The receivers' gradients, weighted and summed over the points.
  std::vector<array<T>> totals;
  const index steps = index(path.alphas.size());
  const index per_pass = options.max_batch == 0 ? steps : std::max<index>(1, options.max_batch / batch);
  for (index first = 0; first < steps; first += per_pass) {
    const index copies = std::min(per_pass, steps - first);
    const token_batch rows = detail::repeat_rows(clean, copies);
    hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
    hooks.add(input, [&](hook_call<T>& c) {
      for (index r = 0; r < c.activation.extent(0); ++r) {
        const T a = T(path.alphas[std::size_t(first + r / batch)]);
        const index b = r % batch;
        auto dst = as_matrix(c.activation.subview(r));
        const auto f = as_matrix(detail::row_window(from, input_info, b, c.chunk_begin, c.chunk_end));
        const auto t = as_matrix(detail::row_window(to, input_info, b, c.chunk_begin, c.chunk_end));
        dst = f + a * (t - f);
      }
    }, {.needs = access::write});
    activation_cache<T> grads(sites, receivers);
    grads.reserve(rows.batch(), rows.positions());
    grads.attach(grad_hooks);
    const tensor_view<const T> logits = model.forward(rows, hooks);
    array<T> dlogits(logits.extents());
    for (index k = 0; k < copies; ++k) {
      tensor_view<T> g = dlogits.view().narrow(0, k * batch, (k + 1) * batch);
      metric.gradient(logits.narrow(0, k * batch, (k + 1) * batch), clean, g);
      as_vector(g) *= T(path.weights[std::size_t(first + k)]);
    }
    model.backward(std::as_const(dlogits).view(), grad_hooks);
    detail::require_filled(grads, receivers, "backward", fn);
    for (std::size_t i = 0; i < receivers.size(); ++i) {
      const tensor_view<const T> g = grads[receivers[i]];
      if (totals.size() <= i) {
        std::vector<index> extents(g.extents().begin(), g.extents().end());
        extents[0] = batch;
        totals.emplace_back(extents);
        totals.back().fill(T(0));
      }
      for (index k = 0; k < copies; ++k) as_vector(totals[i].view()) += as_vector(g.narrow(0, k * batch, (k + 1) * batch));
    }
    out.cost.forwards += 1;
    out.cost.backwards += 1;
    out.cost.forward_equivalents += double(copies);
  }
  out.values = detail::eap_products<T>(
      sites, graph, [&](const std::string& n) { return clean_run.cache[n]; },
      [&](const std::string& n) { return corrupt_run.cache[n]; },
      [&](const std::string& n) {
        const auto i = std::size_t(std::find(receivers.begin(), receivers.end(), n) - receivers.begin());
        return std::as_const(totals[i]).view();
      },
      fn);
  return out;
}

}  // namespace mint
