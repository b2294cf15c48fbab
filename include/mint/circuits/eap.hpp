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
#include <type_traits>
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

/// EAP's sums without caching a site: forward hooks at the senders write each sender's
/// out_corrupt - out_clean as a row of `deltas` ([senders, batch * pos * d_model]); backward
/// hooks at the receivers gather a site's gradients (summed over copies of the batch) into a
/// reused buffer and add deltas x buffer^T into the scores of its receivers.
template <class T>
class edge_gradient_sums {
public:
  edge_gradient_sums(const site_table& sites, const edge_graph& graph, index batch, const char* function)
      : sites_(sites), graph_(graph), batch_(batch), function_(function),
        sums_(graph.senders().size() * graph.receivers().size(), 0.0), filled_(graph.senders().size(), false) {}

  /// Forward hooks (clean run of `batch` rows) filling the deltas against the corrupt run's cache.
  void attach_deltas(hook_set<T>& hooks, const activation_cache<T>& corrupt) {
    for (const auto& name : node_sites(sites_, graph_.senders()))
      hooks.add(name, [&, name](hook_call<T>& c) {
        for (std::size_t s = 0; s < graph_.senders().size(); ++s) {
          const graph_node& node = graph_.senders()[s];
          if (sites_[node.site].name != name) continue;
          const auto now = as_matrix(node_part(tensor_view<const T>(c.activation), c.site, node.head, 0, function_));
          const auto then = as_matrix(node_part(corrupt[name], c.site, node.head, 0, function_));
          if (deltas_.size() == 0) deltas_.resize(index(graph_.senders().size()), now.size());
          require_width(node, now.size());
          Eigen::Map<matrix<T>>(deltas_.row(index(s)).data(), now.rows(), now.cols()) = then - now;
          filled_[s] = true;
        }
      });
  }

  /// Backward hooks adding each receiver site's gradient (over `copies` copies of the batch, as
  /// the dlogits weighted them) into the sums.
  void attach_gradients(hook_set<T>& grad_hooks, index copies) {
    for (const auto& name : node_sites(sites_, graph_.receivers()))
      grad_hooks.add(name, [&, name, copies](hook_call<T>& c) {
        std::vector<std::size_t> here;
        for (std::size_t r = 0; r < graph_.receivers().size(); ++r)
          if (sites_[graph_.receivers()[r].site].name == name) here.push_back(r);
        for (std::size_t i = 0; i < here.size(); ++i) {
          const graph_node& node = graph_.receivers()[here[i]];
          const tensor_view<const T> all(c.activation);
          for (index k = 0; k < copies; ++k) {
            const auto g = as_matrix(node_part(all.narrow(0, k * batch_, (k + 1) * batch_), c.site, node.head, 0, function_));
            require_width(node, g.size());
            if (buffer_.rows() != index(here.size()) || buffer_.cols() != g.size()) buffer_.resize(index(here.size()), g.size());
            Eigen::Map<matrix<T>> row(buffer_.row(index(i)).data(), g.rows(), g.cols());
            if (k == 0) row = g;
            else row += g;
          }
        }
        if (deltas_.size() == 0)
          throw argument_error(function_, "graph", "has receivers the backward reached before any sender was seen",
                               "needs the senders' sites on the forward pass");
        product_.resize(deltas_.rows(), index(here.size()));
        fixed_order_product(deltas_, buffer_.transpose(), product_);
        for (std::size_t i = 0; i < here.size(); ++i) {
          for (index s = 0; s < deltas_.rows(); ++s)
            sums_[std::size_t(s) * graph_.receivers().size() + here[i]] += double(product_(s, index(i)));
          reached_.push_back(here[i]);
        }
      });
  }

