// Runs with parts of sites replaced, many per forward: each replacement (a site, one head or
// all, a range of positions, a draw of the replacement values) applies to its own copy of the
// batch, so one forward of k copies evaluates k replacements. What ablation, occlusion and
// activation patching share. Cost: replacements x rows / max_batch forwards. A runtime that
// resumes at a block (resumable_runtime) runs a replacement at block l from l on, with the
// unreplaced run's residual there; one that branches off a cached prefix (branching_runtime)
// runs a replacement from position p on only, reusing the keys and values (or recurrent state)
// of positions before p. The metric is the same either way, to rounding.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"

namespace mint::detail {

/// One replacement a forward copy applies: rows' positions [begin, end) of a site (one head or all).
struct replacement {
  site_id site = -1;
  int head = -1;  // -1: every head
  index begin = 0, end = -1;  // positions; end -1: all
  int draw = 0;
};

/// The block a replacement at `info` can resume from: its layer when the site table has that
/// block's resid_pre (every site of block l comes after it), else -1 (from the tokens).
inline int resume_layer(const site_table& sites, const site_info& info) {
  if (info.layer < 0) return -1;
  for (const auto& s : sites)
    if (s.layer == info.layer && s.role == site_role::resid_pre) return info.layer;
  return -1;
}

/// The resid_pre site of block `layer`.
inline const site_info& resid_pre_of(const site_table& sites, int layer) {
  for (const auto& s : sites)
    if (s.layer == layer && s.role == site_role::resid_pre) return s;
  throw argument_error("mint::detail::resid_pre_of", "layer", detail::str("is ", layer), "needs a block with a resid_pre site");
}

/// The metric (evaluated with `metric_tokens`) on runs of `tokens` with each replacement applied
/// in its own copy of the batch, max_batch rows at a time. values[v][draw] holds the replacement
/// values ([batch, ...], the site's extents) of value_sites[v] and each draw.
template <runtime R, class M>
std::vector<double> replaced_metrics(R& model, const token_batch& tokens, const token_batch& metric_tokens, const M& metric,
                                    const std::vector<replacement>& jobs,
                                    const std::vector<std::vector<array<scalar_t<R>>>>& values,
                                    const std::vector<site_id>& value_sites, index max_batch, const char* function) {
  using T = scalar_t<R>;
  const index batch = tokens.batch(), positions = tokens.positions();
  if (max_batch < 0 || (max_batch > 0 && max_batch < batch))
    throw argument_error(function, "options.max_batch", detail::str("is ", max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  const index total = index(jobs.size());
  const index per_pass = max_batch == 0 ? std::max<index>(total, 1) : std::max<index>(1, max_batch / batch);
  const site_table& sites = model.sites();
  constexpr bool resumable = resumable_runtime<R>, branching = branching_runtime<R>;

  // Jobs grouped by where their runs can start: (first position, block), positions ascending so
  // a branching runtime's cached prefix only grows.
  std::map<std::pair<index, int>, std::vector<std::size_t>> groups;
  std::vector<std::string> resid_sites;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const site_info& info = sites[jobs[j].site];
    const int layer = resumable ? resume_layer(sites, info) : -1;
    const index begin = branching && info.axis_of(axis::pos) >= 0 ? std::clamp<index>(jobs[j].begin, 0, positions) : 0;
    groups[{begin, layer}].push_back(j);
    if (layer >= 0) {
      const std::string& name = resid_pre_of(sites, layer).name;
      if (std::find(resid_sites.begin(), resid_sites.end(), name) == resid_sites.end()) resid_sites.push_back(name);
    }
  }
  // The unreplaced run: its residual where runs resume, its logits before where they start.
  cached_run<T> base;
  if constexpr (resumable || branching)
    if (!resid_sites.empty() || groups.size() > 1 || (groups.size() == 1 && groups.begin()->first.first > 0))
      base = run_with_cache(model, tokens, resid_sites);
  bool whole_run = true;  // the model ran a whole forward since the prefix was built

  std::vector<double> out(jobs.size());
  std::vector<std::size_t> pass_jobs;  // the job of each copy in the current pass
  array<T> resid, logits;
  index cached = 0;                    // the branching runtime's prefix, in positions
  hook_set<T> none(sites);
  for (const auto& [key, members] : groups) {
    const auto [begin, layer] = key;
    if constexpr (branching)
      if (begin > 0) {
        if (whole_run) model.reset(), cached = 0, whole_run = false;  // a whole forward forgot the prefix
        if (begin > cached) model.forward_chunk(tokens.slice(cached, begin), none), cached = begin;
      }
    for (std::size_t first = 0; first < members.size(); first += std::size_t(per_pass)) {
      const index copies = std::min<index>(per_pass, index(members.size() - first));
      pass_jobs.assign(members.begin() + std::ptrdiff_t(first), members.begin() + std::ptrdiff_t(first + std::size_t(copies)));
      const token_batch rows = repeat_rows(tokens, copies);
      hook_set<T> hooks(sites);
      for (std::size_t v = 0; v < value_sites.size(); ++v) {
        const site_id id = value_sites[v];
        const site_info& info = sites[id];
        hooks.add(id, [&, v, id](hook_call<T>& c) {
          for (index r = 0; r < c.activation.extent(0); ++r) {
            const replacement& job = jobs[pass_jobs[std::size_t(r / batch)]];
            if (job.site != id) continue;
            const index b = r % batch;
            const index from = std::max(job.begin, c.chunk_begin);
            const index to = job.end < 0 ? c.chunk_end : std::min(job.end, c.chunk_end);
            if (info.axis_of(axis::pos) >= 0 && from >= to) continue;
            tensor_view<T> dst = c.activation.subview(r);
            tensor_view<const T> src = values[v][std::size_t(job.draw)].view().subview(b);
            if (const int p = info.axis_of(axis::pos); p >= 0) {
              dst = dst.narrow(p - 1, from - c.chunk_begin, to - c.chunk_begin);
              src = src.narrow(p - 1, from, to);
            }
            if (job.head >= 0)
              for (axis a : {axis::head, axis::kv_head, axis::qkv_head})
                if (const int h = info.axis_of(a); h >= 0) {
                  dst = dst.select(h - 1, job.head), src = src.select(h - 1, job.head);
                  break;
                }
            mint::copy(src, dst);
          }
        }, {.needs = access::write});
      }
      // The residual each copy resumes from: the unreplaced run's, from `begin` on.
      tensor_view<const T> start;
      if (layer >= 0) {
        const tensor_view<const T> own = base.cache[resid_pre_of(sites, layer).name].narrow(1, begin, positions);
        resid.resize({copies * batch, positions - begin, own.extent(2)});  // reuses its capacity
        for (index k = 0; k < copies; ++k) mint::copy(own, resid.view().narrow(0, k * batch, (k + 1) * batch));
        start = resid.view();
      }
      tensor_view<const T> result;
      if constexpr (branching)
        if (begin > 0) result = model.forward_branch(layer, start, rows.slice(begin, positions), hooks);
      if (begin == 0) {
        if constexpr (resumable) result = model.forward_from(layer, start, rows, hooks);
        else result = model.forward(rows, hooks);
        whole_run = true;
      }
      if (begin > 0) {  // the positions before `begin` are the unreplaced run's
        const index vocab = result.extent(2);
        logits.resize({copies * batch, positions, vocab});
        for (index k = 0; k < copies; ++k)
          mint::copy(base.logits.view().narrow(1, 0, begin), logits.view().narrow(0, k * batch, (k + 1) * batch).narrow(1, 0, begin));
        mint::copy(result, logits.view().narrow(1, begin, positions));
        result = logits.view();
      }
      for (index k = 0; k < copies; ++k)
        out[pass_jobs[std::size_t(k)]] = metric.value(result.narrow(0, k * batch, (k + 1) * batch), metric_tokens);
    }
  }
  return out;
}

}  // namespace mint::detail
