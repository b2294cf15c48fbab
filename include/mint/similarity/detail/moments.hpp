// Internals: first and second moments of activations in one pass over blocks of
// rows, with no n x n matrix: sums, X'^T X' (d x d) and X'^T Y' (d1 x d2), where
// X' = X - shift and the shift is the mean of the first block. Centring happens
// after the products (C = X'^T X' - s s^T / n), so nothing centred is ever copied
// whole. Cost: n d^2 for a Gram, n d1 d2 for a cross product; memory d^2.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
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

/// What a linear measure's pass over one layer needs: the moments, the fewest examples, and
/// whether the layer goes through moments at all (linear CKA takes Gram matrices when d > n).
struct linear_plan {
  moment_request what;
  index minimum = 2;
  bool moments = true;
  const char* minimum_reason = "";  ///< why, for the message
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
  MINT_LAZY vectord mean() const { return shift + sum / double(n); }
  /// sum_i (x_i - mean)(x_i - mean)^T.
  MINT_LAZY dense centred_gram() const { return gram - sum * sum.transpose() / double(n); }
  /// sum_i |x_i - mean|^2.
  MINT_LAZY double centred_sum_squares() const { return std::max(0.0, sum_squares - sum.squaredNorm() / double(n)); }
};

/// The shift for a representation: the mean of its first block, rounded to the product type S.
template <class S, class T>
vectord product_shift(const tensor_view<const T>& rows) {
  const index count = std::min(rows.extent(0), block_rows(rows.extent(1)));
  return leading_mean(rows, count).template cast<S>().template cast<double>();
}

/// Cross moments of X' and Y' (same examples).
struct cross_moments {
  dense product;              ///< sum_i x'_i y'_i^T (d1 x d2)
  vectord x_weighted;         ///< sum_i |y'_i|^2 x'_i, when rows requested
  vectord y_weighted;         ///< sum_i |x'_i|^2 y'_i, when rows requested
  double sum_norm_products = 0.0;  ///< sum_i |x'_i|^2 |y'_i|^2, when rows requested

  /// sum_i (x_i - mean_x)(y_i - mean_y)^T.
  MINT_LAZY dense centred(const row_moments& x, const row_moments& y) const {
    return product - x.sum * y.sum.transpose() / double(x.n);
  }
  /// The same moments with the roles of X and Y swapped.
  MINT_LAZY cross_moments swapped() const { return {product.transpose(), y_weighted, x_weighted, sum_norm_products}; }
};

/// Both representations' moments and their cross moments, from one pass.
struct joint_moments {
  row_moments x, y;
  cross_moments cross;
};

/// One pass over X and Y together (same examples): every block of rows is loaded once, as
/// [X' Y'], and with Gram matrices requested one symmetric product of it gives X'^T X', Y'^T Y'
/// and X'^T Y' at once. Y may be empty (d2 = 0): then this is one representation's pass. Each
/// shift is the mean of the first block, taken from that block once it is loaded.
/// The passes over the data, products in S for inputs of T and U: a core (mint/core/compiled.hpp),
/// shared by every linear measure, so separate compilation instantiates it once.
template <class S, class T, class U>
struct moments_core {
  static joint_moments joint(const tensor_view<const T>& x, const tensor_view<const U>* y, moment_request what);
  static cross_moments cross(const tensor_view<const T>& x, const row_moments& mx, const tensor_view<const U>& y,
                             const row_moments& my, bool rows);
};

template <class S, class T, class U>
joint_moments compute_joint_moments(const tensor_view<const T>& x, const tensor_view<const U>* y, moment_request what) {
  return moments_core<S, T, U>::joint(x, y, what);
}

