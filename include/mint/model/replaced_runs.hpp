// Runs with parts of sites replaced, many per forward: each replacement (a site, one head or
// all, a range of positions, a draw of the replacement values) applies to its own copy of the
// batch, so one forward of k copies evaluates k replacements. What ablation, occlusion and
// activation patching share. Cost: replacements x rows / max_batch forwards. A runtime that
// resumes at a block (resumable_runtime) runs a replacement at block l from l on, with the
// unreplaced run's residual there; one that branches off a cached prefix (branching_runtime)
// runs a replacement from position p on only, reusing the keys and values (or recurrent state)
// of positions before p; one that also trims a branch's outputs (output_trimming_runtime) runs
// the last block after its keys and values only at the positions the metric reads (its
// first_read()). The metric is the same either way, to rounding.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
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

/// Whether a replacement at one position of a site with this role changes, within its block,
/// nothing at other positions: everything of a transformer block after its keys and values
/// (queries, attention output, MLP, residual after). Then its block need only run at that position.
constexpr bool position_local(site_role role) noexcept {
  switch (role) {
    case site_role::q_input: case site_role::attn_q: case site_role::attn_z: case site_role::attn_result:
    case site_role::attn_out: case site_role::resid_mid: case site_role::mlp_in: case site_role::mlp_pre:
    case site_role::mlp_post: case site_role::mlp_out: case site_role::resid_post:
      return true;
    default:
      return false;
  }
}

/// The resid_pre site of block `layer`, or -1 when there is none.
inline site_id find_resid_pre(const site_table& sites, int layer) {
  for (site_id id = 0; id < site_id(sites.size()); ++id)
    if (sites[id].layer == layer && sites[id].role == site_role::resid_pre) return id;
  return -1;
}

