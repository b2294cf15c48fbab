// The edge graph a runtime declares for edge-level methods (edge patching,
// ACDC, EAP): sender outputs (the embeddings, each head's result, each MLP's
// output) and receiver inputs (each head's q/k/v input, each MLP's input, the
// final residual), where each receiver's input is the sum of its upstream
// senders' outputs plus constants. Patching edge s -> r adds
// (out_s corrupt - out_s clean) to r's input only.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// A sender output or a receiver input: a site, or one head of it.
struct graph_node {
  std::string name;  ///< "embed", "L0H3", "mlp2"; receivers "L1H0.q", "mlp2.in", "resid_final"
  site_id site = -1;
  int head = -1;     ///< index along the site's head axis; -1 for the whole site
  int layer = -1;    ///< -1 for the embeddings, n_layers for the final residual
};

/// One edge: sender index -> receiver index.
struct graph_edge {
  int sender;
  int receiver;
};

namespace detail {

/// A node's slice of a site's values: all of them, or one head. `dropped` leading axes of the
/// site are gone from `v` (1 for one row).
template <class T>
tensor_view<T> node_part(tensor_view<T> v, const site_info& info, int head, int dropped, const char* function) {
  if (head < 0) return v;
  for (axis a : {axis::head, axis::kv_head, axis::qkv_head})
    if (const int i = info.axis_of(a); i >= dropped) return v.select(i - dropped, head);
  throw argument_error(function, "graph", detail::str("names head ", head, " of '", info.name, "'"),
                       "needs a site with a head axis");
}

}  // namespace detail

/// Senders, receivers and the edges between them, with each receiver's incoming edges.
class edge_graph {
public:
  int add_sender(graph_node node) { return add(senders_, sender_index_, std::move(node), "sender"); }
  int add_receiver(graph_node node) {
    incoming_.emplace_back();
    return add(receivers_, receiver_index_, std::move(node), "receiver");
  }
  void add_edge(int sender, int receiver) {
    if (sender < 0 || sender >= int(senders_.size()) || receiver < 0 || receiver >= int(receivers_.size()))
      throw argument_error("mint::edge_graph::add_edge", "edge", detail::str("is ", sender, " -> ", receiver),
                           detail::str("needs a sender below ", senders_.size(), " and a receiver below ",
                                       receivers_.size()));
    incoming_[std::size_t(receiver)].push_back(int(edges_.size()));
    edges_.push_back({sender, receiver});
  }

  const std::vector<graph_node>& senders() const noexcept { return senders_; }
  const std::vector<graph_node>& receivers() const noexcept { return receivers_; }
  const std::vector<graph_edge>& edges() const noexcept { return edges_; }
  /// Edge indices into a receiver.
  const std::vector<int>& incoming(int receiver) const {
    if (receiver < 0 || std::size_t(receiver) >= receivers_.size())
      throw argument_error("mint::edge_graph::incoming", "receiver", detail::str("is ", receiver),
                           detail::str("needs an index below ", receivers_.size()));
    return incoming_[std::size_t(receiver)];
  }

  int sender(std::string_view name) const { return lookup(sender_index_, name, senders_, "sender"); }
  int receiver(std::string_view name) const { return lookup(receiver_index_, name, receivers_, "receiver"); }

  /// The edge from the named sender to the named receiver.
  int edge(std::string_view sender_name, std::string_view receiver_name) const {
    const int s = sender(sender_name), r = receiver(receiver_name);
    for (int e : incoming(r))
      if (edges_[std::size_t(e)].sender == s) return e;
    throw argument_error("mint::edge_graph::edge", "edge",
                         "'" + std::string(sender_name) + " -> " + std::string(receiver_name) + "' is not in the graph",
                         "needs a sender upstream of the receiver");
  }

  /// "L0H1 -> L1H0.k"
  std::string edge_name(int e) const {
    if (e < 0 || std::size_t(e) >= edges_.size())
      throw argument_error("mint::edge_graph::edge_name", "edge", detail::str("is ", e),
                           detail::str("needs an index below ", edges_.size()));
    const auto& edge = edges_[std::size_t(e)];
    return senders_[std::size_t(edge.sender)].name + " -> " + receivers_[std::size_t(edge.receiver)].name;
  }

private:
  static int add(std::vector<graph_node>& nodes, std::unordered_map<std::string, int>& index_of, graph_node node,
                 const char* kind) {
    if (index_of.count(node.name))
      throw argument_error("mint::edge_graph", kind, "'" + node.name + "' is already in the graph", "needs a unique name");
    index_of.emplace(node.name, int(nodes.size()));
    nodes.push_back(std::move(node));
    return int(nodes.size()) - 1;
  }