  /// The score of every edge, once every sender and receiver was seen.
  std::vector<double> scores() const {
    for (std::size_t s = 0; s < filled_.size(); ++s)
      if (!filled_[s])
        throw argument_error(function_, "graph", "sender '" + graph_.senders()[s].name + "' was not reached by the forward",
                             "needs sites the runtime's forward reaches");
    for (std::size_t r = 0; r < graph_.receivers().size(); ++r)
      if (std::find(reached_.begin(), reached_.end(), r) == reached_.end())
        throw argument_error(function_, "graph", "receiver '" + graph_.receivers()[r].name + "' got no gradient",
                             "needs sites the runtime's backward reaches");
    std::vector<double> out;
    out.reserve(graph_.edges().size());
    for (const graph_edge& e : graph_.edges())
      out.push_back(sums_[std::size_t(e.sender) * graph_.receivers().size() + std::size_t(e.receiver)]);
    return out;
  }

private:
  void require_width(const graph_node& node, index size) const {
    if (deltas_.size() != 0 && size != deltas_.cols())
      throw shape_error(function_, "graph",
                        detail::str("node '", node.name, "' holds ", size, " values, the first sender ", deltas_.cols()),
                        "needs every sender and receiver as wide as the residual stream");
  }

  const site_table& sites_;
  const edge_graph& graph_;
  index batch_;
  const char* function_;
  std::vector<double> sums_;  // [senders, receivers]
  std::vector<bool> filled_;
  std::vector<std::size_t> reached_;
  matrix<T> deltas_, buffer_, product_;
};

template <class T>
void check_clean_corrupt(const token_batch& clean, const token_batch& corrupt, const char* function) {
  require_tokens(clean, function);
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(function, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
}

}  // namespace detail

/// EAP scores of every edge of `graph` (the metric evaluated on the clean tokens; its gradient
/// taken on the clean run).
template <differentiable_runtime R, class M>
edge_scores eap_scores(R& model, const edge_graph& graph, const token_batch& clean, const token_batch& corrupt,
                       const M& metric) {
  using T = scalar_t<R>;
  const char* fn = "mint::eap_scores";
  detail::check_clean_corrupt<T>(clean, corrupt, fn);
  const site_table& sites = model.sites();
  edge_scores out;
  const auto corrupt_run = run_with_cache(model, corrupt, detail::node_sites(sites, graph.senders()));
  out.corrupt_value = metric.value(corrupt_run.logits.view(), clean);
  detail::edge_gradient_sums<T> sums(sites, graph, clean.batch(), fn);
  hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
  sums.attach_deltas(hooks, corrupt_run.cache);
  sums.attach_gradients(grad_hooks, 1);
  const tensor_view<const T> logits = model.forward(clean, hooks);
  array<T> dlogits(logits.extents());
  out.clean_value = metric.gradient(logits, clean, dlogits);
  model.backward(std::as_const(dlogits).view(), grad_hooks);
  out.values = sums.scores();
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
  detail::check_clean_corrupt<T>(clean, corrupt, fn);
  const index batch = clean.batch();
  if (options.max_batch < 0 || (options.max_batch > 0 && options.max_batch < batch))
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  const path_steps path = integration_steps(options.rule, options.steps);
  const site_table& sites = model.sites();
  const site_id input = detail::attribution_site(sites, options.site, access::read | access::write, fn);
  const site_info& input_info = sites[input];
  std::vector<std::string> cached = detail::node_sites(sites, graph.senders());
  if (std::find(cached.begin(), cached.end(), input_info.name) == cached.end()) cached.push_back(input_info.name);

  // The corrupt run cached; the clean one leaves its input and the senders' deltas.
  edge_scores out;
  const auto corrupt_run = run_with_cache(model, corrupt, cached);
  out.corrupt_value = metric.value(corrupt_run.logits.view(), clean);
  detail::edge_gradient_sums<T> sums(sites, graph, batch, fn);
  activation_cache<T> clean_input(sites, {input_info.name});
  clean_input.reserve(batch, clean.positions());
  {
    hook_set<T> hooks(sites);
    sums.attach_deltas(hooks, corrupt_run.cache);
    clean_input.attach(hooks);
    out.clean_value = metric.value(model.forward(clean, hooks), clean);
  }
  out.cost = {.forwards = 2, .backwards = 0, .forward_equivalents = 2};
  const tensor_view<const T> from = corrupt_run.cache[input_info.name], to = clean_input[input_info.name];

  // The points as copies of the batch, each copy's dlogits weighted, max_batch rows a pass.
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
    sums.attach_gradients(grad_hooks, copies);
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
  out.values = sums.scores();
  return out;
}

}  // namespace mint
