// Linear centred kernel alignment (Kornblith et al. 2019): ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)
// on centred X [n, d1], Y [n, d2], or its debiased form from the unbiased HSIC (Song et al. 2012).
// Feature space when n >= 2d: cost n (d1 + d2)^2 / 2, memory d^2, no n x n matrix; Gram matrices
// otherwise: cost n^2 (d1 + d2) / 2, memory n^2. Products summed in double.
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
  automatic,  ///< feature space (d x d) when n >= 2 d, else Gram matrices (n x n), whichever costs less
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
  struct prepared : detail::layer_moments<T> {
    std::optional<detail::kernel_statistics<double>> gram;  ///< Gram route
    double self_hsic = 0.0;
  };

  /// The pass a layer of n examples and d features needs (the Gram route takes none): the one
  /// place the route is chosen; prepare() and the pair driver (detail/pair.hpp) follow it.
  detail::linear_plan plan(const similarity_context&, index n, index d) const {
    const bool unbiased = estimator == hsic_estimator::unbiased;
    // A pair costs n (d1 + d2)^2 / 2 in feature space and n^2 (d1 + d2) / 2 through Gram matrices.
    const bool features = route == cka_route::features || (route == cka_route::automatic && 2 * d <= n);
    return {{.gram = true, .rows = unbiased}, unbiased ? 4 : 2, features, unbiased ? " for the unbiased HSIC" : ""};
  }

  template <tensor X>
  prepared<value_t<const X>> prepare(const X& x, const similarity_context& where) const {
    using T = value_t<const X>;
    const tensor_view<const T> rows = detail::hsic_rows(x, estimator, where);
    const detail::linear_plan p = plan(where, rows.extent(0), rows.extent(1));
    if (p.moments) return prepare_from(detail::prepare_layer_moments(rows, where, precision, p));
    prepared<T> out{{rows, where, {}}, std::nullopt, 0.0};
    detail::with_product_type<T, T>(precision, [&](auto s) {
      out.moments.shift = detail::product_shift<decltype(s)>(rows);
      out.gram = detail::make_kernel_statistics(detail::row_gram<decltype(s), double>(rows, out.moments.shift));
    });
    out.self_hsic = detail::kernel_hsic(*out.gram, *out.gram, estimator);
    return checked(std::move(out), detail::centred_kernel_dot(*out.gram, *out.gram));
  }

  /// The feature route's per-layer work from the layer's moments.
  template <class T>
  prepared<T> prepare_from(detail::layer_moments<T> layer) const {
    prepared<T> out{std::move(layer), std::nullopt, 0.0};
    const detail::row_moments& m = out.moments;
    out.self_hsic = estimator == hsic_estimator::biased ? m.centred_gram().squaredNorm()
                                                        : detail::unbiased_hsic(m.n, detail::linear_hsic_terms(m));
    return checked(std::move(out), m.centred_sum_squares());
  }

  /// HSIC(K, L) for two prepared layers (the biased one times (n-1)^2).
  template <class T, class U>
  double hsic(const prepared<T>& a, const prepared<U>& b) const {
    detail::require_same_examples(a.rows.extent(0), a.where, b.rows.extent(0), b.where);
    if (!a.gram && !b.gram) {
      const bool unbiased = estimator == hsic_estimator::unbiased;
      const detail::cross_moments c = detail::cross_of(a, b, precision, unbiased);
      if (!unbiased) return c.centred(a.moments, b.moments).squaredNorm();
      return detail::unbiased_hsic(
          a.rows.extent(0),
          detail::linear_hsic_terms(a.moments, b.moments, c.product, c.x_weighted, c.y_weighted, c.sum_norm_products));
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

  // Takes p by reference and moves it only on return: a caller may compute `spread` from p in
  // the same call, whatever order the compiler evaluates the arguments in.
  template <class T>
  static prepared<T> checked(prepared<T>&& p, double spread) {
    detail::require_finite(p.self_hsic, p.where);
    if (!(spread > 0.0))
      throw numeric_error(p.where.function, p.where.argument, "has no variance across examples",
                          "needs examples that differ; CKA is 0/0 for a constant representation");
    return p;
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

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_LINEAR_CKA(CORE) \
  MINT_SIMILARITY_CORES(CORE, mint::linear_cka_options)
MINT_CORES_SIMILARITY_LINEAR_CKA(MINT_CORE)
