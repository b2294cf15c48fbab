// mint's attribution methods, all in one include: saliency and gradient x activation,
// integrated gradients (fixed and adaptive steps) at the embeddings or any site and the step
// rules they integrate with, attribution patching, feature ablation and occlusion, direct
// logit attribution and the logit lens. See docs/attribution.md.
#pragma once

#include "mint/attribution/attribution_patching.hpp"
#include "mint/attribution/direct_logit_attribution.hpp"
#include "mint/attribution/feature_ablation.hpp"
#include "mint/attribution/gradients.hpp"
#include "mint/attribution/integrated_gradients.hpp"
#include "mint/attribution/integration.hpp"
#include "mint/attribution/logit_lens.hpp"
#include "mint/attribution/result.hpp"
