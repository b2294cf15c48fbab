// The training loss of a sparse autoencoder and its exact gradient (mint/dictionary/sae.hpp),
// over one activation rule (detail/sae_rules.hpp). Two paths: dense products throughout
// (ReLU, JumpReLU, Gated), or sparse codes after the encoder product, O(entries d) (TopK,
// BatchTopK, and ReLU/JumpReLU below sparse_density).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/products.hpp"
#include "mint/dictionary/detail/sae_rules.hpp"
#include "mint/dictionary/detail/sparse_codes.hpp"
#include "mint/dictionary/sae_options.hpp"

namespace mint::detail {

template <class T>
struct sae_loss_core {
  using sae_type = dictionary::basic_sae<T>;
  using workspace = dictionary::sae_workspace<T>;
  using map = Eigen::Map<matrix<T>>;
  using vmap = Eigen::Map<vector<T>>;
  using const_vmap = Eigen::Map<const vector<T>>;

  /// The loss of normalized rows xn; ws.xc_ (the encoder's input) and ws.pre_ = xc W_enc are set.
  template <class Rule>
  static dictionary::sae_loss run(const sae_type& sae, const Rule& rule, const matrix<T>& xn,
                                  const dictionary::sae_loss_options& o, workspace& ws, parameter_store<T>* gradient,
                                  std::span<const std::uint8_t> dead) {
    if constexpr (Rule::dense && Rule::sparse) {
      if (o.sparse_density > 0 && density(rule, ws) < o.sparse_density) return sparse_loss(sae, rule, xn, o, ws, gradient, dead);
    }
    if constexpr (Rule::dense)
      return dense_loss(sae, rule, xn, o, ws, gradient);
    else
      return sparse_loss(sae, rule, xn, o, ws, gradient, dead);
  }

private:
  static map grad_mat(parameter_store<T>& g, const char* name) {
    const auto& e = g.find(name);
    return map(g.flat().data() + e.offset, e.extents[0], e.extents[1]);
  }
  static vmap grad_vec(parameter_store<T>& g, const char* name) {
    const auto& e = g.find(name);
    return vmap(g.flat().data() + e.offset, e.extents[0]);
  }

  // d/dW_dec[j] of lambda * S_j ||W_dec[j]|| = lambda S_j W_dec[j] / ||W_dec[j]||.
  static void add_norm_penalty_gradient(const sae_type& sae, const dictionary::sae_loss_options& o, const vector<T>& s,
                                        map dW) {
    if (!o.penalty_uses_decoder_norm) return;
    const auto dec = sae.W_dec();
    for (index j = 0; j < sae.d_sae(); ++j) {
      const T norm = dec.row(j).norm();
      if (norm > 0) dW.row(j) += T(o.l1_coefficient) * s(j) / norm * dec.row(j);
    }
  }

  // The fraction of (row, latent) pairs the sparse path would select.
  template <class Rule>
  static double density(const Rule& rule, const workspace& ws) {
    const index n = ws.pre_.rows(), m = ws.pre_.cols();
    std::int64_t count = 0;
    MINT_PARALLEL_SUM(double(n) * double(m), count)
    for (index i = 0; i < n; ++i) {
      const T* h = &ws.pre_(i, 0);
      std::int64_t c = 0;
      for (index j = 0; j < m; ++j) c += rule.touches(j, h[j]);
      count += c;
    }
    return double(count) / (double(n) * double(m));
  }

