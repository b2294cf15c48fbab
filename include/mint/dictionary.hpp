// mint's sparse dictionary learning, all in one include: sparse autoencoders (every
// architecture, training, metrics, SAELens folders, loss recovered, width sweeps, feature
// analysis, the feature browser, automated interpretability), synthetic features and the toy model of superposition, and classical sparse
// coding (OMP, the lasso by coordinate descent and by LARS, K-SVD, online dictionary learning).
#pragma once

#include "mint/dictionary/autointerp.hpp"
#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/feature_analysis.hpp"
#include "mint/dictionary/feature_browser.hpp"
#include "mint/dictionary/geometric_median.hpp"
#include "mint/dictionary/ksvd.hpp"
#include "mint/dictionary/lars.hpp"
#include "mint/dictionary/lasso.hpp"
#include "mint/dictionary/loss_recovered.hpp"
#include "mint/dictionary/metrics.hpp"
#include "mint/dictionary/omp.hpp"
#include "mint/dictionary/online_dictionary.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/dictionary/sae_options.hpp"
#include "mint/dictionary/saelens.hpp"
#include "mint/dictionary/superposition.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/dictionary/train.hpp"
#include "mint/dictionary/width_sweep.hpp"
