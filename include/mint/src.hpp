// mint's float and double cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (see mint/core/compiled.hpp). Add one .cpp file to the program that includes this header:
//
//     // mint.cpp
//     #include <mint/src.hpp>
//
// and compile every other unit with -DMINT_SEPARATE_COMPILATION. The parts (mint/src/*.hpp) may
// instead go in one file each, so a parallel build compiles them at once.
#pragma once

#include "mint/src/core.hpp"
#include "mint/src/dictionary.hpp"
#include "mint/src/io.hpp"
#include "mint/src/similarity.hpp"
