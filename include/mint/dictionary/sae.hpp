// Sparse autoencoders: one type, five activation rules (ReLU with a decoder-norm
// weighted L1, TopK with AuxK, BatchTopK, JumpReLU, Gated), parameters named and
// oriented as SAELens stores them, encode/decode/forward, and the training loss
// with its exact gradient (straight-through for JumpReLU's threshold). See
// docs/dictionary.md and REFERENCES.md. Cost per batch of n rows, d inputs, m
// latents: one n x d x m product to encode, then O(n k d) for TopK/BatchTopK or
// four more dense products for the others.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/detail/sparse_codes.hpp"
#include "mint/dictionary/detail/views.hpp"

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
  matrix<T> xc_, pre_, a_, b_, c_, xhat_, g_, ga_, scratch_;
  vector<T> sums_, sums2_, norms_, penalty_, theta_slope_, theta_cut_, db_, dx_, db_mag_;
  detail::sparse_codes<T> codes_, aux_codes_;
  std::vector<T> dots_, boundary_;
  detail::topk_scratch<T> select_scratch_;
  std::vector<index> row_counts_;
  std::vector<std::int64_t> histogram_, fires_, tally_;
  std::vector<T> sum_tally_;
  T batch_threshold_ = 0;
};

/// A sparse autoencoder over float or double. Parameters live in one flat store
/// (`parameters()`), named as SAELens names them: W_enc [d_in, d_sae], b_enc [d_sae]
/// (b_gate, b_mag, r_mag for gated instead), W_dec [d_sae, d_in], b_dec [d_in],
/// threshold [d_sae] for jumprelu. Each tensor is row-major in that orientation.
template <class T>
class basic_sae {
public:
  using map = Eigen::Map<matrix<T>>;
  using const_map = Eigen::Map<const matrix<T>>;
  using vmap = Eigen::Map<vector<T>>;
  using const_vmap = Eigen::Map<const vector<T>>;

  basic_sae() = default;

  /// A fresh SAE: random unit decoder rows (times decoder_init_norm), W_enc = W_dec^T, zero biases.
  explicit basic_sae(const sae_options& options, std::uint64_t seed = 0);

  const sae_options& options() const noexcept { return options_; }
  index d_in() const noexcept { return options_.d_in; }
  index d_sae() const noexcept { return options_.d_sae; }
  sae_architecture architecture() const noexcept { return options_.architecture; }

  /// Every parameter in one flat buffer; gradients share the layout (`parameters().zeros_like()`).
  parameter_store<T>& parameters() noexcept { return params_; }
  const parameter_store<T>& parameters() const noexcept { return params_; }

  map W_enc() { return mat("W_enc"); }
  const_map W_enc() const { return mat("W_enc"); }
  map W_dec() { return mat("W_dec"); }
  const_map W_dec() const { return mat("W_dec"); }
  vmap b_dec() { return vec("b_dec"); }
  const_vmap b_dec() const { return vec("b_dec"); }
  /// The encoder bias (b_gate for gated, where the gate path plays the encoder).
  vmap b_enc() { return vec(gated() ? "b_gate" : "b_enc"); }
  const_vmap b_enc() const { return vec(gated() ? "b_gate" : "b_enc"); }
  vmap b_gate() { return vec("b_gate"); }
  const_vmap b_gate() const { return vec("b_gate"); }
  vmap b_mag() { return vec("b_mag"); }
  const_vmap b_mag() const { return vec("b_mag"); }
  vmap r_mag() { return vec("r_mag"); }
  const_vmap r_mag() const { return vec("r_mag"); }
  vmap threshold() { return vec("threshold"); }
  const_vmap threshold() const { return vec("threshold"); }

  /// expected_average_only_in: the factor inputs are multiplied by (1 until set).
  T scaling_factor() const noexcept { return scaling_factor_; }
  void set_scaling_factor(T s) {
    if (!(s > 0) || !std::isfinite(double(s)))
      throw argument_error("mint::dictionary::sae::set_scaling_factor", "s", mint::detail::str("is ", s), "needs a finite s > 0");
    scaling_factor_ = s;
  }
  /// BatchTopK at inference: keep activations above this global threshold (0 until trained:
  /// encode then takes the top k x rows of the batch it is given).
  T batch_threshold() const noexcept { return batch_threshold_; }
  void set_batch_threshold(T t) { batch_threshold_ = t; }

