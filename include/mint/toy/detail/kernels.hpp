// The toy transformer's elementwise kernels: layer norm split around its scale
// site, GELU/ReLU and their derivatives, masked softmax. Rows are positions.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>  // vectorised erf for the exact GELU

#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"

namespace mint::toy {

/// The MLP's nonlinearity.
enum class activation_fn : std::uint8_t {
  gelu,       ///< exact: x * Phi(x)
  gelu_tanh,  ///< the tanh approximation GPT-2 uses ("gelu_new" in TransformerLens)
  relu
};

}  // namespace mint::toy

namespace mint::detail {

template <class T>
using rows_map = Eigen::Map<matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using const_rows_map = Eigen::Map<const matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// sum over j < n of f(j) in double, in eight independent lanes: a serial double sum cannot be
/// vectorised without reordering it, and these row sums were most of layer norm's time.
template <class F>
inline double lane_sum(Eigen::Index n, F f) {
  double lane[8] = {};
  Eigen::Index j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) lane[k] += f(j + k);
  double tail = 0;
  for (; j < n; ++j) tail += f(j);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7])) + tail;
}

/// Layer-norm statistics of each row: mean and sqrt(var + eps) (the "raw" scale, before any hook).
template <class T>
void layer_norm_stats(const const_rows_map<T>& x, double eps, T* mean, T* raw_scale) {
  const auto d = x.cols();
  MINT_PARALLEL_FOR(4.0 * double(x.rows()) * double(d))
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const T* xr = x.data() + r * x.outerStride();
    const double mu = lane_sum(d, [&](Eigen::Index j) { return double(xr[j]); }) / double(d);
    const double var = lane_sum(d, [&](Eigen::Index j) { return (double(xr[j]) - mu) * (double(xr[j]) - mu); });
    mean[r] = T(mu);
    raw_scale[r] = T(std::sqrt(var / double(d) + eps));
  }
}

/// out = (x - mean) / scale * w + b, row by row (scale as the hook left it).
template <class T>
void layer_norm_apply(const const_rows_map<T>& x, const T* mean, const T* scale, const T* w, const T* b,
                      rows_map<T> out) {
  const auto d = x.cols();
  MINT_PARALLEL_FOR(4.0 * double(x.rows()) * double(d))
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const T* xr = x.data() + r * x.outerStride();
    T* o = out.data() + r * out.outerStride();
    const T inv = T(1) / scale[r], m = mean[r];
    for (Eigen::Index j = 0; j < d; ++j) o[j] = (xr[j] - m) * inv * w[j] + b[j];
  }
}

/// First half of layer norm's backward: from d(out) to dw, db (accumulated) and d(scale) per row
/// of d_out. Row r of d_out is the gradient at a normalized copy of x row r / shared (with its
/// statistics): `shared` heads read one normalized input.
template <class T>
void layer_norm_backward_scale(const const_rows_map<T>& x, const T* mean, const T* scale, const T* w,
                               const const_rows_map<T>& d_out, T* d_scale, T* dw, T* db, Eigen::Index shared = 1) {
  const auto d = x.cols();
  auto row = [&](Eigen::Index r) {
    const Eigen::Index i = r / shared;
    const T* xr = x.data() + i * x.outerStride();
    const T* gr = d_out.data() + r * d_out.outerStride();
    const T inv = T(1) / scale[i], m = mean[i];
    d_scale[r] = T(-double(inv) * lane_sum(d, [&](Eigen::Index j) { return double(gr[j] * w[j]) * double((xr[j] - m) * inv); }));
    if (dw)
      for (Eigen::Index j = 0; j < d; ++j) dw[j] += gr[j] * ((xr[j] - m) * inv), db[j] += gr[j];
  };
  const Eigen::Index rows = d_out.rows();
  if (dw) {  // rows add into dw and db: one thread
    for (Eigen::Index r = 0; r < rows; ++r) row(r);
    return;
  }
  MINT_PARALLEL_FOR(4.0 * double(rows) * double(d))
  for (Eigen::Index r = 0; r < rows; ++r) row(r);
}

