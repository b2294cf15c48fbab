// Internals of the similarity measures: an activation tensor as a rank-2 view
// (examples x features), the type products are computed in, and blocks of rows
// or columns copied (converted, with a shift subtracted) into a dense buffer,
// so any layout and element type reaches Eigen's kernels as one unit-stride matrix.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// Column-major double matrices for the d x d statistics (what Eigen's decompositions prefer).
using dense = Eigen::MatrixXd;

template <class S>
using dense_of = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;

/// float when both inputs are float and the caller allows it; double otherwise.
template <class T, class U = T>
using product_type = std::conditional_t<std::is_same_v<T, float> && std::is_same_v<U, float>, float, double>;

/// Calls f(S{}) with S the type products run in for inputs T and U under `precision`.
template <class T, class U, class F>
decltype(auto) with_product_type(product_precision precision, F&& f) {
  if constexpr (std::is_same_v<product_type<T, U>, float>)
    if (precision == product_precision::input) return f(float{});
  return f(double{});
}

template <class T>
inline constexpr bool similarity_element = std::is_same_v<T, float> || std::is_same_v<T, double>;

/// The const view of a tensor, rank 2: [examples, features]; ranks 3 and 4 merge leading axes into examples.
template <tensor X>
auto example_rows(const X& x, const similarity_context& where) {
  using T = value_t<const X>;
  static_assert(similarity_element<T>, "mint's similarity measures take float or double tensors");
  const tensor_view<const T> v = mint::view(x);
  if (v.rank() < 2)
    throw shape_error(where.function, where.argument, "has rank 1",
                      "needs examples x features (rank 2; ranks 3 and 4 merge their leading axes into examples)");
  tensor_view<const T> rows = v;
  if (v.rank() > 2) {
    const index d = v.extent(v.rank() - 1);
    try {
      rows = v.reshape({d > 0 ? v.size() / d : 0, d});
    } catch (const shape_error&) {
      throw shape_error(where.function, where.argument,
                        "has extents " + shape_string(v.extents()) + " and strides " + shape_string(v.strides()) +
                            ", whose leading axes cannot merge into examples",
                        "needs the leading axes contiguous with each other; copy it first");
    }
  }
  if (rows.extent(1) < 1)
    throw shape_error(where.function, where.argument, "has 0 features", "needs at least 1");
  return rows;
}

/// Throws unless the view has at least `minimum` examples.
template <class T>
void require_examples(const tensor_view<const T>& rows, index minimum, const similarity_context& where,
                      const char* why = "") {
  if (rows.extent(0) < minimum)
    throw shape_error(where.function, where.argument, str("has ", rows.extent(0), " examples"),
                      str("needs at least ", minimum, why));
}

/// Throws unless b has as many examples as a (the same examples, in the same order).
inline void require_same_examples(index rows_a, const similarity_context& a, index rows_b,
                                  const similarity_context& b) {
  if (rows_a != rows_b)
    throw shape_error(b.function, b.argument, str("has ", rows_b, " examples"),
                      str("needs ", rows_a, ", the examples of ", a.argument, " (the same inputs, in the same order)"));
}

/// Throws numeric_error unless a statistic is finite (NaN or infinity in the data).
inline double require_finite(double value, const similarity_context& where) {
  if (!std::isfinite(value))
    throw numeric_error(where.function, where.argument, "holds NaN or infinity", "needs finite activations");
  return value;
}

/// Rows per block: about 2M elements, so a block stays in cache while the product kernels read it.
inline index block_rows(index features) {
  return std::clamp<index>((index(1) << 21) / std::max<index>(features, 1), 256, 8192);
}

/// The mean of rows [0, count) in double: the shift subtracted before products, so sums of
/// products stay small and float32 products do not cancel when the data sit far from 0.
template <class T>
vectord leading_mean(const tensor_view<const T>& rows, index count) {
  if (count == 0) return vectord::Zero(rows.extent(1));
  return visit_matrix(rows, [&](const auto& m) -> vectord {
    using V = typename std::remove_cvref_t<decltype(m)>::Scalar;
    return (m.topRows(count).transpose() * vector<V>::Ones(count)).template cast<double>() / double(count);
  });
}

