// Runs with parts of sites replaced, many per forward: each replacement (a site, one head or
// all, a range of positions, a draw of the replacement values) applies to its own copy of the
// batch, so one forward of k copies evaluates k replacements. What ablation, occlusion and
// activation patching share. Cost: replacements x rows / max_batch forwards.
#pragma once

#include <algorithm>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
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

/// The metric (evaluated with `metric_tokens`) on runs of `tokens` with each replacement applied
/// in its own copy of the batch, max_batch rows at a time. values[v][draw] holds the replacement
/// values ([batch, ...], the site's extents) of value_sites[v] and each draw.
template <runtime R, class M>
std::vector<double> replaced_metrics(R& model, const token_batch& tokens, const token_batch& metric_tokens, const M& metric,
                                    const std::vector<replacement>& jobs,
                                    const std::vector<std::vector<array<scalar_t<R>>>>& values,
                                    const std::vector<site_id>& value_sites, index max_batch, const char* function) {
  using T = scalar_t<R>;
  const index batch = tokens.batch();
  if (max_batch < 0 || (max_batch > 0 && max_batch < batch))
    throw argument_error(function, "options.max_batch", detail::str("is ", max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  const index total = index(jobs.size());
  const index per_pass = max_batch == 0 ? std::max<index>(total, 1) : std::max<index>(1, max_batch / batch);
  const site_table& sites = model.sites();
  std::vector<double> out;
  for (index first = 0; first < total; first += per_pass) {
    const index copies = std::min(per_pass, total - first);
    const token_batch rows = repeat_rows(tokens, copies);
    hook_set<T> hooks(sites);
    for (std::size_t v = 0; v < value_sites.size(); ++v) {
      const site_id id = value_sites[v];
      const site_info& info = sites[id];
      hooks.add(id, [&, v, id](hook_call<T>& c) {
        for (index r = 0; r < c.activation.extent(0); ++r) {
          const replacement& job = jobs[std::size_t(first + r / batch)];
          if (job.site != id) continue;
          const index b = r % batch;
          const index begin = std::max(job.begin, c.chunk_begin);
          const index end = job.end < 0 ? c.chunk_end : std::min(job.end, c.chunk_end);
          if (info.axis_of(axis::pos) >= 0 && begin >= end) continue;
          tensor_view<T> dst = c.activation.subview(r);
          tensor_view<const T> src = values[v][std::size_t(job.draw)].view().subview(b);
          if (const int p = info.axis_of(axis::pos); p >= 0) {
            dst = dst.narrow(p - 1, begin - c.chunk_begin, end - c.chunk_begin);
            src = src.narrow(p - 1, begin, end);
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
    const tensor_view<const T> logits = model.forward(rows, hooks);
    for (index k = 0; k < copies; ++k) out.push_back(metric.value(logits.narrow(0, k * batch, (k + 1) * batch), metric_tokens));
  }
  return out;
}

}  // namespace mint::detail
