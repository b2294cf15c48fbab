// mint's float and double cores, compiled once for a program built with MINT_SEPARATE_COMPILATION
// (see mint/core/compiled.hpp). Add one .cpp file to the program that includes this header:
//
//     // mint.cpp
//     #include <mint/src.hpp>
//
// and compile every other unit with -DMINT_SEPARATE_COMPILATION. The parts (mint/src/*.hpp) may
// instead go in one file each, so a parallel build compiles them at once.
// The toy runtimes' cores are among them (mint/src/toy.hpp), though mint.hpp leaves toy/ out: a
// unit built with MINT_SEPARATE_COMPILATION that uses them links them from here.
#pragma once

#include "mint/src/circuits.hpp"
#include "mint/src/core.hpp"
#include "mint/src/dictionary.hpp"
#include "mint/src/diffing.hpp"
#include "mint/src/explain.hpp"
#include "mint/src/io.hpp"
#include "mint/src/similarity.hpp"
#include "mint/src/steering.hpp"
#include "mint/src/toy.hpp"
