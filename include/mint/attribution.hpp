// mint's attribution methods, all in one include: saliency and gradient x activation,
// integrated gradients (fixed and adaptive steps) at the embeddings or any site, the
// step rules they integrate with, and attribution patching. See docs/attribution.md.
#pragma once

#include "mint/attribution/attribution_patching.hpp"
#include "mint/attribution/gradients.hpp"
#include "mint/attribution/integrated_gradients.hpp"
#include "mint/attribution/integration.hpp"
#include "mint/attribution/result.hpp"
