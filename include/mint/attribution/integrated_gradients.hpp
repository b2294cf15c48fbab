// Integrated gradients (Sundararajan et al. 2017) at the embeddings or at any site (layer IG):
// attribution_i = (x_i - x'_i) * integral over alpha in [0, 1] of d(metric)/d(a_i) at
// a = x' + alpha (x - x'), the integral by a step rule (integration.hpp). The steps run as batch
// rows: one forward and one backward per max_batch rows, the metric's gradient on each step's
// rows scaled by its weight, so the backward sums the path for us. Completeness: the values sum
// to metric(x) - metric(x') up to the rule's error, reported as delta (Captum's
// return_convergence_delta). Cost: steps * batch rows of forward and activation-only backward,
// plus two forwards (the input and the baseline).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "mint/attribution/detail/passes.hpp"
#include "mint/attribution/integration.hpp"
#include "mint/attribution/result.hpp"
#include "mint/core/array.hpp"
#include "mint/model/ablation.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// Options of integrated_gradients.
struct ig_options {
  std::string site{};                      ///< the site; empty: the runtime's embedding site (role embed)
  ablation baseline = ablation::zero();    ///< x': zero (Captum's default), mean, run (another input) or tensor
  step_rule rule = step_rule::gauss_legendre;  ///< Captum's default
  int steps = 50;                          ///< Captum's default n_steps
  index max_batch = 0;                     ///< rows per forward (steps x batch rows in all); 0: every step at once
};

/// Options of adaptive_integrated_gradients: Gauss-Legendre, steps doubled until
/// |delta| <= tolerance * |metric(x) - metric(x')|.
struct adaptive_ig_options {
  std::string site{};
  ablation baseline = ablation::zero();
  double tolerance = 0.01;   ///< relative to |metric(x) - metric(x')|
  int initial_steps = 4;     ///< the first round's steps
  int max_steps = 1024;      ///< the last round's steps at most; converged = false when reached without meeting the tolerance
  index max_batch = 0;
};

namespace detail {

/// The input's activation at the site, the baseline's, and the metric at both: what every round shares.
template <class T>
struct ig_path {
  site_id site = -1;
  array<T> input, baseline;
  double value = 0, baseline_value = 0;
};

template <differentiable_runtime R, class M>
ig_path<scalar_t<R>> ig_endpoints(R& model, const token_batch& tokens, const M& metric, const std::string& site_name,
                                  const ablation& baseline, const char* function) {
  using T = scalar_t<R>;
  require_tokens(tokens, function);
  if (baseline.what == ablation::kind::resample)
    throw argument_error(function, "options.baseline", "is a resample",
                         "needs one baseline: zero, mean, run or tensor (average IG over draws yourself)");
  const site_table& sites = model.sites();
  ig_path<T> path;
  path.site = attribution_site(sites, site_name, access::read | access::write | access::gradient, function);
  const site_info& info = sites[path.site];

  auto run = run_with_cache(model, tokens, {info.name});
  path.input = array<T>::copy_of(run.cache[info.name]);
  require_finite(tensor_view<const T>(path.input.view()), function, "the input's activation at the site");
  path.value = metric.value(run.logits, tokens);
  path.baseline = ablation_values(model, info.name, tokens, baseline);

  const tensor_view<const T> x0 = path.baseline.view();
  const copy_filler<T> at_baseline = [&](index, index b, tensor_view<T> dst, index begin, index end) {
    mint::copy(row_window(x0, info, b, begin, end), dst);
  };
  const double w = 0.0;
  path.baseline_value =
      weighted_pass(model, tokens, path.site, 1, at_baseline, metric, std::span<const double>(&w, 1), nullptr).metric[0];
  return path;
}

/// One integral along the path with the given points and weights.
template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> ig_round(R& model, const token_batch& tokens, const M& metric, const ig_path<scalar_t<R>>& path,
                                         const path_steps& steps, index max_batch, const char* function) {
  using T = scalar_t<R>;
  const site_info& info = model.sites()[path.site];
  const index batch = tokens.batch();
  if (max_batch < 0 || (max_batch > 0 && max_batch < batch))
    throw argument_error(function, "options.max_batch", detail::str("is ", max_batch),
                         detail::str("needs 0 (no bound) or at least the batch's rows, ", batch));
  const index n = index(steps.alphas.size());
  const index per_pass = max_batch == 0 ? n : std::max<index>(1, max_batch / batch);

  array<double> grad(path.input.extents());
  grad.fill(0.0);
  const tensor_view<const T> x = path.input.view(), x0 = path.baseline.view();
  for (index first = 0; first < n; first += per_pass) {
    const index copies = std::min(per_pass, n - first);
    const copy_filler<T> on_path = [&](index k, index b, tensor_view<T> dst, index begin, index end) {
      const double alpha = steps.alphas[std::size_t(first + k)];
      const tensor_view<const T> to = row_window(x, info, b, begin, end), from = row_window(x0, info, b, begin, end);
      for_each_index(dst.extents(), [&](const auto& i) {
        const double f = double(element_at(from, i));
        element_at(dst, i) = T(f + alpha * (double(element_at(to, i)) - f));
      });
    };
    weighted_pass(model, tokens, path.site, copies, on_path, metric,
                  std::span<const double>(steps.weights).subspan(std::size_t(first), std::size_t(copies)), &grad);
  }

  attribution_result<T> out{info.name, info.axes, array<T>(path.input.extents()), path.value, path.baseline_value,
                            0, int(n), true};
  double total = 0;
  const tensor_view<const double> gv = std::as_const(grad).view();
  const tensor_view<T> ov = out.values.view();
  for_each_index(x.extents(), [&](const auto& i) {
    const double a = (double(element_at(x, i)) - double(element_at(x0, i))) * element_at(gv, i);
    total += a;
    element_at(ov, i) = T(a);
  });
  out.delta = total - (path.value - path.baseline_value);
  return out;
}

}  // namespace detail

