// The activation rules of a sparse autoencoder (mint/dictionary/sae.hpp), one type each:
// the per-latent parameters it adds to the SAE's layout, its code z of the encoder's
// pre-activation h = (x - b_dec) W_enc, and the gradient through that code. The SAE picks
// the rule once per call (visit_sae_rule) and the loss (detail/sae_loss.hpp) runs its loops
// on that type, so no loop branches on the rule. Loop bodies use selects rather than
// branches, so GCC vectorizes them.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "mint/core/eigen.hpp"
#include "mint/dictionary/detail/sparse_codes.hpp"
#include "mint/dictionary/sae_options.hpp"

namespace mint::detail {

/// What a rule's loss penalises.
enum class sae_penalty : std::uint8_t {
  l1_of_code,  ///< lambda1 * sum_j z_j w_j (w_j = ||W_dec[j]|| or 1)
  l1_of_gate,  ///< lambda1 * sum_j relu(pi_j) w_j, plus the gate path's own reconstruction
  l0,          ///< lambda0 * #(z_j > 0)
  none         ///< TopK, BatchTopK: sparsity by construction (AuxK is the auxiliary term)
};

/// The parameters of a rule and the slots of its dense backward's per-latent sums. Every rule
/// has W_enc [d_in, d_sae], then `encoder` ([d_sae] each), W_dec [d_sae, d_in], b_dec [d_in],
/// then `after_decoder` ([d_sae] each): SAELens's names and order.
struct sae_rule_layout {
  std::array<const char*, 3> encoder{};
  std::array<const char*, 1> after_decoder{};
};

/// The L1 weight of each latent, w_j = ||W_dec[j]|| (or 1; with decoder_norm_blocks B > 1, the sum
/// of the norms of the row's B blocks), into row r of constants, and lambda1 w_j into row r + 1.
template <class T>
void l1_weights(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options& o, matrix<T>& constants,
                index r, const T*& weight, const T*& l1) {
  const index blocks = o.decoder_norm_blocks, width = sae.d_in() / std::max<index>(blocks, 1);
  if (!o.penalty_uses_decoder_norm) {
    constants.row(r).setOnes();
  } else if (blocks <= 1) {
    constants.row(r) = sae.W_dec().rowwise().norm().transpose();
  } else {
    constants.row(r).setZero();
    for (index b = 0; b < blocks; ++b) constants.row(r) += sae.W_dec().middleCols(b * width, width).rowwise().norm().transpose();
  }
  constants.row(r + 1) = T(o.l1_coefficient) * constants.row(r);
  weight = &constants(r, 0);
  l1 = &constants(r + 1, 0);
}

/// Writes sparse codes into the dense z ([rows, latents], zeroed).
template <class T>
void scatter(const sparse_codes<T>& codes, matrix<T>& z) {
  for (index i = 0; i < codes.rows(); ++i)
    for (index e = codes.start[std::size_t(i)]; e < codes.start[std::size_t(i + 1)]; ++e)
      z(i, codes.latent[std::size_t(e)]) = codes.value[std::size_t(e)];
}

/// ReLU: z = max(h + b_enc, 0).
template <class T>
struct relu_rule {
  static constexpr sae_rule_layout layout{{"b_enc"}, {}};
  static constexpr sae_penalty penalty = sae_penalty::l1_of_code;
  static constexpr bool dense = true;   // has a dense path
  static constexpr bool sparse = true;  // has a sparse path (dense rules take it below sparse_density)
  // Dense backward: per-latent sums, the parameter each is added to; dL/dh summed is slot 0.
  static constexpr std::array<const char*, 1> sums{"b_enc"};
  static constexpr int input_sum = 0;

  const T* bias;
  const T* weight = nullptr;  // w_j, the L1 weight of latent j (training only)
  const T* l1 = nullptr;      // lambda1 w_j: d(penalty)/dz_j

  /// `loss` is null at inference; `constants` holds the per-latent constants of training.
  relu_rule(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options* loss, matrix<T>& constants)
      : bias(sae.b_enc().data()) {
    if (!loss) return;
    constants.resize(2, sae.d_sae());
    l1_weights(sae, *loss, constants, 0, weight, l1);
  }

