// mint's explain cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#include "mint/src/compiling_cores.hpp"

#include "mint/explain.hpp"

MINT_CORES_EXPLAIN_PROBES(MINT_INSTANTIATE)
MINT_CORES_EXPLAIN_TUNED_LENS(MINT_INSTANTIATE)