#if MINT_CORE_BODIES
template <class S, class T, class U>
joint_moments moments_core<S, T, U>::joint(const tensor_view<const T>& x, const tensor_view<const U>* y,
                                           moment_request what) {
  const index n = x.extent(0), d1 = x.extent(1), d2 = y ? y->extent(1) : 0, d = d1 + d2;
  joint_moments out;
  for (row_moments* m : {&out.x, &out.y}) {
    m->n = n;
    m->sum = vectord::Zero(m == &out.x ? d1 : d2);
    m->shift = m->sum;
    if (what.rows) m->row_norms.resize(n);
  }
  const index step = std::max<index>(1, std::min(n, block_rows(d)));
  const vector<S> ones = vector<S>::Ones(step);
  vector<S> shift = vector<S>::Zero(d);
  matrix<S> block(step, d);
  // With a symmetric rank-k update, one product of [X' Y'] gives all three blocks for the work of
  // three separate ones; full products (Eigen's threaded route) take the blocks one by one.
  const bool joint = what.gram && prefer_symmetric_products();
  product_sum<S> both(joint ? d : 0, joint ? d : 0, true), gram_x(what.gram && !joint ? d1 : 0, what.gram && !joint ? d1 : 0, true),
      gram_y(what.gram && !joint ? d2 : 0, what.gram && !joint ? d2 : 0, true), cross(joint ? 0 : d1, joint ? 0 : d2, false);
  Eigen::Matrix<S, Eigen::Dynamic, 2> norms(step, 2);
  Eigen::Matrix<double, Eigen::Dynamic, 2> weighted = Eigen::Matrix<double, Eigen::Dynamic, 2>::Zero(d, 2);
  for (index begin = 0; begin < n; begin += step) {
    const index count = std::min(step, n - begin);
    load_rows(x, begin, count, vector<S>(shift.head(d1)), block, 0);
    if (y) load_rows(*y, begin, count, vector<S>(shift.tail(d2)), block, d1);
    auto b = block.topRows(count);
    if (begin == 0) {
      shift = b.transpose() * ones.head(count) / S(count);
      b.rowwise() -= shift.transpose();
      out.x.shift = shift.head(d1).template cast<double>();
      out.y.shift = shift.tail(d2).template cast<double>();
    }
    // Sums within a block in S (the data are shifted, so they stay small), across blocks in double.
    const vectord sums = (b.transpose() * ones.head(count)).template cast<double>();
    out.x.sum += sums.head(d1);
    out.y.sum += sums.tail(d2);
    if (what.rows || !what.gram) {
      norms.topRows(count).col(0) = b.leftCols(d1).rowwise().squaredNorm();
      norms.topRows(count).col(1) = b.rightCols(d2).rowwise().squaredNorm();
      const auto u = norms.topRows(count).template cast<double>();
      out.x.sum_squares += u.col(0).sum();
      out.y.sum_squares += u.col(1).sum();
      if (what.rows) {
        out.x.row_norms.segment(begin, count) = u.col(0);
        out.y.row_norms.segment(begin, count) = u.col(1);
        weighted += (b.transpose() * norms.topRows(count)).template cast<double>();
        out.x.sum_row_norms_squared += u.col(0).squaredNorm();
        out.y.sum_row_norms_squared += u.col(1).squaredNorm();
        out.cross.sum_norm_products += u.col(0).dot(u.col(1));
      }
    }
    if (joint) {
      both.add_gram(b);
    } else {
      if (what.gram) gram_x.add_gram(b.leftCols(d1));
      if (what.gram && d2 > 0) gram_y.add_gram(b.rightCols(d2));
      if (d2 > 0) cross.add_cross(b.leftCols(d1), b.rightCols(d2));
    }
  }
  if (joint) {
    const dense g = both.finish();
    out.x.gram = g.topLeftCorner(d1, d1);
    out.y.gram = g.bottomRightCorner(d2, d2);
    out.cross.product = g.bottomLeftCorner(d2, d1).transpose();
  } else {
    if (what.gram) out.x.gram = gram_x.finish();
    if (what.gram) out.y.gram = gram_y.finish();
    out.cross.product = cross.finish();
  }
  if (what.gram && !what.rows) {
    out.x.sum_squares = out.x.gram.trace();
    out.y.sum_squares = out.y.gram.trace();
  }
  if (what.rows) {
    out.x.norm_weighted_sum = weighted.col(0).head(d1);  // sum |x'|^2 x'
    out.y.norm_weighted_sum = weighted.col(1).tail(d2);  // sum |y'|^2 y'
    out.cross.x_weighted = weighted.col(1).head(d1);     // sum |y'|^2 x'
    out.cross.y_weighted = weighted.col(0).tail(d2);     // sum |x'|^2 y'
  }
  return out;
}
#endif  // MINT_CORE_BODIES

/// One representation's pass: the moments `what` asks for, products in S, sums in double.
template <class S, class T>
row_moments compute_row_moments(const tensor_view<const T>& rows, moment_request what) {
  return compute_joint_moments<S, T, T>(rows, nullptr, what).x;
}

/// A pass over both for X'^T Y' alone, with the shifts the row moments chose; per-example norms
/// come from the row moments (which must hold them when `rows` is set).
template <class S, class T, class U>
cross_moments compute_cross_moments(const tensor_view<const T>& x, const row_moments& mx,
                                    const tensor_view<const U>& y, const row_moments& my, bool rows) {
  return moments_core<S, T, U>::cross(x, mx, y, my, rows);
}

#if MINT_CORE_BODIES
template <class S, class T, class U>
cross_moments moments_core<S, T, U>::cross(const tensor_view<const T>& x, const row_moments& mx,
                                           const tensor_view<const U>& y, const row_moments& my, bool rows) {
  const index n = x.extent(0), d1 = x.extent(1), d2 = y.extent(1);
  cross_moments c;
  if (rows) {
    c.x_weighted = vectord::Zero(d1);
    c.y_weighted = vectord::Zero(d2);
    c.sum_norm_products = mx.row_norms.dot(my.row_norms);
  }
  const vector<S> shift_x = mx.shift.template cast<S>(), shift_y = my.shift.template cast<S>();
  const index step = std::max<index>(1, std::min(n, block_rows(d1 + d2)));
  matrix<S> bx, by;
  product_sum<S> product(d1, d2, false);
  for (index begin = 0; begin < n; begin += step) {
    const index count = std::min(step, n - begin);
    load_rows(x, begin, count, shift_x, bx);
    load_rows(y, begin, count, shift_y, by);
    const auto a = bx.topRows(count);
    const auto b = by.topRows(count);
    product.add_cross(a, b);
    if (rows) {
      c.x_weighted += (a.transpose() * my.row_norms.segment(begin, count).template cast<S>()).template cast<double>();
      c.y_weighted += (b.transpose() * mx.row_norms.segment(begin, count).template cast<S>()).template cast<double>();
    }
  }
  c.product = product.finish();
  return c;
}
#endif  // MINT_CORE_BODIES

