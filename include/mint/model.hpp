// The model layer: sites, hook sets, the runtime concepts, the activation
// cache, metrics with gradients, the residual edge graph, generation, and the
// bookkeeping of sequences evaluated in chunks.
#pragma once

#include "mint/model/ablation.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/generation.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/replaced_runs.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/sequence.hpp"
#include "mint/model/site.hpp"
#include "mint/model/site_values.hpp"
#include "mint/model/unembedding.hpp"
