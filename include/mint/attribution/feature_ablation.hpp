// Forward-only attribution over any runtime: feature ablation (the metric's drop when a whole
// site, or one head of it, is replaced) and occlusion (the drop when a sliding window of
// positions is replaced, averaged per position over the windows that cover it, as Captum's
// Occlusion does). Replacements are a mint::ablation (zero, mean, resample, another run, a
// tensor); many ablations run per forward as copies of the batch, max_batch rows at a time.
// Cost: (ablations x draws x batch rows) / max_batch forwards, plus one for the input.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "mint/attribution/detail/passes.hpp"
#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/ablation.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/replaced_runs.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// Options of feature_ablation.
struct feature_ablation_options {
  std::vector<std::string> sites{};     ///< the sites ablated, one at a time (required)
  bool per_head = false;                ///< at sites with a head axis, ablate each head on its own
  ablation baseline = ablation::zero();  ///< what replaces them (resample: averaged over its draws)
  index max_batch = 0;                  ///< rows per forward; 0: every ablation at once
};

/// Options of occlusion.
struct occlusion_options {
  std::string site{};                   ///< a site with a position axis; empty: the embedding site
  ablation baseline = ablation::zero();
  index window = 1;                     ///< positions replaced together
  index stride = 1;                     ///< positions between window starts
  index max_batch = 0;
};

/// One ablation's effect: metric(input) - metric(ablated), averaged over draws.
struct ablation_effect {
  std::string name;  ///< the site, or "site[h]" for one head
  double effect = 0;
};

/// What occlusion returns.
struct occlusion_result {
  double value = 0;                ///< the metric on the input
  std::vector<index> starts;       ///< each window's first position
  std::vector<double> windows;     ///< metric(input) - metric(window replaced), per window
  std::vector<double> positions;   ///< per position: the mean effect of the windows covering it (0 if none)
};

/// The drop of the metric when each of options.sites (or each head of it) is replaced by the
/// baseline: metric(input) - metric(ablated), one entry per ablation, in the order of the sites.
template <runtime R, class M>
std::vector<ablation_effect> feature_ablation(R& model, const token_batch& tokens, const M& metric,
                                              const feature_ablation_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::feature_ablation";
  detail::require_tokens(tokens, fn);
  if (options.sites.empty()) throw argument_error(fn, "options.sites", "is empty", "needs the sites to ablate");
  const site_table& sites = model.sites();
  std::vector<site_id> ids;
  std::vector<std::vector<array<T>>> values;
  std::vector<detail::replacement> jobs;
  std::vector<ablation_effect> out;
  const int draws = options.baseline.what == ablation::kind::resample ? options.baseline.draws : 1;
  for (const auto& name : options.sites) {
    const site_id id = detail::attribution_site(sites, name, access::write, fn);
    const site_info& info = sites[id];
    ids.push_back(id);
    values.push_back(detail::draws_of(model, info.name, tokens, options.baseline));
    int heads = 0;
    for (axis a : {axis::head, axis::kv_head, axis::qkv_head})
      if (const int h = info.axis_of(a); h >= 0 && heads == 0) heads = int(info.sizes[std::size_t(h)]);
    if (options.per_head && heads == 0)
      throw argument_error(fn, "options.sites", "'" + info.name + "' has no head axis", "needs head sites with per_head");
    const int parts = options.per_head ? heads : 1;
    for (int h = 0; h < parts; ++h) {
      out.push_back({options.per_head ? detail::str(info.name, "[", h, "]") : info.name, 0.0});
      for (int d = 0; d < draws; ++d) jobs.push_back({id, options.per_head ? h : -1, 0, -1, d});
    }
  }
  hook_set<T> none;
  const double value = metric.value(model.forward(tokens, none), tokens);
  const auto ablated = detail::replaced_metrics(model, tokens, tokens, metric, jobs, values, ids, options.max_batch, fn);
  for (std::size_t i = 0; i < out.size(); ++i) {
    double sum = 0;
    for (int d = 0; d < draws; ++d) sum += value - ablated[i * std::size_t(draws) + std::size_t(d)];
    out[i].effect = sum / double(draws);
  }
  return out;
}

/// The drop of the metric when windows of options.window positions, every options.stride, are
/// replaced at the site in every row; per position, the mean over the windows that cover it.
template <runtime R, class M>
occlusion_result occlusion(R& model, const token_batch& tokens, const M& metric, const occlusion_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::occlusion";
  detail::require_tokens(tokens, fn);
  if (options.window < 1 || options.window > tokens.positions())
    throw argument_error(fn, "options.window", detail::str("is ", options.window),
                         detail::str("needs 1 to the batch's positions, ", tokens.positions()));
  if (options.stride < 1) throw argument_error(fn, "options.stride", detail::str("is ", options.stride), "needs at least 1");
  const site_table& sites = model.sites();
  const site_id id = detail::attribution_site(sites, options.site, access::write, fn);
  const site_info& info = sites[id];
  if (info.axis_of(axis::pos) < 0)
    throw argument_error(fn, "options.site", "'" + info.name + "' has no position axis", "needs a site with positions");
  const std::vector<std::vector<array<T>>> values{detail::draws_of(model, info.name, tokens, options.baseline)};
  const int draws = int(values[0].size());

  occlusion_result out;
  std::vector<detail::replacement> jobs;
  for (index s = 0; s + options.window <= tokens.positions(); s += options.stride) {
    out.starts.push_back(s);
    for (int d = 0; d < draws; ++d) jobs.push_back({id, -1, s, s + options.window, d});
  }
  hook_set<T> none;
  out.value = metric.value(model.forward(tokens, none), tokens);
  const auto ablated = detail::replaced_metrics(model, tokens, tokens, metric, jobs, values, {id}, options.max_batch, fn);
  out.positions.assign(std::size_t(tokens.positions()), 0.0);
  std::vector<double> covered(std::size_t(tokens.positions()), 0.0);
  for (std::size_t w = 0; w < out.starts.size(); ++w) {
    double sum = 0;
    for (int d = 0; d < draws; ++d) sum += out.value - ablated[w * std::size_t(draws) + std::size_t(d)];
    out.windows.push_back(sum / double(draws));
    for (index t = out.starts[w]; t < out.starts[w] + options.window; ++t)
      out.positions[std::size_t(t)] += out.windows.back(), covered[std::size_t(t)] += 1;
  }
  for (std::size_t t = 0; t < covered.size(); ++t)
    if (covered[t] > 0) out.positions[t] /= covered[t];
  return out;
}

}  // namespace mint
