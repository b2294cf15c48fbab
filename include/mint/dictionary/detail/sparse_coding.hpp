// What the sparse coders (omp.hpp, lasso.hpp, lars.hpp) and the dictionary learners
// share: input checks, the two products every coder starts from (the Gram matrix D D^T
// and the correlations X D^T, one Eigen GEMM each), and splitting signals into one
// block per thread so each block sizes its workspace once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/dictionary/detail/views.hpp"

namespace mint::detail {

// Code in mint::dictionary that writes detail::str means detail::str; once this
// namespace exists, that name would find it here first.
using detail::shape_string;
using detail::str;

/// The scalar a coder computes in: the signals' element type (float or double).
template <class X>
using scalar_of = std::remove_const_t<value_t<const X>>;

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// Checks a [rows, columns] argument: rank 2, and `columns` columns when that is given (>= 0).
template <class V>
void check_rank2(const char* function, const char* name, const tensor_view<V>& v, index columns = -1,
                 const char* columns_are = "") {
  if (v.rank() != 2)
    throw shape_error(function, name, detail::str("has rank ", v.rank()), "needs rank 2 ([rows, columns])");
  if (columns >= 0 && v.extent(1) != columns)
    throw shape_error(function, name, detail::str("has ", v.extent(1), " columns"),
                      detail::str("needs ", columns, ", ", columns_are));
}
#endif  // MINT_CORE_BODIES

/// An owned copy in T, refusing NaN and infinity.
template <class T, class V>
matrix<T> finite_copy(const char* function, const char* name, const tensor_view<V>& v) {
  matrix<T> out = as_matrix(v).template cast<T>();
  if (!out.allFinite()) throw numeric_error(function, name, "holds a NaN or infinity", "needs finite values");
  return out;
}

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// Calls f with the fastest Map of v's layout (visit_matrix), refusing NaN and infinity.
template <class T, class F>
void visit_finite(const char* function, const char* name, const tensor_view<const T>& v, F&& f) {
  visit_matrix(v, [&](const auto& m) {
    if (!m.allFinite()) throw numeric_error(function, name, "holds a NaN or infinity", "needs finite values");
    f(m);
  });
}
#endif  // MINT_CORE_BODIES

/// Which squared norms of the signals a coder needs.
enum class signal_norms : std::uint8_t { none, same_type, in_double };

/// What a coder starts from: D D^T, X D^T (the signals as rows) and the squared norms it asked for.
template <class T>
struct coding_products {
  matrix<T> gram;          ///< [K, K]
  matrix<T> correlations;  ///< [n, K]
  vector<T> norms2;        ///< ||x_i||^2 in T (signal_norms::same_type)
  vectord norms2_double;   ///< ||x_i||^2 in double (signal_norms::in_double)
};

/// The products and copies every coder and learner makes, over float and double: a core
/// (mint/core/compiled.hpp), so a program built with separate compilation instantiates these
/// GEMMs once rather than in each coder's unit.
template <class T>
struct sparse_coding_core {
  /// Checks signals x [n, d] and a dictionary [K, d], then forms D D^T, X D^T and the norms asked for.
  static coding_products<T> products(const char* function, const tensor_view<const T>& x,
                                     const tensor_view<const T>& dictionary, signal_norms norms);
  /// An owned copy, refusing NaN and infinity.
  static matrix<T> finite_copy(const char* function, const char* name, const tensor_view<const T>& v);
  /// D D^T: [atoms, atoms].
  static matrix<T> gram(const matrix<T>& dictionary);
  /// out = X D^T ([n, atoms], resized).
  static void correlations(const Eigen::Ref<const matrix<T>>& x, const matrix<T>& dictionary, matrix<T>& out);
  /// The eigen-decomposition of a symmetric matrix, in double whatever T (the learners' refits and
  /// starts). Column-major, as Eigen evaluates the product the solver was once handed directly.
  static void symmetric_eigen(const Eigen::MatrixXd& a, Eigen::SelfAdjointEigenSolver<matrixd>& solver);
};

#if MINT_CORE_BODIES
template <class T>
coding_products<T> sparse_coding_core<T>::products(const char* function, const tensor_view<const T>& x,
                                                   const tensor_view<const T>& dictionary, signal_norms norms) {
  check_rank2(function, "dictionary", dictionary);
  check_rank2(function, "x", x, dictionary.extent(1), "the columns (dimensions) of the dictionary");
  const matrix<T> d = finite_copy(function, "dictionary", dictionary);
  coding_products<T> out;
  out.gram = gram(d);
  visit_finite(function, "x", x, [&](const auto& xm) {
    out.correlations.resize(xm.rows(), d.rows());
    out.correlations.noalias() = xm * d.transpose();
    if (norms == signal_norms::same_type) out.norms2 = xm.rowwise().squaredNorm();
    if (norms == signal_norms::in_double) out.norms2_double = xm.template cast<double>().rowwise().squaredNorm();
  });
  return out;
}

template <class T>
matrix<T> sparse_coding_core<T>::finite_copy(const char* function, const char* name, const tensor_view<const T>& v) {
  return detail::finite_copy<T>(function, name, v);
}

template <class T>
matrix<T> sparse_coding_core<T>::gram(const matrix<T>& dictionary) {
  matrix<T> gram(dictionary.rows(), dictionary.rows());
  gram.noalias() = dictionary * dictionary.transpose();
  return gram;
}

template <class T>
void sparse_coding_core<T>::correlations(const Eigen::Ref<const matrix<T>>& x, const matrix<T>& dictionary,
                                         matrix<T>& out) {
  out.resize(x.rows(), dictionary.rows());
  out.noalias() = x * dictionary.transpose();
}

template <class T>
void sparse_coding_core<T>::symmetric_eigen(const Eigen::MatrixXd& a, Eigen::SelfAdjointEigenSolver<matrixd>& solver) {
  solver.compute(a);
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
    throw shape_error(function, "squared_norms", "has extents " + detail::shape_string(norms.extents()),
                      detail::str("needs [", rows, "], one per row of correlations"));
}
#endif  // MINT_CORE_BODIES

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
    throw shape_error(function, name, "has extents " + detail::shape_string(v.extents()),
                      detail::str("needs [", rows, ", ", columns, "] (signals x atoms)"));
  return as_matrix(v);
}

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_DETAIL_SPARSE_CODING(CORE) \
  MINT_CORE_FD(CORE, mint::detail::sparse_coding_core)
MINT_CORES_DICTIONARY_DETAIL_SPARSE_CODING(MINT_CORE)