  void dense_row(const T* h, T* z, T*, std::int64_t* fired, index m) const {
    for (index j = 0; j < m; ++j) {
      const T pre = h[j] + bias[j];
      const bool on = pre > T(0);
      z[j] = on ? pre : T(0);
      fired[j] += on;
    }
  }
  /// dz in, dL/dh out; sums[0..m) += dL/db_enc.
  void backward_row(const T* h, T* dz, const T*, T* sums, index m) const {
    // A 0/1 mask times the gradient (a conditional sum would keep GCC from vectorizing).
    for (index j = 0; j < m; ++j) {
      const T on = h[j] + bias[j] > T(0) ? T(1) : T(0);
      const T dh = on * (dz[j] + l1[j]);
      sums[j] += dh;
      dz[j] = dh;
    }
  }
  /// Whether the sparse path would select (row, j) given h (counted to choose the path).
  bool touches(index j, T h) const { return h + bias[j] > T(0); }
  /// Sparse path: the entries of pre = h + b_enc selected (active or needed by the gradient).
  bool keeps(index, T pre) const { return pre > T(0); }
  bool active(index, T pre) const { return pre > T(0); }
  /// Inference: the codes z ([n, d_sae], zeroed) of h (overwritten).
  void encode(matrix<T>& h, matrix<T>& z) const {
    z = (h.rowwise() + Eigen::Map<const vector<T>>(bias, h.cols()).transpose()).cwiseMax(T(0));
  }
};

/// JumpReLU: z = pre when pre > max(theta, 0), else 0 (pre = h + b_enc). The threshold gets the
/// straight-through pseudo-derivative of the rectangle kernel K (|pre - theta| < eps/2):
/// dz/dtheta = -(theta/eps) K and dH/dtheta = -(1/eps) K.
template <class T>
struct jumprelu_rule {
  static constexpr sae_rule_layout layout{{"b_enc"}, {"threshold"}};
  static constexpr sae_penalty penalty = sae_penalty::l0;
  static constexpr bool dense = true;
  static constexpr bool sparse = true;
  static constexpr std::array<const char*, 2> sums{"b_enc", "threshold"};
  static constexpr int input_sum = 0;

  const T* bias;
  const T* theta;
  T half_window = 0, l0_rate = 0;  // eps / 2 and lambda0 / eps (set for the gradient)
  const T* slope = nullptr;        // -theta_j / eps: dL/dtheta_j per unit dz_j near the threshold
  const T* cut = nullptr;          // max(theta_j, 0)

  jumprelu_rule(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options* loss, matrix<T>& constants)
      : bias(sae.b_enc().data()), theta(sae.threshold().data()) {
    if (!loss) return;
    const T eps = T(loss->bandwidth);
    half_window = eps / 2;
    l0_rate = T(loss->l0_coefficient) / eps;
    constants.resize(2, sae.d_sae());
    constants.row(0) = -(sae.threshold().array() / eps).matrix().transpose();
    constants.row(1) = sae.threshold().cwiseMax(T(0)).transpose();
    slope = &constants(0, 0);
    cut = &constants(1, 0);
  }

