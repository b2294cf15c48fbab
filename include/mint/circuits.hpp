// mint's circuit discovery, all in one include: the metric with edge sets patched, exact edge
// scores, EAP and EAP-IG, ACDC, and the measures that judge them (ROC AUC against a known
// circuit, rank agreement with the exact scores, faithfulness curves), and a circuit as a Graphviz graph.
// See docs/circuits.md.
#pragma once

#include "mint/circuits/acdc.hpp"
#include "mint/circuits/eap.hpp"
#include "mint/circuits/edge_sets.hpp"
#include "mint/circuits/evaluation.hpp"
#include "mint/circuits/exact_scores.hpp"
#include "mint/circuits/graphviz.hpp"
#include "mint/circuits/scores.hpp"
