// mint's model diffing, all in one include: crosscoders (one dictionary over two models' or
// checkpoints' activations, with the relative decoder norm that sorts shared and exclusive
// latents), and stage-wise diffing of a training run's checkpoints with them. See docs/diffing.md.
#pragma once

#include "mint/diffing/checkpoints.hpp"
#include "mint/diffing/crosscoder.hpp"
