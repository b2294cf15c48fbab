// The opening of every mint/src/*.hpp: this unit compiles the cores, so it sees their bodies
// (MINT_CORE_BODIES, mint/core/compiled.hpp). A mint header included before it has hidden them.
#pragma once

#if defined(MINT_CORE_BODIES) && !MINT_CORE_BODIES
#error "mint/src.hpp (or a mint/src/<area>.hpp) must be included before any other mint header in its unit"
#endif
#ifndef MINT_COMPILING_CORES
#define MINT_COMPILING_CORES 1
#endif
#ifndef MINT_SEPARATE_COMPILATION
#define MINT_SEPARATE_COMPILATION 1
#endif
