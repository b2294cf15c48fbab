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

  // d/dW_dec[j] of lambda * S_j ||W_dec[j]|| = lambda S_j W_dec[j] / ||W_dec[j]||; with B blocks of
  // the row, the same per block (the weight is the sum of the blocks' norms).
  static void add_norm_penalty_gradient(const sae_type& sae, const dictionary::sae_loss_options& o, const vector<T>& s,
                                        map dW) {
    if (!o.penalty_uses_decoder_norm) return;
    const auto dec = sae.W_dec();
    const index blocks = o.decoder_norm_blocks;
    if (blocks <= 1) {
      for (index j = 0; j < sae.d_sae(); ++j) {
        const T norm = dec.row(j).norm();
        if (norm > 0) dW.row(j) += T(o.l1_coefficient) * s(j) / norm * dec.row(j);
      }
      return;
    }
    const index width = sae.d_in() / blocks;
    for (index j = 0; j < sae.d_sae(); ++j)
      for (index b = 0; b < blocks; ++b) {
        const auto block = dec.row(j).segment(b * width, width);
        const T norm = block.norm();
        if (norm > 0) dW.row(j).segment(b * width, width) += T(o.l1_coefficient) * s(j) / norm * block;
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

  // ---- dense path: the rule's row loops, around steps every rule shares -------------------

  template <class Rule>
  static dictionary::sae_loss dense_loss(const sae_type& sae, const Rule& rule, const matrix<T>& xn,
                                         const dictionary::sae_loss_options& o, workspace& ws, parameter_store<T>* gradient) {
    constexpr bool gated = Rule::penalty == sae_penalty::l1_of_gate;
    const index n = xn.rows(), m = sae.d_sae();
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
    dictionary::sae_loss out = dense_forward(sae, xn, o, ws, Rule::penalty, weight_of(rule));
    if (!gradient) return out;
    dense_backward_products(sae, o, ws, *gradient, Rule::penalty);
    // The rule's per-latent sums, per block of rows then added in block order: blocks fixed by
    // the rows alone, so the sums (and training) are the same bits on any thread count.
    constexpr index slots = index(Rule::sums.size());
    const index blocks = (n + sum_block_rows - 1) / sum_block_rows;
    ws.sum_tally_.assign(std::size_t(blocks * slots * m), T(0));
    MINT_PARALLEL_FOR(double(n) * double(m) * 4)
    for (index b = 0; b < blocks; ++b) {
      T* sums = ws.sum_tally_.data() + std::size_t(b * slots * m);
      for (index i = b * sum_block_rows; i < std::min(n, (b + 1) * sum_block_rows); ++i)
        rule.backward_row(&ws.pre_(i, 0), &ws.code_(i, 0), gated ? &ws.gate_(i, 0) : nullptr, sums, m);
    }
    dense_backward_finish(sae, ws, *gradient, std::span<const char* const>(Rule::sums), Rule::input_sum, blocks);
    return out;
  }

  static constexpr index sum_block_rows = 64;

  // After the rule's forward loop (codes in code_, Gated's relu(pi) in gate_, firings in tally_):
  // the reconstruction, its residual, the penalty and Gated's auxiliary reconstruction.
  static dictionary::sae_loss dense_forward(const sae_type& sae, const matrix<T>& xn, const dictionary::sae_loss_options& o,
                                            workspace& ws, sae_penalty penalty, const T* weight) {
    const index n = xn.rows(), m = sae.d_sae();
    const bool gated = penalty == sae_penalty::l1_of_gate;
    dictionary::sae_loss out;
    out.rows = n;
    const int threads = int(ws.tally_.size() / std::size_t(m));
    for (int t = 0; t < threads; ++t)
      for (index j = 0; j < m; ++j) ws.fires_[std::size_t(j)] += ws.tally_[std::size_t(t) * std::size_t(m) + std::size_t(j)];
    const auto dec = sae.W_dec();
    ws.xhat_.resize(n, sae.d_in());
    fixed_order_product(ws.code_, dec, ws.xhat_);
    ws.xhat_.rowwise() += sae.b_dec().transpose();
    ws.g_ = ws.xhat_ - xn;  // r; gradient 2r
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    for (auto f : ws.fires_) out.l0 += double(f);
    if (penalty == sae_penalty::l0) {
      out.sparsity = o.l0_coefficient * out.l0;
    } else {
      ws.sums_ = (gated ? ws.gate_ : ws.code_).colwise().sum().transpose();
      out.sparsity = o.l1_coefficient * double(ws.sums_.dot(const_vmap(weight, m)));
    }
    if (gated) {
      ws.aux_.resize(n, sae.d_in());
      fixed_order_product(ws.gate_, dec, ws.aux_);
      ws.aux_.rowwise() += sae.b_dec().transpose();
      ws.aux_ -= xn;
      out.auxiliary = double(ws.aux_.squaredNorm());
      ws.aux_ *= T(2);
    }
    return out;
  }

  // The decoder's gradient, then dz = 2r W_dec^T into code_ (and the gate's gradient into gate_).
  static void dense_backward_products(const sae_type& sae, const dictionary::sae_loss_options& o, workspace& ws,
                                      parameter_store<T>& gradient, sae_penalty penalty) {
    const auto dec = sae.W_dec();
    auto dW_dec = grad_mat(gradient, "W_dec");
    fixed_order_product(ws.code_.transpose(), ws.g_, dW_dec, true);
    if (penalty == sae_penalty::l1_of_code || penalty == sae_penalty::l1_of_gate) add_norm_penalty_gradient(sae, o, ws.sums_, dW_dec);
    grad_vec(gradient, "b_dec") += ws.g_.colwise().sum().transpose();
    fixed_order_product(ws.g_, dec.transpose(), ws.code_);
    if (penalty == sae_penalty::l1_of_gate) fixed_order_product(ws.aux_, dec.transpose(), ws.gate_);
  }

  // After the rule's backward loop (dL/dh in code_, its per-latent sums per block in sum_tally_):
  // the encoder's gradient and each sum added to the parameter it belongs to.
  static void dense_backward_finish(const sae_type& sae, workspace& ws, parameter_store<T>& gradient,
                                    std::span<const char* const> sums, index input_sum, index blocks) {
    const index m = sae.d_sae(), slots = index(sums.size());
    ws.reduced_.setZero(slots, m);
    for (index b = 0; b < blocks; ++b)
      ws.reduced_ += Eigen::Map<const matrix<T>>(ws.sum_tally_.data() + std::size_t(b * slots * m), slots, m);
    fixed_order_product(ws.xc_.transpose(), ws.code_, grad_mat(gradient, "W_enc"), true);
    if (sae.options().apply_b_dec_to_input)
      grad_vec(gradient, "b_dec").noalias() -= sae.W_enc() * ws.reduced_.row(input_sum).transpose();
    for (index s = 0; s < slots; ++s)
      if (sums[std::size_t(s)]) grad_vec(gradient, sums[std::size_t(s)]) += ws.reduced_.row(s).transpose();
  }

  // ---- sparse path: the rule's selection and entry gradients, around shared steps ----------

  template <class Rule>
  static dictionary::sae_loss sparse_loss(const sae_type& sae, const Rule& rule, const matrix<T>& xn,
                                          const dictionary::sae_loss_options& o, workspace& ws,
                                          parameter_store<T>* gradient, std::span<const std::uint8_t> dead) {
    constexpr bool selects_k = requires { rule.select(ws.pre_, ws.codes_, ws.select_); };
    constexpr bool jumprelu = requires(T* p) { rule.entry_gradient(index(0), T(0), T(0), p); };
    constexpr bool l1 = Rule::penalty == sae_penalty::l1_of_code;
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
    dictionary::sae_loss out = sparse_forward(sae, xn, o, ws, Rule::penalty, weight_of(rule));
    const bool aux = selects_k && auxk(sae, o, ws, dead, out);
    if (!gradient) return out;
    sparse_backward_start(ws, *gradient);
    if (jumprelu) ws.reduced_.setZero(1, sae.d_sae());  // dtheta
    auto entries = [&](sparse_codes<T>& c, bool main) {
      for (index e = 0; e < c.entries(); ++e) {
        const index j = c.latent[std::size_t(e)];
        T& dz = c.grad[std::size_t(e)];
        if constexpr (jumprelu)
          if (main) rule.entry_gradient(j, ws.pre_(c.row_of[std::size_t(e)], j), dz, &ws.reduced_(0, 0));
        if (!(c.value[std::size_t(e)] > 0))
          dz = 0;  // inactive after the selection; JumpReLU's window-only entries
        else if constexpr (l1)
          dz += rule.l1[j];
      }
    };
    sparse_backward_codes(sae, o, ws, *gradient, codes, ws.g_, l1);
    entries(codes, true);
    sparse_backward_input(ws, codes);
    if (aux) {
      sparse_backward_codes(sae, o, ws, *gradient, ws.aux_codes_, ws.aux_, false);
      entries(ws.aux_codes_, false);
      sparse_backward_input(ws, ws.aux_codes_);
    }
    if (jumprelu) grad_vec(*gradient, "threshold") += ws.reduced_.row(0).transpose();
    grad_mat(*gradient, "W_enc") += ws.scratch_.transpose();
    grad_vec(*gradient, "b_enc") += ws.sums_;
    if (sae.options().apply_b_dec_to_input) grad_vec(*gradient, "b_dec").noalias() -= sae.W_enc() * ws.sums_;
    return out;
  }

  // The L1 weight of each latent (rules with an L1 penalty), else null.
  template <class Rule>
  static const T* weight_of(const Rule& rule) {
    if constexpr (requires { rule.weight; })
      return rule.weight;
    else
      return nullptr;
  }

  // After the selection (codes_): firings, the reconstruction, its residual and the penalty.
  static dictionary::sae_loss sparse_forward(const sae_type& sae, const matrix<T>& xn, const dictionary::sae_loss_options& o,
                                             workspace& ws, sae_penalty penalty, const T* weight) {
    const auto& codes = ws.codes_;
    dictionary::sae_loss out;
    out.rows = xn.rows();
    for (index e = 0; e < codes.entries(); ++e)
      if (codes.value[std::size_t(e)] > 0) {
        ++ws.fires_[std::size_t(codes.latent[std::size_t(e)])];
        out.l0 += 1;
      }
    ws.xhat_.resize(xn.rows(), sae.d_in());
    ws.xhat_.rowwise() = sae.b_dec().transpose();
    add_decoded(codes, codes.value, sae.W_dec(), ws.xhat_);
    ws.g_ = ws.xhat_ - xn;
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    if (penalty == sae_penalty::l1_of_code) {
      double sum = 0;
      for (index e = 0; e < codes.entries(); ++e)
        sum += double(codes.value[std::size_t(e)]) * double(weight[codes.latent[std::size_t(e)]]);
      out.sparsity = o.l1_coefficient * sum;
    } else if (penalty == sae_penalty::l0) {
      out.sparsity = o.l0_coefficient * out.l0;
    }
    return out;
  }

  // AuxK (TopK, BatchTopK): the top k_aux dead latents reconstruct the residual x - x_hat (held
  // fixed), into aux_codes_ and aux_ (its gradient). False when no latent is dead.
  static bool auxk(const sae_type& sae, const dictionary::sae_loss_options& o, workspace& ws,
                   std::span<const std::uint8_t> dead, dictionary::sae_loss& out) {
    const index n = ws.g_.rows(), m = sae.d_sae(), d = sae.d_in();
    index dead_count = 0;
    for (auto f : dead) dead_count += f != 0;
    if (dead_count == 0 || !(o.auxk_coefficient > 0)) return false;
    const index k_aux = o.k_aux > 0 ? o.k_aux : std::max<index>(d / 2, 1);
    auto& aux_codes = ws.aux_codes_;
    aux_codes.reserve(n, n * std::min(k_aux, dead_count), m);
    select_topk(ws.pre_, k_aux, dead.data(), aux_codes, ws.select_.topk);
    const T aux_weight = T(o.auxk_coefficient * std::min(1.0, double(dead_count) / double(k_aux)));
    ws.aux_.resize(n, d);
    ws.aux_ = ws.g_ * T(0.5);  // e_hat - e = e_hat + (x_hat - x)
    add_decoded(aux_codes, aux_codes.value, sae.W_dec(), ws.aux_);
    out.auxiliary = double(aux_weight) * double(ws.aux_.squaredNorm());
    ws.aux_ *= T(2) * aux_weight;
    return true;
  }

  // dW_enc^T accumulates per latent in scratch [d_sae, d_in] (contiguous rows), then transposes in.
  static void sparse_backward_start(workspace& ws, parameter_store<T>& gradient) {
    grad_vec(gradient, "b_dec") += ws.g_.colwise().sum().transpose();
    ws.scratch_.setZero(ws.pre_.cols(), ws.g_.cols());
    ws.sums_.setZero(ws.pre_.cols());
  }

  // The decoder's gradient from codes c and residual gradient g, and dz of each entry into c.grad.
  static void sparse_backward_codes(const sae_type& sae, const dictionary::sae_loss_options& o, workspace& ws,
                                    parameter_store<T>& gradient, sparse_codes<T>& c, const matrix<T>& g, bool l1) {
    const index m = sae.d_sae();
    auto dW_dec = grad_mat(gradient, "W_dec");
    c.group_by_latent(m);
    c.index_rows();
    ws.latent_z_.setZero(m);  // per latent: the sum of z (the L1 penalty's decoder-norm gradient)
    add_outer(c, c.value, g, dW_dec, ws.latent_z_.data());
    dot_entries(c, g, sae.W_dec(), c.grad);
    if (l1) add_norm_penalty_gradient(sae, o, ws.latent_z_, dW_dec);
  }

  // dW_enc^T and db_enc from the entries' dL/dpre.
  static void sparse_backward_input(workspace& ws, const sparse_codes<T>& c) { add_outer(c, c.grad, ws.xc_, ws.scratch_, ws.sums_.data()); }
};

}  // namespace mint::detail
