// Representational similarity analysis (Kriegeskorte et al. 2008): each representation's
// dissimilarity matrix RDM_ij = distance(x_i, x_j) over pairs of examples (1 - Pearson correlation,
// cosine or Euclidean distance), and two RDMs compared by the Spearman, Pearson or Kendall tau-b
// correlation of their upper triangles. Cost n^2 d for an RDM, n^2 log n for ranks; memory n^2 / 2.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rank.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// The dissimilarity between two examples in an RDM.
enum class rdm_distance {
  correlation,  ///< 1 - Pearson correlation of the two activation vectors (over features)
  cosine,       ///< 1 - cosine similarity
  euclidean,    ///< |x_i - x_j|
};

/// How two RDMs are compared.
enum class rsa_comparison {
  spearman,  ///< Pearson correlation of average ranks (ties share a rank)
  pearson,   ///< Pearson correlation of the dissimilarities
  kendall,   ///< Kendall's tau-b (tie-corrected)
};

namespace detail {

inline const char* rdm_distance_name(rdm_distance d) {
  switch (d) {
    case rdm_distance::correlation: return "correlation";
    case rdm_distance::cosine: return "cosine";
    default: return "euclidean";
  }
}

/// The rows each distance takes inner products of: unit vectors for correlation (after removing
/// each example's mean over features) and cosine; shifted rows for Euclidean.
template <class S, class T>
matrix<S> rdm_rows(const tensor_view<const T>& rows, rdm_distance distance, const similarity_context& where) {
  const index n = rows.extent(0);
  const vectord shift = distance == rdm_distance::euclidean ? product_shift<S>(rows) : vectord::Zero(rows.extent(1));
  matrix<S> z;
  load_rows(rows, 0, n, vector<S>(shift.template cast<S>()), z);
  if (distance == rdm_distance::euclidean) return z;
  const vector<S> raw_norms = z.rowwise().norm();
  if (distance == rdm_distance::correlation) z.colwise() -= z.rowwise().mean();
  const vector<S> norms = z.rowwise().norm();
  // A constant example leaves a residual at rounding level, not an exact 0.
  const S tiny = S(16) * std::numeric_limits<S>::epsilon() * std::sqrt(S(z.cols()));
  for (index i = 0; i < n; ++i) {
    if (!(norms(i) > tiny * raw_norms(i)) || !(norms(i) > S(0))) {
      require_finite(double(norms(i)), where);
      throw numeric_error(where.function, where.argument,
                          str("has example ", i, distance == rdm_distance::correlation ? " constant across features"
                                                                                        : " equal to zero"),
                          str("needs examples with a direction for the ", rdm_distance_name(distance), " distance"));
    }
    z.row(i) /= norms(i);
  }
  return z;
}

/// The upper triangle (i < j, row by row) of the RDM, computed in blocks of rows.
template <class S, class T>
std::vector<S> rdm_upper(const tensor_view<const T>& rows, rdm_distance distance, const similarity_context& where) {
  const index n = rows.extent(0);
  const matrix<S> z = rdm_rows<S>(rows, distance, where);
  const vector<S> norms = z.rowwise().squaredNorm();
  std::vector<S> upper(std::size_t(n * (n - 1) / 2));
  const index step = std::clamp<index>((index(1) << 21) / std::max<index>(n, 1), 16, 512);
  matrix<S> block;
  std::size_t out = 0;
  for (index begin = 0; begin < n; begin += step) {
    const index count = std::min(step, n - begin);
    // Inner products of these rows with every row from `begin` on (the triangle and what lies right of it).
    block.noalias() = z.middleRows(begin, count) * z.bottomRows(n - begin).transpose();
    for (index r = 0; r < count; ++r) {
      const index i = begin + r;
      const index length = n - i - 1;
      auto products = block.row(r).segment(r + 1, length).array();
      S* dst = upper.data() + out;
      if (distance == rdm_distance::euclidean) {
        Eigen::Map<Eigen::Array<S, 1, Eigen::Dynamic>>(dst, length) =
            (norms(i) + norms.segment(i + 1, length).transpose().array() - S(2) * products).max(S(0)).sqrt();
      } else {
        Eigen::Map<Eigen::Array<S, 1, Eigen::Dynamic>>(dst, length) = (S(1) - products).max(S(0));
      }
      out += std::size_t(length);
    }
  }
  for (const S v : upper)
    if (!std::isfinite(v)) require_finite(double(v), where);
  return upper;
}

/// (v - mean) / |v - mean|, so a Pearson correlation is one dot product.
template <class S>
std::vector<S> standardized(std::vector<S> v, const similarity_context& where) {
  const Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> a(v.data(), index(v.size()));
  const double mean = a.template cast<double>().mean();
  const double norm = std::sqrt((a.template cast<double>() - mean).square().sum());
  if (!(norm > 0.0))
    throw numeric_error(where.function, where.argument, "gives an RDM whose entries are all equal",
                        "needs examples at different distances from each other");
  Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>(v.data(), index(v.size())) = ((a.template cast<double>() - mean) / norm).template cast<S>();
  return v;
}

}  // namespace detail

