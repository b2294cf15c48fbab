// mint's toy cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#include "mint/src/compiling_cores.hpp"

#include "mint/toy.hpp"

MINT_CORES_TOY_FILES(MINT_INSTANTIATE)
MINT_CORES_TOY_LSTM(MINT_INSTANTIATE)
MINT_CORES_TOY_TRANSFORMER(MINT_INSTANTIATE)
