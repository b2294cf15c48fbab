// Activation patching sweeps: run one input, copy a component's activation from the other
// input's run into it, and measure how much of the behaviour moves, for every index of a
// site's position and head axes (TransformerLens's generic_activation_patch and its
// get_act_patch_* sweeps) over any runtime. Denoising runs the corrupt input and patches clean
// activations in; noising runs the clean input and patches corrupt ones in. Many patches run
// per forward as copies of the batch (max_batch rows at a time). Cost: one cached forward of
// each input, then patches x rows / max_batch rows of forward, less with prefix reuse
// (replaced_runs.hpp). options.replacement puts an ablation (zero, mean, resample, a tensor) in
// place of the other run's activation.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/ablation.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/replaced_runs.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/patching/direction.hpp"

namespace mint {

/// Options of activation_patching.
struct activation_patching_options {
  std::vector<std::string> sites{};   ///< the sites patched (required)
  /// The axes patched one index at a time, where a site has them (axis::pos, and a head axis:
  /// axis::head, kv_head or qkv_head); every other axis is patched at once. {}: the whole site.
  std::vector<axis> by{axis::pos};
  patch_direction direction = patch_direction::denoising;
  /// values as (patched - corrupt) / (clean - corrupt): 0 the corrupt run's metric, 1 the clean
  /// run's, in either direction; false: the patched run's metric as is.
  bool normalize = true;
  index max_batch = 0;   ///< rows per forward, at least the batch's rows; 0: every patch of a site at once
  /// What a patched index gets: empty, the other run's activation (patching); or an ablation
  /// (zero, mean, resample averaged over its draws, a tensor) of the run `direction` names.
  std::optional<ablation> replacement{};
};

/// One site's sweep.
struct site_patching {
  std::string site;
  std::vector<axis> axes;  ///< the axes of values, in the site's order (those of `by` the site has)
  array<double> values;    ///< per index of those axes: the metric (normalised, or raw) with that index patched
};

/// What activation_patching returns: the metric on both runs and a sweep per site.
using activation_patching_result = clean_corrupt_result<site_patching>;

/// Patches every index of options.by at each of options.sites from one run into the other, and
/// evaluates the metric (the clean tokens' metric, e.g. the clean answer's logit difference) on
/// each patched run. `clean` and `corrupt` need the same shape.
template <runtime R, class M>
activation_patching_result activation_patching(R& model, const token_batch& clean, const token_batch& corrupt,
                                               const M& metric, const activation_patching_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::activation_patching";
  detail::require_tokens(clean, fn);
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(fn, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
  for (index b = 0; b < clean.batch(); ++b)
    if (clean.length(b) != corrupt.length(b))
      throw shape_error(fn, "corrupt", detail::str("row ", b, " has length ", corrupt.length(b)),
                        detail::str("needs clean's row lengths (", clean.length(b), "), so positions correspond"));
  if (options.sites.empty()) throw argument_error(fn, "options.sites", "is empty", "needs the sites to patch");
  for (axis a : options.by)
    if (a != axis::pos && a != axis::head && a != axis::kv_head && a != axis::qkv_head)
      throw argument_error(fn, "options.by", "holds an axis other than pos or a head axis",
                           "needs axis::pos, axis::head, axis::kv_head or axis::qkv_head");
  const site_table& sites = model.sites();
  std::vector<site_id> ids;
  for (const auto& name : options.sites) {
    const site_id id = sites.at(name, fn);
    const site_info& info = sites[id];
    detail::require_batch_first(info, fn);
    if (!allows(info.capabilities, access::read | access::write))
      throw argument_error(fn, "options.sites", "'" + info.name + "' allows " + to_string(info.capabilities),
                           "needs read|write");
    ids.push_back(id);
  }

  const bool denoising = options.direction == patch_direction::denoising;
  const token_batch& base = denoising ? corrupt : clean;
  auto clean_run = run_with_cache(model, clean, options.sites);
  auto corrupt_run = run_with_cache(model, corrupt, options.sites);
  activation_patching_result out;
  out.clean_value = metric.value(clean_run.logits, clean);
  out.corrupt_value = metric.value(corrupt_run.logits, clean);
  const double span = out.clean_value - out.corrupt_value;
  if (options.normalize && !(std::abs(span) > 0))
    throw argument_error(fn, "clean/corrupt", detail::str("give the same metric, ", out.clean_value),
                         "needs runs the metric tells apart to normalise (or normalize = false)");
  const auto& source = denoising ? clean_run.cache : corrupt_run.cache;

  for (std::size_t s = 0; s < ids.size(); ++s) {
    const site_info& info = sites[ids[s]];
    site_patching result{info.name, {}, {}};
    // The patched axes this site has, with their extents.
    int pos_axis = -1, head_axis = -1;
    std::vector<index> extents;
    for (std::size_t a = 1; a < info.axes.size(); ++a) {
      const axis x = info.axes[a];
      if (std::find(options.by.begin(), options.by.end(), x) == options.by.end()) continue;
      if (x == axis::pos) pos_axis = int(a);
      else head_axis = int(a);
      result.axes.push_back(x);
      extents.push_back(x == axis::pos ? base.positions() : info.sizes[a]);
    }
    if (extents.empty()) extents.push_back(1);  // the whole site: one patch
    const std::vector<std::vector<array<T>>> values{
        options.replacement ? detail::draws_of(model, info.name, base, *options.replacement)
                            : std::vector<array<T>>{array<T>::copy_of(source[info.name])}};
    const int draws = int(values[0].size());
    std::vector<detail::replacement> jobs;
    detail::for_each_index(extents, [&](const auto& i) {
      detail::replacement job{ids[s], -1, 0, -1, 0};
      std::size_t k = 0;
      for (std::size_t a = 1; a < info.axes.size(); ++a) {
        if (int(a) == pos_axis) job.begin = i[k], job.end = i[k] + 1, ++k;
        else if (int(a) == head_axis) job.head = int(i[k]), ++k;
      }
      for (job.draw = 0; job.draw < draws; ++job.draw) jobs.push_back(job);
    });
    const auto patched = detail::replaced_metrics(model, base, clean, metric, jobs, values, {ids[s]}, options.max_batch, fn);
    result.values = array<double>(result.axes.empty() ? std::vector<index>{1} : extents);
    for (index j = 0; j < result.values.size(); ++j) {
      double sum = 0;  // the mean over a resample's draws
      for (int d = 0; d < draws; ++d) sum += patched[std::size_t(j * draws + d)];
      const double value = sum / draws;
      result.values.data()[j] = options.normalize ? (value - out.corrupt_value) / span : value;
    }
    out.sites.push_back(std::move(result));
  }
  return out;
}

}  // namespace mint
