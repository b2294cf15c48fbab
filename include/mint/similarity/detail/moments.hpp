// Internals: first and second moments of activations in one pass over blocks of
// rows, with no n x n matrix: sums, X'^T X' (d x d) and X'^T Y' (d1 x d2), where
// X' = X - shift and the shift is the mean of the first block. Centring happens
// after the products (C = X'^T X' - s s^T / n), so nothing centred is ever copied
// whole. Cost: n d^2 for a Gram, n d1 d2 for a cross product; memory d^2.
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// What a pass over one representation collects.
struct moment_request {
  bool gram = false;  ///< X'^T X'
  bool rows = false;  ///< per-example squared norms |x'_i|^2 and their weighted sums (unbiased HSIC)
};

/// Moments of X' = X - shift (n examples, d features); sums are not divided by n.
struct row_moments {
  index n = 0;
  vectord shift;                   ///< subtracted from every example (rounded to the product type)
  vectord sum;                     ///< sum_i x'_i
  double sum_squares = 0.0;        ///< sum_i |x'_i|^2
  dense gram;                      ///< sum_i x'_i x'_i^T, when requested
  vectord row_norms;               ///< |x'_i|^2, when rows requested
  vectord norm_weighted_sum;       ///< sum_i |x'_i|^2 x'_i, when rows requested
  double sum_row_norms_squared = 0.0;  ///< sum_i |x'_i|^4, when rows requested

  index features() const { return sum.size(); }
  vectord mean() const { return shift + sum / double(n); }
  /// sum_i (x_i - mean)(x_i - mean)^T.
  dense centred_gram() const { return gram - sum * sum.transpose() / double(n); }
  /// sum_i |x_i - mean|^2.
  double centred_sum_squares() const { return std::max(0.0, sum_squares - sum.squaredNorm() / double(n)); }
};

/// The shift for a representation: the mean of its first block, rounded to the product type S.
template <class S, class T>
vectord product_shift(const tensor_view<const T>& rows) {
  const index count = std::min(rows.extent(0), block_rows(rows.extent(1)));
  return leading_mean(rows, count).template cast<S>().template cast<double>();
}

/// One pass over the rows: the moments `what` asks for, products in S, sums in double. The shift
/// is the mean of the first block, taken from that block once it is loaded (no second read).
template <class S, class T>
row_moments compute_row_moments(const tensor_view<const T>& rows, moment_request what) {
  const index n = rows.extent(0), d = rows.extent(1);
  row_moments m;
  m.n = n;
  m.sum = vectord::Zero(d);
  m.shift = vectord::Zero(d);
  if (what.gram) m.gram = dense::Zero(d, d);
  if (what.rows) {
    m.row_norms.resize(n);
    m.norm_weighted_sum = vectord::Zero(d);
  }
  const index step = std::min(n, block_rows(d));
  const vector<S> ones = vector<S>::Ones(step);
  vector<S> shift = vector<S>::Zero(d);
  matrix<S> block;
  dense_of<S> partial;
  for (index begin = 0; begin < n; begin += step) {
    const index count = std::min(step, n - begin);
    load_rows(rows, begin, count, shift, block);
    auto b = block.topRows(count);
    if (begin == 0 && count > 0) {
      shift = b.transpose() * ones.head(count) / S(count);
      b.rowwise() -= shift.transpose();
      m.shift = shift.template cast<double>();
    }
    // Sums within a block in S (the data are shifted, so they stay small), across blocks in double.
    m.sum += (b.transpose() * ones.head(count)).template cast<double>();
    if (what.rows || !what.gram) {
      const vector<S> norms = b.rowwise().squaredNorm();
      m.sum_squares += norms.template cast<double>().sum();
      if (what.rows) {
        m.row_norms.segment(begin, count) = norms.template cast<double>();
        m.norm_weighted_sum += (b.transpose() * norms).template cast<double>();
        m.sum_row_norms_squared += m.row_norms.segment(begin, count).squaredNorm();
      }
    }
    if (what.gram) add_gram<S>(m.gram, b, partial);
  }
  if (what.gram) {
    symmetrize_lower(m.gram);
    if (!what.rows) m.sum_squares = m.gram.trace();
  }
  return m;
}

