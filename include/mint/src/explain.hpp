// mint's explain cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#ifndef MINT_SEPARATE_COMPILATION
#define MINT_SEPARATE_COMPILATION 1
#endif

#include "mint/explain.hpp"

MINT_CORES_EXPLAIN_PROBES(MINT_INSTANTIATE)
MINT_CORES_EXPLAIN_TUNED_LENS(MINT_INSTANTIATE)
