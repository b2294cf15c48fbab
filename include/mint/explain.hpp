// mint's component explanations, all in one include: head scores from attention patterns
// (previous-token, duplicate-token, induction, first-token), and a head's QK and OV circuits,
// copying score and composition scores from the weights; MLP neurons through the feature
// collector; the error of freezing the final norm's scale; linear probes per layer and the tuned
// lens. See docs/explain.md.
#pragma once

#include "mint/explain/frozen_scale.hpp"
#include "mint/explain/head_scores.hpp"
#include "mint/explain/neurons.hpp"
#include "mint/explain/probes.hpp"
#include "mint/explain/qk_ov.hpp"
#include "mint/explain/tuned_lens.hpp"
