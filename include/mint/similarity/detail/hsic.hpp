// Internals: the Hilbert-Schmidt independence criterion from kernel matrices
// (n x n) or, for linear kernels, from feature-space moments (d x d). Biased:
// tr(K H L H) / (n-1)^2. Unbiased (Song et al. 2012, with K~ the kernel with a
// zeroed diagonal): [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)),
// which is unchanged by shifting the data, so it is computed on shifted data as is.
#pragma once

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// The rows of a layer whose HSIC is taken: the unbiased estimator needs n >= 4, the biased one n >= 2.
template <tensor X>
auto hsic_rows(const X& x, hsic_estimator estimator, const similarity_context& where) {
  const auto rows = example_rows(x, where);
  const bool unbiased = estimator == hsic_estimator::unbiased;
  require_examples(rows, unbiased ? 4 : 2, where, unbiased ? " for the unbiased HSIC" : "");
  return rows;
}

/// The four sums the unbiased estimator needs.
struct hsic_terms {
  double trace_kl = 0.0;  ///< sum over i != j of K_ij L_ij
  double sum_k = 0.0;     ///< 1' K~ 1
  double sum_l = 0.0;     ///< 1' L~ 1
  double sum_kl = 0.0;    ///< 1' K~ L~ 1
};

inline double unbiased_hsic(index n, const hsic_terms& t) {
  const double m = double(n);
  return (t.trace_kl + t.sum_k * t.sum_l / ((m - 1) * (m - 2)) - 2.0 / (m - 2) * t.sum_kl) / (m * (m - 3));
}

/// Unbiased terms for linear kernels K = X'X'^T, L = Y'Y'^T from moments: `product` is X'^T Y',
/// `x_weighted` sum_i |y'_i|^2 x'_i, `y_weighted` sum_i |x'_i|^2 y'_i, `norm_products` sum_i |x'_i|^2 |y'_i|^2.
MINT_LAZY hsic_terms linear_hsic_terms(const row_moments& x, const row_moments& y, const dense& product,
                                    const vectord& x_weighted, const vectord& y_weighted, double norm_products) {
  hsic_terms t;
  t.trace_kl = product.squaredNorm() - norm_products;
  t.sum_k = x.sum.squaredNorm() - x.sum_squares;
  t.sum_l = y.sum.squaredNorm() - y.sum_squares;
  t.sum_kl = x.sum.dot(product * y.sum) - y_weighted.dot(y.sum) - x_weighted.dot(x.sum) + norm_products;
  return t;
}

/// The same terms for K with itself.
MINT_LAZY hsic_terms linear_hsic_terms(const row_moments& x) {
  return linear_hsic_terms(x, x, x.gram, x.norm_weighted_sum, x.norm_weighted_sum, x.sum_row_norms_squared);
}

/// A kernel matrix with the sums HSIC needs; the matrix is stored in K (float for float32 data).
template <class K>
struct kernel_statistics {
  dense_of<K> k;      ///< n x n, symmetric
  vectord row_sums;   ///< K 1, diagonal included
  vectord diagonal;
  double total = 0.0;  ///< 1' K 1

  index n() const { return k.rows(); }
};

template <class K>
kernel_statistics<K> make_kernel_statistics(dense_of<K> k) {
  kernel_statistics<K> s;
  s.k = std::move(k);
  // K is symmetric: column sums are the row sums, read down contiguous columns.
  s.row_sums = s.k.template cast<double>().colwise().sum().transpose();
  s.diagonal = s.k.diagonal().template cast<double>();
  s.total = s.row_sums.sum();
  return s;
}

/// sum_ij A_ij B_ij, accumulated in double.
template <class A, class B>
double frobenius_dot(const dense_of<A>& a, const dense_of<B>& b) {
  double out = 0.0;
  for (index j = 0; j < a.cols(); ++j) out += a.col(j).template cast<double>().dot(b.col(j).template cast<double>());
  return out;
}

/// tr(K H L H): the biased HSIC times (n-1)^2, without forming H K H.
template <class A, class B>
double centred_kernel_dot(const kernel_statistics<A>& a, const kernel_statistics<B>& b) {
  const double n = double(a.n());
  return frobenius_dot(a.k, b.k) - 2.0 / n * a.row_sums.dot(b.row_sums) + a.total * b.total / (n * n);
}

template <class A, class B>
hsic_terms kernel_hsic_terms(const kernel_statistics<A>& a, const kernel_statistics<B>& b) {
  hsic_terms t;
  t.trace_kl = frobenius_dot(a.k, b.k) - a.diagonal.dot(b.diagonal);
  t.sum_k = a.total - a.diagonal.sum();
  t.sum_l = b.total - b.diagonal.sum();
  t.sum_kl = (a.row_sums - a.diagonal).dot(b.row_sums - b.diagonal);
  return t;
}

/// HSIC of two kernels under an estimator (the biased one without its 1/(n-1)^2, which CKA cancels).
template <class A, class B>
double kernel_hsic(const kernel_statistics<A>& a, const kernel_statistics<B>& b, hsic_estimator estimator) {
  return estimator == hsic_estimator::biased ? centred_kernel_dot(a, b) : unbiased_hsic(a.n(), kernel_hsic_terms(a, b));
}

/// X'X'^T (n x n) of the shifted rows, products in S. Acc = S: one product over all features
/// (float32 kernels for float32 data); Acc = double: float32 partial sums over float_sum_rows
/// features at a time, summed in double.
template <class S, class Acc, class T>
dense_of<Acc> row_gram(const tensor_view<const T>& rows, const vectord& shift) {
  const index n = rows.extent(0), d = rows.extent(1);
  matrix<S> z;  // row-major: each example's features contiguous, as most inputs store them
  load_rows(rows, 0, n, vector<S>(shift.template cast<S>()), z);
  if constexpr (std::is_same_v<S, Acc>) {
    dense_of<S> out;
    if (prefer_symmetric_products()) {
      out.setZero(n, n);
      out.template selfadjointView<Eigen::Lower>().rankUpdate(z);
      symmetrize_from_lower(out);
    } else {
      out.noalias() = z * z.transpose();
    }
    return out;
  } else {
    product_sum<S> out(n, n, true);
    for (index begin = 0; begin < d; begin += float_sum_rows) {
      const index count = std::min(float_sum_rows, d - begin);
      out.add_gram(z.middleCols(begin, count).transpose());
    }
    return out.finish();
  }
}

}  // namespace mint::detail
