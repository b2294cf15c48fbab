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
#include <type_traits>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"

namespace mint::detail {

/// Blocks of at least this many rows (or columns) keep each single-threaded product efficient;
/// at most this many blocks bound the repacking of the shared operand.
inline constexpr index product_block_min = 64, product_blocks_max = 16;

template <class T, int Order>
using strided_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0, Eigen::OuterStride<>>;
template <class T, int Order>
using const_strided_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0, Eigen::OuterStride<>>;

/// The product on plain strided maps: one instantiation per storage order of a and b, shared by
/// every caller (a call with expression operands would instantiate Eigen's product wrappers anew).
template <class T, int OrderA, int OrderB>
void fixed_order_product_maps(const_strided_map<T, OrderA> a, const_strided_map<T, OrderB> b,
                              strided_map<T, Eigen::RowMajor> out, bool add) {
  const index rows = out.rows(), cols = out.cols(), depth = a.cols();
  // Cutting rows repacks b (depth x cols) per block; cutting columns repacks a (rows x depth).
  const bool cut_rows = rows * depth >= depth * cols;
  const index side = cut_rows ? rows : cols;
  const index blocks = std::clamp<index>(side / product_block_min, 1, product_blocks_max);
  const index step = (side + blocks - 1) / blocks;
  // Each block as plain maps at an offset (not Eigen blocks), so both cuts share one product type.
  auto offset = [](auto& m, index first, bool rows_of) {
    constexpr bool row_major = std::remove_cvref_t<decltype(m)>::IsRowMajor;
    return rows_of == row_major ? first * m.outerStride() : first;
  };
  auto block = [&](index i) {
    const index first = i * step, size = std::min(step, side - first);
    if (size <= 0) return;
    const const_strided_map<T, OrderA> a_part(a.data() + (cut_rows ? offset(a, first, true) : 0), cut_rows ? size : rows,
                                              depth, Eigen::OuterStride<>(a.outerStride()));
    const const_strided_map<T, OrderB> b_part(b.data() + (cut_rows ? 0 : offset(b, first, false)), depth,
                                              cut_rows ? cols : size, Eigen::OuterStride<>(b.outerStride()));
    strided_map<T, Eigen::RowMajor> out_part(out.data() + offset(out, first, cut_rows), cut_rows ? size : rows,
                                             cut_rows ? cols : size, Eigen::OuterStride<>(out.outerStride()));
    if (add) out_part.noalias() += a_part * b_part;
    else out_part.noalias() = a_part * b_part;
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

/// out = a * b (add: out += a * b), fixed-order: out (row-major) must already have a's rows and
/// b's columns; a and b are matrices, maps or their transposes (unit inner stride).
template <class A, class B, class Out>
void fixed_order_product(const A& a, const B& b, Out&& out, bool add = false) {
  using T = typename std::remove_cvref_t<Out>::Scalar;
  static_assert(std::remove_cvref_t<Out>::IsRowMajor, "fixed_order_product writes a row-major output");
  constexpr int order_a = A::IsRowMajor ? Eigen::RowMajor : Eigen::ColMajor;
  constexpr int order_b = B::IsRowMajor ? Eigen::RowMajor : Eigen::ColMajor;
  fixed_order_product_maps<T, order_a, order_b>(
      const_strided_map<T, order_a>(a.data(), a.rows(), a.cols(), Eigen::OuterStride<>(a.outerStride())),
      const_strided_map<T, order_b>(b.data(), b.rows(), b.cols(), Eigen::OuterStride<>(b.outerStride())),
      strided_map<T, Eigen::RowMajor>(out.data(), out.rows(), out.cols(), Eigen::OuterStride<>(out.outerStride())), add);
}

}  // namespace mint::detail