  /// The latent codes of x ([n, d_in] or [..., d_in]) as a dense [n, d_sae] matrix.
  template <tensor X>
  matrix<T> encode(const X& x) const {
    matrix<T> xn;
    row_scaling<T> rows;
    normalize(x, xn, rows);
    matrix<T> z;
    encode_normalized(xn, z);
    return z;
  }

  /// z W_dec + b_dec, with the scalar normalization undone (row-wise ones need forward()).
  template <tensor Z>
  matrix<T> decode(const Z& z) const {
    const auto zv = mint::view(z);
    check_columns(zv, options_.d_sae, "mint::dictionary::sae::decode", "z", "d_sae");
    std::vector<T> converted;
    return decode_rows(detail::rows_as<T>(zv, converted));
  }

  /// The reconstruction of x, in x's units ([n, d_in]).
  template <tensor X>
  matrix<T> forward(const X& x) const {
    matrix<T> xn;
    row_scaling<T> rows;
    normalize(x, xn, rows);
    return forward_normalized(xn, rows);
  }

  /// x scaled as options().normalize_activations says, into xn ([n, d_in]); rows keeps what decode undoes.
  template <tensor X>
  void normalize(const X& x, matrix<T>& xn, row_scaling<T>& rows) const {
    const auto xv = mint::view(x);
    check_columns(xv, options_.d_in, "mint::dictionary::sae::normalize", "x", "d_in");
    std::vector<T> converted;
    normalize_rows(detail::rows_as<T>(xv, converted), xn, rows);
  }

  /// Undoes normalize() on reconstructions y (in place).
  void denormalize(matrix<T>& y, const row_scaling<T>& rows) const;

  /// Codes of already-normalized rows, by the inference rule (BatchTopK: the global threshold).
  void encode_normalized(const matrix<T>& xn, matrix<T>& z) const;

  /// The training loss of normalized rows xn ([n, d_in]) and, when `gradient` is given (a store laid
  /// out like parameters()), adds the gradient of the loss summed over rows into it. `dead` (d_sae
  /// flags) enables AuxK for TopK/BatchTopK. JumpReLU's threshold gets the straight-through
  /// pseudo-derivative: dz/dtheta = -(theta/eps) K and dH/dtheta = -(1/eps) K, with the rectangle
  /// kernel K = 1 when |pre - theta| < eps/2, else 0; H's derivative in pre is taken as 0.
  sae_loss loss(const matrix<T>& xn, const sae_loss_options& o, sae_workspace<T>& ws,
                parameter_store<T>* gradient = nullptr, std::span<const std::uint8_t> dead = {}) const;

  bool gated() const noexcept { return options_.architecture == sae_architecture::gated; }
  bool uses_k() const noexcept {
    return options_.architecture == sae_architecture::topk || options_.architecture == sae_architecture::batchtopk;
  }

private:
  // The work of the templates above on rows already read as T ([n, d], ranks merged).
  void normalize_rows(const tensor_view<const T>& x, matrix<T>& xn, row_scaling<T>& rows) const;
  matrix<T> decode_rows(const tensor_view<const T>& z) const;
  matrix<T> forward_normalized(const matrix<T>& xn, const row_scaling<T>& rows) const;

  map mat(const char* name) {
    const auto& e = params_.find(name);
    return map(params_.flat().data() + e.offset, e.extents[0], e.extents[1]);
  }
  const_map mat(const char* name) const {
    const auto& e = params_.find(name);
    return const_map(params_.flat().data() + e.offset, e.extents[0], e.extents[1]);
  }
  vmap vec(const char* name) {
    const auto& e = params_.find(name);
    return vmap(params_.flat().data() + e.offset, e.extents[0]);
  }
  const_vmap vec(const char* name) const {
    const auto& e = params_.find(name);
    return const_vmap(params_.flat().data() + e.offset, e.extents[0]);
  }
  static map grad_mat(parameter_store<T>& g, const char* name) {
    const auto& e = g.find(name);
    return map(g.flat().data() + e.offset, e.extents[0], e.extents[1]);
  }
  static vmap grad_vec(parameter_store<T>& g, const char* name) {
    const auto& e = g.find(name);
    return vmap(g.flat().data() + e.offset, e.extents[0]);
  }

  template <class V>
  static void check_columns(const V& v, index want, const char* fn, const char* arg, const char* what) {
    if (v.rank() < 2 && !(v.rank() == 1 && v.extent(0) == want))
      throw shape_error(fn, arg, mint::detail::str("has rank ", v.rank()), mint::detail::str("needs rows of ", what, " = ", want));
    if (v.extent(v.rank() - 1) != want)
      throw shape_error(fn, arg, mint::detail::str("has rows of ", v.extent(v.rank() - 1), " values"),
                        mint::detail::str("needs ", what, " = ", want));
  }

