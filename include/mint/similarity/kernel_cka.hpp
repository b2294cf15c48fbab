// Kernel CKA with a Gaussian (RBF) kernel (Kornblith et al. 2019): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))
// with K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2)), sigma = bandwidth x the median distance between examples.
// Cost n^2 d for the distances, n^2 log n for the median; memory n^2 per layer (float for float32 data).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/hsic.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rank.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

namespace detail {

/// The median of all n^2 entries of a matrix of squared distances, diagonal zeros included
/// (as Kornblith et al.'s code takes it), from the n(n-1)/2 values above the diagonal.
template <class S>
double median_with_diagonal(const std::vector<S>& upper, index n) {
  const index total = n * n;
  // Sorted, the n^2 entries are n zeros, then every value above the diagonal twice: entry p >= n
  // is the ((p - n) / 2)-th smallest value above the diagonal.
  const auto entry = [&](index position) {
    return position < n ? 0.0 : double(kth_smallest(upper, std::size_t((position - n) / 2)));
  };
  const index high = total / 2;
  if (total % 2 == 1) return entry(high);
  const double above = entry(high);
  return 0.5 * (((high - n) % 2 == 1 && high > n) ? above : entry(high - 1)) + 0.5 * above;
}

/// The RBF kernel of the rows: products in S, sigma^2 = bandwidth^2 x median squared distance.
template <class S, class T>
dense_of<S> rbf_kernel(const tensor_view<const T>& rows, double bandwidth, const similarity_context& where) {
  const index n = rows.extent(0);
  dense_of<S> k = row_gram<S, S>(rows, product_shift<S>(rows));
  const vector<S> norms = k.diagonal();
  std::vector<S> upper;
  upper.reserve(std::size_t(n * (n - 1) / 2));
  for (index j = 0; j < n; ++j) {
    auto column = k.col(j);
    column = (norms.array() + norms(j) - S(2) * column.array()).max(S(0));
    column(j) = S(0);
    upper.insert(upper.end(), column.data(), column.data() + j);
  }
  const double median = median_with_diagonal(upper, n);
  require_finite(median, where);
  if (!(median > 0.0))
    throw numeric_error(where.function, where.argument,
                        "has a median distance of 0 between examples (most examples are identical)",
                        "needs examples that differ, for the RBF bandwidth");
  const S scale = S(-1.0 / (2.0 * bandwidth * bandwidth * median));
  k.array() = (k.array() * scale).exp();
  return k;
}

}  // namespace detail

/// RBF-kernel CKA; also the measure similarity_matrix runs.
struct kernel_cka_options {
  double bandwidth = 1.0;  ///< sigma as a fraction of the median distance between examples (Kornblith et al.: 0.2 to 2)
  hsic_estimator estimator = hsic_estimator::biased;
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const {
    char bw[32];
    std::snprintf(bw, sizeof bw, "%g", bandwidth);
    return std::string("RBF CKA (bandwidth ") + bw + (estimator == hsic_estimator::biased ? ")" : ", debiased)");
  }

  struct prepared {
    similarity_context where;
    std::variant<detail::kernel_statistics<float>, detail::kernel_statistics<double>> kernel;
    index n = 0;
    double self_hsic = 0.0;
  };

  template <tensor X>
  prepared prepare(const X& x, const similarity_context& where) const {
    using T = value_t<const X>;
    const tensor_view<const T> rows = detail::hsic_rows(x, estimator, where);
    if (!(bandwidth > 0.0) || !std::isfinite(bandwidth))
      throw argument_error(where.function, "bandwidth", detail::str("is ", bandwidth), "needs a finite value > 0");
    prepared p{where, {}, rows.extent(0), 0.0};
    detail::with_product_type<T, T>(precision, [&](auto s) {
      using S = decltype(s);
      const auto& k = p.kernel.template emplace<detail::kernel_statistics<S>>(
          detail::make_kernel_statistics(detail::rbf_kernel<S>(rows, bandwidth, where)));
      p.self_hsic = detail::kernel_hsic(k, k, estimator);
    });
    if (!(p.self_hsic > 0.0))
      throw numeric_error(where.function, where.argument, "gives a kernel with HSIC(K, K) <= 0",
                          "needs examples that differ (try a larger bandwidth)");
    return p;
  }

  // A template (P is always `prepared`) so only units that compare instantiate the kernels.
  template <std::same_as<prepared> P>
  double compare(const P& a, const P& b) const {
    detail::require_same_examples(a.n, a.where, b.n, b.where);
    const double cross = std::visit([&](const auto& ka, const auto& kb) { return detail::kernel_hsic(ka, kb, estimator); },
                                    a.kernel, b.kernel);
    return detail::require_finite(cross / std::sqrt(a.self_hsic * b.self_hsic), b.where);
  }
};

/// CKA with Gaussian kernels of X [n, d1] and Y [n, d2] (same examples).
template <tensor X, tensor Y>
double kernel_cka(const X& x, const Y& y, const kernel_cka_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::kernel_cka");
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_KERNEL_CKA(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::kernel_cka_options)
MINT_CORES_SIMILARITY_KERNEL_CKA(MINT_CORE)
