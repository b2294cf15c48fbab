// A runtime's attention, MLP and embedding weights, for the analyses that read weights instead of
// activations (QK and OV circuits, copying and composition scores, neurons' logit effects). A
// runtime offers them with `attention_weights(layer)` and `embedding_weights()`, and
// `mlp_weights(layer)`, small optional concepts, in TransformerLens's layouts; the toy
// transformer does.
#pragma once

#include <concepts>

#include "mint/core/tensor_view.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// One block's attention weights, as views (TransformerLens's layouts: activations are rows, so
/// a head's query is x W_Q[h] and its output z W_O[h]). Grouped-query attention: query head h
/// reads key/value head h / (heads / kv_heads).
template <class T>
struct attention_matrices {
  tensor_view<const T> W_Q{};  ///< [heads, d_model, d_head]
  tensor_view<const T> W_K{};  ///< [kv_heads, d_model, d_head]
  tensor_view<const T> W_V{};  ///< [kv_heads, d_model, d_head]
  tensor_view<const T> W_O{};  ///< [heads, d_head, d_model]
};

/// A runtime that shows its attention and embedding weights: attention_weights(layer) for
/// layers 0 .. layers - 1, and embedding_weights(), the token embedding W_E [vocab, d_model].
template <class R>
concept attention_weight_runtime = runtime<R> && requires(const R& r, int layer) {
  { r.attention_weights(layer) } -> std::convertible_to<attention_matrices<typename R::scalar_type>>;
  { r.embedding_weights() } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
};

/// One block's MLP weights, as views (TransformerLens's layouts: pre = x W_in + b_in,
/// out = act(pre) W_out + b_out; neuron i writes W_out[i] into the residual stream).
template <class T>
struct mlp_matrices {
  tensor_view<const T> W_in{};   ///< [d_model, d_mlp]
  tensor_view<const T> W_out{};  ///< [d_mlp, d_model]
};

/// A runtime that shows its MLP weights: mlp_weights(layer) for layers with an MLP.
template <class R>
concept mlp_weight_runtime = runtime<R> && requires(const R& r, int layer) {
  { r.mlp_weights(layer) } -> std::convertible_to<mlp_matrices<typename R::scalar_type>>;
};

}  // namespace mint