  // The helpers below are called only from the members defined outside the class, which
  // mint/src compiles once (mint/core/compiled.hpp): no user unit instantiates them.
  template <class M>
  auto input_of(const M& xn) const {
    // x - b_dec when apply_b_dec_to_input, else x (an expression either way).
    const T on = options_.apply_b_dec_to_input ? T(1) : T(0);
    return (xn.rowwise() - on * b_dec().transpose());
  }

  static void scatter(const detail::sparse_codes<T>& codes, matrix<T>& z) {
    for (index i = 0; i < codes.rows(); ++i)
      for (index e = codes.start[std::size_t(i)]; e < codes.start[std::size_t(i + 1)]; ++e)
        z(i, codes.latent[std::size_t(e)]) = codes.value[std::size_t(e)];
  }

  // Decoder row norms and the per-latent weight of the L1 penalty.
  void penalty_weights(const sae_loss_options& o, sae_workspace<T>& ws) const {
    ws.norms_ = W_dec().rowwise().norm();
    if (!o.penalty_uses_decoder_norm) ws.norms_.setOnes();
  }

  // d/dW_dec[j] of lambda * S_j ||W_dec[j]|| = lambda S_j W_dec[j] / ||W_dec[j]||.
  void add_norm_penalty_gradient(const sae_loss_options& o, const vector<T>& s, map dW) const {
    if (!o.penalty_uses_decoder_norm) return;
    const auto dec = W_dec();
    for (index j = 0; j < options_.d_sae; ++j) {
      const T norm = dec.row(j).norm();
      if (norm > 0) dW.row(j) += T(o.l1_coefficient) * s(j) / norm * dec.row(j);
    }
  }

  // The fraction of (row, latent) pairs a ReLU/JumpReLU code would touch (pre = h + b_enc).
  double density(const sae_loss_options& o, const sae_workspace<T>& ws) const {
    const index n = ws.pre_.rows(), m = ws.pre_.cols();
    const T* be = b_enc().data();
    const T* theta = options_.architecture == sae_architecture::jumprelu ? threshold().data() : nullptr;
    const T half = T(o.bandwidth) / 2;
    std::int64_t count = 0;
    MINT_PARALLEL_SUM(double(n) * double(m), count)
    for (index i = 0; i < n; ++i) {
      const T* h = &ws.pre_(i, 0);
      std::int64_t c = 0;
      if (theta) {
        for (index j = 0; j < m; ++j) c += (h[j] + be[j] > theta[j]) | (std::abs(h[j] + be[j] - theta[j]) < half);
      } else {
        for (index j = 0; j < m; ++j) c += h[j] + be[j] > T(0);
      }
      count += c;
    }
    return double(count) / (double(n) * double(m));
  }

