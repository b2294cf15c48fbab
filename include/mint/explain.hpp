// mint's component explanations, all in one include: head scores from attention patterns
// (previous-token, duplicate-token, induction, first-token), and a head's QK and OV circuits,
// copying score and composition scores from the weights. See docs/explain.md.
#pragma once

#include "mint/explain/head_scores.hpp"
#include "mint/explain/qk_ov.hpp"
