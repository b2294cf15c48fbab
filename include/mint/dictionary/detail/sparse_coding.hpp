// What the sparse coders (omp.hpp, lasso.hpp) and the dictionary learners share:
// input checks, the two products every coder starts from (the Gram matrix D D^T
// and the correlations X D^T, one Eigen GEMM each), and splitting signals into
// one block per thread so each block sizes its workspace once.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint::dictionary::detail {

// Code in mint::dictionary that writes detail::str means mint::detail::str; once this
// namespace exists, that name would find it here first.
using mint::detail::shape_string;
using mint::detail::str;

/// The scalar a coder computes in: the signals' element type (float or double).
template <class X>
using scalar_of = std::remove_const_t<value_t<const X>>;

/// Checks a [rows, columns] argument: rank 2, and `columns` columns when that is given (>= 0).
template <class V>
void check_rank2(const char* function, const char* name, const tensor_view<V>& v, index columns = -1,
                 const char* columns_are = "") {
  if (v.rank() != 2)
    throw shape_error(function, name, mint::detail::str("has rank ", v.rank()), "needs rank 2 ([rows, columns])");
  if (columns >= 0 && v.extent(1) != columns)
    throw shape_error(function, name, mint::detail::str("has ", v.extent(1), " columns"),
                      mint::detail::str("needs ", columns, ", ", columns_are));
}

/// An owned copy in T, refusing NaN and infinity.
template <class T, class V>
matrix<T> finite_copy(const char* function, const char* name, const tensor_view<V>& v) {
  matrix<T> out = as_matrix(v).template cast<T>();
  if (!out.allFinite()) throw numeric_error(function, name, "holds a NaN or infinity", "needs finite values");
  return out;
}

/// Calls f with a unit-stride Map of v when v already holds T, else with an owned copy in T.
template <class T, class V, class F>
void with_matrix_of(const char* function, const char* name, const tensor_view<V>& v, F&& f) {
  if constexpr (std::is_same_v<std::remove_const_t<V>, T>) {
    visit_matrix(v, [&](const auto& m) {
      if (!m.allFinite()) throw numeric_error(function, name, "holds a NaN or infinity", "needs finite values");
      f(m);
    });
  } else {
    f(finite_copy<T>(function, name, v));
  }
}

/// D D^T: [atoms, atoms].
template <class T>
matrix<T> gram_of(const matrix<T>& dictionary) {
  matrix<T> gram(dictionary.rows(), dictionary.rows());
  gram.noalias() = dictionary * dictionary.transpose();
  return gram;
}

/// Checks signals x [n, d] and a dictionary [K, d], then calls f(gram, correlations, xm) with
/// D D^T, X D^T ([n, K], the signals as rows) and the signals as a matrix (a Map when possible).
template <class T, class X, class D, class F>
void with_products(const char* function, const X& x, const D& dictionary, F&& f) {
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  check_rank2(function, "dictionary", dv);
  check_rank2(function, "x", xv, dv.extent(1), "the columns (dimensions) of the dictionary");
  const matrix<T> d = finite_copy<T>(function, "dictionary", dv);
  const matrix<T> gram = gram_of(d);
  with_matrix_of<T>(function, "x", xv, [&](const auto& xm) {
    matrix<T> correlations(xm.rows(), d.rows());
    correlations.noalias() = xm * d.transpose();
    f(gram, correlations, xm);
  });
}

/// Blocks of rows, one per thread when the work (about flops) is worth a parallel region.
struct row_blocks {
  index rows = 0;
  index count = 1;

  row_blocks(index rows_, double work) : rows(rows_) {
    count = work >= parallel_threshold ? std::max<index>(1, std::min<index>(thread_count(), rows)) : 1;
  }
  index begin(index block) const { return rows * block / count; }
  index end(index block) const { return rows * (block + 1) / count; }
};

/// Checks products passed in place of signals: gram [K, K], correlations [n, K], and
/// (when given) squared norms [n].
template <class G, class C>
void check_gram_products(const char* function, const tensor_view<G>& gram, const tensor_view<C>& correlations) {
  check_rank2(function, "gram", gram, gram.rank() == 2 ? gram.extent(0) : 0, "a square matrix");
  check_rank2(function, "correlations", correlations, gram.extent(0), "the atoms of gram");
}

template <class N>
void check_squared_norms(const char* function, const tensor_view<N>& norms, index rows) {
  if (norms.rank() != 1 || norms.extent(0) != rows)
    throw shape_error(function, "squared_norms", "has extents " + mint::detail::shape_string(norms.extents()),
                      mint::detail::str("needs [", rows, "], one per row of correlations"));
}

/// [signals, atoms] for codes of x over a dictionary ([0, 0] until the shape checks have run).
template <class A, class B>
std::pair<index, index> code_extents(const tensor_view<A>& x, const tensor_view<B>& dictionary) {
  return {x.rank() == 2 ? x.extent(0) : 0, dictionary.rank() == 2 ? dictionary.extent(0) : 0};
}

/// A Map over an owned matrix, the type the coders write through.
template <class T>
matrix_map<T> map_of(matrix<T>& m) {
  return matrix_map<T>(m.data(), m.rows(), m.cols(), Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(m.cols(), 1));
}

/// A result matrix's Map for writing codes; checks the caller's [rows, columns] view.
template <class T>
matrix_map<T> checked_output(const char* function, const char* name, const tensor_view<T>& v, index rows,
                             index columns) {
  if (v.rank() != 2 || v.extent(0) != rows || v.extent(1) != columns)
    throw shape_error(function, name, "has extents " + mint::detail::shape_string(v.extents()),
                      mint::detail::str("needs [", rows, ", ", columns, "] (signals x atoms)"));
  return as_matrix(v);
}

}  // namespace mint::dictionary::detail
