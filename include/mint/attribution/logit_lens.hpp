// The logit lens (nostalgebraist 2020): the residual stream after each layer decoded through
// the final norm and the unembedding, as if the model stopped there; per layer, the most
// probable tokens and the probability and rank of chosen tokens. Each residual vector is
// normalized with its own statistics, as TransformerLens's accumulated residual with
// apply_ln does. Cost: one forward (cached) and one decoding product per layer.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

/// What logit_lens reads and reports.
struct logit_lens_options {
  /// The residual sites; empty: the first layer's resid_pre and every layer's resid_post, in order.
  std::vector<std::string> sites{};
  int top_k = 5;                  ///< the most probable tokens kept per position
  std::vector<token> targets{};   ///< tokens whose probability and rank every position reports
};

/// One decoded site.
struct lens_layer {
  std::string site;
  array<token> top_tokens;              ///< [batch, pos, top_k], most probable first
  array<double> top_probabilities;      ///< [batch, pos, top_k]
  array<double> target_probabilities;   ///< [batch, pos, targets]
  array<index> target_ranks;            ///< [batch, pos, targets]; 0 is the most probable token
};

/// The logit lens over `tokens`: one lens_layer per site. Padded positions report token -1,
/// probability 0 and rank -1.
template <runtime R>
  requires decodable_runtime<R>
std::vector<lens_layer> logit_lens(R& model, const token_batch& tokens, const logit_lens_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::logit_lens";
  detail::require_tokens(tokens, fn);
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn), vocab = u.weight.extent(1);
  if (options.top_k < 0 || options.top_k > vocab)
    throw argument_error(fn, "options.top_k", detail::str("is ", options.top_k), detail::str("needs 0 to the vocabulary, ", vocab));
  for (token t : options.targets)
    if (t < 0 || t >= vocab)
      throw argument_error(fn, "options.targets", detail::str("holds token ", t), detail::str("needs ids in [0, ", vocab, ")"));
  const site_table& sites = model.sites();
  const std::vector<std::string> names = block_boundary_sites(sites, options.sites, fn);
  for (const auto& name : names) {
    const site_info& info = sites[sites.at(name, fn)];
    if (info.axes != std::vector<axis>{axis::batch, axis::pos, axis::d_model} || info.sizes.back() != d)
      throw argument_error(fn, "options.sites", "'" + name + "' is not a residual [batch, pos, d_model] site",
                           detail::str("needs sites of d_model ", d, " as [batch, pos, d_model]"));
  }

  const auto run = run_with_cache(model, tokens, names, /*stop_early=*/true);
  const index k = options.top_k, n = index(options.targets.size());
  std::vector<lens_layer> out;
  std::vector<index> order(static_cast<std::size_t>(vocab));
  std::vector<double> p(static_cast<std::size_t>(vocab));
  for (const auto& name : names) {
    lens_layer layer{name, array<token>({tokens.batch(), tokens.positions(), k}),
                     array<double>({tokens.batch(), tokens.positions(), k}),
                     array<double>({tokens.batch(), tokens.positions(), n}),
                     array<index>({tokens.batch(), tokens.positions(), n})};
    layer.top_tokens.fill(-1), layer.top_probabilities.fill(0.0), layer.target_probabilities.fill(0.0), layer.target_ranks.fill(-1);
    const array<T> logits = decode_residual(u, run.cache[name]);
    for (index b = 0; b < tokens.batch(); ++b)
      for (index t = 0; t < tokens.length(b); ++t) {
        // Softmax in double; ranks by a stable sort, ties to the lower id.
        double top = -INFINITY, sum = 0;
        for (index j = 0; j < vocab; ++j) top = std::max(top, double(logits(b, t, j)));
        for (index j = 0; j < vocab; ++j) sum += p[std::size_t(j)] = std::exp(double(logits(b, t, j)) - top);
        for (double& x : p) x /= sum;
        std::iota(order.begin(), order.end(), index(0));
        std::stable_sort(order.begin(), order.end(), [&](index x, index y) { return p[std::size_t(x)] > p[std::size_t(y)]; });
        for (index i = 0; i < k; ++i) {
          layer.top_tokens(b, t, i) = token(order[std::size_t(i)]);
          layer.top_probabilities(b, t, i) = p[std::size_t(order[std::size_t(i)])];
        }
        for (index i = 0; i < n; ++i) {
          const token target = options.targets[std::size_t(i)];
          layer.target_probabilities(b, t, i) = p[std::size_t(target)];
          layer.target_ranks(b, t, i) = index(std::find(order.begin(), order.end(), index(target)) - order.begin());
        }
      }
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace mint
