// The public types of a sparse autoencoder (mint/dictionary/sae.hpp): its activation
// rules, shape, loss options and results, and the buffers a training step reuses.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/dictionary/detail/sparse_codes.hpp"

namespace mint::dictionary {

/// The activation rule; SAELens calls relu "standard" and ships batchtopk as "jumprelu".
enum class sae_architecture : std::uint8_t { relu, topk, batchtopk, jumprelu, gated };

/// "relu", "topk", "batchtopk", "jumprelu", "gated".
inline std::string_view to_string(sae_architecture a) noexcept {
  constexpr std::string_view names[] = {"relu", "topk", "batchtopk", "jumprelu", "gated"};
  return names[std::size_t(a)];
}

/// SAELens's normalize_activations modes: how inputs are scaled before encoding (undone on decode).
enum class normalization : std::uint8_t {
  none,
  expected_average_only_in,  ///< x * scaling_factor, chosen so E||x||^2 = d_in; decode divides
  constant_norm_rescale,     ///< each row x * sqrt(d_in) / ||x||; decode divides by the same factor
  layer_norm                 ///< each row (x - mean) / (std + 1e-5), std with n-1; decode y * std + mean (SAELens's ln_std)
};

/// The shape and rule of an SAE.
struct sae_options {
  index d_in = 0;                   ///< input dimension d
  index d_sae = 0;                  ///< latents m
  sae_architecture architecture = sae_architecture::relu;
  index k = 32;                     ///< TopK: latents kept per row; BatchTopK: k x rows per batch
  bool apply_b_dec_to_input = true; ///< encode x - b_dec (SAELens's default)
  normalization normalize_activations = normalization::none;
  double initial_threshold = 0.001; ///< JumpReLU: starting threshold of every latent
  double decoder_init_norm = 1.0;   ///< norm of each initial decoder row (encoder starts as its transpose)
};

/// The loss's knobs (training only).
struct sae_loss_options {
  double l1_coefficient = 5.0;     ///< ReLU and Gated: lambda of the L1 penalty
  double l0_coefficient = 1e-3;    ///< JumpReLU: lambda of the L0 penalty
  bool penalty_uses_decoder_norm = true;  ///< L1 on z_j ||W_dec[j]|| (Anthropic, April 2024); else on z_j
  /// With penalty_uses_decoder_norm: the decoder row is split into this many equal blocks (one per
  /// model for a crosscoder) and the L1 weight is the sum of the blocks' norms; 1 is one block, the
  /// whole row. Must divide d_in.
  index decoder_norm_blocks = 1;
  double bandwidth = 0.001;        ///< JumpReLU: width epsilon of the rectangle kernel
  double auxk_coefficient = 1.0 / 32;  ///< TopK/BatchTopK: alpha of AuxK (needs a dead mask)
  index k_aux = 0;                 ///< TopK/BatchTopK: dead latents used by AuxK (0: d_in / 2)
  /// ReLU/JumpReLU: below this fraction of active latents, the step goes sparse after the encoder
  /// product, as TopK's does (0: always dense; 1: always sparse).
  double sparse_density = 0.05;
};

/// The loss terms of a batch, summed over its rows (divide by `rows` for means).
struct sae_loss {
  double reconstruction = 0;  ///< sum of ||x - x_hat||^2, in normalized units
  double sparsity = 0;        ///< the penalty, times its coefficient
  double auxiliary = 0;       ///< AuxK or Gated's auxiliary reconstruction, times its coefficient
  double l0 = 0;              ///< active latents, summed over rows
  index rows = 0;
  double total() const noexcept { return reconstruction + sparsity + auxiliary; }
};

/// Per-row statistics of a row-wise normalization, kept from encode to decode.
template <class T>
struct row_scaling {
  vector<T> scale;  ///< constant_norm_rescale: sqrt(d)/||x||; layer_norm: std (inputs are divided by std + 1e-5)
  vector<T> shift;  ///< layer_norm: the row mean
};

template <class T>
class basic_sae;

}  // namespace mint::dictionary

namespace mint::detail {
template <class T>
struct sae_loss_core;
}  // namespace mint::detail

namespace mint::dictionary {

/// Buffers of a training step, sized at first use and reused: no allocation per step after.
template <class T>
class sae_workspace {
public:
  /// How many times each latent fired (z > 0) in the last evaluated batch.
  const std::vector<std::int64_t>& fires() const noexcept { return fires_; }
  /// BatchTopK: the smallest activation kept in the last batch (0 when fewer than k x n were positive).
  T batch_threshold() const noexcept { return batch_threshold_; }
  /// Reconstruction of the last batch, in normalized units ([rows, d_in]).
  const matrix<T>& reconstruction() const noexcept { return xhat_; }

private:
  friend class basic_sae<T>;
  friend struct detail::sae_loss_core<T>;
  // xc: the encoder's input; pre: h = xc W_enc, then h + b; code: z, then dL/dh; gate: Gated's
  // relu(pi), then its gradient; xhat, g: reconstruction and 2(xhat - x); aux: AuxK's or Gated's
  // auxiliary residual; scratch: dW_enc^T of the sparse path.
  matrix<T> xc_, pre_, code_, gate_, xhat_, g_, aux_, scratch_;
  // sums: per-latent sums of the step; latent_z: per-latent sums of z; reduced: a rule's
  // per-latent gradient sums ([sums, d_sae]); constants: a rule's per-latent constants.
  vector<T> sums_, latent_z_;
  matrix<T> reduced_, constants_;
  detail::sparse_codes<T> codes_, aux_codes_;
  detail::selection_buffers<T> select_;
  std::vector<std::int64_t> fires_, tally_;
  std::vector<T> sum_tally_;
  T batch_threshold_ = 0;
};

}  // namespace mint::dictionary
