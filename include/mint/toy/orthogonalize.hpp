// Weight orthogonalisation (Arditi et al. 2024): project a direction r out of every matrix and
// bias that writes into the residual stream, W <- W - (W r_hat) r_hat^T, so the residual never
// holds a component along r. For the toy transformer these are the embeddings (W_E, W_pos),
// each head's W_O with b_O, and the MLP's W_out with b_out. The model then computes what
// directional ablation at every residual site (mint::add_directional_ablation at
// residual_stream_sites) computes at run time, with no hooks. center_writes() removes the
// all-ones direction (TransformerLens's center_writing_weights). Cost O(parameters).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/toy/transformer.hpp"

namespace mint::toy {

/// Projects `direction` (d_model values, any non-zero length; a std::vector, std::span or other
/// contiguous range) out of every weight writing into the residual stream, in place (in
/// double, rounded once to T).
template <class T, class Range>
void orthogonalize_writes(transformer<T>& model, const Range& direction) {
  const char* fn = "mint::toy::orthogonalize_writes";
  const index d = model.config().d_model;
  if (index(direction.size()) != d)
    throw shape_error(fn, "direction", detail::str("has ", direction.size(), " values"), detail::str("needs d_model = ", d));
  Eigen::VectorXd r(d);
  for (index i = 0; i < d; ++i) r(i) = double(direction[std::size_t(i)]);
  const double norm = r.norm();
  if (!(norm > 0) || !std::isfinite(norm))
    throw argument_error(fn, "direction", detail::str("has norm ", norm), "needs a finite non-zero direction");
  r /= norm;
  auto& p = model.parameters();
  for (const auto& e : p.entries()) {
    const std::string& n = e.name;
    const bool writes = n == "embed.W_E" || n == "pos_embed.W_pos" || n.ends_with(".attn.W_O") ||
                        n.ends_with(".attn.b_O") || n.ends_with(".mlp.W_out") || n.ends_with(".mlp.b_out");
    if (!writes) continue;
    // Every writing tensor has d_model as its last, contiguous axis: rows of d values.
    Eigen::Map<matrix<T>> w(p.view_of(e).data(), e.size / d, d);
    matrixd wd = w.template cast<double>();
    wd -= (wd * r) * r.transpose();
    w = wd.template cast<T>();
  }
}

/// TransformerLens's center_writing_weights: every weight writing into the residual stream with
/// its mean over d_model removed (orthogonalize_writes against the all-ones direction). Every
/// reader of the residual begins with a layer norm, which removes the mean anyway, so the model
/// computes the same function (to rounding); with fold_layer_norm() first, the weights are in
/// TransformerLens's usual analysis form. Needs config().layer_norm.
template <class T>
void center_writes(transformer<T>& model) {
  if (!model.config().layer_norm)
    throw argument_error("mint::toy::center_writes", "model", "has no layer norms",
                         "needs config().layer_norm: without them the residual's mean reaches the outputs");
  orthogonalize_writes(model, std::vector<double>(std::size_t(model.config().d_model), 1.0));
}

}  // namespace mint::toy
