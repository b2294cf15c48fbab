// Internals: the drivers every measure runs through, over float and double views. The free
// function of a measure, f(x, y, options), is options.compare(options.prepare(x), options.prepare(y))
// with the arguments checked first (same examples) so a mistake costs no work; measures built on
// moments (the linear ones) make both layers' passes in one, which also yields their cross
// product, so the comparison needs no further pass. similarity_matrix and stagewise_similarity
// prepare each layer once and compare every pair.
//
// The public functions are thin templates that turn the caller's tensors into views; the work
// is in measure_core<M, T, U>, whose float and double instances a program may compile once
// (mint/core/compiled.hpp). Each built-in measure names its cores with MINT_SIMILARITY_CORES.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/tensor.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// A measure whose per-layer work starts from the moments pass: plan(where, n, d) says which moments
/// (and, for linear CKA, whether a layer of n examples and d features takes its Gram route
/// instead); prepare_from() finishes. plan() is where every linear measure chooses its route; the
/// drivers below follow it: two layers both on moments share one joint pass.
template <class M>
concept moment_measure = requires(const M& m, const similarity_context& where) {
  { m.plan(where, index{}, index{}) } -> std::same_as<linear_plan>;
  { m.precision } -> std::convertible_to<product_precision>;
};

/// The prepare() of a measure built on moments alone: the layer's pass, then prepare_from().
template <moment_measure M, tensor X>
auto prepare_by_moments(const M& measure, const X& x, const similarity_context& where) {
  return measure.prepare_from(prepare_layer_moments(x, where, measure.precision, measure.plan(where, 0, 0)));
}

/// Layers as checked views, with their names for messages.
template <class T>
struct checked_layers {
  std::vector<tensor_view<const T>> rows;
  std::vector<similarity_context> where;
};

/// Measure M over layers of element types T and U (float or double).
template <class M, class T, class U>
struct measure_core {
  /// measure(x, y): x and y are views of the caller's tensors, not yet checked.
  static double compare(const M& measure, const tensor_view<const T>& x, const tensor_view<const U>& y,
                        const char* function);
  /// The a x b matrix of measure(a_i, b_j), each layer prepared once.
  static matrixd matrix(const M& measure, const checked_layers<T>& a, const checked_layers<U>& b,
                        progress_reporter& progress);
  /// The matrix of layers against themselves; a symmetric measure fills one triangle.
  static matrixd self_matrix(const M& measure, const checked_layers<T>& a, progress_reporter& progress);
  /// checkpoints x layers: measure(layer l at checkpoint c, reference layer l).
  static matrixd stagewise(const M& measure, std::span<const checked_layers<T>> checkpoints,
                           const checked_layers<U>& reference, progress_reporter& progress);
};

template <class M, class T, class U>
double measure_core<M, T, U>::compare(const M& measure, const tensor_view<const T>& x, const tensor_view<const U>& y,
                                      const char* function) {
  const similarity_context where_x{function, "x"}, where_y{function, "y"};
  const auto rows_x = example_rows(x, where_x);
  const auto rows_y = example_rows(y, where_y);
  require_same_examples(rows_x.extent(0), where_x, rows_y.extent(0), where_y);
  if constexpr (moment_measure<M>) {
    const linear_plan px = measure.plan(where_x, rows_x.extent(0), rows_x.extent(1));
    const linear_plan py = measure.plan(where_y, rows_y.extent(0), rows_y.extent(1));
    if (px.moments && py.moments) {
      require_examples(rows_x, px.minimum, where_x, px.minimum_reason);
      require_examples(rows_y, py.minimum, where_y, py.minimum_reason);
      const moment_request what{px.what.gram || py.what.gram, px.what.rows || py.what.rows};
      auto [layer_x, layer_y] = prepare_layer_pair(rows_x, where_x, rows_y, where_y, measure.precision, what);
      const auto prepared_x = measure.prepare_from(std::move(layer_x));  // x first: its errors are reported first
      return measure.compare(prepared_x, measure.prepare_from(std::move(layer_y)));
    }
  }
  const auto prepared_x = measure.prepare(rows_x, where_x);
  return measure.compare(prepared_x, measure.prepare(rows_y, where_y));
}

/// Each layer's per-layer work, in order.
template <class M, class T>
auto prepare_layers(const M& measure, const checked_layers<T>& layers, progress_reporter& progress, std::int64_t& step) {
  std::vector<decltype(measure.prepare(layers.rows[0], layers.where[0]))> out;
  out.reserve(layers.rows.size());
  for (std::size_t i = 0; i < layers.rows.size(); ++i) {
    out.push_back(measure.prepare(layers.rows[i], layers.where[i]));
    progress.report(++step);
  }
  return out;
}

template <class M, class T, class U>
matrixd measure_core<M, T, U>::matrix(const M& measure, const checked_layers<T>& layers_a,
                                      const checked_layers<U>& layers_b, progress_reporter& progress) {
  std::int64_t step = 0;
  const auto a = prepare_layers(measure, layers_a, progress, step);
  const auto b = prepare_layers(measure, layers_b, progress, step);
  matrixd out(index(a.size()), index(b.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < b.size(); ++j) {
      out(index(i), index(j)) = measure.compare(a[i], b[j]);
      progress.report(++step);
    }
  return out;
}

template <class M, class T, class U>
matrixd measure_core<M, T, U>::self_matrix(const M& measure, const checked_layers<T>& layers, progress_reporter& progress) {
  std::int64_t step = 0;
  const auto a = prepare_layers(measure, layers, progress, step);
  matrixd out(index(a.size()), index(a.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = M::is_symmetric ? i : 0; j < a.size(); ++j) {
      out(index(i), index(j)) = measure.compare(a[i], a[j]);
      if (M::is_symmetric) out(index(j), index(i)) = out(index(i), index(j));
      progress.report(++step);
    }
  return out;
}

template <class M, class T, class U>
matrixd measure_core<M, T, U>::stagewise(const M& measure, std::span<const checked_layers<T>> checkpoints,
                                         const checked_layers<U>& reference, progress_reporter& progress) {
  std::int64_t step = 0;
  const auto final_layers = prepare_layers(measure, reference, progress, step);
  matrixd out(index(checkpoints.size()), index(final_layers.size()));
  for (std::size_t c = 0; c < checkpoints.size(); ++c)
    for (std::size_t l = 0; l < final_layers.size(); ++l) {
      const auto prepared = measure.prepare(checkpoints[c].rows[l], checkpoints[c].where[l]);
      out(index(c), index(l)) = measure.compare(prepared, final_layers[l]);
      progress.report(++step);
    }
  return out;
}

/// The view of a tensor a measure takes, float or double.
template <tensor X>
tensor_view<const value_t<const X>> measure_view(const X& x) {
  static_assert(similarity_element<value_t<const X>>, "mint's similarity measures take float or double tensors");
  return mint::view(x);
}

template <class M, tensor X, tensor Y>
double compare_pair(const M& measure, const X& x, const Y& y, const char* function) {
  return measure_core<M, value_t<const X>, value_t<const Y>>::compare(measure, measure_view(x), measure_view(y), function);
}

}  // namespace mint::detail

/// The cores of a built-in measure M, over float and double layers (see mint/core/compiled.hpp).
#define MINT_SIMILARITY_CORES(CORE, M)                           \
  CORE(struct mint::detail::measure_core<M, float, float>)   \
  CORE(struct mint::detail::measure_core<M, float, double>)  \
  CORE(struct mint::detail::measure_core<M, double, float>)  \
  CORE(struct mint::detail::measure_core<M, double, double>)
