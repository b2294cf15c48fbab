// mint's steering, all in one include: steering vectors and their arithmetic, reading
// activations of contrastive pairs, extraction (mean difference, PCA, ActAdd, a logistic
// probe), the layer and strength sweeps that choose where and how hard to steer, application
// hooks (adding, clamping, directional ablation, SAE-feature edits) with an explicit position
// policy, and conversion to and from llama.cpp control vectors. See docs/steering.md.
#pragma once

#include "mint/steering/application.hpp"
#include "mint/steering/control_vectors.hpp"
#include "mint/steering/extraction.hpp"
#include "mint/steering/layer_sweep.hpp"
#include "mint/steering/probe.hpp"
#include "mint/steering/reading.hpp"
#include "mint/steering/sae_steering.hpp"
#include "mint/steering/strength_sweep.hpp"
#include "mint/steering/vector.hpp"
