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

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/tensor.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

/// A range whose elements are mint tensors: per-layer activations such as std::vector<Eigen::MatrixXf>.
template <class R>
concept layer_range = std::ranges::forward_range<R> && tensor<std::ranges::range_value_t<R>>;

namespace detail {

/// Names each layer for messages ("layers_a[3]") and checks that all hold the same examples as
/// the first layer seen (`examples` < 0 before any), before any work is done.
template <layer_range R>
std::vector<similarity_context> check_layers(const R& layers, const char* function, const char* name, index& examples,
                                             similarity_context& first) {
  std::vector<similarity_context> where;
  for (const auto& layer : layers) {
    where.push_back({function, str(name, "[", where.size(), "]")});
    const index n = example_rows(layer, where.back()).extent(0);
    if (examples < 0) {
      examples = n;
      first = where.back();
    }
    require_same_examples(examples, first, n, where.back());
  }
  if (where.empty()) throw argument_error(function, name, "is empty", "needs at least one layer");
  return where;
}

/// Each layer's per-layer work, in order.
template <layer_range R, similarity_measure M>
auto prepare_layers(const R& layers, const std::vector<similarity_context>& where, const M& measure,
                    progress_reporter& progress, std::int64_t& step) {
  using Prepared = decltype(measure.prepare(*std::ranges::begin(layers), where[0]));
  std::vector<Prepared> out;
  out.reserve(where.size());
  std::size_t i = 0;
  for (const auto& layer : layers) {
    out.push_back(measure.prepare(layer, where[i++]));
    progress.report(++step);
  }
  return out;
}

template <class R>
std::int64_t count_layers(const R& layers) {
  return std::int64_t(std::ranges::distance(std::ranges::begin(layers), std::ranges::end(layers)));
}

}  // namespace detail

/// The layers_a x layers_b matrix of measure(a_i, b_j); per-layer work is done once per layer.
template <layer_range A, layer_range B, similarity_measure M>
matrixd similarity_matrix(const A& layers_a, const B& layers_b, const M& measure,
                          const progress_callback& on_progress = {}) {
  const char* function = "mint::similarity_matrix";
  const std::int64_t p = detail::count_layers(layers_a), q = detail::count_layers(layers_b);
  progress_reporter progress(on_progress, "similarity matrix (" + measure.name() + ")", p + q + p * q);
  index examples = -1;
  similarity_context first;
  const auto where_a = detail::check_layers(layers_a, function, "layers_a", examples, first);
  const auto where_b = detail::check_layers(layers_b, function, "layers_b", examples, first);
  std::int64_t step = 0;
  const auto a = detail::prepare_layers(layers_a, where_a, measure, progress, step);
  const auto b = detail::prepare_layers(layers_b, where_b, measure, progress, step);
  matrixd out(index(a.size()), index(b.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < b.size(); ++j) {
      out(index(i), index(j)) = measure.compare(a[i], b[j]);
      progress.report(++step);
    }
  return out;
}

/// The layers x layers matrix of one model against itself; a symmetric measure fills one triangle.
template <layer_range A, similarity_measure M>
matrixd similarity_matrix(const A& layers, const M& measure, const progress_callback& on_progress = {}) {
  const char* function = "mint::similarity_matrix";
  const std::int64_t p = detail::count_layers(layers);
  const std::int64_t pairs = M::is_symmetric ? p * (p + 1) / 2 : p * p;
  progress_reporter progress(on_progress, "similarity matrix (" + measure.name() + ")", p + pairs);
  index examples = -1;
  similarity_context first;
  const auto where = detail::check_layers(layers, function, "layers", examples, first);
  std::int64_t step = 0;
  const auto a = detail::prepare_layers(layers, where, measure, progress, step);
  matrixd out(index(a.size()), index(a.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = M::is_symmetric ? i : 0; j < a.size(); ++j) {
      out(index(i), index(j)) = measure.compare(a[i], a[j]);
      if (M::is_symmetric) out(index(j), index(i)) = out(index(i), index(j));
      progress.report(++step);
    }
  return out;
}

/// Kornblith et al.'s sanity check on a square layer x layer matrix between two models with the
/// same architecture: the fraction of layers of A whose most similar layer of B (the largest value,
/// or the smallest for a distance) is the same layer.
inline double matching_accuracy(const matrixd& similarity, bool is_distance = false) {
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
