// mint's patching methods, all in one include: activation patching sweeps (denoising and
// noising, per position and per head, batched), edge patching and path patching on a
// runtime's residual graph. See docs/patching.md.
#pragma once

#include "mint/patching/activation_patching.hpp"
#include "mint/patching/edge_patching.hpp"
#include "mint/patching/path_patching.hpp"
