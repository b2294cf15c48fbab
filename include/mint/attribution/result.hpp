// What the gradient attributions return: one value per element of a site's activation for the
// batch, with the metric at the input and, for integrated gradients, its completeness check; and
// totals over chosen axes (per position, per head).
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/site.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// Attributions at one site.
template <class T>
struct attribution_result {
  std::string site;           ///< the site the attributions are at
  std::vector<axis> axes;     ///< the axes of `values`, as the site declares them
  array<T> values;            ///< one per element of the site's activation for the batch
  double value = 0;           ///< the metric at the input
  double baseline_value = 0;  ///< integrated gradients: the metric with the site at its baseline
  double delta = 0;           ///< integrated gradients: sum of values - (value - baseline_value), in double
  int steps = 0;              ///< integrated gradients: steps taken (the last round's, for the adaptive rule)
  bool converged = true;      ///< adaptive integrated gradients: |delta| met the tolerance
};

/// Sums attributions over every axis not in `keep` (in the site's order): {batch, pos} gives
/// one total per token, {pos} one per position over the batch, {batch, pos, head} one per head.
template <class T>
array<double> attribution_totals(const attribution_result<T>& r, std::initializer_list<axis> keep = {axis::batch, axis::pos}) {
  std::vector<int> kept;
  std::vector<index> extents;
  for (std::size_t a = 0; a < r.axes.size(); ++a)
    if (std::find(keep.begin(), keep.end(), r.axes[a]) != keep.end()) {
      kept.push_back(int(a));
      extents.push_back(r.values.extent(int(a)));
    }
  if (kept.empty())
    throw argument_error("mint::attribution_totals", "keep", "names none of the site's axes",
                         "needs at least one axis of '" + r.site + "'");
  array<double> out(extents);
  out.fill(0.0);
  const tensor_view<const T> v = r.values.view();
  const tensor_view<double> ov = out.view();
  detail::for_each_index(v.extents(), [&](const auto& i) {
    std::array<index, 4> j{};
    for (std::size_t k = 0; k < kept.size(); ++k) j[k] = i[std::size_t(kept[k])];
    detail::element_at(ov, j) += double(detail::element_at(v, i));
  });
  return out;
}

}  // namespace mint