/// Integrated gradients of the metric at options.site for `tokens`: values shaped as the site's
/// activation ([batch, pos, ...]); padded positions get 0. The metric is the batch's (a mean over
/// rows for mint's metrics), so the values of all rows together sum to metric(x) - metric(x').
template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> integrated_gradients(R& model, const token_batch& tokens, const M& metric,
                                                     const ig_options& options = {}) {
  const char* fn = "mint::integrated_gradients";
  const path_steps steps = integration_steps(options.rule, options.steps);  // checks steps first
  const auto path = detail::ig_endpoints(model, tokens, metric, options.site, options.baseline, fn);
  return detail::ig_round(model, tokens, metric, path, steps, options.max_batch, fn);
}

/// Integrated gradients with Gauss-Legendre steps doubled from options.initial_steps until
/// |delta| <= tolerance * |metric(x) - metric(x')| (or max_steps is reached: converged = false).
/// `steps` in the result is the last round's.
template <differentiable_runtime R, class M>
attribution_result<scalar_t<R>> adaptive_integrated_gradients(R& model, const token_batch& tokens, const M& metric,
                                                              const adaptive_ig_options& options = {}) {
  const char* fn = "mint::adaptive_integrated_gradients";
  if (!(options.tolerance > 0) || !std::isfinite(options.tolerance))
    throw argument_error(fn, "options.tolerance", detail::str("is ", options.tolerance), "needs a finite value > 0");
  if (options.initial_steps < 1 || options.max_steps < options.initial_steps)
    throw argument_error(fn, "options.initial_steps/max_steps",
                         detail::str("are ", options.initial_steps, " and ", options.max_steps),
                         "needs 1 <= initial_steps <= max_steps");
  const auto path = detail::ig_endpoints(model, tokens, metric, options.site, options.baseline, fn);
  const double bound = options.tolerance * std::abs(path.value - path.baseline_value);
  for (int steps = options.initial_steps;; steps = std::min(2 * steps, options.max_steps)) {
    auto out = detail::ig_round(model, tokens, metric, path, integration_steps(step_rule::gauss_legendre, steps),
                                options.max_batch, fn);
    out.converged = std::abs(out.delta) <= bound;
    if (out.converged || steps == options.max_steps) return out;
  }
}

}  // namespace mint
