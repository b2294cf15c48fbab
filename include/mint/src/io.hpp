// mint's io cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

#include "mint/src/compiling_cores.hpp"

#include "mint/io.hpp"

MINT_CORES_IO_ACTIVATION_SHARDS(MINT_INSTANTIATE)
MINT_CORES_IO_CONTROL_VECTOR(MINT_INSTANTIATE)
MINT_CORES_IO_GGUF(MINT_INSTANTIATE)
MINT_CORES_IO_JSON(MINT_INSTANTIATE)
MINT_CORES_IO_NPY(MINT_INSTANTIATE)
MINT_CORES_IO_NPZ(MINT_INSTANTIATE)
MINT_CORES_IO_SAFETENSORS(MINT_INSTANTIATE)
