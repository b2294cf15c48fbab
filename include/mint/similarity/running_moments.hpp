// Streaming means and centred second moments of rows (and of paired rows): what covariance,
// PCA, CCA and mean ablation need, from more rows than fit in memory or on one machine.
// Batches and accumulators combine by Chan, Golub and LeVeque's pairwise update, stable when
// the mean is far from 0; allreduce() combines the group's (docs/distributed.md). O(n d^2)
// per batch of n rows (one Eigen product), O(d^2) memory (d e more with paired rows).
#pragma once

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/distributed/communicator.hpp"

namespace mint {

namespace detail {

/// running_moments. A template (C is always char) so the bodies below compile once, in mint's
/// cores (mint/core/compiled.hpp), not in every unit that includes the similarity headers.
/// Rows' count, mean and centred scatter (the sum of (x - mean)(x - mean)^T), and with paired
/// rows (the same examples in another representation) theirs and the cross scatter.
template <class C>
class basic_running_moments {
public:
  /// Rows of `dims` values; `paired_dims` > 0: add() takes pairs of rows, the second of that width.
  /// `scatter` false keeps the means alone: O(dims) memory, for a mean over wide rows (a site's
  /// [positions x d_model] per example, for mean ablation).
  explicit basic_running_moments(index dims, index paired_dims = 0, bool scatter = true);

  index dims() const noexcept { return mean_x_.size(); }
  index paired_dims() const noexcept { return mean_y_.size(); }
  /// Rows added (here and through merge/allreduce).
  std::int64_t rows() const noexcept { return rows_; }
  /// Whether the centred scatter is kept (the constructor's `scatter`).
  bool keeps_scatter() const noexcept { return scatter_; }

  /// Adds rows ([n, dims], or [..., dims] with the leading axes as rows); unpaired accumulators only.
  template <tensor X>
  void add(const X& x) {
    if (paired_dims() > 0)
      throw argument_error("mint::running_moments::add", "y", "is missing",
                           detail::str("needs the paired rows too (this accumulator has paired_dims ", paired_dims(), ")"));
    add_batch(rows_of(mint::view(x), dims(), "x"), nullptr);
  }

  /// Adds paired rows: x [n, dims] and y [n, paired_dims], row i of both from the same example.
  template <tensor X, tensor Y>
  void add(const X& x, const Y& y) {
    if (paired_dims() == 0)
      throw argument_error("mint::running_moments::add", "y", "is given", "needs an accumulator built with paired_dims > 0");
    const matrixd xb = rows_of(mint::view(x), dims(), "x"), yb = rows_of(mint::view(y), paired_dims(), "y");
    if (xb.rows() != yb.rows())
      throw shape_error("mint::running_moments::add", "y", detail::str("has ", yb.rows(), " rows"),
                        detail::str("needs x's ", xb.rows()));
    add_batch(xb, &yb);
  }

  /// The mean row (zeros before any row).
  const vectord& mean() const noexcept { return mean_x_; }
  /// The paired rows' mean.
  const vectord& paired_mean() const noexcept { return mean_y_; }
  /// The centred scatter (not divided): sum over rows of (x - mean)(x - mean)^T (empty without `scatter`).
  const matrixd& scatter() const noexcept { return sxx_; }
  const matrixd& paired_scatter() const noexcept { return syy_; }
  /// sum over rows of (x - mean)(y - paired_mean)^T, [dims, paired_dims].
  const matrixd& cross_scatter() const noexcept { return sxy_; }

  /// scatter() / (rows - ddof): ddof 1 is the unbiased covariance (numpy.cov's default), 0 the maximum-likelihood one.
  matrixd covariance(index ddof = 1) const;
  matrixd paired_covariance(index ddof = 1) const;
  matrixd cross_covariance(index ddof = 1) const;

  /// Folds in another accumulator (same widths), as if its rows had been added here.
  void merge(const basic_running_moments& other);