  // ReLU, JumpReLU and Gated: dense products throughout.
  sae_loss dense_loss(const matrix<T>& xn, const sae_loss_options& o, sae_workspace<T>& ws, parameter_store<T>* gradient) const {
    const index n = xn.rows(), m = options_.d_sae;
    const auto arch = options_.architecture;
    sae_loss out;
    out.rows = n;
    const auto dec = W_dec();
    if (arch != sae_architecture::jumprelu) penalty_weights(o, ws);
    // a = z, b = relu(pi) (gated)
    ws.a_.resize(n, m);
    if (arch == sae_architecture::gated) ws.b_.resize(n, m);
    const auto benc = b_enc();
    // Per-latent constants, looked up once: theta (jumprelu), exp(r_mag) and b_mag (gated).
    const T* theta = arch == sae_architecture::jumprelu ? threshold().data() : nullptr;
    const T* bmag = gated() ? b_mag().data() : nullptr;
    if (gated()) ws.sums2_ = r_mag().array().exp();
    const T* emag = gated() ? ws.sums2_.data() : nullptr;
    // Rows split across threads; each thread counts firings in its own slice of `tally_`.
    const int threads = thread_count();
    ws.tally_.assign(std::size_t(threads) * std::size_t(m), 0);
    const T* be = benc.data();
    MINT_PARALLEL_FOR(double(n) * double(m) * 4)
    for (index i = 0; i < n; ++i) {
      std::int64_t* fired = ws.tally_.data() + std::size_t(thread_index()) * std::size_t(m);
      const T* h = &ws.pre_(i, 0);
      T* a = &ws.a_(i, 0);
      // Selects rather than branches, so these loops vectorize.
      if (arch == sae_architecture::relu) {
        for (index j = 0; j < m; ++j) {
          const T pre = h[j] + be[j];
          const bool on = pre > T(0);
          a[j] = on ? pre : T(0);
          fired[j] += on;
        }
      } else if (arch == sae_architecture::jumprelu) {
        for (index j = 0; j < m; ++j) {
          const T pre = h[j] + be[j];
          const bool on = (pre > theta[j]) & (pre > T(0));
          a[j] = on ? pre : T(0);
          fired[j] += on;
        }
      } else {
        T* g = &ws.b_(i, 0);
        for (index j = 0; j < m; ++j) {
          const T pre = h[j] + be[j], mag = emag[j] * h[j] + bmag[j];
          const T z = pre > 0 && mag > 0 ? mag : T(0);
          a[j] = z;
          g[j] = std::max(pre, T(0));
          fired[j] += z > 0;
        }
      }
    }
    for (int t = 0; t < threads; ++t)
      for (index j = 0; j < m; ++j) ws.fires_[std::size_t(j)] += ws.tally_[std::size_t(t) * std::size_t(m) + std::size_t(j)];
    ws.xhat_.resize(n, options_.d_in);
    ws.xhat_.noalias() = ws.a_ * dec;
    ws.xhat_.rowwise() += b_dec().transpose();
    ws.g_ = ws.xhat_ - xn;  // r; gradient 2r
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    for (auto f : ws.fires_) out.l0 += double(f);
    if (arch == sae_architecture::relu) {
      ws.sums_ = ws.a_.colwise().sum().transpose();
      out.sparsity = o.l1_coefficient * double(ws.sums_.dot(ws.norms_));
    } else if (arch == sae_architecture::jumprelu) {
      out.sparsity = o.l0_coefficient * out.l0;
    } else {
      ws.sums_ = ws.b_.colwise().sum().transpose();
      out.sparsity = o.l1_coefficient * double(ws.sums_.dot(ws.norms_));
      ws.ga_.resize(n, options_.d_in);
      ws.ga_.noalias() = ws.b_ * dec;
      ws.ga_.rowwise() += b_dec().transpose();
      ws.ga_ -= xn;
      out.auxiliary = double(ws.ga_.squaredNorm());
      ws.ga_ *= T(2);
    }
    if (!gradient) return out;

    auto dW_enc = grad_mat(*gradient, "W_enc");
    auto dW_dec = grad_mat(*gradient, "W_dec");
    auto db_dec = grad_vec(*gradient, "b_dec");
    dW_dec.noalias() += ws.a_.transpose() * ws.g_;
    if (arch != sae_architecture::jumprelu) add_norm_penalty_gradient(o, ws.sums_, dW_dec);
    db_dec += ws.g_.colwise().sum().transpose();
    // dz into a (z is no longer needed), dg into b.
    ws.a_.noalias() = ws.g_ * dec.transpose();
    if (arch == sae_architecture::gated) ws.b_.noalias() = ws.ga_ * dec.transpose();
    const T lambda1 = T(o.l1_coefficient), eps = T(o.bandwidth), lambda0 = T(o.l0_coefficient);
    const T* norms = ws.norms_.data();
    // Per-latent constants of the loops below: relu's d(lambda1 |W_dec_j| z_j)/dz_j; jumprelu's
    // -theta_j / eps (dL/dtheta_j per unit dz_j near the threshold) and max(theta_j, 0).
    if (arch == sae_architecture::relu) ws.penalty_ = lambda1 * ws.norms_;
    if (arch == sae_architecture::jumprelu) {
      ws.theta_slope_ = -(threshold().array() / eps).matrix();
      ws.theta_cut_ = threshold().cwiseMax(T(0));
    }
    const T* penalty = ws.penalty_.data();
    const T* theta_slope = ws.theta_slope_.data();
    const T* theta_cut = ws.theta_cut_.data();
    // Per-latent sums, per thread then added: db (b_enc or b_gate), dx (jumprelu: dtheta; gated:
    // dr_mag), db_mag, dh (dL/dh summed over rows, for b_dec's input path).
    ws.sum_tally_.assign(std::size_t(threads) * 4 * std::size_t(m), T(0));
    MINT_PARALLEL_FOR(double(n) * double(m) * 4)
    for (index i = 0; i < n; ++i) {
      T* db = ws.sum_tally_.data() + std::size_t(thread_index()) * 4 * std::size_t(m);
      T* dx = db + m;
      T* db_mag = dx + m;
      T* dh_sum = db_mag + m;
      const T* hrow = &ws.pre_(i, 0);
      T* dzrow = &ws.a_(i, 0);  // dz in, dL/dh out
      if (arch == sae_architecture::relu) {
        // A 0/1 mask times the gradient (a conditional sum would keep GCC from vectorizing).
        for (index j = 0; j < m; ++j) {
          const T on = hrow[j] + be[j] > T(0) ? T(1) : T(0);
          const T dh = on * (dzrow[j] + penalty[j]);
          db[j] += dh;
          dzrow[j] = dh;
        }
      } else if (arch == sae_architecture::jumprelu) {
        // Two passes over the row (it stays in cache), each of a form GCC vectorizes: the
        // threshold's pseudo-derivative where |pre - theta| < eps / 2 (the rectangle kernel),
        // then dz through the jump where pre > max(theta, 0).
        const T half = eps / 2, l0_rate = lambda0 / eps;
        for (index j = 0; j < m; ++j) {
          const T near = std::abs(hrow[j] + be[j] - theta[j]) < half ? T(1) : T(0);
          dx[j] += near * (theta_slope[j] * dzrow[j] - l0_rate);
        }
        for (index j = 0; j < m; ++j) {
          const T on = hrow[j] + be[j] - theta_cut[j] > T(0) ? T(1) : T(0);
          const T dh = on * dzrow[j];
          db[j] += dh;
          dzrow[j] = dh;
        }
      } else {
        const T* dgrow = &ws.b_(i, 0);
        for (index j = 0; j < m; ++j) {
          const T h = hrow[j], pre = h + be[j], e = emag[j], mag = e * h + bmag[j];
          const T dmag = pre > 0 && mag > 0 ? dzrow[j] : T(0);
          const T dpi = pre > 0 ? dgrow[j] + lambda1 * norms[j] : T(0);
          db_mag[j] += dmag;
          dx[j] += dmag * e * h;
          db[j] += dpi;
          const T dh = dmag * e + dpi;
          dh_sum[j] += dh;
          dzrow[j] = dh;
        }
      }
    }
    ws.db_.setZero(m);
    ws.dx_.setZero(m);
    ws.db_mag_.setZero(m);
    ws.sums_.setZero(m);
    for (int t = 0; t < threads; ++t) {
      const T* base = ws.sum_tally_.data() + std::size_t(t) * 4 * std::size_t(m);
      ws.db_ += const_vmap(base, m);
      ws.dx_ += const_vmap(base + m, m);
      ws.db_mag_ += const_vmap(base + 2 * m, m);
      ws.sums_ += const_vmap(base + 3 * m, m);
    }
    if (!gated()) ws.sums_ = ws.db_;
    dW_enc.noalias() += ws.xc_.transpose() * ws.a_;
    if (options_.apply_b_dec_to_input) db_dec.noalias() -= W_enc() * ws.sums_;
    if (arch == sae_architecture::gated) {
      grad_vec(*gradient, "b_gate") += ws.db_;
      grad_vec(*gradient, "b_mag") += ws.db_mag_;
      grad_vec(*gradient, "r_mag") += ws.dx_;
    } else {
      grad_vec(*gradient, "b_enc") += ws.db_;
      if (arch == sae_architecture::jumprelu) grad_vec(*gradient, "threshold") += ws.dx_;
    }
    return out;
  }

