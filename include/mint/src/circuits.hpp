// mint's circuit cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#include "mint/src/compiling_cores.hpp"

#include "mint/circuits.hpp"

MINT_CORES_CIRCUITS_DETAIL_EDGE_GRADIENT_SUMS(MINT_INSTANTIATE)
