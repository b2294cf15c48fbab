// Nearest-neighbour alignment: each example's k nearest neighbours among the others, in X and in Y.
// Mutual kNN alignment (Huh et al. 2024): mean over examples of |kNN_X(i) & kNN_Y(i)| / k; kNN
// Jaccard: mean of |kNN_X(i) & kNN_Y(i)| / |kNN_X(i) | kNN_Y(i)|. Cost n^2 d per layer (in blocks of
// rows, no n x n matrix), n k per pair; memory n k.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
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

template <tensor X>
knn_lists knn_prepare(const X& x, const similarity_context& where, index k, knn_metric metric,
                      product_precision precision) {
  using T = value_t<const X>;
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
    const index step = std::clamp<index>((index(1) << 21) / std::max<index>(n, 1), 16, 512);
    matrix<S> scores;
    std::vector<S> row_scores(static_cast<std::size_t>(n));
    std::vector<std::uint32_t> chosen;
    for (index begin = 0; begin < n; begin += step) {
      const index count = std::min(step, n - begin);
      scores.noalias() = z.middleRows(begin, count) * z.transpose();
      // Euclidean: rank by x_i.x_j - |x_j|^2 / 2, which orders j as -|x_i - x_j|^2 does.
      if (metric == knn_metric::euclidean) scores.rowwise() -= half_norms.transpose();
      for (index r = 0; r < count; ++r) {
        const index i = begin + r;
        const S* score = scores.row(r).data();
        for (index j = 0; j < n; ++j) {
          if (!std::isfinite(score[j])) require_finite(double(score[j]), where);
          row_scores[std::size_t(j)] = score[j];
        }
        row_scores[std::size_t(i)] = -std::numeric_limits<S>::infinity();
        // The k-th largest score, then everything above it and the lowest indices tied with it.
        std::nth_element(row_scores.begin(), row_scores.begin() + (k - 1), row_scores.end(), std::greater<S>());
        const S threshold = row_scores[std::size_t(k - 1)];
        chosen.clear();
        for (index j = 0; j < n; ++j)
          if (j != i && score[j] > threshold) chosen.push_back(std::uint32_t(j));
        for (index j = 0; j < n && index(chosen.size()) < k; ++j)
          if (j != i && score[j] == threshold) chosen.push_back(std::uint32_t(j));
        std::sort(chosen.begin(), chosen.end());
        std::copy(chosen.begin(), chosen.end(), out.neighbours.begin() + std::ptrdiff_t(i * k));
      }
    }
  });
  return out;
}

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