/// The block a replacement at `info` can resume from: its layer when the site table has that
/// block's resid_pre (every site of block l comes after it), else -1 (from the tokens).
inline int resume_layer(const site_table& sites, const site_info& info) {
  return info.layer >= 0 && find_resid_pre(sites, info.layer) >= 0 ? info.layer : -1;
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
  // Logits before this position are never read: runs need not compute them.
  const index read_from = std::clamp<index>(first_position_read(metric, metric_tokens), 0, positions);

  // Jobs grouped by where their runs can start: (first position, block, whether the block need
  // only run at that position), positions ascending so a branching runtime's prefix only grows.
  int last_layer = -1;
  for (const auto& s : sites) last_layer = std::max(last_layer, s.layer);
  std::map<std::tuple<index, int, bool>, std::vector<std::size_t>> groups;
  std::vector<std::string> resid_sites;
  auto need_resid = [&](int layer) {
    const std::string& name = sites[find_resid_pre(sites, layer)].name;
    if (std::find(resid_sites.begin(), resid_sites.end(), name) == resid_sites.end()) resid_sites.push_back(name);
  };
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const replacement& job = jobs[j];
    const site_info& info = sites[job.site];
    const int layer = resumable ? resume_layer(sites, info) : -1;
    const index begin = branching && info.axis_of(axis::pos) >= 0 ? std::clamp<index>(job.begin, 0, positions) : 0;
    // One position of a position-local site: the block runs at that position alone, and the
    // next block (if any) from the residual it leaves there.
    const bool local = branching && resumable && layer >= 0 && info.axis_of(axis::pos) >= 0 && job.end == job.begin + 1 &&
                       job.begin < positions && position_local(info.role) &&
                       (layer == last_layer || find_resid_pre(sites, layer + 1) >= 0);
    groups[{begin, layer, local}].push_back(j);
    if (layer >= 0) need_resid(layer);
    if (local && layer < last_layer) need_resid(layer + 1);
  }
  // The unreplaced run: its residual where runs resume, its logits where they do not run.
  cached_run<T> base;
  if constexpr (resumable || branching)
    if (!resid_sites.empty() || groups.size() > 1 || (groups.size() == 1 && std::get<0>(groups.begin()->first) > 0))
      base = run_with_cache(model, tokens, resid_sites);
  bool whole_run = true;  // the model ran a whole forward since the prefix was built

  std::vector<double> out(jobs.size());
  std::vector<std::size_t> pass_jobs;  // the job of each copy in the current pass
  array<T> resid, logits, carried;
  index cached = 0;                    // the branching runtime's prefix, in positions
  hook_set<T> none(sites);
  // The unreplaced run's resid_pre of `layer` at positions [from, to), once per copy.
  auto starting_residual = [&](int layer, index from, index to, index copies) -> tensor_view<T> {
    const tensor_view<const T> own = base.cache[sites[find_resid_pre(sites, layer)].name].narrow(1, from, to);
    resid.resize({copies * batch, to - from, own.extent(2)});  // reuses its capacity
    for (index k = 0; k < copies; ++k) mint::copy(own, resid.view().narrow(0, k * batch, (k + 1) * batch));
    return resid.view();
  };
  // Runs positions [from, to) of `rows` from block `layer` (-1: the tokens): a branch off the
  // cached prefix, or from position 0 a whole run. The logits returned are those of the span's
  // last positions: all of them, or (trimmed) those from read_from on.
  auto run_span = [&](int layer, tensor_view<const T> start, const token_batch& rows, index from, index to,
                      hook_set<T>& hooks) -> tensor_view<const T> {
    const token_batch span = from == 0 && to == positions ? rows : rows.slice(from, to);
    if constexpr (output_trimming_runtime<R>)
      if (from > 0 && read_from > from && read_from < to)
        return model.forward_branch(layer, start, span, hooks, to - read_from);
    if constexpr (branching)
      if (from > 0) return model.forward_branch(layer, start, span, hooks);
    whole_run = true;
    if constexpr (resumable) return model.forward_from(layer, start, span, hooks);
    else return model.forward(span, hooks);
  };
  // The logits of every position: `part`'s at [to - its positions, to), the unreplaced run's elsewhere.
  auto full_logits = [&](tensor_view<const T> part, index to, index copies) -> tensor_view<const T> {
    const index from = part.empty() ? to : to - part.extent(1);
    if (from == 0 && to == positions) return part;
    logits.resize({copies * batch, positions, base.logits.view().extent(2)});
    for (index k = 0; k < copies; ++k) mint::copy(base.logits.view(), logits.view().narrow(0, k * batch, (k + 1) * batch));
    if (!part.empty()) mint::copy(part, logits.view().narrow(1, from, to));
    return logits.view();
  };

  for (const auto& [key, members] : groups) {
    const auto [begin, layer, local] = key;
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
      tensor_view<const T> result;
      if (!local) {
        result = full_logits(run_span(layer, layer >= 0 ? starting_residual(layer, begin, positions, copies) : tensor_view<T>{},
                                      rows, begin, positions, hooks),
                             positions, copies);
      } else if (layer == last_layer) {
        // The last block at the patched position alone: only that position's logits change, and
        // before read_from none that the metric reads.
        result = begin < read_from
                     ? full_logits({}, begin, copies)
                     : full_logits(run_span(layer, starting_residual(layer, begin, begin + 1, copies), rows, begin,
                                            begin + 1, hooks),
                                   begin + 1, copies);
      } else {
        // The patched block at its position alone, stopped at the next block's residual there...
        const site_id next = find_resid_pre(sites, layer + 1);
        hooks.add(next, [&](hook_call<T>& c) {
          carried.resize(c.activation.extents());
          mint::copy(c.activation, carried.view());
          c.stop();
        });
        run_span(layer, starting_residual(layer, begin, begin + 1, copies), rows, begin, begin + 1, hooks);
        // ...then the later blocks over the suffix, from the unreplaced residual with that position's.
        const tensor_view<T> start = starting_residual(layer + 1, begin, positions, copies);
        mint::copy(carried.view(), start.narrow(1, 0, 1));
        result = full_logits(run_span(layer + 1, start, rows, begin, positions, none), positions, copies);
      }
      for (index k = 0; k < copies; ++k)
        out[pass_jobs[std::size_t(k)]] = metric.value(result.narrow(0, k * batch, (k + 1) * batch), metric_tokens);
    }
  }
  return out;
}

}  // namespace mint::detail
