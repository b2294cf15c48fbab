// Every layer of model A against every layer of model B under any similarity measure,
// doing each layer's own work once (p + q prepares, then p x q compares), and Kornblith
// et al.'s sanity check: how often a layer's most similar layer is its own counterpart.
// Layers are any mint tensors [n, d] (or [batch, pos, d]) of the same n examples.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ranges>
#include <string>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/tensor.hpp"
#include "mint/similarity/detail/pair.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// A range whose elements are mint tensors: per-layer activations such as std::vector<Eigen::MatrixXf>.
template <class R>
concept layer_range = std::ranges::forward_range<R> && tensor<std::ranges::range_value_t<R>>;

namespace detail {

/// Views each layer as examples x features, names it for messages ("layers_a[3]") and checks that
/// all hold the same examples as the first layer seen (`examples` < 0 before any), before any work.
template <layer_range R>
auto check_layers(const R& layers, const char* function, const char* name, index& examples, similarity_context& first) {
  using T = value_t<const std::ranges::range_value_t<R>>;
  checked_layers<T> out;
  for (const auto& layer : layers) {
    out.where.push_back({function, str(name, "[", out.where.size(), "]")});
    out.rows.push_back(example_rows(measure_view(layer), out.where.back()));
    const index n = out.rows.back().extent(0);
    if (examples < 0) {
      examples = n;
      first = out.where.back();
    }
    require_same_examples(examples, first, n, out.where.back());
  }
  if (out.where.empty()) throw argument_error(function, name, "is empty", "needs at least one layer");
  return out;
}

}  // namespace detail

/// The layers_a x layers_b matrix of measure(a_i, b_j); per-layer work is done once per layer.
template <layer_range A, layer_range B, similarity_measure M>
matrixd similarity_matrix(const A& layers_a, const B& layers_b, const M& measure,
                          const progress_callback& on_progress = {}) {
  const char* function = "mint::similarity_matrix";
  index examples = -1;
  similarity_context first;
  const auto a = detail::check_layers(layers_a, function, "layers_a", examples, first);
  const auto b = detail::check_layers(layers_b, function, "layers_b", examples, first);
  const auto p = std::int64_t(a.rows.size()), q = std::int64_t(b.rows.size());
  progress_reporter progress(on_progress, "similarity matrix (" + measure.name() + ")", p + q + p * q);
  using T = typename decltype(a.rows)::value_type::value_type;
  using U = typename decltype(b.rows)::value_type::value_type;
  return detail::measure_core<M, T, U>::matrix(measure, a, b, progress);
}

/// The layers x layers matrix of one model against itself; a symmetric measure fills one triangle.
template <layer_range A, similarity_measure M>
matrixd similarity_matrix(const A& layers, const M& measure, const progress_callback& on_progress = {}) {
  const char* function = "mint::similarity_matrix";
  index examples = -1;
  similarity_context first;
  const auto a = detail::check_layers(layers, function, "layers", examples, first);
  const auto p = std::int64_t(a.rows.size());
  const std::int64_t pairs = M::is_symmetric ? p * (p + 1) / 2 : p * p;
  progress_reporter progress(on_progress, "similarity matrix (" + measure.name() + ")", p + pairs);
  using T = typename decltype(a.rows)::value_type::value_type;
  return detail::measure_core<M, T, T>::self_matrix(measure, a, progress);
}

/// Kornblith et al.'s sanity check on a square layer x layer matrix between two models with the
/// same architecture: the fraction of layers of A whose most similar layer of B (the largest value,
/// or the smallest for a distance) is the same layer.
MINT_LAZY double matching_accuracy(const matrixd& similarity, bool is_distance = false) {
  if (similarity.rows() != similarity.cols() || similarity.rows() == 0)
    throw shape_error("mint::matching_accuracy", "similarity",
                      detail::str("has extents [", similarity.rows(), ", ", similarity.cols(), "]"),
                      "needs a non-empty square matrix (the same layers on both sides)");
  index hits = 0;
  for (index i = 0; i < similarity.rows(); ++i) {
    index best = 0;
    for (index j = 1; j < similarity.cols(); ++j) {
      const double v = similarity(i, j), b = similarity(i, best);
      if (is_distance ? v < b : v > b) best = j;
    }
    hits += best == i;
  }
  return double(hits) / double(similarity.rows());
}

}  // namespace mint
