// Dense products whose bits do not depend on the thread count. Eigen's threaded product
// chooses its depth blocking by the number of threads (capped near 320 when there are
// several), so A B rounds differently on 1 and on 2 threads. Here the output is cut into
// blocks by its shape alone and each block is one single-threaded Eigen product (Eigen does
// not nest threads inside a parallel region): the same bits on any thread count, at the
// speed of Eigen's own threading (docs/dictionary.md has the measurements). Each block
// repacks the operand all blocks share, so the cut runs along the side whose shared operand
// is the smaller one. O(rows cols depth).
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"

namespace mint::detail {

/// Blocks of at least this many rows (or columns) keep each single-threaded product efficient;
/// at most this many blocks bound the repacking of the shared operand.
inline constexpr index product_block_min = 64, product_blocks_max = 16;

/// out = a * b (add: out += a * b), fixed-order: out must already have a's rows and b's columns.
template <class A, class B, class Out>
void fixed_order_product(const A& a, const B& b, Out&& out, bool add = false) {
  const index rows = out.rows(), cols = out.cols(), depth = a.cols();
  // Cutting rows repacks b (depth x cols) per block; cutting columns repacks a (rows x depth).
  const bool cut_rows = rows * depth >= depth * cols;
  const index side = cut_rows ? rows : cols;
  const index blocks = std::clamp<index>(side / product_block_min, 1, product_blocks_max);
  const index step = (side + blocks - 1) / blocks;
  auto block = [&](index i) {
    const index first = i * step, size = std::min(step, side - first);
    if (size <= 0) return;
    if (cut_rows) {
      if (add) out.middleRows(first, size).noalias() += a.middleRows(first, size) * b;
      else out.middleRows(first, size).noalias() = a.middleRows(first, size) * b;
    } else {
      if (add) out.middleCols(first, size).noalias() += a * b.middleCols(first, size);
      else out.middleCols(first, size).noalias() = a * b.middleCols(first, size);
    }
  };
#if defined(_OPENMP)
  // Always a team when threads are available, even for one block: outside a team, Eigen
  // would thread the block itself with the thread-dependent blocking this avoids.
  if (thread_count() > 1) {
#pragma omp parallel for schedule(static)
    for (index i = 0; i < blocks; ++i) block(i);
    return;
  }
#endif
  for (index i = 0; i < blocks; ++i) block(i);
}

}  // namespace mint::detail
