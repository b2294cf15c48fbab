// Nearest-neighbour alignment: each example's k nearest neighbours among the others, in X and in Y.
// Mutual kNN alignment (Huh et al. 2024): mean over examples of |kNN_X(i) & kNN_Y(i)| / k; kNN
// Jaccard: mean of |kNN_X(i) & kNN_Y(i)| / |kNN_X(i) | kNN_Y(i)|. Cost n^2 d per layer (in blocks of
// rows, no n x n matrix), n k per pair; memory n k.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// What "nearest" means.
enum class knn_metric {
  cosine,         ///< largest cosine similarity (Huh et al.: features normalized to unit length)
  euclidean,      ///< smallest Euclidean distance
  inner_product,  ///< largest inner product of the raw activations
};

namespace detail {

/// Each example's k nearest other examples, sorted by index: row i of an n x k table.
struct knn_lists {
  similarity_context where;
  index n = 0, k = 0;
  std::vector<std::uint32_t> neighbours;  ///< n * k
};

/// Each example's k nearest other examples, over float and double views.
template <class T>
struct knn_core {
  static knn_lists prepare(const tensor_view<const T>& x, const similarity_context& where, index k, knn_metric metric,
                           product_precision precision);
};

template <tensor X>
knn_lists knn_prepare(const X& x, const similarity_context& where, index k, knn_metric metric,
                      product_precision precision) {
  return knn_core<value_t<const X>>::prepare(measure_view(x), where, k, metric, precision);
}

#if MINT_CORE_BODIES
template <class T>
knn_lists knn_core<T>::prepare(const tensor_view<const T>& x, const similarity_context& where, index k,
                               knn_metric metric, product_precision precision) {
  const tensor_view<const T> rows = example_rows(x, where);
  require_examples(rows, 2, where);
  const index n = rows.extent(0);
  if (k < 1 || k > n - 1)
    throw argument_error(where.function, "k", str("is ", k), str("needs 1 <= k <= ", n - 1, ", the other examples"));
  knn_lists out{where, n, k, std::vector<std::uint32_t>(std::size_t(n * k))};
  with_product_type<T, T>(precision, [&](auto s) {
    using S = decltype(s);
    const vectord shift = metric == knn_metric::euclidean ? product_shift<S>(rows) : vectord::Zero(rows.extent(1));
    matrix<S> z;
    load_rows(rows, 0, n, vector<S>(shift.template cast<S>()), z);
    if (metric == knn_metric::cosine) {
      const vector<S> norms = z.rowwise().norm();
      for (index i = 0; i < n; ++i)
        if (norms(i) > S(0)) z.row(i) /= norms(i);
    }
    const vector<S> half_norms = S(0.5) * z.rowwise().squaredNorm();
    // Each row keeps its k best (score descending, index ascending on ties). Tiles of the upper
    // triangle of Z Z^T serve the rows of both their row block and their column block, so every
    // product is formed once.
    std::vector<S> best_score(std::size_t(n * k));
    std::vector<std::uint32_t> best_index(std::size_t(n * k));
    std::vector<index> filled(std::size_t(n), 0);
    const auto offer = [&](index i, index j, S score) {
      S* scores = best_score.data() + i * k;
      std::uint32_t* indices = best_index.data() + i * k;
      index& count = filled[std::size_t(i)];
      const auto better = [&](index at) {
        return score > scores[at] || (score == scores[at] && std::uint32_t(j) < indices[at]);
      };
      if (count == k && !better(k - 1)) return;
      index at = count < k ? count++ : k - 1;
      for (; at > 0 && better(at - 1); --at) {
        scores[at] = scores[at - 1];
        indices[at] = indices[at - 1];
      }
      scores[at] = score;
      indices[at] = std::uint32_t(j);
    };
    constexpr index tile = 512;
    matrix<S> g, g_t;
    for (index bi = 0; bi < n; bi += tile) {
      const index rows_i = std::min(tile, n - bi);
      for (index bj = bi; bj < n; bj += tile) {
        const index rows_j = std::min(tile, n - bj);
        g.noalias() = z.middleRows(bi, rows_i) * z.middleRows(bj, rows_j).transpose();
        if (!g.allFinite())
          throw numeric_error(where.function, where.argument, "holds NaN or infinity", "needs finite activations");
        // Euclidean: rank j for i by x_i.x_j - |x_j|^2 / 2, which orders j as -|x_i - x_j|^2 does.
        const bool euclidean = metric == knn_metric::euclidean;
        for (index r = 0; r < rows_i; ++r)
          for (index c = 0; c < rows_j; ++c)
            if (bi + r != bj + c) offer(bi + r, bj + c, euclidean ? g(r, c) - half_norms(bj + c) : g(r, c));
        if (bj == bi) continue;
        g_t = g.transpose();
        for (index c = 0; c < rows_j; ++c)
          for (index r = 0; r < rows_i; ++r) offer(bj + c, bi + r, euclidean ? g_t(c, r) - half_norms(bi + r) : g_t(c, r));
      }
    }
    for (index i = 0; i < n; ++i) {
      const auto row = best_index.begin() + std::ptrdiff_t(i * k);
      std::sort(row, row + std::ptrdiff_t(k));
    }
    out.neighbours = std::move(best_index);
  });
  return out;
}
#endif  // MINT_CORE_BODIES

/// sum over examples of f(|A & B|), with A and B each example's sorted neighbour lists.
template <class F>
double knn_overlap_sum(const knn_lists& a, const knn_lists& b, F&& f) {
  require_same_examples(a.n, a.where, b.n, b.where);
  double total = 0.0;
  for (index i = 0; i < a.n; ++i) {
    const std::uint32_t* p = a.neighbours.data() + i * a.k;
    const std::uint32_t* q = b.neighbours.data() + i * b.k;
    const std::uint32_t *p_end = p + a.k, *q_end = q + b.k;
    index shared = 0;
    while (p != p_end && q != q_end) {
      if (*p < *q) {
        ++p;
      } else if (*q < *p) {
        ++q;
      } else {
        ++shared, ++p, ++q;
      }
    }
    total += f(shared);
  }
  return total;
}

}  // namespace detail