/// Cross moments of X' and Y' (same examples).
struct cross_moments {
  dense product;              ///< sum_i x'_i y'_i^T (d1 x d2)
  vectord x_weighted;         ///< sum_i |y'_i|^2 x'_i, when rows requested
  vectord y_weighted;         ///< sum_i |x'_i|^2 y'_i, when rows requested
  double sum_norm_products = 0.0;  ///< sum_i |x'_i|^2 |y'_i|^2, when rows requested

  /// sum_i (x_i - mean_x)(y_i - mean_y)^T.
  dense centred(const row_moments& x, const row_moments& y) const {
    return product - x.sum * y.sum.transpose() / double(x.n);
  }
};

/// One pass over both: X'^T Y' with the shifts the row moments chose; per-example norms
/// come from the row moments (which must hold them when `rows` is set).
template <class S, class T, class U>
cross_moments compute_cross_moments(const tensor_view<const T>& x, const row_moments& mx,
                                    const tensor_view<const U>& y, const row_moments& my, bool rows) {
  const index n = x.extent(0), d1 = x.extent(1), d2 = y.extent(1);
  cross_moments c;
  c.product = dense::Zero(d1, d2);
  if (rows) {
    c.x_weighted = vectord::Zero(d1);
    c.y_weighted = vectord::Zero(d2);
    c.sum_norm_products = mx.row_norms.dot(my.row_norms);
  }
  const vector<S> shift_x = mx.shift.template cast<S>(), shift_y = my.shift.template cast<S>();
  const index step = block_rows(std::max(d1, d2));
  matrix<S> bx, by;
  dense_of<S> partial;
  for (index begin = 0; begin < n; begin += step) {
    const index count = std::min(step, n - begin);
    load_rows(x, begin, count, shift_x, bx);
    load_rows(y, begin, count, shift_y, by);
    const auto a = bx.topRows(count);
    const auto b = by.topRows(count);
    if constexpr (std::is_same_v<S, double>) {
      c.product.noalias() += a.transpose() * b;
    } else {
      partial.noalias() = a.transpose() * b;
      c.product += partial.template cast<double>();
    }
    if (rows) {
      c.x_weighted += (a.transpose() * my.row_norms.segment(begin, count).template cast<S>()).template cast<double>();
      c.y_weighted += (b.transpose() * mx.row_norms.segment(begin, count).template cast<S>()).template cast<double>();
    }
  }
  return c;
}

/// A layer's rows and moments: the per-layer work every linear measure starts from.
template <class T>
struct layer_moments {
  tensor_view<const T> rows;
  similarity_context where;
  row_moments moments;
};

/// Checks a layer (at least `minimum` examples) and makes its pass, products in the precision asked.
template <tensor X>
auto prepare_layer_moments(const X& x, const similarity_context& where, product_precision precision,
                           moment_request what, index minimum = 2) {
  using T = value_t<const X>;
  layer_moments<T> out{example_rows(x, where), where, {}};
  require_examples(out.rows, minimum, where);
  with_product_type<T, T>(precision, [&](auto s) { out.moments = compute_row_moments<decltype(s)>(out.rows, what); });
  return out;
}

/// sum_i (x_i - mean_x)(y_i - mean_y)^T of two prepared layers of the same examples (d1 x d2).
template <class T, class U>
dense centred_cross(const layer_moments<T>& a, const layer_moments<U>& b, product_precision precision) {
  require_same_examples(a.rows.extent(0), a.where, b.rows.extent(0), b.where);
  return with_product_type<T, U>(precision, [&](auto s) {
    return compute_cross_moments<decltype(s)>(a.rows, a.moments, b.rows, b.moments, false).centred(a.moments, b.moments);
  });
}

}  // namespace mint::detail