  template <class Rule>
  static dictionary::sae_loss dense_loss(const sae_type& sae, const Rule& rule, const matrix<T>& xn,
                                         const dictionary::sae_loss_options& o, workspace& ws, parameter_store<T>* gradient) {
    constexpr bool gated = Rule::penalty == sae_penalty::l1_of_gate;
    constexpr bool l1 = Rule::penalty == sae_penalty::l1_of_code || gated;
    const index n = xn.rows(), m = sae.d_sae();
    dictionary::sae_loss out;
    out.rows = n;
    const auto dec = sae.W_dec();
    ws.code_.resize(n, m);
    if (gated) ws.gate_.resize(n, m);
    // Rows split across threads; each thread counts firings in its own slice of `tally_`.
    const int threads = thread_count();
    ws.tally_.assign(std::size_t(threads) * std::size_t(m), 0);
    MINT_PARALLEL_FOR(double(n) * double(m) * 4)
    for (index i = 0; i < n; ++i) {
      std::int64_t* fired = ws.tally_.data() + std::size_t(thread_index()) * std::size_t(m);
      rule.dense_row(&ws.pre_(i, 0), &ws.code_(i, 0), gated ? &ws.gate_(i, 0) : nullptr, fired, m);
    }
    for (int t = 0; t < threads; ++t)
      for (index j = 0; j < m; ++j) ws.fires_[std::size_t(j)] += ws.tally_[std::size_t(t) * std::size_t(m) + std::size_t(j)];
    ws.xhat_.resize(n, sae.d_in());
    fixed_order_product(ws.code_, dec, ws.xhat_);
    ws.xhat_.rowwise() += sae.b_dec().transpose();
    ws.g_ = ws.xhat_ - xn;  // r; gradient 2r
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    for (auto f : ws.fires_) out.l0 += double(f);
    if constexpr (Rule::penalty == sae_penalty::l0) {
      out.sparsity = o.l0_coefficient * out.l0;
    } else {
      ws.sums_ = (gated ? ws.gate_ : ws.code_).colwise().sum().transpose();
      out.sparsity = o.l1_coefficient * double(ws.sums_.dot(const_vmap(rule.weight, m)));
    }
    if constexpr (gated) {
      ws.aux_.resize(n, sae.d_in());
      fixed_order_product(ws.gate_, dec, ws.aux_);
      ws.aux_.rowwise() += sae.b_dec().transpose();
      ws.aux_ -= xn;
      out.auxiliary = double(ws.aux_.squaredNorm());
      ws.aux_ *= T(2);
    }
    if (!gradient) return out;

    auto dW_enc = grad_mat(*gradient, "W_enc");
    auto dW_dec = grad_mat(*gradient, "W_dec");
    auto db_dec = grad_vec(*gradient, "b_dec");
    fixed_order_product(ws.code_.transpose(), ws.g_, dW_dec, true);
    if (l1) add_norm_penalty_gradient(sae, o, ws.sums_, dW_dec);
    db_dec += ws.g_.colwise().sum().transpose();
    // dz into code_ (z is no longer needed), the gate's gradient into gate_.
    fixed_order_product(ws.g_, dec.transpose(), ws.code_);
    if (gated) fixed_order_product(ws.aux_, dec.transpose(), ws.gate_);
    // The rule's per-latent sums, per block of rows then added in block order: blocks fixed by
    // the rows alone, so the sums (and training) are the same bits on any thread count.
    constexpr index slots = index(Rule::sums.size()), block_rows = 64;
    const index blocks = (n + block_rows - 1) / block_rows;
    ws.sum_tally_.assign(std::size_t(blocks * slots * m), T(0));
    MINT_PARALLEL_FOR(double(n) * double(m) * 4)
    for (index b = 0; b < blocks; ++b) {
      T* sums = ws.sum_tally_.data() + std::size_t(b * slots * m);
      for (index i = b * block_rows; i < std::min(n, (b + 1) * block_rows); ++i)
        rule.backward_row(&ws.pre_(i, 0), &ws.code_(i, 0), gated ? &ws.gate_(i, 0) : nullptr, sums, m);
    }
    ws.reduced_.setZero(slots, m);
    for (index b = 0; b < blocks; ++b)
      ws.reduced_ += Eigen::Map<const matrix<T>>(ws.sum_tally_.data() + std::size_t(b * slots * m), slots, m);
    fixed_order_product(ws.xc_.transpose(), ws.code_, dW_enc, true);
    if (sae.options().apply_b_dec_to_input) db_dec.noalias() -= sae.W_enc() * ws.reduced_.row(Rule::input_sum).transpose();
    for (index s = 0; s < slots; ++s)
      if (Rule::sums[std::size_t(s)]) grad_vec(*gradient, Rule::sums[std::size_t(s)]) += ws.reduced_.row(s).transpose();
    return out;
  }