/// Mutual k-nearest-neighbour alignment, in [0, 1]; also the measure similarity_matrix runs.
struct mutual_knn_options {
  index k = 10;
  knn_metric metric = knn_metric::cosine;
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const { return "mutual kNN (k = " + std::to_string(k) + ")"; }

  template <tensor X>
  detail::knn_lists prepare(const X& x, const similarity_context& where) const {
    return detail::knn_prepare(x, where, k, metric, precision);
  }

  double compare(const detail::knn_lists& a, const detail::knn_lists& b) const {
    return detail::knn_overlap_sum(a, b, [](index shared) { return double(shared); }) / double(a.n * a.k);
  }
};

/// Mean Jaccard index of the kNN sets, in [0, 1]; also the measure similarity_matrix runs.
struct knn_jaccard_options {
  index k = 10;
  knn_metric metric = knn_metric::cosine;
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const { return "kNN Jaccard (k = " + std::to_string(k) + ")"; }

  template <tensor X>
  detail::knn_lists prepare(const X& x, const similarity_context& where) const {
    return detail::knn_prepare(x, where, k, metric, precision);
  }

  double compare(const detail::knn_lists& a, const detail::knn_lists& b) const {
    const double k2 = double(2 * a.k);
    return detail::knn_overlap_sum(a, b, [&](index shared) { return double(shared) / (k2 - double(shared)); }) /
           double(a.n);
  }
};

/// Mutual kNN alignment of X [n, d1] and Y [n, d2] (same examples): the mean fraction of shared neighbours.
template <tensor X, tensor Y>
double mutual_knn_alignment(const X& x, const Y& y, const mutual_knn_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::mutual_knn_alignment");
}

/// Mean Jaccard index of each example's kNN sets in X [n, d1] and Y [n, d2].
template <tensor X, tensor Y>
double knn_jaccard(const X& x, const Y& y, const knn_jaccard_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::knn_jaccard");
}

/// The k nearest other examples of each example of X [n, d], as an n x k table of indices sorted
/// ascending (ties broken towards the lower index).
template <tensor X>
Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> nearest_neighbours(
    const X& x, index k, knn_metric metric = knn_metric::cosine) {
  const detail::knn_lists lists =
      detail::knn_prepare(x, {"mint::nearest_neighbours", "x"}, k, metric, product_precision::input);
  Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> out(lists.n, lists.k);
  for (index i = 0; i < lists.n * lists.k; ++i) out.data()[i] = std::int64_t(lists.neighbours[std::size_t(i)]);
  return out;
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_KNN(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::mutual_knn_options) \
  MINT_SIMILARITY_CORES(CORE, mint::knn_jaccard_options) \
  MINT_CORE_FD(CORE, mint::detail::knn_core)
MINT_CORES_SIMILARITY_KNN(MINT_CORE)