  /// Every rank ends with the moments of the group's rows (a collective: every rank calls it, once
  /// for the group's data: a second call would count every rank's rows again). Two allreduces:
  /// the means first, then each rank's scatters moved to the group's mean.
  void allreduce(distributed::communicator_ref comm);

private:
  template <class T>
  static matrixd rows_of(const tensor_view<T>& v, index width, const char* arg) {
    const char* fn = "mint::running_moments::add";
    if (v.rank() < 2 || v.extent(v.rank() - 1) != width)
      throw shape_error(fn, arg, "has extents " + detail::shape_string(v.extents()), detail::str("needs [rows, ", width, "]"));
    const auto r = detail::as_rank2(v, fn);
    matrixd out(r.extent(0), r.extent(1));
    for (index i = 0; i < out.rows(); ++i)
      for (index j = 0; j < out.cols(); ++j) {
        out(i, j) = double(r(i, j));
        if (!std::isfinite(out(i, j)))
          throw numeric_error(fn, arg, detail::str("holds a NaN or infinity in row ", i), "needs finite values");
      }
    return out;
  }

  void add_batch(const matrixd& x, const matrixd* y);

  // Chan et al.: n = na + nb, delta = mb - ma, S = Sa + Sb + delta delta^T na nb / n.
  void combine(std::int64_t nb, const vectord& mx, const vectord& my, const matrixd& sxx, const matrixd& syy, const matrixd& sxy);

  double divisor(index ddof, const char* what) const;

