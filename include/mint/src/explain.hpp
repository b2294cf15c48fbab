// mint's explain cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

// This unit compiles the cores, so it sees their bodies (mint/core/compiled.hpp): a mint header
// included before this one has already hidden them.
#if defined(MINT_CORE_BODIES) && !MINT_CORE_BODIES
#error "mint/src.hpp (or mint/src/explain.hpp) must be included before any other mint header in its unit"
#endif
#ifndef MINT_COMPILING_CORES
#define MINT_COMPILING_CORES 1
#endif
#ifndef MINT_SEPARATE_COMPILATION
#define MINT_SEPARATE_COMPILATION 1
#endif

#include "mint/explain.hpp"

MINT_CORES_EXPLAIN_PROBES(MINT_INSTANTIATE)
MINT_CORES_EXPLAIN_TUNED_LENS(MINT_INSTANTIATE)
