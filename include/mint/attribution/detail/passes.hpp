// The passes every gradient attribution runs: a forward over copies of a batch with one site's
// activation replaced per copy, the metric's gradient on each copy scaled by a weight, and one
// backward whose gradients at the site are summed over the copies.
#pragma once

#include <functional>
#include <span>
#include <utility>
#include <string>
#include <string_view>
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

/// The named site, or the runtime's embedding site (role embed) when the name is empty; checked
/// for a batch axis first and for the access the method needs.
inline site_id attribution_site(const site_table& sites, std::string_view name, access needs, const char* function) {
  site_id id = -1;
  if (name.empty()) {
    for (std::size_t i = 0; i < sites.size(); ++i)
      if (sites[site_id(i)].role == site_role::embed) {
        id = site_id(i);
        break;
      }
    if (id < 0)
      throw argument_error(function, "options.site", "is empty and the runtime has no embedding site (role embed)",
                           "needs a site name");
  } else {
    id = sites.at(name, function);
  }
  const site_info& info = sites[id];
  require_batch_first(info, function);
  if (!allows(info.capabilities, needs))
    throw argument_error(function, "options.site", "'" + info.name + "' allows " + to_string(info.capabilities),
                         "needs " + to_string(needs));
  return id;
}

/// Fills a hook's window of row b of copy k: fill(k, b, destination, chunk_begin, chunk_end).
template <class T>
using copy_filler = std::function<void(index, index, tensor_view<T>, index, index)>;

/// What one weighted pass returns: the metric on each copy.
struct pass_values {
  std::vector<double> metric;
};

/// One forward over `copies` copies of `tokens` (copy k is rows [k B, (k + 1) B)), the site's
/// activation in each copy set by `fill` (none: left as computed); the metric's gradient on each
/// copy scaled by weights[k]; one backward. Adds sum_k of the copies' gradients at the site into
/// grad_sum ([B, ...], double) when it is given. A `seen` cache, when given, is attached to the
/// forward pass (after the fill).
template <differentiable_runtime R, class M>
pass_values weighted_pass(R& model, const token_batch& tokens, site_id site, index copies,
                          const copy_filler<scalar_t<R>>& fill, const M& metric, std::span<const double> weights,
                          array<double>* grad_sum, activation_cache<scalar_t<R>>* seen = nullptr) {
  using T = scalar_t<R>;
  const site_table& sites = model.sites();
  const site_info& info = sites[site];
  const index batch = tokens.batch();
  const token_batch rows = copies == 1 ? tokens : repeat_rows(tokens, copies);

  hook_set<T> hooks(sites);
  if (fill)
    hooks.add(site, [&](hook_call<T>& c) {
      for (index r = 0; r < c.activation.extent(0); ++r)
        fill(r / batch, r % batch, c.activation.subview(r), c.chunk_begin, c.chunk_end);
    }, {.needs = access::write});
  if (seen) {
    seen->reserve(rows.batch(), rows.positions());
    seen->attach(hooks);
  }
  const tensor_view<const T> logits = model.forward(rows, hooks);
  if (logits.rank() != 3 || logits.extent(0) != rows.batch() || logits.extent(1) != rows.positions())
    throw shape_error("mint::attribution", "logits", "have extents " + shape_string(logits.extents()),
                      detail::str("need [", rows.batch(), ", ", rows.positions(), ", vocab] from the runtime's forward"));

  pass_values out;
  array<T> dlogits(logits.extents());
  for (index k = 0; k < copies; ++k) {
    const tensor_view<const T> part = logits.narrow(0, k * batch, (k + 1) * batch);
    tensor_view<T> grad = dlogits.view().narrow(0, k * batch, (k + 1) * batch);
    out.metric.push_back(metric.gradient(part, tokens, grad));
    const T w = T(weights[std::size_t(k)]);
    if (w != T(1)) {  // a contiguous slice of dlogits
      T* g = grad.data();
      for (index i = 0, n = grad.size(); i < n; ++i) g[i] *= w;
    }
  }
  if (!grad_sum) return out;

  activation_cache<T> cache(sites, {info.name});
  cache.reserve(rows.batch(), rows.positions());
  hook_set<T> grad_hooks(sites, hook_phase::backward);
  cache.attach(grad_hooks);
  model.backward(std::as_const(dlogits).view(), grad_hooks);
  if (!cache.filled(info.name))
    throw argument_error("mint::attribution", "site", "'" + info.name + "' got no gradient from the runtime's backward",
                         "needs a runtime whose backward reaches the site");
  const tensor_view<const T> g = cache[info.name];
  for (index k = 0; k < copies; ++k)
    for (index b = 0; b < batch; ++b) {
      const tensor_view<const T> from = g.subview(k * batch + b);
      const tensor_view<double> to = grad_sum->view().subview(b);
      for_each_index(from.extents(), [&](const auto& i) { element_at(to, i) += double(element_at(from, i)); });
    }
  return out;
}

}  // namespace mint::detail