/// RSA; also the measure similarity_matrix runs.
struct rsa_options {
  rdm_distance distance = rdm_distance::correlation;
  rsa_comparison comparison = rsa_comparison::spearman;
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const {
    const char* how = comparison == rsa_comparison::spearman ? "Spearman"
                      : comparison == rsa_comparison::pearson ? "Pearson" : "Kendall tau-b";
    return std::string("RSA (") + detail::rdm_distance_name(distance) + " RDM, " + how + ")";
  }

  /// Per-layer work: the RDM's upper triangle, standardized (Pearson), as standardized ranks
  /// (Spearman) or as dense ranks (Kendall).
  struct prepared {
    similarity_context where;
    index n = 0;
    std::variant<std::vector<float>, std::vector<double>, detail::dense_ranks> entries;
  };

  template <tensor X>
  prepared prepare(const X& x, const similarity_context& where) const {
    using T = value_t<const X>;
    const tensor_view<const T> rows = detail::example_rows(x, where);
    detail::require_examples(rows, 3, where, " (an RDM needs 3 pairs to correlate)");
    if (rows.extent(0) > 92681)
      throw shape_error(where.function, where.argument, detail::str("has ", rows.extent(0), " examples"),
                        "needs at most 92681 (n(n-1)/2 pairs must fit 32-bit indices); sample the examples");
    prepared p{where, rows.extent(0), {}};
    detail::with_product_type<T, T>(precision, [&](auto s) {
      using S = decltype(s);
      std::vector<S> upper = detail::rdm_upper<S>(rows, distance, where);
      if (comparison == rsa_comparison::kendall)
        p.entries = detail::dense_ranking(upper);
      else if (comparison == rsa_comparison::spearman)
        p.entries = detail::standardized(detail::average_ranks(upper), where);
      else
        p.entries = detail::standardized(std::move(upper), where);
    });
    return p;
  }

  // A template (P is always `prepared`) so only units that compare instantiate the kernels.
  template <std::same_as<prepared> P>
  double compare(const P& a, const P& b) const {
    detail::require_same_examples(a.n, a.where, b.n, b.where);
    return std::visit(
        [&](const auto& u, const auto& v) -> double {
          using A = std::remove_cvref_t<decltype(u)>;
          using B = std::remove_cvref_t<decltype(v)>;
          if constexpr (std::is_same_v<A, detail::dense_ranks> && std::is_same_v<B, detail::dense_ranks>) {
            const double tau = detail::kendall_tau_b(u, v);
            if (!std::isfinite(tau))
              throw numeric_error(b.where.function, b.where.argument, "gives an RDM whose entries are all equal",
                                  "needs examples at different distances from each other");
            return tau;
          } else if constexpr (!std::is_same_v<A, detail::dense_ranks> && !std::is_same_v<B, detail::dense_ranks>) {
            const auto ua = Eigen::Map<const Eigen::Array<typename A::value_type, Eigen::Dynamic, 1>>(u.data(), index(u.size()));
            const auto vb = Eigen::Map<const Eigen::Array<typename B::value_type, Eigen::Dynamic, 1>>(v.data(), index(v.size()));
            return std::clamp((ua.template cast<double>() * vb.template cast<double>()).sum(), -1.0, 1.0);
          } else {
            throw argument_error(b.where.function, "comparison", "differs between the two prepared layers",
                                 "needs both prepared with the same options");
          }
        },
        a.entries, b.entries);
  }
};

namespace detail {

/// rdm over float and double views.
template <class T>
struct rdm_core {
  static matrixd run(const tensor_view<const T>& x, rdm_distance distance);
};

#if MINT_CORE_BODIES
template <class T>
matrixd rdm_core<T>::run(const tensor_view<const T>& x, rdm_distance distance) {
  const similarity_context where{"mint::rdm", "x"};
  const tensor_view<const T> rows = example_rows(x, where);
  require_examples(rows, 2, where);
  const index n = rows.extent(0);
  const std::vector<double> upper = rdm_upper<double>(rows, distance, where);
  matrixd out = matrixd::Zero(n, n);
  std::size_t k = 0;
  for (index i = 0; i < n; ++i)
    for (index j = i + 1; j < n; ++j) out(i, j) = out(j, i) = upper[k++];
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// The representational dissimilarity matrix of X [n, d]: n x n, zero diagonal.
template <tensor X>
matrixd rdm(const X& x, rdm_distance distance = rdm_distance::correlation) {
  return detail::rdm_core<value_t<const X>>::run(detail::measure_view(x), distance);
}

/// RSA of X [n, d1] and Y [n, d2] (same examples): the correlation of their RDMs, in [-1, 1].
template <tensor X, tensor Y>
double rsa(const X& x, const Y& y, const rsa_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::rsa");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_RSA(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::rsa_options) \
  MINT_CORE_FD(CORE, mint::detail::rdm_core)
MINT_CORES_SIMILARITY_RSA(MINT_CORE)