  template <class Rule>
  static dictionary::sae_loss sparse_loss(const sae_type& sae, const Rule& rule, const matrix<T>& xn,
                                          const dictionary::sae_loss_options& o, workspace& ws,
                                          parameter_store<T>* gradient, std::span<const std::uint8_t> dead) {
    constexpr bool selects_k = requires { rule.select(ws.pre_, ws.codes_, ws.select_); };
    constexpr bool jumprelu = requires(T* p) { rule.entry_gradient(index(0), T(0), T(0), p); };
    const index n = xn.rows(), m = sae.d_sae(), d = sae.d_in();
    dictionary::sae_loss out;
    out.rows = n;
    ws.pre_.rowwise() += sae.b_enc().transpose();
    auto& codes = ws.codes_;
    if constexpr (selects_k) {
      ws.batch_threshold_ = rule.select(ws.pre_, codes, ws.select_);
    } else {
      // The active latents, and (JumpReLU) those inside the kernel's window, kept at 0 for dtheta.
      select_where(ws.pre_, codes, ws.select_.row_counts, [&](index j, T v) { return rule.keeps(j, v); });
      for (index e = 0; e < codes.entries(); ++e) {
        T& v = codes.value[std::size_t(e)];
        if (!rule.active(codes.latent[std::size_t(e)], v)) v = 0;
      }
    }
    for (index e = 0; e < codes.entries(); ++e)
      if (codes.value[std::size_t(e)] > 0) {
        ++ws.fires_[std::size_t(codes.latent[std::size_t(e)])];
        out.l0 += 1;
      }
    const auto dec = sae.W_dec();
    ws.xhat_.resize(n, d);
    ws.xhat_.rowwise() = sae.b_dec().transpose();
    add_decoded(codes, codes.value, dec, ws.xhat_);
    ws.g_ = ws.xhat_ - xn;
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    if constexpr (Rule::penalty == sae_penalty::l1_of_code) {
      double penalty = 0;
      for (index e = 0; e < codes.entries(); ++e)
        penalty += double(codes.value[std::size_t(e)]) * double(rule.weight[codes.latent[std::size_t(e)]]);
      out.sparsity = o.l1_coefficient * penalty;
    } else if constexpr (Rule::penalty == sae_penalty::l0) {
      out.sparsity = o.l0_coefficient * out.l0;
    }

    // AuxK: the top k_aux dead latents reconstruct the residual x - x_hat (held fixed).
    index dead_count = 0;
    for (auto f : dead) dead_count += f != 0;
    const index k_aux = o.k_aux > 0 ? o.k_aux : std::max<index>(d / 2, 1);
    const bool aux = selects_k && dead_count > 0 && o.auxk_coefficient > 0;
    auto& aux_codes = ws.aux_codes_;
    T aux_weight = 0;
    if (aux) {
      aux_codes.reserve(n, n * std::min(k_aux, dead_count), m);
      select_topk(ws.pre_, k_aux, dead.data(), aux_codes, ws.select_.topk);
      aux_weight = T(o.auxk_coefficient * std::min(1.0, double(dead_count) / double(k_aux)));
      ws.aux_.resize(n, d);
      ws.aux_ = ws.g_ * T(0.5);  // e_hat - e = e_hat + (x_hat - x)
      add_decoded(aux_codes, aux_codes.value, dec, ws.aux_);
      out.auxiliary = double(aux_weight) * double(ws.aux_.squaredNorm());
      ws.aux_ *= T(2) * aux_weight;
    }
    if (!gradient) return out;

    auto dW_enc = grad_mat(*gradient, "W_enc");
    auto dW_dec = grad_mat(*gradient, "W_dec");
    auto db_dec = grad_vec(*gradient, "b_dec");
    auto db_enc = grad_vec(*gradient, "b_enc");
    db_dec += ws.g_.colwise().sum().transpose();
    // dW_enc^T accumulates per latent in scratch [d_sae, d_in] (contiguous rows), then transposes in.
    ws.scratch_.setZero(m, d);
    ws.sums_.setZero(m);
    if (jumprelu) ws.reduced_.setZero(1, m);  // dtheta
    auto backward = [&](sparse_codes<T>& c, const matrix<T>& g, bool main) {
      c.group_by_latent(m);
      c.index_rows();
      ws.latent_z_.setZero(m);  // per latent: the sum of z (the L1 penalty's decoder-norm gradient)
      add_outer(c, c.value, g, dW_dec, ws.latent_z_.data());
      dot_entries(c, g, dec, c.grad);
      if constexpr (Rule::penalty == sae_penalty::l1_of_code) add_norm_penalty_gradient(sae, o, ws.latent_z_, dW_dec);
      for (index e = 0; e < c.entries(); ++e) {
        const index j = c.latent[std::size_t(e)];
        T& dz = c.grad[std::size_t(e)];
        if constexpr (jumprelu)
          if (main) rule.entry_gradient(j, ws.pre_(c.row_of[std::size_t(e)], j), dz, &ws.reduced_(0, 0));
        if (!(c.value[std::size_t(e)] > 0))
          dz = 0;  // inactive after the selection; JumpReLU's window-only entries
        else if constexpr (Rule::penalty == sae_penalty::l1_of_code)
          dz += rule.l1[j];
      }
      add_outer(c, c.grad, ws.xc_, ws.scratch_, ws.sums_.data());
    };
    backward(codes, ws.g_, true);
    if (aux) backward(aux_codes, ws.aux_, false);
    if (jumprelu) grad_vec(*gradient, "threshold") += ws.reduced_.row(0).transpose();
    dW_enc += ws.scratch_.transpose();
    db_enc += ws.sums_;
    if (sae.options().apply_b_dec_to_input) db_dec.noalias() -= sae.W_enc() * ws.sums_;
    return out;
  }
};

}  // namespace mint::detail
