// Attribution patching (Nanda 2023): the linear approximation of activation patching. Patching
// a site's activation in the clean run with the corrupt run's changes the metric by about
// (a_corrupt - a_clean) . d(metric)/d(a) at the clean run; summed per token (and per head where
// the site has heads), that estimates every activation patch of every site at once. Cost: one
// corrupt forward and one clean forward, each caching the sites, and one backward that computes
// activation gradients only: about 3 forwards, against one forward per patch for real patching.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "mint/attribution/detail/passes.hpp"
#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// Which sites attribution_patching estimates.
struct attribution_patching_options {
  /// The sites; empty: every site with read and gradient access and a batch axis first, but the logits.
  std::vector<std::string> sites{};
};

/// The estimated effects of patching one site, per token and per head.
struct patch_estimate {
  std::string site;
  std::vector<axis> axes;  ///< the axes kept: batch, pos and the head axis, where the site has them
  /// The estimated change of the metric (patched minus clean) when the corrupt run's activation
  /// replaces the clean one at that index of the kept axes (all other axes at once).
  array<double> values;
};

/// What attribution_patching returns: the clean and corrupt metric and an estimate per site.
using attribution_patching_result = clean_corrupt_result<patch_estimate>;

/// Attribution patching of `corrupt` into `clean` at options.sites (the metric evaluated on the
/// clean tokens). The two batches need the same shape.
template <differentiable_runtime R, class M>
attribution_patching_result attribution_patching(R& model, const token_batch& clean, const token_batch& corrupt,
                                                 const M& metric, const attribution_patching_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::attribution_patching";
  detail::require_tokens(clean, fn);
  if (clean.batch() != corrupt.batch() || clean.positions() != corrupt.positions())
    throw shape_error(fn, "corrupt", detail::str("is [", corrupt.batch(), ", ", corrupt.positions(), "]"),
                      detail::str("needs the shape of clean, [", clean.batch(), ", ", clean.positions(), "]"));
  const site_table& sites = model.sites();
  std::vector<std::string> names = options.sites;
  if (names.empty()) {
    for (const auto& info : sites)
      if (info.role != site_role::logits && allows(info.capabilities, access::read | access::gradient) &&
          !info.axes.empty() && info.axes.front() == axis::batch)
        names.push_back(info.name);
  } else {
    for (const auto& name : names) detail::attribution_site(sites, name, access::read | access::gradient, fn);
  }
  if (names.empty())
    throw argument_error(fn, "options.sites", "is empty and the runtime has no site with read and gradient access",
                         "needs a differentiable site");

  attribution_patching_result out;
  const auto corrupt_run = run_with_cache(model, corrupt, names);
  out.corrupt_value = metric.value(corrupt_run.logits, clean);

  // The clean run last, so the backward follows it.
  activation_cache<T> acts(sites, names), grads(sites, names);
  acts.reserve(clean.batch(), clean.positions());
  grads.reserve(clean.batch(), clean.positions());
  hook_set<T> hooks(sites), grad_hooks(sites, hook_phase::backward);
  acts.attach(hooks);
  grads.attach(grad_hooks);
  const tensor_view<const T> logits = model.forward(clean, hooks);
  array<T> dlogits(logits.extents());
  out.clean_value = metric.gradient(logits, clean, dlogits);
  model.backward(std::as_const(dlogits).view(), grad_hooks);

  for (const auto& name : names) {
    const site_info& info = sites[sites.at(name, fn)];
    if (!acts.filled(name) || !grads.filled(name) || !corrupt_run.cache.filled(name))
      throw argument_error(fn, "options.sites", "'" + name + "' was not reached by a forward or the backward",
                           "needs sites every pass reaches");
    std::vector<int> kept;
    patch_estimate e{name, {}, {}};
    std::vector<index> extents;
    for (std::size_t a = 0; a < info.axes.size(); ++a) {
      const axis x = info.axes[a];
      if (x == axis::batch || x == axis::pos || x == axis::head || x == axis::kv_head || x == axis::qkv_head) {
        kept.push_back(int(a));
        e.axes.push_back(x);
      }
    }
    const tensor_view<const T> a = acts[name], c = corrupt_run.cache[name], g = grads[name];
    for (int k : kept) extents.push_back(a.extent(k));
    e.values = array<double>(extents);
    e.values.fill(0.0);
    const tensor_view<double> ev = e.values.view();
    bool leading = true;  // the kept axes are the first ones (so each output sums a contiguous block)
    for (std::size_t k = 0; k < kept.size(); ++k) leading = leading && kept[k] == int(k);
    if (leading && a.is_contiguous() && c.is_contiguous() && g.is_contiguous()) {
      const index outputs = e.values.size(), block = outputs > 0 ? a.size() / outputs : 0;
      const T *pa = a.data(), *pc = c.data(), *pg = g.data();
      double* po = e.values.data();
      for (index o = 0; o < outputs; ++o) {
        double sum = 0;
        for (index j = o * block; j < (o + 1) * block; ++j) sum += (double(pc[j]) - double(pa[j])) * double(pg[j]);
        po[o] = sum;
      }
    } else {
      detail::for_each_index(a.extents(), [&](const auto& i) {
        std::array<index, 4> j{};
        for (std::size_t k = 0; k < kept.size(); ++k) j[k] = i[std::size_t(kept[k])];
        detail::element_at(ev, j) +=
            (double(detail::element_at(c, i)) - double(detail::element_at(a, i))) * double(detail::element_at(g, i));
      });
    }
    out.sites.push_back(std::move(e));
  }
  return out;
}

}  // namespace mint
