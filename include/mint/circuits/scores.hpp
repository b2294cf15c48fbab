// What every edge-scoring method returns: one score per edge of the graph, the metric's clean
// and corrupt values, and the passes it took.
#pragma once

#include <vector>

#include "mint/circuits/edge_sets.hpp"

namespace mint {

/// A score per edge (indices as graph.edges()): the change of the metric, patched minus clean,
/// when that edge alone is patched from the corrupt run (exact), or an estimate of it (EAP, EAP-IG).
struct edge_scores {
  std::vector<double> values;
  double clean_value = 0;    ///< the metric on the clean run
  double corrupt_value = 0;  ///< the metric on the corrupt run (evaluated with the clean tokens)
  circuit_cost cost;
};

}  // namespace mint
