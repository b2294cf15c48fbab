// Internals: the free function of every measure, f(x, y, options), is
// options.compare(options.prepare(x), options.prepare(y)) with the arguments
// checked first (same examples) so a mistake costs no work. Measures built on
// moments (the linear ones) make both layers' passes in one, which also yields
// their cross-product, so the comparison needs no further pass over the data.
#pragma once

#include <concepts>
#include <string>
#include <utility>

#include "mint/core/tensor.hpp"
#include "mint/similarity/detail/moments.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

/// A measure whose per-layer work starts from moments: plan() says which, prepare_from() finishes.
template <class M>
concept moment_measure = requires(const M& m, const similarity_context& where) {
  { m.plan(where, index{}, index{}) } -> std::same_as<linear_plan>;
  { m.precision } -> std::convertible_to<product_precision>;
};

template <class M, tensor X, tensor Y>
double compare_pair(const M& measure, const X& x, const Y& y, const char* function) {
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

}  // namespace mint::detail
