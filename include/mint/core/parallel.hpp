// Threading: mint splits work across examples with OpenMP when the build has
// it (-fopenmp), and runs serially otherwise. Each thread writes its own
// outputs, so results do not depend on the schedule. Parallel regions open only
// when the loop carries enough work: on a busy machine a region waits for every
// thread to get a core, which costs far more than a small loop saves.
#pragma once

#include "mint/core/error.hpp"  // the C++20 check

#if defined(_OPENMP)
#include <omp.h>
#define MINT_PRAGMA(x) _Pragma(#x)
/// Runs the following for-loop across OpenMP threads when `work` (about flops) is large.
#define MINT_PARALLEL_FOR(work) MINT_PRAGMA(omp parallel for schedule(static) if ((work) >= ::mint::parallel_threshold))
/// The same for a loop that sums into `total` (each thread its own part, added at the end).
#define MINT_PARALLEL_SUM(work, total) \
  MINT_PRAGMA(omp parallel for schedule(static) reduction(+ : total) if ((work) >= ::mint::parallel_threshold))
#else
#define MINT_PARALLEL_FOR(work)
#define MINT_PARALLEL_SUM(work, total)
#endif

namespace mint {

/// Work (about floating-point operations) below which a loop stays on one thread.
inline constexpr double parallel_threshold = 2e6;

/// Threads mint's parallel loops use: OpenMP's maximum, or 1 without OpenMP.
inline int thread_count() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// This thread's number inside a parallel loop, 0 to thread_count() - 1 (0 outside one or
/// without OpenMP): the slot of per-thread scratch space.
inline int thread_index() noexcept {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace mint
