// EAP's sums without caching a site: forward hooks at the senders write each sender's
// out_corrupt - out_clean as a row of a matrix D [senders, batch * pos * d_model]; backward hooks
// at the receivers gather a site's gradients (summed over copies of the batch) into a reused
// buffer and add D x buffer^T into the sums of its receivers. One product per receiver site, the
// same bits on any thread count (fixed_order_product). A core over float and double
// (mint/core/compiled.hpp).
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mint/circuits/edge_sets.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/products.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/hooks.hpp"

namespace mint::detail {

/// Sites (by name, in order) the nodes live at.
inline std::vector<std::string> node_sites(const site_table& sites, const std::vector<graph_node>& nodes) {
  std::vector<std::string> out;
  for (const graph_node& n : nodes)
    if (std::find(out.begin(), out.end(), sites[n.site].name) == out.end()) out.push_back(sites[n.site].name);
  return out;
}

template <class T>
class edge_gradient_sums {
public:
  edge_gradient_sums(const site_table& sites, const edge_graph& graph, index batch, const char* function);
  /// Forward hooks (a clean run of `batch` rows) filling the deltas against the senders'
  /// replacements (`replacement(site name)`, [batch, ...]).
  void attach_deltas(hook_set<T>& hooks, std::function<tensor_view<const T>(const std::string&)> replacement);
  /// Backward hooks adding each receiver site's gradient (over `copies` copies of the batch, as
  /// the dlogits weighted them) into the sums: of every sender, or of the senders at one site.
  void attach_gradients(hook_set<T>& grad_hooks, index copies, const std::string& sender_site = {});
  /// The score of every edge, once every sender and receiver was seen.
  std::vector<double> scores() const;

private:
  void require_width(const graph_node& node, index size) const;

  const site_table& sites_;
  const edge_graph& graph_;
  index batch_;
  const char* function_;
  std::vector<double> sums_;  // [senders, receivers]
  std::vector<bool> filled_, reached_;
  std::vector<std::pair<std::string, std::vector<std::size_t>>> sender_sites_, receiver_sites_;  // nodes per site
  matrix<T> deltas_, buffer_, product_;
};

#if MINT_CORE_BODIES
template <class T>
edge_gradient_sums<T>::edge_gradient_sums(const site_table& sites, const edge_graph& graph, index batch,
                                          const char* function)
    : sites_(sites), graph_(graph), batch_(batch), function_(function),
      sums_(graph.senders().size() * graph.receivers().size(), 0.0), filled_(graph.senders().size(), false),
      reached_(graph.receivers().size(), false) {
  auto by_site = [&](const std::vector<graph_node>& nodes, auto& out) {
    for (const auto& name : node_sites(sites, nodes)) {
      out.emplace_back(name, std::vector<std::size_t>{});
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (sites[nodes[i].site].name == name) out.back().second.push_back(i);
    }
  };
  by_site(graph.senders(), sender_sites_);
  by_site(graph.receivers(), receiver_sites_);
}

template <class T>
void edge_gradient_sums<T>::attach_deltas(hook_set<T>& hooks,
                                          std::function<tensor_view<const T>(const std::string&)> replacement) {
  for (const auto& site : sender_sites_)
    hooks.add(site.first, [this, replacement, &site](hook_call<T>& c) {
      const tensor_view<const T> all = replacement(site.first);
      for (const std::size_t s : site.second) {
        const graph_node& node = graph_.senders()[s];
        const auto now = as_matrix(node_part(tensor_view<const T>(c.activation), c.site, node.head, 0, function_));
        const auto then = as_matrix(node_part(all, c.site, node.head, 0, function_));
        if (deltas_.size() == 0) deltas_.resize(index(graph_.senders().size()), now.size());
        require_width(node, now.size());
        Eigen::Map<matrix<T>>(deltas_.row(index(s)).data(), now.rows(), now.cols()) = then - now;
        filled_[s] = true;
      }
    });
}

template <class T>
void edge_gradient_sums<T>::attach_gradients(hook_set<T>& grad_hooks, index copies, const std::string& sender_site) {
  std::vector<bool> grows(graph_.senders().size(), sender_site.empty());
  for (const auto& site : sender_sites_)
    if (site.first == sender_site)
      for (const std::size_t s : site.second) grows[s] = true;
  for (const auto& site : receiver_sites_)
    grad_hooks.add(site.first, [this, copies, &site, grows](hook_call<T>& c) {
      const std::vector<std::size_t>& here = site.second;
      if (deltas_.size() == 0)
        throw argument_error(function_, "graph", "has receivers the backward reached before any sender was seen",
                             "needs the senders' sites on the forward pass");
      const tensor_view<const T> all(c.activation);
      for (std::size_t i = 0; i < here.size(); ++i) {
        const graph_node& node = graph_.receivers()[here[i]];
        for (index k = 0; k < copies; ++k) {
          const auto g = as_matrix(node_part(all.narrow(0, k * batch_, (k + 1) * batch_), c.site, node.head, 0, function_));
          require_width(node, g.size());
          if (buffer_.rows() != index(here.size()) || buffer_.cols() != g.size()) buffer_.resize(index(here.size()), g.size());
          Eigen::Map<matrix<T>> row(buffer_.row(index(i)).data(), g.rows(), g.cols());
          if (k == 0) row = g;
          else row += g;
        }
      }
      product_.resize(deltas_.rows(), index(here.size()));
      fixed_order_product(deltas_, buffer_.transpose(), product_);
      for (std::size_t i = 0; i < here.size(); ++i) {
        for (index s = 0; s < deltas_.rows(); ++s)
          if (grows[std::size_t(s)]) sums_[std::size_t(s) * graph_.receivers().size() + here[i]] += double(product_(s, index(i)));
        reached_[here[i]] = true;
      }
    });
}

template <class T>
std::vector<double> edge_gradient_sums<T>::scores() const {
  for (std::size_t s = 0; s < filled_.size(); ++s)
    if (!filled_[s])
      throw argument_error(function_, "graph", "sender '" + graph_.senders()[s].name + "' was not reached by the forward",
                           "needs sites the runtime's forward reaches");
  for (std::size_t r = 0; r < graph_.receivers().size(); ++r)
    if (!reached_[r])
      throw argument_error(function_, "graph", "receiver '" + graph_.receivers()[r].name + "' got no gradient",
                           "needs sites the runtime's backward reaches");
  std::vector<double> out;
  out.reserve(graph_.edges().size());
  for (const graph_edge& e : graph_.edges())
    out.push_back(sums_[std::size_t(e.sender) * graph_.receivers().size() + std::size_t(e.receiver)]);
  return out;
}

template <class T>
void edge_gradient_sums<T>::require_width(const graph_node& node, index size) const {
  if (deltas_.size() != 0 && size != deltas_.cols())
    throw shape_error(function_, "graph",
                      detail::str("node '", node.name, "' holds ", size, " values, the first sender ", deltas_.cols()),
                      "needs every sender and receiver as wide as the residual stream");
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp): the sums over float and double.
#define MINT_CORES_CIRCUITS_DETAIL_EDGE_GRADIENT_SUMS(CORE) \
  CORE(class mint::detail::edge_gradient_sums<float>)      \
  CORE(class mint::detail::edge_gradient_sums<double>)
MINT_CORES_CIRCUITS_DETAIL_EDGE_GRADIENT_SUMS(MINT_CORE)
