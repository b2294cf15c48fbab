// Direct logit attribution: the final residual stream split into the parts that wrote it (the
// embeddings, each head's result, each MLP's output, and the biases), each projected on a logit
// direction (one token against another, or one token against the mean of all) through the final
// norm with its scale frozen at the run's value, as TransformerLens does. The final norm is
// linear once its scale is fixed, so the parts sum to the logit difference of the run exactly
// (to rounding). Cost: one forward caching the writers, then O(writers * tokens * d_model).
#pragma once

#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

/// The logit direction per batch row.
struct dla_options {
  std::vector<token> correct{};  ///< one per row
  std::vector<token> wrong{};    ///< one per row; empty: correct's logit minus the mean logit (centred)
  /// Also each part's exact direct effect (dla_result::removal), to measure what freezing the
  /// final norm's scale costs (scale_freezing_error). O(parts * d_model) more per position.
  bool removal_effects = false;
};

/// Each writer's share of the logit difference, per row and position.
struct dla_result {
  /// "embed", "pos_embed", "L<layer>H<head>", "mlp<layer>", and "biases" (attention and MLP
  /// output biases, the final norm's bias and the unembedding bias).
  std::vector<std::string> parts;
  std::vector<int> layers;         ///< each part's layer; -1 for embed, pos_embed and biases
  array<double> values;            ///< [parts, batch, pos]; padded positions 0
  /// With options.removal_effects: [parts, batch, pos], the logit difference of the run minus
  /// that of the final residual without the part, the final norm's scale recomputed (exact, where
  /// `values` freezes the scale; the biases part adds the final norm's and unembedding's biases,
  /// as its share does); else empty.
  array<double> removal;
  array<double> logit_difference;  ///< [batch, pos]: the run's (centred) logit difference, which the parts sum to
};

/// Direct logit attribution of `tokens` on the direction options.correct - options.wrong. Needs the
/// runtime's writer sites by role (embed, pos_embed, attn_result, mlp_out; resid_post for the final
/// residual) and its unembedding().
template <runtime R>
  requires decodable_runtime<R>