  bool scatter_ = true;
  std::int64_t rows_ = 0;
  vectord mean_x_, mean_y_;
  matrixd sxx_, syy_, sxy_;
};

#if MINT_CORE_BODIES
template <class C>
basic_running_moments<C>::basic_running_moments(index dims, index paired_dims, bool scatter) : scatter_(scatter) {
  if (dims < 1 || paired_dims < 0)
    throw argument_error("mint::running_moments", dims < 1 ? "dims" : "paired_dims",
                         str("is ", dims < 1 ? dims : paired_dims), dims < 1 ? "needs >= 1" : "needs >= 0");
  mean_x_ = vectord::Zero(dims);
  if (paired_dims > 0) mean_y_ = vectord::Zero(paired_dims);
  if (scatter) {
    sxx_ = matrixd::Zero(dims, dims);
    if (paired_dims > 0) syy_ = matrixd::Zero(paired_dims, paired_dims), sxy_ = matrixd::Zero(dims, paired_dims);
  }
}

template <class C>
matrixd basic_running_moments<C>::covariance(index ddof) const {
  return sxx_ / divisor(ddof, "covariance");
}
template <class C>
matrixd basic_running_moments<C>::paired_covariance(index ddof) const {
  return syy_ / divisor(ddof, "paired_covariance");
}
template <class C>
matrixd basic_running_moments<C>::cross_covariance(index ddof) const {
  return sxy_ / divisor(ddof, "cross_covariance");
}

template <class C>
void basic_running_moments<C>::merge(const basic_running_moments& other) {
  if (other.dims() != dims() || other.paired_dims() != paired_dims() || other.scatter_ != scatter_)
    throw argument_error("mint::running_moments::merge", "other",
                         str("has widths ", other.dims(), " and ", other.paired_dims(), other.scatter_ ? " with" : " without", " scatter"),
                         str("needs ", dims(), " and ", paired_dims(), scatter_ ? " with" : " without", " scatter"));
  combine(other.rows_, other.mean_x_, other.mean_y_, other.sxx_, other.syy_, other.sxy_);
}

template <class C>
void basic_running_moments<C>::allreduce(distributed::communicator_ref comm) {
  const char* fn = "mint::running_moments::allreduce";
  distributed::check_same(comm, fn, "the accumulator",
                          str("widths ", dims(), " and ", paired_dims(), scatter_ ? " with" : " without", " scatter"));
  if (comm.size() == 1) return;
  const index d = dims(), e = paired_dims();
  vectord sums(1 + d + e);  // n, n mean_x, n mean_y
  sums(0) = double(rows_);
  sums.segment(1, d) = double(rows_) * mean_x_;
  if (e > 0) sums.segment(1 + d, e) = double(rows_) * mean_y_;
  comm.allreduce_sum(std::span<double>(sums.data(), std::size_t(sums.size())));
  if (sums(0) == 0) return;
  const vectord mx = sums.segment(1, d) / sums(0), my = e > 0 ? vectord(sums.segment(1 + d, e) / sums(0)) : vectord();
  // Scatter about the group's mean: S + n (m - M)(m - M)^T, summed over ranks in one call.
  if (scatter_) {
    const vectord dx = mean_x_ - mx;
    sxx_.noalias() += double(rows_) * dx * dx.transpose();
    if (e > 0) {
      const vectord dy = mean_y_ - my;
      syy_.noalias() += double(rows_) * dy * dy.transpose();
      sxy_.noalias() += double(rows_) * dx * dy.transpose();
    }
    std::vector<double> all(std::size_t(sxx_.size() + syy_.size() + sxy_.size()));
    std::copy(sxx_.data(), sxx_.data() + sxx_.size(), all.begin());
    std::copy(syy_.data(), syy_.data() + syy_.size(), all.begin() + sxx_.size());
    std::copy(sxy_.data(), sxy_.data() + sxy_.size(), all.begin() + sxx_.size() + syy_.size());
    comm.allreduce_sum(std::span<double>(all));
    std::copy(all.begin(), all.begin() + sxx_.size(), sxx_.data());
    std::copy(all.begin() + sxx_.size(), all.begin() + sxx_.size() + syy_.size(), syy_.data());
    std::copy(all.begin() + sxx_.size() + syy_.size(), all.end(), sxy_.data());
  }
  rows_ = std::int64_t(sums(0));
  mean_x_ = mx;
  mean_y_ = my;
}

template <class C>
void basic_running_moments<C>::add_batch(const matrixd& x, const matrixd* y) {
  if (x.rows() == 0) return;
  const double n = double(x.rows());
  const vectord mx = x.colwise().mean().transpose();
  vectord my = y ? vectord(y->colwise().mean().transpose()) : vectord();
  matrixd sxx, syy, sxy;
  if (scatter_) {
    const matrixd xc = x.rowwise() - mx.transpose();
    sxx = xc.transpose() * xc;
    if (y) {
      const matrixd yc = y->rowwise() - my.transpose();
      syy = yc.transpose() * yc;
      sxy = xc.transpose() * yc;
    }
  }
  combine(std::int64_t(n), mx, my, sxx, syy, sxy);
}

template <class C>
void basic_running_moments<C>::combine(std::int64_t nb, const vectord& mx, const vectord& my, const matrixd& sxx,
                                     const matrixd& syy, const matrixd& sxy) {
  if (nb == 0) return;
  const double na = double(rows_), n = na + double(nb), w = na * double(nb) / n;
  const vectord dx = mx - mean_x_;
  if (scatter_) {
    sxx_ += sxx;
    sxx_.noalias() += w * dx * dx.transpose();
  }
  mean_x_ += dx * (double(nb) / n);
  if (paired_dims() > 0) {
    const vectord dy = my - mean_y_;
    if (scatter_) {
      syy_ += syy;
      syy_.noalias() += w * dy * dy.transpose();
      sxy_ += sxy;
      sxy_.noalias() += w * dx * dy.transpose();
    }
    mean_y_ += dy * (double(nb) / n);
  }
  rows_ += nb;
}

template <class C>
double basic_running_moments<C>::divisor(index ddof, const char* what) const {
  if (!scatter_)
    throw argument_error(std::string("mint::running_moments::") + what, "this accumulator", "keeps means only",
                         "needs one built with scatter = true");
  if (ddof < 0 || rows_ - ddof < 1)
    throw argument_error(std::string("mint::running_moments::") + what, "ddof", str("is ", ddof),
                         str("needs 0 <= ddof < rows = ", rows_));
  return double(rows_ - ddof);
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Streaming means and centred second moments (see detail::basic_running_moments).
using running_moments = detail::basic_running_moments<char>;

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_RUNNING_MOMENTS(CORE) CORE(class mint::detail::basic_running_moments<char>)
MINT_CORES_SIMILARITY_RUNNING_MOMENTS(MINT_CORE)