/// block[0:count, column:column+d) = rows[begin, begin+count) - shift, converted to S; the
/// block (row-major) must be at least count x (column + d); by default it is sized to count x d.
template <class S, class T>
void load_rows(const tensor_view<const T>& rows, index begin, index count, const vector<S>& shift, matrix<S>& block,
               index column = -1) {
  const index d = rows.extent(1);
  if (column < 0) {
    column = 0;
    if (block.rows() < count || block.cols() != d) block.resize(count, d);
  }
  visit_matrix(rows, [&](const auto& m) {
    block.block(0, column, count, d) = m.middleRows(begin, count).template cast<S>().rowwise() - shift.transpose();
  });
}

/// Whether X^T X goes to a symmetric rank-k update (syrk: half the work of a product) or to
/// a full product. Eigen runs its own syrk on one thread; with several OpenMP threads and no
/// BLAS, a full product, which Eigen splits across threads, finishes first.
inline bool prefer_symmetric_products() {
#ifdef EIGEN_USE_BLAS
  return true;
#else
  return Eigen::nbThreads() <= 1;
#endif
}

/// Copies the lower triangle onto the upper one, in tiles (a plain transposed copy of a large
/// matrix misses the cache on every element).
template <class M>
void symmetrize_from_lower(M& m) {
  constexpr index tile = 64;
  const index n = m.rows();
  for (index j = 0; j < n; j += tile)
    for (index i = j; i < n; i += tile) {
      const index rows = std::min(tile, n - i), cols = std::min(tile, n - j);
      if (i == j) {
        auto t = m.block(i, j, rows, cols);
        t.template triangularView<Eigen::StrictlyUpper>() = t.transpose();
      } else {
        m.block(j, i, cols, rows) = m.block(i, j, rows, cols).transpose();
      }
    }
}

/// Rows whose float32 products are summed in float32 before they join the double sum: enough
/// to make the double update rare, few enough to keep ~1e-7 relative accuracy in practice.
inline constexpr index float_sum_rows = 8192;

/// A sum of products over blocks of rows: sum_b b^T b (symmetric) or sum_b a^T b (cross), with
/// products formed in S and summed in double (float32 partial sums over float_sum_rows rows first).
template <class S>
class product_sum {
public:
  product_sum(index rows, index cols, bool symmetric)
      : symmetric_(symmetric), syrk_(symmetric && prefer_symmetric_products()), sum_(dense::Zero(rows, cols)) {}

  /// += b^T b for a block b of rows.
  template <class B>
  void add_gram(const B& b) {
    if constexpr (std::is_same_v<S, double>) {
      if (syrk_)
        sum_.selfadjointView<Eigen::Lower>().rankUpdate(b.transpose());
      else
        sum_.noalias() += b.transpose() * b;
    } else {
      start(b.rows());
      if (syrk_)
        partial_.template selfadjointView<Eigen::Lower>().rankUpdate(b.transpose());
      else
        partial_.noalias() += b.transpose() * b;
      stop();
    }
  }

  /// += a^T b for blocks a and b of the same rows.
  template <class A, class B>
  void add_cross(const A& a, const B& b) {
    if constexpr (std::is_same_v<S, double>) {
      sum_.noalias() += a.transpose() * b;
    } else {
      start(a.rows());
      partial_.noalias() += a.transpose() * b;
      stop();
    }
  }

  /// The sum, in double (symmetric sums with both triangles filled).
  dense finish() {
    flush();
    if (symmetric_) symmetrize_from_lower(sum_);
    return std::move(sum_);
  }

private:
  void start(index rows) {
    if (pending_ == 0) partial_.setZero(sum_.rows(), sum_.cols());
    pending_ += rows;
  }
  void stop() {
    if (pending_ >= float_sum_rows) flush();
  }
  void flush() {
    if (pending_ == 0) return;
    if (syrk_)
      sum_.triangularView<Eigen::Lower>() += partial_.template cast<double>();
    else
      sum_ += partial_.template cast<double>();
    pending_ = 0;
  }

  bool symmetric_, syrk_;
  dense sum_;
  dense_of<S> partial_;
  index pending_ = 0;
};

}  // namespace mint::detail