dla_result direct_logit_attribution(R& model, const token_batch& tokens, const dla_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::direct_logit_attribution";
  detail::require_tokens(tokens, fn);
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn), vocab = u.weight.extent(1), B = tokens.batch(), P = tokens.positions();
  if (index(options.correct.size()) != B || (!options.wrong.empty() && index(options.wrong.size()) != B))
    throw argument_error(fn, "options.correct/wrong",
                         detail::str("hold ", options.correct.size(), " and ", options.wrong.size(), " tokens"),
                         detail::str("needs one per batch row (", B, "); wrong may be empty"));
  for (const auto* list : {&options.correct, &options.wrong})
    for (token t : *list)
      if (t < 0 || t >= vocab)
        throw argument_error(fn, "options.correct/wrong", detail::str("holds token ", t), detail::str("needs ids in [0, ", vocab, ")"));

  // The writers, and the final residual (the last layer's resid_post).
  const site_table& sites = model.sites();
  struct writer {
    std::string site;
    int heads;  // 0: a whole site
    int layer;
    site_role role;
  };
  std::vector<writer> writers;
  std::string final_site;
  int final_layer = -1;
  for (const auto& info : sites) {
    const bool flat = info.axes == std::vector<axis>{axis::batch, axis::pos, axis::d_model};
    if ((info.role == site_role::embed || info.role == site_role::pos_embed || info.role == site_role::mlp_out) && flat)
      writers.push_back({info.name, 0, info.layer, info.role});
    else if (info.role == site_role::attn_result &&
             info.axes == std::vector<axis>{axis::batch, axis::pos, axis::head, axis::d_model})
      writers.push_back({info.name, int(info.sizes[2]), info.layer, info.role});
    else if (info.role == site_role::resid_post && flat && info.layer > final_layer)
      final_site = info.name, final_layer = info.layer;
  }
  if (final_site.empty() || writers.empty())
    throw argument_error(fn, "model", "has no resid_post site or no writer sites (embed, attn_result, mlp_out)",
                         "needs a runtime whose sites declare those roles");
  std::vector<std::string> names{final_site};
  for (const auto& w : writers) names.push_back(w.site);
  const auto run = run_with_cache(model, tokens, names);

  dla_result out;
  for (const auto& w : writers) {
    const bool embedding = w.role == site_role::embed || w.role == site_role::pos_embed;
    if (w.heads == 0)
      out.parts.push_back(w.role == site_role::embed ? "embed" : w.role == site_role::pos_embed ? "pos_embed"
                                                                                             : detail::str("mlp", w.layer));
    else
      for (int h = 0; h < w.heads; ++h) out.parts.push_back(detail::str("L", w.layer, "H", h));
    out.layers.resize(out.parts.size(), embedding ? -1 : w.layer);
  }
  out.parts.push_back("biases");
  out.layers.push_back(-1);
  const index n_parts = index(out.parts.size());
  out.values = array<double>({n_parts, B, P});
  out.values.fill(0.0);
  if (options.removal_effects) {
    out.removal = array<double>({n_parts, B, P});
    out.removal.fill(0.0);
  }
  out.logit_difference = array<double>({B, P});
  out.logit_difference.fill(0.0);

  const Eigen::MatrixXd W = as_matrix(u.weight).template cast<double>();
  const tensor_view<const T> x = run.cache[final_site];
  std::vector<tensor_view<const T>> written;  // each writer's cached output, looked up once
  for (const auto& w : writers) written.push_back(run.cache[w.site]);
  for (index b = 0; b < B; ++b) {
    // The direction in the residual: gain * (W_U[:, correct] - W_U[:, wrong or mean]); its offset from biases.
    const index c = options.correct[std::size_t(b)];
    Eigen::VectorXd direction = W.col(c) - (options.wrong.empty() ? Eigen::VectorXd(W.rowwise().mean())
                                                                  : Eigen::VectorXd(W.col(options.wrong[std::size_t(b)])));
    double constant = 0;
    if (!u.unembed_bias.empty()) {
      double mean = 0;
      for (index j = 0; j < vocab; ++j) mean += double(u.unembed_bias(j));
      constant = double(u.unembed_bias(c)) -
                 (options.wrong.empty() ? mean / double(vocab) : double(u.unembed_bias(options.wrong[std::size_t(b)])));
    }
    if (!u.bias.empty())
      for (index j = 0; j < d; ++j) constant += double(u.bias(j)) * direction(j);
    if (!u.gain.empty())
      for (index j = 0; j < d; ++j) direction(j) *= double(u.gain(j));
    const double direction_sum = direction.sum();

    for (index t = 0; t < tokens.length(b); ++t) {
      const double scale = detail::norm_statistics(u, x.subview(b).subview(t)).second;  // frozen
      const bool centred = u.norm == final_norm::layer_norm;
      // A residual vector's share: ((v - mean(v)) / scale) . direction, with LayerNorm's centring.
      const auto share = [&](const Eigen::VectorXd& v, double s) {
        return (v.dot(direction) - (centred ? v.mean() * direction_sum : 0.0)) / s;
      };
      const Eigen::VectorXd whole = as_matrix(x.subview(b).subview(t).reshape({1, d})).row(0).transpose().template cast<double>();
      // The exact direct effect of part v: share(whole) - share(whole - v), each with its own scale.
      const auto removal = [&](const Eigen::VectorXd& v) {
        if (u.norm == final_norm::none) return share(v, 1.0);
        const Eigen::VectorXd without = whole - v;
        const double mean = without.mean(), square = without.squaredNorm() / double(d);
        const double s = u.norm == final_norm::rms_norm ? std::sqrt(square + u.epsilon)
                                                        : std::sqrt(std::max(square - mean * mean, 0.0) + u.epsilon);
        return share(whole, scale) - share(without, s);
      };
      Eigen::VectorXd rest = whole;
      index part = 0;
      for (std::size_t k = 0; k < writers.size(); ++k) {
        const auto& w = writers[k];
        const tensor_view<const T> a = written[k].subview(b).subview(t);
        const Eigen::MatrixXd rows = as_matrix(w.heads == 0 ? a.reshape({1, d}) : a).template cast<double>();
        for (index h = 0; h < rows.rows(); ++h, ++part) {
          out.values(part, b, t) = share(rows.row(h).transpose(), scale);
          if (options.removal_effects) out.removal(part, b, t) = removal(rows.row(h).transpose());
          rest -= rows.row(h).transpose();
        }
      }
      out.values(part, b, t) = share(rest, scale) + constant;
      if (options.removal_effects) out.removal(part, b, t) = removal(rest) + constant;  // no scale touches the constants
      // The run's own logit difference, from its logits.
      const tensor_view<const T> logits = run.logits.view().subview(b).subview(t);
      double mean = 0;
      for (index j = 0; j < vocab; ++j) mean += double(logits(j));
      out.logit_difference(b, t) = double(logits(c)) - (options.wrong.empty() ? mean / double(vocab)
                                                                              : double(logits(options.wrong[std::size_t(b)])));
    }
  }
  return out;
}

}  // namespace mint
