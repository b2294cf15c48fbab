// How a runtime turns its final residual stream into logits, for the methods that read the
// residual in the vocabulary (the logit lens, direct logit attribution): the final norm (none,
// LayerNorm or RMSNorm, with its gain and bias) and the unembedding W_U, b_U. A runtime offers it
// with `unembedding()`, a small optional concept; decode_residual() applies it.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// The final norm before the unembedding.
enum class final_norm : std::uint8_t {
  none,        ///< logits = x W_U + b_U
  layer_norm,  ///< (x - mean(x)) / sqrt(var(x) + eps) * gain + bias
  rms_norm,    ///< x / sqrt(mean(x^2) + eps) * gain + bias
};

/// A runtime's final norm and unembedding, as views of its weights.
template <class T>
struct unembedding_weights {
  final_norm norm = final_norm::layer_norm;
  double epsilon = 1e-5;
  tensor_view<const T> gain{};     ///< [d_model]; empty: ones
  tensor_view<const T> bias{};     ///< [d_model]; empty: zeros
  tensor_view<const T> weight{};   ///< W_U [d_model, vocab]
  tensor_view<const T> unembed_bias{};  ///< b_U [vocab]; empty: zeros
};

/// A runtime that says how it decodes its residual stream (the toy transformer does).
template <class R>
concept decodable_runtime = runtime<R> && requires(const R& r) {
  { r.unembedding() } -> std::convertible_to<unembedding_weights<typename R::scalar_type>>;
};

namespace detail {

/// Checks the weights and returns d_model.
template <class T>
index check_unembedding(const unembedding_weights<T>& u, const char* function) {
  if (u.weight.rank() != 2 || u.weight.empty())
    throw shape_error(function, "unembedding().weight", "has extents " + detail::shape_string(u.weight.extents()),
                      "needs W_U as [d_model, vocab]");
  const index d = u.weight.extent(0), v = u.weight.extent(1);
  const auto vector_of = [&](const tensor_view<const T>& x, index n, const char* what) {
    if (!x.empty() && (x.rank() != 1 || x.extent(0) != n))
      throw shape_error(function, what, "has extents " + detail::shape_string(x.extents()), detail::str("needs [", n, "] or none"));
  };
  vector_of(u.gain, d, "unembedding().gain");
  vector_of(u.bias, d, "unembedding().bias");
  vector_of(u.unembed_bias, v, "unembedding().unembed_bias");
  if (u.norm != final_norm::none && !(u.epsilon >= 0))
    throw argument_error(function, "unembedding().epsilon", detail::str("is ", u.epsilon), "needs epsilon >= 0");
  return d;
}

/// The final norm's centre and scale of one residual vector: normalized = (x - centre) / scale.
template <class T>
std::pair<double, double> norm_statistics(const unembedding_weights<T>& u, const tensor_view<const T>& x) {
  const index d = x.extent(0);
  if (u.norm == final_norm::none) return {0.0, 1.0};
  double mean = 0, square = 0;
  for (index j = 0; j < d; ++j) mean += double(x(j)), square += double(x(j)) * double(x(j));
  mean /= double(d), square /= double(d);
  if (u.norm == final_norm::rms_norm) return {0.0, std::sqrt(square + u.epsilon)};
  return {mean, std::sqrt(std::max(square - mean * mean, 0.0) + u.epsilon)};
}

}  // namespace detail

/// Logits [..., vocab] of residual vectors [..., d_model] (rank 1 to 3) through the runtime's final
/// norm, each vector with its own statistics (as the logit lens reads an intermediate layer).
/// O(vectors * d_model * vocab), one product in double.
template <class T>
array<T> decode_residual(const unembedding_weights<T>& u, const tensor_view<const T>& residual) {
  const char* fn = "mint::decode_residual";
  const index d = detail::check_unembedding(u, fn);
  if (residual.rank() < 1 || residual.rank() > 3 || residual.extent(residual.rank() - 1) != d)
    throw shape_error(fn, "residual", "has extents " + detail::shape_string(residual.extents()),
                      detail::str("needs [..., ", d, "] (d_model last, rank 1 to 3)"));
  std::vector<index> extents(residual.extents().begin(), residual.extents().end());
  extents.back() = u.weight.extent(1);
  // The normalized vectors as rows, in index order.
  Eigen::MatrixXd normalized(residual.size() / d, d);
  index row = 0;
  const auto add_row = [&](const tensor_view<const T>& x) {
    const auto [centre, scale] = detail::norm_statistics(u, x);
    for (index j = 0; j < d; ++j)
      normalized(row, j) = (double(x(j)) - centre) / scale * (u.gain.empty() ? 1.0 : double(u.gain(j))) +
                           (u.bias.empty() ? 0.0 : double(u.bias(j)));
    ++row;
  };
  if (residual.rank() == 1) add_row(residual);
  for (index i = 0; residual.rank() > 1 && i < residual.extent(0); ++i) {
    if (residual.rank() == 2) add_row(residual.subview(i));
    else
      for (index t = 0; t < residual.extent(1); ++t) add_row(residual.subview(i).subview(t));
  }
  Eigen::MatrixXd logits = normalized * as_matrix(u.weight).template cast<double>();
  if (!u.unembed_bias.empty()) logits.rowwise() += as_matrix(u.unembed_bias.reshape({1, u.unembed_bias.extent(0)})).row(0).template cast<double>();
  array<T> out(extents);
  Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(out.data(), logits.rows(), logits.cols()) =
      logits.template cast<T>();
  return out;
}

}  // namespace mint