  void dense_row(const T* h, T* z, T*, std::int64_t* fired, index m) const {
    for (index j = 0; j < m; ++j) {
      const T pre = h[j] + bias[j];
      const bool on = (pre > theta[j]) & (pre > T(0));
      z[j] = on ? pre : T(0);
      fired[j] += on;
    }
  }
  /// sums[0..m) += dL/db_enc, sums[m..2m) += dL/dtheta.
  void backward_row(const T* h, T* dz, const T*, T* sums, index m) const {
    // Two passes over the row (it stays in cache), each of a form GCC vectorizes: the
    // threshold's pseudo-derivative inside the window, then dz through the jump.
    T* dtheta = sums + m;
    for (index j = 0; j < m; ++j) {
      const T near = std::abs(h[j] + bias[j] - theta[j]) < half_window ? T(1) : T(0);
      dtheta[j] += near * (slope[j] * dz[j] - l0_rate);
    }
    for (index j = 0; j < m; ++j) {
      const T on = h[j] + bias[j] - cut[j] > T(0) ? T(1) : T(0);
      const T dh = on * dz[j];
      sums[j] += dh;
      dz[j] = dh;
    }
  }
  bool touches(index j, T h) const {
    const T pre = h + bias[j];
    return (pre > theta[j]) | (std::abs(pre - theta[j]) < half_window);
  }
  bool keeps(index j, T pre) const { return (pre > theta[j] && pre > T(0)) || std::abs(pre - theta[j]) < half_window; }
  bool active(index j, T pre) const { return pre > theta[j] && pre > T(0); }
  /// Sparse path: the threshold's share of an entry's gradient dz (dtheta: [d_sae]).
  void entry_gradient(index j, T pre, T dz, T* dtheta) const {
    if (std::abs(pre - theta[j]) < half_window) dtheta[j] += -(theta[j] / (2 * half_window)) * dz - l0_rate;
  }
  void encode(matrix<T>& h, matrix<T>& z) const {
    for (index i = 0; i < h.rows(); ++i)
      for (index j = 0; j < h.cols(); ++j) {
        const T pre = h(i, j) + bias[j];
        z(i, j) = active(j, pre) ? pre : T(0);
      }
  }
};

/// Gated: pi = h + b_gate, mag = exp(r_mag) h + b_mag, z = mag when pi > 0 and mag > 0. The L1
/// penalty is on relu(pi), and relu(pi) W_dec + b_dec reconstructs x as an auxiliary loss (its
/// decoder held fixed, as SAELens detaches it).
template <class T>
struct gated_rule {
  static constexpr sae_rule_layout layout{{"b_gate", "b_mag", "r_mag"}, {}};
  static constexpr sae_penalty penalty = sae_penalty::l1_of_gate;
  static constexpr bool dense = true;
  static constexpr bool sparse = false;
  static constexpr std::array<const char*, 4> sums{"b_gate", "b_mag", "r_mag", nullptr};
  static constexpr int input_sum = 3;

  const T* gate_bias;
  const T* mag_bias;
  const T* mag_scale;         // exp(r_mag)
  const T* weight = nullptr;  // w_j (training only)
  const T* l1 = nullptr;      // lambda1 w_j

  gated_rule(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options* loss, matrix<T>& constants)
      : gate_bias(sae.b_gate().data()), mag_bias(sae.b_mag().data()) {
    constants.resize(loss ? 3 : 1, sae.d_sae());
    constants.row(0) = sae.r_mag().array().exp().matrix().transpose();
    mag_scale = &constants(0, 0);
    if (loss) l1_weights(sae, *loss, constants, 1, weight, l1);
  }

  void dense_row(const T* h, T* z, T* gate, std::int64_t* fired, index m) const {
    for (index j = 0; j < m; ++j) {
      const T pi = h[j] + gate_bias[j], mag = mag_scale[j] * h[j] + mag_bias[j];
      const T code = pi > 0 && mag > 0 ? mag : T(0);
      z[j] = code;
      gate[j] = std::max(pi, T(0));
      fired[j] += code > 0;
    }
  }
  /// dz in (and dL/d relu(pi) in dgate), dL/dh out; sums += dL/db_gate, dL/db_mag, dL/dr_mag, dL/dh.
  void backward_row(const T* h, T* dz, const T* dgate, T* sums, index m) const {
    T *db_gate = sums, *db_mag = sums + m, *dr_mag = sums + 2 * m, *dh_sum = sums + 3 * m;
    for (index j = 0; j < m; ++j) {
      const T e = mag_scale[j], pi = h[j] + gate_bias[j], mag = e * h[j] + mag_bias[j];
      const T dmag = pi > 0 && mag > 0 ? dz[j] : T(0);
      const T dpi = pi > 0 ? dgate[j] + l1[j] : T(0);
      db_mag[j] += dmag;
      dr_mag[j] += dmag * e * h[j];
      db_gate[j] += dpi;
      const T dh = dmag * e + dpi;
      dh_sum[j] += dh;
      dz[j] = dh;
    }
  }
  void encode(matrix<T>& h, matrix<T>& z) const {
    for (index i = 0; i < h.rows(); ++i)
      for (index j = 0; j < h.cols(); ++j) {
        const T mag = mag_scale[j] * h(i, j) + mag_bias[j];
        z(i, j) = h(i, j) + gate_bias[j] > 0 && mag > 0 ? mag : T(0);
      }
  }
};

/// TopK: the k largest of pre = h + b_enc in each row (ties to the lower latent), negatives
/// included as SAELens keeps them (then a ReLU).
template <class T>
struct topk_rule {
  static constexpr sae_rule_layout layout{{"b_enc"}, {}};
  static constexpr sae_penalty penalty = sae_penalty::none;
  static constexpr bool dense = false;
  static constexpr bool sparse = true;

