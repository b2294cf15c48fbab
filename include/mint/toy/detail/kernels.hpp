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

/// Layer-norm statistics of each row: mean and sqrt(var + eps) (the "raw" scale, before any hook).
template <class T>
void layer_norm_stats(const const_rows_map<T>& x, double eps, T* mean, T* raw_scale) {
  const auto d = x.cols();
  MINT_PARALLEL_FOR(4.0 * double(x.rows()) * double(d))
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    double mu = 0;
    for (Eigen::Index j = 0; j < d; ++j) mu += double(x(r, j));
    mu /= double(d);
    double var = 0;
    for (Eigen::Index j = 0; j < d; ++j) var += (double(x(r, j)) - mu) * (double(x(r, j)) - mu);
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
    const T inv = T(1) / scale[r];
    for (Eigen::Index j = 0; j < d; ++j) out(r, j) = (x(r, j) - mean[r]) * inv * w[j] + b[j];
  }
}

/// First half of layer norm's backward: from d(out) to dw, db (accumulated) and d(scale) per row.
template <class T>
void layer_norm_backward_scale(const const_rows_map<T>& x, const T* mean, const T* scale, const T* w,
                               const const_rows_map<T>& d_out, T* d_scale, T* dw, T* db) {
  const auto d = x.cols();
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    double ds = 0;
    const T inv = T(1) / scale[r];
    for (Eigen::Index j = 0; j < d; ++j) {
      const T n = (x(r, j) - mean[r]) * inv;
      if (dw) dw[j] += d_out(r, j) * n, db[j] += d_out(r, j);
      ds -= double(d_out(r, j) * w[j]) * double(n) * double(inv);
    }
    d_scale[r] = T(ds);
  }
}

/// Second half: d(x) from d(out) and d(scale). The scale's dependence on x is taken
/// at the raw scale, so a hook that changed the scale passes the gradient straight through.
template <class T>
void layer_norm_backward_input(const const_rows_map<T>& x, const T* mean, const T* scale, const T* raw_scale,
                               const T* w, const const_rows_map<T>& d_out, const T* d_scale, rows_map<T> d_x,
                               bool accumulate) {
  const auto d = x.cols();
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    double mean_dn = 0;
    for (Eigen::Index j = 0; j < d; ++j) mean_dn += double(d_out(r, j) * w[j]);
    mean_dn /= double(d);
    const double inv = 1.0 / double(scale[r]);
    const double through_scale = double(d_scale[r]) / (double(d) * double(raw_scale[r]));
    for (Eigen::Index j = 0; j < d; ++j) {
      const double g = (double(d_out(r, j) * w[j]) - mean_dn) * inv + through_scale * double(x(r, j) - mean[r]);
      d_x(r, j) = accumulate ? d_x(r, j) + T(g) : T(g);
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

