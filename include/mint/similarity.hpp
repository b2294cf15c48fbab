// mint's representation-similarity measures, all in one include: linear, kernel and minibatch
// CKA; mean CCA, SVCCA, PWCCA; Procrustes and the angular shape metric; linear regression R^2;
// RSA; mutual kNN; the layer x layer similarity matrix, stage-wise diffing, CSV and SVG output.
#pragma once

#include "mint/similarity/cca.hpp"
#include "mint/similarity/kernel_cka.hpp"
#include "mint/similarity/knn.hpp"
#include "mint/similarity/linear_cka.hpp"
#include "mint/similarity/measure.hpp"
#include "mint/similarity/minibatch_cka.hpp"
#include "mint/similarity/plot.hpp"
#include "mint/similarity/procrustes.hpp"
#include "mint/similarity/regression.hpp"
#include "mint/similarity/rsa.hpp"
#include "mint/similarity/running_moments.hpp"
#include "mint/similarity/shape_metric.hpp"
#include "mint/similarity/similarity_matrix.hpp"
#include "mint/similarity/stagewise.hpp"
#include "mint/similarity/svcca.hpp"