  const T* bias;
  index k;

  topk_rule(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options*, matrix<T>&)
      : bias(sae.b_enc().data()), k(sae.options().k) {}

  /// The codes of pre ([n, d_sae], biased); returns the batch threshold (0: none).
  T select(const matrix<T>& pre, sparse_codes<T>& codes, selection_buffers<T>& b) const {
    codes.reserve(pre.rows(), pre.rows() * k, pre.cols());
    select_topk(pre, k, nullptr, codes, b.topk);
    return T(0);
  }
  void encode(matrix<T>& h, matrix<T>& z) const {
    h.rowwise() += Eigen::Map<const vector<T>>(bias, h.cols()).transpose();
    sparse_codes<T> codes;
    selection_buffers<T> buffers;
    select(h, codes, buffers);
    scatter(codes, z);
  }
};

/// BatchTopK: the k x n largest of pre over a batch of n rows in training; at inference, every
/// pre above the learned global threshold (or the batch's own top k x n until one is set).
template <class T>
struct batchtopk_rule : topk_rule<T> {
  using topk_rule<T>::bias, topk_rule<T>::k;
  T threshold;  // the SAE's global threshold (0 until trained)

  batchtopk_rule(const dictionary::basic_sae<T>& sae, const dictionary::sae_loss_options* loss, matrix<T>& constants)
      : topk_rule<T>(sae, loss, constants), threshold(sae.batch_threshold()) {}

  T select(const matrix<T>& pre, sparse_codes<T>& codes, selection_buffers<T>& b) const {
    codes.reserve(pre.rows(), pre.rows() * k, pre.cols());
    b.boundary.reserve(std::size_t(pre.size()));
    return select_batch_topk(pre, k * pre.rows(), codes, b.boundary, b.histogram);
  }
  void encode(matrix<T>& h, matrix<T>& z) const {
    h.rowwise() += Eigen::Map<const vector<T>>(bias, h.cols()).transpose();
    if (threshold > 0) {
      z = (h.array() > threshold).select(h, T(0));
      return;
    }
    sparse_codes<T> codes;
    selection_buffers<T> buffers;
    select(h, codes, buffers);
    scatter(codes, z);
  }
};

/// Calls f with a value of the rule type of architecture a (its type says which; build the rule
/// from it with `typename decltype(tag)::type`): the one place the rule is chosen.
template <class T, class F>
decltype(auto) visit_sae_rule(dictionary::sae_architecture a, F&& f) {
  switch (a) {
    case dictionary::sae_architecture::topk: return f(std::type_identity<topk_rule<T>>{});
    case dictionary::sae_architecture::batchtopk: return f(std::type_identity<batchtopk_rule<T>>{});
    case dictionary::sae_architecture::jumprelu: return f(std::type_identity<jumprelu_rule<T>>{});
    case dictionary::sae_architecture::gated: return f(std::type_identity<gated_rule<T>>{});
    case dictionary::sae_architecture::relu: break;
  }
  return f(std::type_identity<relu_rule<T>>{});
}

}  // namespace mint::detail
