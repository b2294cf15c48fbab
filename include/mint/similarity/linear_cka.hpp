// Linear centred kernel alignment (Kornblith et al. 2019): ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)
// on centred X [n, d1], Y [n, d2], or its debiased form from the unbiased HSIC (Song et al. 2012).
// Feature space when n > d: cost n (d1^2 + d2^2 + d1 d2), memory d^2, no n x n matrix; Gram
// matrices when d > n: cost n^2 (d1 + d2), memory n^2. Products summed in double.
#pragma once

#include <cmath>
#include <optional>
#include <string>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/hsic.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// Where linear CKA does its products.
enum class cka_route {
  automatic,  ///< feature space (d x d) when examples outnumber features, Gram matrices (n x n) otherwise
  features,   ///< X^T X, Y^T Y, X^T Y: cost n d^2, memory d^2
  gram,       ///< X X^T, Y Y^T: cost n^2 d, memory n^2
};

/// Linear CKA; also the measure similarity_matrix runs.
struct linear_cka_options {
  hsic_estimator estimator = hsic_estimator::biased;  ///< unbiased gives debiased CKA
  cka_route route = cka_route::automatic;
  product_precision precision = product_precision::input;

  static constexpr bool is_distance = false;
  static constexpr bool is_symmetric = true;
  std::string name() const { return estimator == hsic_estimator::biased ? "linear CKA" : "linear CKA (debiased)"; }

  /// Per-layer work: shifted moments (feature route) or the Gram matrix, and HSIC(K, K).
  template <class T>
  struct prepared {
    tensor_view<const T> rows;
    similarity_context where;
    detail::row_moments moments;                          ///< feature route (shift always set)
    std::optional<detail::kernel_statistics<double>> gram;  ///< Gram route
    double self_hsic = 0.0;
  };

  template <tensor X>
  auto prepare(const X& x, const similarity_context& where) const {
    using T = value_t<const X>;
    const tensor_view<const T> rows = detail::hsic_rows(x, estimator, where);
    prepared<T> p{rows, where, {}, std::nullopt, 0.0};
    const bool use_gram =
        route == cka_route::gram || (route == cka_route::automatic && rows.extent(1) > rows.extent(0));
    detail::with_product_type<T, T>(precision, [&](auto s) {
      using S = decltype(s);
      if (use_gram) {
        p.moments.shift = detail::product_shift<S>(rows);
        p.gram = detail::make_kernel_statistics(detail::row_gram<S, double>(rows, p.moments.shift));
        p.self_hsic = detail::kernel_hsic(*p.gram, *p.gram, estimator);
      } else {
        p.moments = detail::compute_row_moments<S>(rows, {.gram = true, .rows = estimator == hsic_estimator::unbiased});
        p.self_hsic = self_hsic_of(p.moments);
      }
    });
    detail::require_finite(p.self_hsic, where);
    const double spread = p.gram ? detail::centred_kernel_dot(*p.gram, *p.gram) : p.moments.centred_sum_squares();
    if (!(spread > 0.0))
      throw numeric_error(where.function, where.argument, "has no variance across examples",
                          "needs examples that differ; CKA is 0/0 for a constant representation");
    return p;
  }

  /// HSIC(K, L) for two prepared layers (the biased one times (n-1)^2).
  template <class T, class U>
  double hsic(const prepared<T>& a, const prepared<U>& b) const {
    detail::require_same_examples(a.rows.extent(0), a.where, b.rows.extent(0), b.where);
    if (!a.gram && !b.gram) {
      return detail::with_product_type<T, U>(precision, [&](auto s) {
        using S = decltype(s);
        const bool unbiased = estimator == hsic_estimator::unbiased;
        const auto c = detail::compute_cross_moments<S>(a.rows, a.moments, b.rows, b.moments, unbiased);
        if (!unbiased) return c.centred(a.moments, b.moments).squaredNorm();
        return detail::unbiased_hsic(
            a.rows.extent(0),
            detail::linear_hsic_terms(a.moments, b.moments, c.product, c.x_weighted, c.y_weighted, c.sum_norm_products));
      });
    }
    // One or both on the Gram route: compare n x n kernels, building the missing one.
    std::optional<detail::kernel_statistics<double>> built_a, built_b;
    const auto& ka = a.gram ? *a.gram : built_a.emplace(gram_of(a));
    const auto& kb = b.gram ? *b.gram : built_b.emplace(gram_of(b));
    return detail::kernel_hsic(ka, kb, estimator);
  }

  template <class T, class U>
  double compare(const prepared<T>& a, const prepared<U>& b) const {
    const double cross = hsic(a, b);
    require_positive_self(a.self_hsic, a.where);
    require_positive_self(b.self_hsic, b.where);
    return detail::require_finite(cross / std::sqrt(a.self_hsic * b.self_hsic), b.where);
  }

private:
  static void require_positive_self(double self, const similarity_context& where) {
    if (!(self > 0.0))
      throw numeric_error(where.function, where.argument, "gives an unbiased HSIC(K, K) <= 0",
                          "needs more examples (the unbiased estimator is noisy for a handful)");
  }

  template <class T>
  detail::kernel_statistics<double> gram_of(const prepared<T>& p) const {
    return detail::with_product_type<T, T>(precision, [&](auto s) {
      return detail::make_kernel_statistics(detail::row_gram<decltype(s), double>(p.rows, p.moments.shift));
    });
  }

  double self_hsic_of(const detail::row_moments& m) const {
    if (estimator == hsic_estimator::biased) return m.centred_gram().squaredNorm();
    return detail::unbiased_hsic(m.n, detail::linear_hsic_terms(m));
  }
};

/// Linear CKA of X [n, d1] and Y [n, d2] (same examples, any tensor types; ranks 3-4 merge into examples).
template <tensor X, tensor Y>
double linear_cka(const X& x, const Y& y, const linear_cka_options& options = {}) {
  return detail::compare_pair(options, x, y, "mint::linear_cka");
}

/// Debiased linear CKA: linear_cka with the unbiased HSIC estimator (use it at small n).
template <tensor X, tensor Y>
double debiased_linear_cka(const X& x, const Y& y, linear_cka_options options = {}) {
  options.estimator = hsic_estimator::unbiased;
  return detail::compare_pair(options, x, y, "mint::debiased_linear_cka");
}

}  // namespace mint
