// Internals: the free function of every measure, f(x, y, options), is
// options.compare(options.prepare(x), options.prepare(y)) with the arguments
// checked first (same examples) so a mistake costs no work.
#pragma once

#include <string>

#include "mint/core/tensor.hpp"
#include "mint/similarity/detail/rows.hpp"
#include "mint/similarity/measure.hpp"

namespace mint::detail {

template <class M, tensor X, tensor Y>
double compare_pair(const M& measure, const X& x, const Y& y, const char* function) {
  const similarity_context where_x{function, "x"}, where_y{function, "y"};
  const auto rows_x = example_rows(x, where_x);
  const auto rows_y = example_rows(y, where_y);
  require_same_examples(rows_x.extent(0), where_x, rows_y.extent(0), where_y);
  const auto prepared_x = measure.prepare(rows_x, where_x);  // x first: its errors are reported first
  return measure.compare(prepared_x, measure.prepare(rows_y, where_y));
}

}  // namespace mint::detail