  // TopK, BatchTopK, and sparse enough ReLU/JumpReLU: after the encoder product, O(entries d).
  sae_loss sparse_loss(const matrix<T>& xn, const sae_loss_options& o, sae_workspace<T>& ws, parameter_store<T>* gradient,
                       std::span<const std::uint8_t> dead) const {
    const index n = xn.rows(), m = options_.d_sae, d = options_.d_in;
    sae_loss out;
    out.rows = n;
    const auto arch = options_.architecture;
    ws.pre_.rowwise() += b_enc().transpose();
    auto& codes = ws.codes_;
    const T eps = T(o.bandwidth);
    const T* theta = arch == sae_architecture::jumprelu ? threshold().data() : nullptr;
    if (arch == sae_architecture::topk) {
      codes.reserve(n, n * options_.k, m);
      detail::select_topk(ws.pre_, options_.k, nullptr, codes, ws.select_scratch_);
    } else if (arch == sae_architecture::batchtopk) {
      codes.reserve(n, n * options_.k, m);
      ws.boundary_.reserve(std::size_t(n * m));
      ws.batch_threshold_ = detail::select_batch_topk(ws.pre_, options_.k * n, codes, ws.boundary_, ws.histogram_);
    } else if (arch == sae_architecture::relu) {
      detail::select_where(ws.pre_, codes, ws.row_counts_, [](index, T v) { return v > T(0); });
    } else {  // jumprelu: the active latents and those inside the kernel's window (for dtheta)
      detail::select_where(ws.pre_, codes, ws.row_counts_,
                           [&](index j, T v) { return (v > theta[j] && v > T(0)) || std::abs(v - theta[j]) < eps / 2; });
      for (index e = 0; e < codes.entries(); ++e) {
        const index j = codes.latent[std::size_t(e)];
        if (!(codes.value[std::size_t(e)] > theta[j])) codes.value[std::size_t(e)] = 0;  // window only
      }
    }
    for (index e = 0; e < codes.entries(); ++e)
      if (codes.value[std::size_t(e)] > 0) {
        ++ws.fires_[std::size_t(codes.latent[std::size_t(e)])];
        out.l0 += 1;
      }
    const auto dec = W_dec();
    ws.xhat_.resize(n, d);
    ws.xhat_.rowwise() = b_dec().transpose();
    detail::add_decoded(codes, codes.value, dec, ws.xhat_);
    ws.g_ = ws.xhat_ - xn;
    out.reconstruction = double(ws.g_.squaredNorm());
    ws.g_ *= T(2);
    if (arch == sae_architecture::relu) {
      penalty_weights(o, ws);
      double penalty = 0;
      for (index e = 0; e < codes.entries(); ++e)
        penalty += double(codes.value[std::size_t(e)]) * double(ws.norms_(codes.latent[std::size_t(e)]));
      out.sparsity = o.l1_coefficient * penalty;
    } else if (arch == sae_architecture::jumprelu) {
      out.sparsity = o.l0_coefficient * out.l0;
    }

    // AuxK: the top k_aux dead latents reconstruct the residual x - x_hat (held fixed).
    index dead_count = 0;
    for (auto f : dead) dead_count += f != 0;
    const index k_aux = o.k_aux > 0 ? o.k_aux : std::max<index>(d / 2, 1);
    const bool aux = uses_k() && dead_count > 0 && o.auxk_coefficient > 0;
    auto& aux_codes = ws.aux_codes_;
    T aux_weight = 0;
    if (aux) {
      aux_codes.reserve(n, n * std::min(k_aux, dead_count), m);
      detail::select_topk(ws.pre_, k_aux, dead.data(), aux_codes, ws.select_scratch_);
      aux_weight = T(o.auxk_coefficient * std::min(1.0, double(dead_count) / double(k_aux)));
      ws.ga_.resize(n, d);
      ws.ga_ = ws.g_ * T(0.5);  // e_hat - e = e_hat + (x_hat - x)
      detail::add_decoded(aux_codes, aux_codes.value, dec, ws.ga_);
      out.auxiliary = double(aux_weight) * double(ws.ga_.squaredNorm());
      ws.ga_ *= T(2) * aux_weight;
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
    auto backward = [&](detail::sparse_codes<T>& c, const matrix<T>& g, bool main) {
      c.group_by_latent(m);
      c.index_rows();
      ws.sums2_.setZero(m);  // per latent: the sum of z (the L1 penalty's decoder-norm gradient)
      detail::add_outer(c, c.value, g, dW_dec, ws.sums2_.data());
      detail::dot_entries(c, g, dec, c.grad);
      if (main && arch == sae_architecture::relu) add_norm_penalty_gradient(o, ws.sums2_, dW_dec);
      const T lambda1 = T(o.l1_coefficient), lambda0 = T(o.l0_coefficient);
      for (index e = 0; e < c.entries(); ++e) {
        const index j = c.latent[std::size_t(e)];
        T& dz = c.grad[std::size_t(e)];
        const bool active = c.value[std::size_t(e)] > 0;
        if (main && arch == sae_architecture::jumprelu) {
          const T pre = ws.pre_(c.row_of[std::size_t(e)], j);
          if (std::abs(pre - theta[j]) < eps / 2) ws.dx_(j) += -(theta[j] / eps) * dz - lambda0 / eps;
        }
        if (!active) dz = 0;  // relu after the selection; jumprelu's window-only entries
        else if (main && arch == sae_architecture::relu) dz += lambda1 * ws.norms_(j);
      }
      detail::add_outer(c, c.grad, ws.xc_, ws.scratch_, ws.sums_.data());
    };
    ws.dx_.setZero(arch == sae_architecture::jumprelu ? m : 0);
    backward(codes, ws.g_, true);
    if (aux) backward(aux_codes, ws.ga_, false);
    if (arch == sae_architecture::jumprelu) grad_vec(*gradient, "threshold") += ws.dx_;
    dW_enc += ws.scratch_.transpose();
    db_enc += ws.sums_;
    if (options_.apply_b_dec_to_input) db_dec.noalias() -= W_enc() * ws.sums_;
    return out;
  }

  sae_options options_{};
  parameter_store<T> params_;
  T scaling_factor_ = 1;
  T batch_threshold_ = 0;
};

template <class T>
basic_sae<T>::basic_sae(const sae_options& options, std::uint64_t seed) : options_(options) {
  const char* fn = "mint::dictionary::sae";
  if (options.d_in < 1 || options.d_sae < 1)
    throw argument_error(fn, "options", mint::detail::str("has d_in ", options.d_in, " and d_sae ", options.d_sae),
                         "needs both >= 1");
  if (uses_k() && (options.k < 1 || options.k > options.d_sae))
    throw argument_error(fn, "options.k", mint::detail::str("is ", options.k), mint::detail::str("needs 1 <= k <= d_sae = ", options.d_sae));
  if (!(options.initial_threshold >= 0))
    throw argument_error(fn, "options.initial_threshold", mint::detail::str("is ", options.initial_threshold), "needs >= 0");
  if (!(options.decoder_init_norm > 0))
    throw argument_error(fn, "options.decoder_init_norm", mint::detail::str("is ", options.decoder_init_norm), "needs > 0");
  const index d = options.d_in, m = options.d_sae;
  params_.add("W_enc", {d, m});
  if (gated()) {
    params_.add("b_gate", {m});
    params_.add("b_mag", {m});
    params_.add("r_mag", {m});
  } else {
    params_.add("b_enc", {m});
  }
  params_.add("W_dec", {m, d});
  params_.add("b_dec", {d});
  if (options.architecture == sae_architecture::jumprelu) params_.add("threshold", {m});
  mint::rng r(seed, 0x5AE);
  auto dec = W_dec();
  r.fill_normal(params_["W_dec"]);
  for (index j = 0; j < m; ++j) dec.row(j) *= T(options.decoder_init_norm / std::max(double(dec.row(j).norm()), 1e-30));
  W_enc() = dec.transpose();
  if (options.architecture == sae_architecture::jumprelu) threshold().setConstant(T(options.initial_threshold));
}

template <class T>
void basic_sae<T>::normalize_rows(const tensor_view<const T>& x, matrix<T>& xn, row_scaling<T>& rows) const {
  xn = as_matrix(x);
  const index n = xn.rows(), d = xn.cols();
  switch (options_.normalize_activations) {
    case normalization::none: break;
    case normalization::expected_average_only_in: xn *= scaling_factor_; break;
    case normalization::constant_norm_rescale:
      rows.scale.resize(n);
      for (index i = 0; i < n; ++i) {
        const double norm = xn.row(i).template cast<double>().norm();
        rows.scale(i) = norm > 0 ? T(std::sqrt(double(d)) / norm) : T(1);
        xn.row(i) *= rows.scale(i);
      }
      break;
    case normalization::layer_norm:
      rows.scale.resize(n);
      rows.shift.resize(n);
      for (index i = 0; i < n; ++i) {
        const double mean = xn.row(i).template cast<double>().mean();
        const double var = d > 1 ? (xn.row(i).template cast<double>().array() - mean).square().sum() / double(d - 1) : 0.0;
        rows.shift(i) = T(mean);
        rows.scale(i) = T(std::sqrt(var));
        xn.row(i) = (xn.row(i).array() - rows.shift(i)) / T(std::sqrt(var) + 1e-5);
      }
      break;
  }
}

template <class T>
void basic_sae<T>::denormalize(matrix<T>& y, const row_scaling<T>& rows) const {
  switch (options_.normalize_activations) {
    case normalization::none: break;
    case normalization::expected_average_only_in: y /= scaling_factor_; break;
    case normalization::constant_norm_rescale:
      for (index i = 0; i < y.rows(); ++i) y.row(i) /= rows.scale(i);
      break;
    case normalization::layer_norm:
      // SAELens undoes with the standard deviation alone (ln_std), not the std + 1e-5 divided by.
      for (index i = 0; i < y.rows(); ++i) y.row(i) = y.row(i).array() * rows.scale(i) + rows.shift(i);
      break;
  }
}

template <class T>
void basic_sae<T>::encode_normalized(const matrix<T>& xn, matrix<T>& z) const {
  const index n = xn.rows(), m = options_.d_sae;
  matrix<T> h = input_of(xn) * W_enc();
  z.setZero(n, m);
  switch (options_.architecture) {
    case sae_architecture::relu: z = (h.rowwise() + b_enc().transpose()).cwiseMax(T(0)); break;
    case sae_architecture::topk: {
      h.rowwise() += b_enc().transpose();
      detail::sparse_codes<T> codes;
      detail::topk_scratch<T> scratch;
      detail::select_topk(h, options_.k, nullptr, codes, scratch);
      scatter(codes, z);
      break;
    }
    case sae_architecture::batchtopk: {
      h.rowwise() += b_enc().transpose();
      if (batch_threshold_ > 0) {
        z = (h.array() > batch_threshold_).select(h, T(0));
      } else {
        detail::sparse_codes<T> codes;
        std::vector<T> boundary;
        std::vector<std::int64_t> histogram;
        detail::select_batch_topk(h, options_.k * n, codes, boundary, histogram);
        scatter(codes, z);
      }
      break;
    }
    case sae_architecture::jumprelu: {
      h.rowwise() += b_enc().transpose();
      const T* theta = threshold().data();
      for (index i = 0; i < n; ++i)
        for (index j = 0; j < m; ++j) z(i, j) = h(i, j) > theta[j] && h(i, j) > 0 ? h(i, j) : T(0);
      break;
    }
    case sae_architecture::gated: {
      const vector<T> e = r_mag().array().exp();
      const T* gate = b_gate().data();
      const T* mag_bias = b_mag().data();
      for (index i = 0; i < n; ++i)
        for (index j = 0; j < m; ++j) {
          const T mag = e(j) * h(i, j) + mag_bias[j];
          z(i, j) = h(i, j) + gate[j] > 0 && mag > 0 ? mag : T(0);
        }
      break;
    }
  }
}

template <class T>
matrix<T> basic_sae<T>::decode_rows(const tensor_view<const T>& z) const {
  matrix<T> out = (as_matrix(z) * W_dec()).rowwise() + b_dec().transpose();
  if (options_.normalize_activations == normalization::expected_average_only_in) out /= scaling_factor_;
  return out;
}

template <class T>
matrix<T> basic_sae<T>::forward_normalized(const matrix<T>& xn, const row_scaling<T>& rows) const {
  matrix<T> z;
  encode_normalized(xn, z);
  matrix<T> out = (z * W_dec()).rowwise() + b_dec().transpose();
  denormalize(out, rows);
  return out;
}

template <class T>
sae_loss basic_sae<T>::loss(const matrix<T>& xn, const sae_loss_options& o, sae_workspace<T>& ws,
                            parameter_store<T>* gradient, std::span<const std::uint8_t> dead) const {
  const char* fn = "mint::dictionary::sae::loss";
  if (xn.cols() != options_.d_in)
    throw shape_error(fn, "xn", mint::detail::str("has ", xn.cols(), " columns"), mint::detail::str("needs d_in = ", options_.d_in));
  if (gradient && gradient->size() != params_.size())
    throw shape_error(fn, "gradient", mint::detail::str("has ", gradient->size(), " values"),
                      mint::detail::str("needs ", params_.size(), ", the layout of parameters()"));
  if (!dead.empty() && index(dead.size()) != options_.d_sae)
    throw shape_error(fn, "dead", mint::detail::str("has ", dead.size(), " flags"), mint::detail::str("needs d_sae = ", options_.d_sae));
  if (options_.architecture == sae_architecture::jumprelu && !(o.bandwidth > 0))
    throw argument_error(fn, "o.bandwidth", mint::detail::str("is ", o.bandwidth), "needs > 0");
  ws.fires_.assign(std::size_t(options_.d_sae), 0);
  if (xn.rows() == 0) return {};
  const index n = xn.rows(), m = options_.d_sae;
  ws.xc_ = input_of(xn);
  ws.pre_.resize(n, m);
  ws.pre_.noalias() = ws.xc_ * W_enc();  // h; pre = h + b_enc
  if (uses_k() || (!gated() && o.sparse_density > 0 && density(o, ws) < o.sparse_density))
    return sparse_loss(xn, o, ws, gradient, dead);
  return dense_loss(xn, o, ws, gradient);
}

/// The float SAE.
using sae = basic_sae<float>;

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_SAE(CORE)                \
  CORE(class mint::dictionary::basic_sae<float>)       \
  CORE(class mint::dictionary::basic_sae<double>)
MINT_CORES_DICTIONARY_SAE(MINT_CORE)
