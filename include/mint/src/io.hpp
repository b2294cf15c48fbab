// mint's io cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (mint/core/compiled.hpp): include in one .cpp file of the program (or use mint/src.hpp).
#pragma once

// This unit compiles the cores, so it sees their bodies (mint/core/compiled.hpp): a mint header
// included before this one has already hidden them.
#if defined(MINT_CORE_BODIES) && !MINT_CORE_BODIES
#error "mint/src.hpp (or mint/src/io.hpp) must be included before any other mint header in its unit"
#endif
#ifndef MINT_COMPILING_CORES
#define MINT_COMPILING_CORES 1
#endif
#ifndef MINT_SEPARATE_COMPILATION
#define MINT_SEPARATE_COMPILATION 1
#endif

#include "mint/io.hpp"

MINT_CORES_IO_ACTIVATION_SHARDS(MINT_INSTANTIATE)
MINT_CORES_IO_CONTROL_VECTOR(MINT_INSTANTIATE)
MINT_CORES_IO_GGUF(MINT_INSTANTIATE)
MINT_CORES_IO_JSON(MINT_INSTANTIATE)
MINT_CORES_IO_NPY(MINT_INSTANTIATE)
MINT_CORES_IO_NPZ(MINT_INSTANTIATE)
MINT_CORES_IO_SAFETENSORS(MINT_INSTANTIATE)
