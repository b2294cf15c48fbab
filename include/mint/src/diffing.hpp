// mint's model-diffing cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#include "mint/src/compiling_cores.hpp"

#include "mint/diffing.hpp"

MINT_CORES_DIFFING_CROSSCODER(MINT_INSTANTIATE)
