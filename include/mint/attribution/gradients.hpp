// Gradient attributions at a site: saliency (the metric's gradient, by default its absolute
// value, as Captum's Saliency) and gradient x activation (Captum's InputXGradient at the
// embeddings, its LayerGradientXActivation at any other site). One forward and one backward
// that computes activation gradients only.
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "mint/attribution/detail/passes.hpp"
#include "mint/attribution/result.hpp"
#include "mint/core/array.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// Where saliency and gradient x activation look.
struct gradient_options {
  std::string site{};    ///< the site; empty: the runtime's embedding site (role embed, e.g. hook_embed)
  bool absolute = true;  ///< saliency only: |gradient| (Captum's default); false keeps the sign
};

namespace detail {

template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> gradient_attribution(R& model, const token_batch& tokens, const M& metric,
                                                     const gradient_options& options, bool times_activation,
                                                     const char* function) {
  using T = scalar_t<R>;
  require_tokens(tokens, function);
  const site_table& sites = model.sites();
  const site_id site = attribution_site(sites, options.site, access::read | access::gradient, function);
  const site_info& info = sites[site];
  attribution_result<T> out{info.name, info.axes, {}, 0, 0, 0, 0, true};

  // The activation, when it multiplies, from the same forward whose gradient is taken.
  activation_cache<T> seen(sites, {info.name});
  array<double> grad(info.extents(tokens.batch(), tokens.positions()));
  grad.fill(0.0);
  const double w = 1.0;
  out.value = weighted_pass(model, tokens, site, 1, {}, metric, std::span<const double>(&w, 1), &grad,
                            times_activation ? &seen : nullptr).metric[0];

  out.values = array<T>(grad.extents());
  const tensor_view<const T> a = times_activation ? seen[info.name] : tensor_view<const T>();
  const tensor_view<const double> gv = std::as_const(grad).view();
  const tensor_view<T> ov = out.values.view();
  for_each_index(grad.extents(), [&](const auto& i) {
    const double g = element_at(gv, i);
    element_at(ov, i) = T(times_activation ? g * double(element_at(a, i)) : options.absolute ? std::abs(g) : g);
  });
  return out;
}

}  // namespace detail

/// d(metric)/d(activation) at the site for `tokens` ([batch, pos, ...] as the site's axes), its
/// absolute value unless options.absolute is false. Padded positions get 0.
template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> saliency(R& model, const token_batch& tokens, const M& metric,
                                         const gradient_options& options = {}) {
  return detail::gradient_attribution(model, tokens, metric, options, false, "mint::saliency");
}

/// activation * d(metric)/d(activation) at the site, element by element (at the embeddings:
/// Captum's InputXGradient). options.absolute does not apply.
template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> gradient_x_activation(R& model, const token_batch& tokens, const M& metric,
                                                      const gradient_options& options = {}) {
  return detail::gradient_attribution(model, tokens, metric, options, true, "mint::gradient_x_activation");
}

}  // namespace mint