/// Throws numeric_error when a layer's sums are not finite: NaN or infinity in the data (or, in
/// double data, values whose squares overflow). Checked here, before centring, because
/// centred_sum_squares() clamps at 0 and would report a NaN as "no variance".
MINT_LAZY void require_finite_moments(const row_moments& m, const similarity_context& where) {
  if (!std::isfinite(m.sum_squares) || !m.sum.allFinite())
    throw numeric_error(where.function, where.argument, "holds NaN or infinity (or values whose squares overflow)",
                        "needs finite activations");
}

/// A layer's rows and moments: the per-layer work every linear measure starts from. Two layers
/// prepared together by prepare_layer_pair share their cross moments, so comparing them costs no pass.
template <class T>
struct layer_moments {
  tensor_view<const T> rows;
  similarity_context where;
  row_moments moments;
  std::shared_ptr<const cross_moments> pair_cross = {};  ///< with the partner prepared in the same pass
  bool pair_first = true;                                ///< this layer is X of pair_cross
};

/// Checks a layer and makes the pass its plan asks for, products in the precision asked.
template <tensor X>
auto prepare_layer_moments(const X& x, const similarity_context& where, product_precision precision,
                           const linear_plan& plan) {
  using T = value_t<const X>;
  layer_moments<T> out{example_rows(x, where), where, {}};
  require_examples(out.rows, plan.minimum, where, plan.minimum_reason);
  const moment_request what = plan.what;
  with_product_type<T, T>(precision, [&](auto s) { out.moments = compute_row_moments<decltype(s)>(out.rows, what); });
  require_finite_moments(out.moments, where);
  return out;
}

/// Both layers' moments and their cross moments from one pass (the rows already checked).
template <class T, class U>
std::pair<layer_moments<T>, layer_moments<U>> prepare_layer_pair(const tensor_view<const T>& x, const similarity_context& where_x,
                                                                 const tensor_view<const U>& y, const similarity_context& where_y,
                                                                 product_precision precision, moment_request what) {
  std::pair<layer_moments<T>, layer_moments<U>> out{{x, where_x, {}}, {y, where_y, {}}};
  with_product_type<T, U>(precision, [&](auto s) {
    joint_moments j = compute_joint_moments<decltype(s)>(x, &y, what);
    out.first.moments = std::move(j.x);
    out.second.moments = std::move(j.y);
    out.first.pair_cross = out.second.pair_cross = std::make_shared<const cross_moments>(std::move(j.cross));
    out.second.pair_first = false;
  });
  require_finite_moments(out.first.moments, where_x);
  require_finite_moments(out.second.moments, where_y);
  return out;
}

/// The cross moments of a and b: shared from their joint pass, or from a pass now.
template <class T, class U>
cross_moments cross_of(const layer_moments<T>& a, const layer_moments<U>& b, product_precision precision, bool rows) {
  require_same_examples(a.rows.extent(0), a.where, b.rows.extent(0), b.where);
  if (a.pair_cross && a.pair_cross == b.pair_cross && a.pair_first != b.pair_first)
    return a.pair_first ? *a.pair_cross : a.pair_cross->swapped();
  return with_product_type<T, U>(precision, [&](auto s) {
    return compute_cross_moments<decltype(s)>(a.rows, a.moments, b.rows, b.moments, rows);
  });
}

/// sum_i (x_i - mean_x)(y_i - mean_y)^T of two prepared layers of the same examples (d1 x d2).
template <class T, class U>
dense centred_cross(const layer_moments<T>& a, const layer_moments<U>& b, product_precision precision) {
  return cross_of(a, b, precision, false).centred(a.moments, b.moments);
}

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp): float products for float data,
/// double products for any data.
#define MINT_CORES_SIMILARITY_DETAIL_MOMENTS(CORE)                        \
  CORE(struct mint::detail::moments_core<float, float, float>)    \
  CORE(struct mint::detail::moments_core<double, float, float>)   \
  CORE(struct mint::detail::moments_core<double, float, double>)  \
  CORE(struct mint::detail::moments_core<double, double, float>)  \
  CORE(struct mint::detail::moments_core<double, double, double>)
MINT_CORES_SIMILARITY_DETAIL_MOMENTS(MINT_CORE)
