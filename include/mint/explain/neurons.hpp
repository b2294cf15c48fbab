// MLP neurons read as SAE latents are: their activations streamed into a
// dictionary::feature_collector (top-n examples with their refs, firing density, histograms) and
// their direct logit effects (W_out[i] through the final norm's gain and W_U), so neurons and
// SAE latents share one JSON report (docs/sae_analysis.md). Cost: one forward per call to
// collect_neurons, stopped after the layer's MLP; the logit effects O(d_mlp d_model vocab).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/dictionary/feature_analysis.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/head_weights.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

namespace detail {

/// The [batch, pos, d_mlp] site of role mlp_post at `layer`.
inline const site_info& neuron_site(const site_table& sites, int layer, const char* fn) {
  for (const auto& info : sites)
    if (info.role == site_role::mlp_post && info.layer == layer &&
        info.axes == std::vector<axis>{axis::batch, axis::pos, axis::d_mlp})
      return info;
  throw argument_error(fn, "layer", detail::str("is ", layer),
                       "needs a layer with an mlp_post site of axes [batch, pos, d_mlp] (the MLP's activations)");
}

}  // namespace detail

/// The number of neurons (d_mlp) of `layer`'s MLP.
template <runtime R>
index neuron_count(const R& model, int layer) {
  return detail::neuron_site(model.sites(), layer, "mint::neuron_count").sizes[2];
}

/// Adds the activations of `layer`'s MLP neurons on `tokens` to `collector` (whose latents are
/// the neurons, neuron_count(model, layer)): row (b, t) comes from example first_example + b at
/// position t; padded positions are left out. Call it once per batch, advancing first_example.
template <runtime R>
void collect_neurons(R& model, const token_batch& tokens, int layer, dictionary::feature_collector& collector,
                     std::int64_t first_example = 0) {
  using T = scalar_t<R>;
  const char* fn = "mint::collect_neurons";
  detail::require_tokens(tokens, fn);
  const site_info& info = detail::neuron_site(model.sites(), layer, fn);
  const index m = info.sizes[2];
  if (collector.latents() != m)
    throw shape_error(fn, "collector", detail::str("has ", collector.latents(), " latents"),
                      detail::str("needs one per neuron of layer ", layer, ", ", m));
  const auto run = run_with_cache(model, tokens, {info.name}, /*stop_early=*/true);
  const tensor_view<const T> post = run.cache[info.name];
  index rows = 0;
  for (index b = 0; b < tokens.batch(); ++b) rows += tokens.length(b);
  array<T> activations({rows, m});
  std::vector<dictionary::example_ref> refs;
  refs.reserve(std::size_t(rows));
  index row = 0;
  for (index b = 0; b < tokens.batch(); ++b)
    for (index t = 0; t < tokens.length(b); ++t, ++row) {
      for (index i = 0; i < m; ++i) activations(row, i) = post(b, t, i);
      refs.push_back({first_example + b, t});
    }
  collector.add(activations, refs);
}

/// Each neuron's direct effect on the logits: W_out[i] times the final norm's gain times W_U,
/// its top_n most raised and lowered tokens (the final norm's scale left out, as for SAE
/// latents; the norm's centring does not change which tokens rank first, only by how much).
template <runtime R>
  requires mlp_weight_runtime<R> && decodable_runtime<R>
std::vector<dictionary::logit_effect> neuron_logit_effects(const R& model, int layer, index top_n = 10) {
  using T = scalar_t<R>;
  const char* fn = "mint::neuron_logit_effects";
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn);
  const mlp_matrices<T> w = model.mlp_weights(layer);
  if (w.W_out.rank() != 2 || w.W_out.extent(1) != d)
    throw shape_error(fn, "mlp_weights(layer).W_out", "has extents " + detail::shape_string(w.W_out.extents()),
                      detail::str("needs [d_mlp, d_model = ", d, "]"));
  if (u.gain.empty()) return dictionary::logit_effects(w.W_out, u.weight, top_n);
  array<T> folded = array<T>::copy_of(u.weight);  // diag(gain) W_U
  for (index j = 0; j < d; ++j)
    for (index v = 0; v < folded.extent(1); ++v) folded(j, v) *= u.gain(j);
  return dictionary::logit_effects(w.W_out, folded, top_n);
}

/// The unpadded tokens of each row of `tokens` as a report's token_source: example
/// first_example + b is row b. The batch must outlive the source.
inline dictionary::token_source batch_tokens(const token_batch& tokens, std::int64_t first_example = 0) {
  return [&tokens, first_example](std::int64_t example) {
    const index b = index(example - first_example);
    if (b < 0 || b >= tokens.batch())
      throw argument_error("mint::batch_tokens", "example", detail::str("is ", example),
                           detail::str("needs an example in [", first_example, ", ", first_example + tokens.batch(), ")"));
    std::vector<std::int64_t> out;
    for (index t = 0; t < tokens.length(b); ++t) out.push_back(tokens(b, t));
    return out;
  };
}

}  // namespace mint