  static int lookup(const std::unordered_map<std::string, int>& index_of, std::string_view name,
                    const std::vector<graph_node>& nodes, const char* kind) {
    const auto it = index_of.find(std::string(name));
    if (it != index_of.end()) return it->second;
    std::string some;
    for (std::size_t i = 0; i < std::min<std::size_t>(nodes.size(), 4); ++i) {
      some += i ? ", '" : "'";
      some += nodes[i].name;
      some += '\'';
    }
    throw argument_error("mint::edge_graph", kind, "'" + std::string(name) + "' is not in the graph",
                         detail::str("needs one of its ", nodes.size(), " ", kind, "s, such as ", some));
  }

  std::vector<graph_node> senders_, receivers_;
  std::vector<graph_edge> edges_;
  std::vector<std::vector<int>> incoming_;
  std::unordered_map<std::string, int> sender_index_, receiver_index_;
};

namespace detail {

/// Checks that a graph has edges and that its nodes name sites of the runtime's table.
inline void require_graph_of(const site_table& sites, const edge_graph& graph, const char* function) {
  if (graph.edges().empty())
    throw argument_error(function, "graph", "has no edges", "needs a graph of the runtime, such as model.graph()");
  for (const auto* nodes : {&graph.senders(), &graph.receivers()})
    for (const graph_node& node : *nodes)
      if (node.site < 0 || node.site >= site_id(sites.size()))
        throw argument_error(function, "graph", "node '" + node.name + "' names no site of the runtime",
                             "needs a graph built from this runtime's sites");
}

}  // namespace detail

/// The shape of a transformer's residual graph, for transformer_graph().
struct transformer_graph_shape {
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;          ///< 0: same as heads
  bool mlp = true;
  bool split_embeddings = false;  ///< token and positional embeddings as two senders (default: one, "embed")
};

/// The standard residual graph of a pre-LN transformer with split q/k/v inputs, on
/// TransformerLens site names: senders read blocks.L.attn.hook_result (per head) and
/// blocks.L.hook_mlp_out; receivers write blocks.L.hook_{q,k,v}_input (per head),
/// blocks.L.hook_mlp_in and blocks.{last}.hook_resid_post. GPT-2 small's shape gives 32,491 edges.
inline edge_graph transformer_graph(const site_table& sites, const transformer_graph_shape& shape) {
  const char* fn = "mint::transformer_graph";
  const int kv = shape.kv_heads ? shape.kv_heads : shape.heads;
  if (shape.layers < 1 || shape.heads < 1 || kv < 1 || shape.heads % kv != 0)
    throw argument_error(fn, "shape", detail::str("has ", shape.layers, " layers, ", shape.heads, " heads, ", kv, " kv heads"),
                         "needs >= 1 of each, with heads a multiple of kv heads");
  auto site = [&](const std::string& name) { return sites.at(name, fn); };
  auto block = [](int l, const char* rest) { return "blocks." + std::to_string(l) + "." + rest; };

  edge_graph g;
  std::vector<int> upstream;  // senders whose outputs reach the residual so far
  if (shape.split_embeddings) {
    upstream.push_back(g.add_sender({"embed", site("hook_embed"), -1, -1}));
    upstream.push_back(g.add_sender({"pos_embed", site("hook_pos_embed"), -1, -1}));
  } else {
    upstream.push_back(g.add_sender({"embed", site("blocks.0.hook_resid_pre"), -1, -1}));
  }
  auto receive = [&](graph_node node) {
    const int r = g.add_receiver(std::move(node));
    for (int s : upstream) g.add_edge(s, r);
  };
  for (int l = 0; l < shape.layers; ++l) {
    const std::string L = "L" + std::to_string(l);
    for (int h = 0; h < shape.heads; ++h)
      receive({L + "H" + std::to_string(h) + ".q", site(block(l, "hook_q_input")), h, l});
    for (int h = 0; h < kv; ++h) {
      receive({L + "H" + std::to_string(h) + ".k", site(block(l, "hook_k_input")), h, l});
      receive({L + "H" + std::to_string(h) + ".v", site(block(l, "hook_v_input")), h, l});
    }
    std::vector<int> heads;
    for (int h = 0; h < shape.heads; ++h)
      heads.push_back(g.add_sender({L + "H" + std::to_string(h), site(block(l, "attn.hook_result")), h, l}));
    upstream.insert(upstream.end(), heads.begin(), heads.end());
    if (shape.mlp) {
      receive({"mlp" + std::to_string(l) + ".in", site(block(l, "hook_mlp_in")), -1, l});
      upstream.push_back(g.add_sender({"mlp" + std::to_string(l), site(block(l, "hook_mlp_out")), -1, l}));
    }
  }
  receive({"resid_final", site(block(shape.layers - 1, "hook_resid_post")), -1, shape.layers});
  return g;
}

}  // namespace mint