/// Second half: d(x) from d(out) and d(scale), a row of d_x per row of d_out (x and its
/// statistics shared as above). The scale's dependence on x is taken at the raw scale, so a hook
/// that changed the scale passes the gradient straight through.
template <class T>
void layer_norm_backward_input(const const_rows_map<T>& x, const T* mean, const T* scale, const T* raw_scale,
                               const T* w, const const_rows_map<T>& d_out, const T* d_scale, rows_map<T> d_x,
                               bool accumulate, Eigen::Index shared = 1) {
  const auto d = x.cols();
  const Eigen::Index rows = d_out.rows();
  MINT_PARALLEL_FOR(6.0 * double(rows) * double(d))
  for (Eigen::Index r = 0; r < rows; ++r) {
    const Eigen::Index i = r / shared;
    const T* xr = x.data() + i * x.outerStride();
    const T* gr = d_out.data() + r * d_out.outerStride();
    T* out = d_x.data() + r * d_x.outerStride();
    const double mean_dn = lane_sum(d, [&](Eigen::Index j) { return double(gr[j] * w[j]); }) / double(d);
    const double inv = 1.0 / double(scale[i]), m = double(mean[i]);
    const double through_scale = double(d_scale[r]) / (double(d) * double(raw_scale[i]));
    for (Eigen::Index j = 0; j < d; ++j) {
      const T g = T((double(gr[j] * w[j]) - mean_dn) * inv + through_scale * (double(xr[j]) - m));
      out[j] = accumulate ? out[j] + g : g;
    }
  }
}

/// Calls body(first, count) on row blocks of a [rows, cols] elementwise job, one block per thread
/// when the job is large (`flops_per_element` says how large).
template <class Body>
void for_row_blocks(Eigen::Index rows, Eigen::Index cols, double flops_per_element, Body body) {
  const Eigen::Index parts = std::min<Eigen::Index>(rows, thread_count());
  MINT_PARALLEL_FOR(flops_per_element * double(rows) * double(cols))
  for (Eigen::Index part = 0; part < parts; ++part) {
    const Eigen::Index first = rows * part / parts, last = rows * (part + 1) / parts;
    if (last > first) body(first, last - first);
  }
}

/// y = f(x) elementwise (Eigen's vectorised erf, tanh: within a few float ulp of std::erf, std::tanh).
template <class T>
void activate(toy::activation_fn f, const matrix<T>& x, matrix<T>& y) {
  y.resize(x.rows(), x.cols());
  for_row_blocks(x.rows(), x.cols(), 30, [&](Eigen::Index first, Eigen::Index count) {
    const auto a = x.middleRows(first, count).array();
    auto out = y.middleRows(first, count).array();
    switch (f) {
      case toy::activation_fn::relu: out = a.max(T(0)); break;
      case toy::activation_fn::gelu: out = T(0.5) * a * (T(1) + (a * T(std::numbers::sqrt2 / 2)).erf()); break;
      case toy::activation_fn::gelu_tanh: {
        const T c = T(std::sqrt(2.0 / std::numbers::pi));
        out = T(0.5) * a * (T(1) + (c * (a + T(0.044715) * a.cube())).tanh());
        break;
      }
    }
  });
}

/// dx = dy * f'(x) elementwise.
template <class T>
void activate_backward(toy::activation_fn f, const matrix<T>& x, const matrix<T>& dy, matrix<T>& dx) {
  dx.resize(x.rows(), x.cols());
  for_row_blocks(x.rows(), x.cols(), 40, [&](Eigen::Index first, Eigen::Index count) {
    const auto a = x.middleRows(first, count).array();
    const auto g = dy.middleRows(first, count).array();
    auto out = dx.middleRows(first, count).array();
    switch (f) {
      case toy::activation_fn::relu: out = (a > T(0)).select(g, T(0)); break;
      case toy::activation_fn::gelu: {
        const T pdf_scale = T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
        out = g * (T(0.5) * (T(1) + (a * T(std::numbers::sqrt2 / 2)).erf()) +
                   a * (T(-0.5) * a.square()).exp() * pdf_scale);
        break;
      }
      case toy::activation_fn::gelu_tanh: {
        const T c = T(std::sqrt(2.0 / std::numbers::pi));
        const auto t = (c * (a + T(0.044715) * a.cube())).tanh();
        out = g * (T(0.5) * (T(1) + t) + T(0.5) * a * (T(1) - t.square()) * c * (T(1) + T(3 * 0.044715) * a.square()));
        break;
      }
    }
  });
}

/// Causal softmax in place over a [queries, keys] block of scores whose first query sits at
/// position `first` (keys start at 0): query i sees keys j <= first + i with j < length.
template <class T>
void causal_softmax(Eigen::Map<matrix<T>> s, Eigen::Index length, Eigen::Index first = 0) {
  const auto n = s.cols();
  for (Eigen::Index i = 0; i < s.rows(); ++i) {
    const Eigen::Index last = std::min(first + i, length - 1);
    T top = s(i, 0);
    for (Eigen::Index j = 1; j <= last; ++j) top = std::max(top, s(i, j));
    T sum = 0;
    for (Eigen::Index j = 0; j <= last; ++j) sum += (s(i, j) = std::exp(s(i, j) - top));
    const T inv = T(1) / sum;
    for (Eigen::Index j = 0; j <= last; ++j) s(i, j) *= inv;
    for (Eigen::Index j = last + 1; j < n; ++j) s(i, j) = T(0);
  }
}

}  // namespace mint::detail

