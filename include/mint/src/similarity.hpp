// mint's similarity cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

// This unit compiles the cores, so it sees their bodies (mint/core/compiled.hpp): a mint header
// included before this one has already hidden them.
#if defined(MINT_CORE_BODIES) && !MINT_CORE_BODIES
#error "mint/src.hpp (or mint/src/similarity.hpp) must be included before any other mint header in its unit"
#endif
#ifndef MINT_COMPILING_CORES
#define MINT_COMPILING_CORES 1
#endif
#ifndef MINT_SEPARATE_COMPILATION
#define MINT_SEPARATE_COMPILATION 1
#endif

#include "mint/similarity.hpp"

MINT_CORES_SIMILARITY_CCA(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_DETAIL_MOMENTS(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_DETAIL_SPECTRAL(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_KERNEL_CKA(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_KNN(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_LINEAR_CKA(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_MINIBATCH_CKA(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_PROCRUSTES(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_REGRESSION(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_RSA(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_SHAPE_METRIC(MINT_INSTANTIATE)
MINT_CORES_SIMILARITY_SVCCA(MINT_INSTANTIATE)
