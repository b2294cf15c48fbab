// A circuit as a Graphviz graph: the senders and receivers its edges touch, each receiver
// input drawn as its node (L1H0.k -> node L1H0), edges labelled by their score when one is
// given. `dot -Tsvg circuit.dot -o circuit.svg` draws it. Written whole or not at all.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>

#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

namespace detail {

/// The node a receiver input belongs to: "L1H0.k" -> "L1H0", "mlp2.in" -> "mlp2", "resid_final" as is.
inline std::string node_of_receiver(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}

inline std::string dot_quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace detail

/// The circuit (edge indices into graph.edges()) in Graphviz's dot language; with `scores` (one
/// per edge of the graph), each edge is labelled with its score and drawn thicker the larger |score|.
inline std::string circuit_dot(const edge_graph& graph, std::span<const int> circuit, std::span<const double> scores = {},
                               const std::string& title = "circuit") {
  const char* fn = "mint::circuit_dot";
  if (!scores.empty() && scores.size() != graph.edges().size())
    throw argument_error(fn, "scores", detail::str("holds ", scores.size(), " values"),
                         detail::str("needs none or one per edge of the graph, ", graph.edges().size()));
  detail::require_finite(tensor_view<const double>(scores.data(), {index(scores.size())}), fn, "scores");
  double largest = 0;
  for (int e : circuit) {
    if (e < 0 || std::size_t(e) >= graph.edges().size())
      throw argument_error(fn, "circuit", detail::str("holds ", e), detail::str("needs edge indices below ", graph.edges().size()));
    if (!scores.empty()) largest = std::max(largest, std::abs(scores[std::size_t(e)]));
  }
  std::string out = "digraph " + detail::dot_quoted(title) + " {\n  rankdir=BT;\n  node [shape=box, fontname=\"Helvetica\"];\n";
  for (int e : circuit) {
    const graph_edge& edge = graph.edges()[std::size_t(e)];
    const std::string& receiver = graph.receivers()[std::size_t(edge.receiver)].name;
    const std::string to = detail::node_of_receiver(receiver);
    out += "  " + detail::dot_quoted(graph.senders()[std::size_t(edge.sender)].name) + " -> " + detail::dot_quoted(to) + " [";
    const auto dot = receiver.rfind('.');
    std::string label = dot == std::string::npos ? "" : receiver.substr(dot + 1);
    if (!scores.empty()) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.3g", scores[std::size_t(e)]);
      label += (label.empty() ? "" : " ") + std::string(buffer);
      const double width = largest > 0 ? 1 + 4 * std::abs(scores[std::size_t(e)]) / largest : 1;
      std::snprintf(buffer, sizeof buffer, "%.2f", width);
      out += "penwidth=" + std::string(buffer) + ", ";
    }
    out += "label=" + detail::dot_quoted(label) + "];\n";
  }
  return out + "}\n";
}

/// Writes circuit_dot() to `path` (the old file or the new one, never half of one).
inline void write_circuit_dot(const std::filesystem::path& path, const edge_graph& graph, std::span<const int> circuit,
                              std::span<const double> scores = {}, const std::string& title = "circuit") {
  const std::string text = circuit_dot(graph, circuit, scores, title);
  atomic_file file(path.string());
  file.write(text);
  file.commit();
}

}  // namespace mint
