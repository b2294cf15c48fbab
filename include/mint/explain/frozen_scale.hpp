// What freezing the final norm's scale costs. Direct logit attribution divides every part of the
// final residual by the run's norm scale, as if removing the part left the scale unchanged; the
// part's exact direct effect recomputes the scale without it. This compares the two per part and
// per layer over a data set. Cost: one direct_logit_attribution with removal effects.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mint/attribution/direct_logit_attribution.hpp"
#include "mint/core/error.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// One part's (or one layer's) frozen share against its exact direct effect, over every
/// unpadded position of the data set.
struct frozen_scale_row {
  std::string name;            ///< the part ("L1H0", "mlp0", "embed", ...) or the layer ("layer 1", "embeddings and biases")
  int layer = -1;              ///< -1: embed, pos_embed and biases
  double mean_abs_share = 0;   ///< mean |frozen share| (dla_result::values)
  double mean_abs_effect = 0;  ///< mean |exact direct effect| (dla_result::removal)
  double mean_abs_error = 0;   ///< mean |share - effect|
  /// sum |share - effect| / sum |effect|: the fraction of the direct effect the frozen scale
  /// gets wrong (0 when no effect).
  double relative_error = 0;
};

/// Per part, and per layer (the layer's parts pooled), in the order of dla_result::parts.
struct frozen_scale_report {
  std::vector<frozen_scale_row> parts;
  std::vector<frozen_scale_row> layers;  ///< "embeddings and biases" first when present, then layers ascending
  index positions = 0;                   ///< unpadded positions averaged over
};

/// Summarises a direct_logit_attribution run with options.removal_effects over `tokens` (the
/// batch it ran on, whose lengths say which positions count).
inline frozen_scale_report frozen_scale_error(const dla_result& dla, const token_batch& tokens) {
  const char* fn = "mint::frozen_scale_error";
  const index n_parts = index(dla.parts.size());
  if (dla.removal.size() == 0 || dla.removal.rank() != 3)
    throw argument_error(fn, "dla", "has no removal effects", "needs direct_logit_attribution with options.removal_effects = true");
  if (dla.values.rank() != 3 || dla.values.extent(1) != tokens.batch() || dla.values.extent(2) != tokens.positions() ||
      dla.removal.size() != dla.values.size() || index(dla.layers.size()) != n_parts)
    throw shape_error(fn, "tokens", detail::str("is ", tokens.batch(), " x ", tokens.positions()),
                      "needs the batch the attribution ran on");

  struct sums {
    double share = 0, effect = 0, error = 0;
    index count = 0;
  };
  std::vector<sums> part(static_cast<std::size_t>(n_parts));
  frozen_scale_report out;
  for (index b = 0; b < tokens.batch(); ++b)
    for (index t = 0; t < tokens.length(b); ++t) {
      ++out.positions;
      for (index p = 0; p < n_parts; ++p) {
        const double s = dla.values(p, b, t), e = dla.removal(p, b, t);
        auto& acc = part[std::size_t(p)];
        acc.share += std::abs(s), acc.effect += std::abs(e), acc.error += std::abs(s - e), ++acc.count;
      }
    }
  const auto row = [](std::string name, int layer, const sums& acc) {
    const double n = acc.count > 0 ? double(acc.count) : 1.0;
    return frozen_scale_row{std::move(name), layer, acc.share / n, acc.effect / n, acc.error / n,
                            acc.effect > 0 ? acc.error / acc.effect : 0.0};
  };
  int top = -1;
  for (int layer : dla.layers) top = std::max(top, layer);
  std::vector<sums> layer(static_cast<std::size_t>(top + 2));  // slot 0: layer -1
  for (index p = 0; p < n_parts; ++p) {
    const auto& acc = part[std::size_t(p)];
    out.parts.push_back(row(dla.parts[std::size_t(p)], dla.layers[std::size_t(p)], acc));
    auto& pooled = layer[std::size_t(dla.layers[std::size_t(p)] + 1)];
    pooled.share += acc.share, pooled.effect += acc.effect, pooled.error += acc.error, pooled.count += acc.count;
  }
  for (int l = -1; l <= top; ++l)
    if (layer[std::size_t(l + 1)].count > 0)
      out.layers.push_back(row(l < 0 ? "embeddings and biases" : detail::str("layer ", l), l, layer[std::size_t(l + 1)]));
  return out;
}

/// Runs direct logit attribution with removal effects on `tokens` and summarises it.
template <runtime R>
  requires decodable_runtime<R>
frozen_scale_report frozen_scale_error(R& model, const token_batch& tokens, dla_options options) {
  options.removal_effects = true;
  return frozen_scale_error(direct_logit_attribution(model, tokens, options), tokens);
}

}  // namespace mint
