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
#include "mint/core/memory.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/products.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/detail/sae_loss.hpp"
#include "mint/dictionary/detail/sae_rules.hpp"
#include "mint/dictionary/detail/views.hpp"
#include "mint/dictionary/sae_options.hpp"

namespace mint::dictionary {

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
      throw argument_error("mint::dictionary::sae::set_scaling_factor", "s", detail::str("is ", s), "needs a finite s > 0");
    scaling_factor_ = s;
  }
  /// BatchTopK at inference: keep activations above this global threshold (0 until trained:
  /// encode then takes the top k x rows of the batch it is given).
  T batch_threshold() const noexcept { return batch_threshold_; }
  void set_batch_threshold(T t) { batch_threshold_ = t; }

  /// The latent codes of x ([n, d_in] or [..., d_in]) as a dense [n, d_sae] matrix. A NaN or
  /// infinity in x is a numeric_error (here and in forward, normalize and training).
  template <tensor X>
  matrix<T> encode(const X& x) const {
    matrix<T> xn;
    row_scaling<T> rows;
    normalize_as(x, xn, rows, "mint::dictionary::sae::encode", "x");
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
    normalize_as(x, xn, rows, "mint::dictionary::sae::forward", "x");
    return forward_normalized(xn, rows);
  }

  /// x scaled as options().normalize_activations says, into xn ([n, d_in]); rows keeps what decode undoes.
  template <tensor X>
  void normalize(const X& x, matrix<T>& xn, row_scaling<T>& rows) const {
    normalize_as(x, xn, rows, "mint::dictionary::sae::normalize", "x");
  }

  /// Undoes normalize() on reconstructions y (in place).
  void denormalize(matrix<T>& y, const row_scaling<T>& rows) const;
  /// Undoes normalize() on a difference of two reconstructions of the same rows (in place): the
  /// linear part of denormalize(), without the shift that cancels in the difference.
  void denormalize_difference(matrix<T>& dy, const row_scaling<T>& rows) const;

  /// Codes of already-normalized rows, by the inference rule (BatchTopK: the global threshold).
  void encode_normalized(const matrix<T>& xn, matrix<T>& z) const;

  /// The training loss of normalized rows xn ([n, d_in]) and, when `gradient` is given (a store laid
  /// out like parameters()), adds the gradient of the loss summed over rows into it. `dead` (d_sae
  /// flags) enables AuxK for TopK/BatchTopK. JumpReLU's threshold gets the straight-through
  /// pseudo-derivative: dz/dtheta = -(theta/eps) K and dH/dtheta = -(1/eps) K, with the rectangle
  /// kernel K = 1 when |pre - theta| < eps/2, else 0; H's derivative in pre is taken as 0.
  sae_loss loss(const matrix<T>& xn, const sae_loss_options& o, sae_workspace<T>& ws,
                parameter_store<T>* gradient = nullptr, std::span<const std::uint8_t> dead = {}) const;

  /// Where latent j lives in parameters(): its W_enc column, W_dec row and entry of each [d_sae]
  /// vector, as offsets into the flat store (what an optimizer resets when the latent is resampled).
  std::vector<index> latent_slots(index j) const {
    if (j < 0 || j >= options_.d_sae)
      throw argument_error("mint::dictionary::sae::latent_slots", "j", detail::str("is ", j),
                           detail::str("needs 0 <= j < d_sae = ", options_.d_sae));
    const index d = options_.d_in, m = options_.d_sae;
    std::vector<index> slots;
    const index enc = params_.find("W_enc").offset, dec = params_.find("W_dec").offset;
    for (index i = 0; i < d; ++i) slots.push_back(enc + i * m + j);
    for (index i = 0; i < d; ++i) slots.push_back(dec + j * d + i);
    detail::visit_sae_rule<T>(options_.architecture, [&](auto tag) {
      const auto& layout = decltype(tag)::type::layout;
      for (const auto& names : {std::span<const char* const>(layout.encoder), std::span<const char* const>(layout.after_decoder)})
        for (const char* name : names)
          if (name) slots.push_back(params_.find(name).offset + j);
    });
    return slots;
  }

  bool gated() const noexcept { return options_.architecture == sae_architecture::gated; }
  bool uses_k() const noexcept {
    return options_.architecture == sae_architecture::topk || options_.architecture == sae_architecture::batchtopk;
  }

private:
  template <class>
  friend class sae_trainer;

  // normalize(), naming the function and argument its errors report.
  template <tensor X>
  void normalize_as(const X& x, matrix<T>& xn, row_scaling<T>& rows, const char* fn, const char* arg) const {
    const auto xv = mint::view(x);
    check_columns(xv, options_.d_in, fn, arg, "d_in");
    std::vector<T> converted;
    normalize_rows(detail::rows_as<T>(xv, converted), xn, rows, fn, arg);
  }

  // W_enc, the rule's encoder vectors, W_dec, b_dec, the rule's other vectors: SAELens's order.
  void declare_parameters() {
    const index d = options_.d_in, m = options_.d_sae;
    detail::visit_sae_rule<T>(options_.architecture, [&](auto tag) {
      const auto& layout = decltype(tag)::type::layout;
      params_.add("W_enc", {d, m});
      for (const char* name : layout.encoder)
        if (name) params_.add(name, {m});
      params_.add("W_dec", {m, d});
      params_.add("b_dec", {d});
      for (const char* name : layout.after_decoder)
        if (name) params_.add(name, {m});
    });
  }

  // The work of the templates above on rows already read as T ([n, d], ranks merged).
  void normalize_rows(const tensor_view<const T>& x, matrix<T>& xn, row_scaling<T>& rows, const char* fn,
                      const char* arg) const;
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
  template <class V>
  static void check_columns(const V& v, index want, const char* fn, const char* arg, const char* what) {
    if (v.rank() < 2 && !(v.rank() == 1 && v.extent(0) == want))
      throw shape_error(fn, arg, detail::str("has rank ", v.rank()), detail::str("needs rows of ", what, " = ", want));
    if (v.extent(v.rank() - 1) != want)
      throw shape_error(fn, arg, detail::str("has rows of ", v.extent(v.rank() - 1), " values"),
                        detail::str("needs ", what, " = ", want));
  }

  // The helpers below are called only from the members defined outside the class, which
  // mint/src compiles once (mint/core/compiled.hpp): no user unit instantiates them.
  template <class M>
  auto input_of(const M& xn) const {
    // x - b_dec when apply_b_dec_to_input, else x (an expression either way).
    const T on = options_.apply_b_dec_to_input ? T(1) : T(0);
    return (xn.rowwise() - on * b_dec().transpose());
  }

  sae_options options_{};
  parameter_store<T> params_;
  T scaling_factor_ = 1;
  T batch_threshold_ = 0;
};

#if MINT_CORE_BODIES
template <class T>
basic_sae<T>::basic_sae(const sae_options& options, std::uint64_t seed) : options_(options) {
  const char* fn = "mint::dictionary::sae";
  if (options.d_in < 1 || options.d_sae < 1)
    throw argument_error(fn, "options", detail::str("has d_in ", options.d_in, " and d_sae ", options.d_sae),
                         "needs both >= 1");
  if (uses_k() && (options.k < 1 || options.k > options.d_sae))
    throw argument_error(fn, "options.k", detail::str("is ", options.k), detail::str("needs 1 <= k <= d_sae = ", options.d_sae));
  if (!(options.initial_threshold >= 0))
    throw argument_error(fn, "options.initial_threshold", detail::str("is ", options.initial_threshold), "needs >= 0");
  if (!(options.decoder_init_norm > 0))
    throw argument_error(fn, "options.decoder_init_norm", detail::str("is ", options.decoder_init_norm), "needs > 0");
  const index d = options.d_in, m = options.d_sae;
  const double bytes = (2 * double(d) * double(m) + 4 * double(m) + double(d)) * sizeof(T);
  detail::allocating(fn, "options", bytes, [&] { declare_parameters(); });
  mint::rng r(seed, 0x5AE);
  auto dec = W_dec();
  r.fill_normal(params_["W_dec"]);
  for (index j = 0; j < m; ++j) dec.row(j) *= T(options.decoder_init_norm / std::max(double(dec.row(j).norm()), 1e-30));
  W_enc() = dec.transpose();
  if (options.architecture == sae_architecture::jumprelu) threshold().setConstant(T(options.initial_threshold));
}

template <class T>
void basic_sae<T>::normalize_rows(const tensor_view<const T>& x, matrix<T>& xn, row_scaling<T>& rows, const char* fn,
                                  const char* arg) const {
  xn = as_matrix(x);
  const index n = xn.rows(), d = xn.cols();
  // A NaN would pass silently into every code (TopK ranks it) and into training's b_dec.
  if (!xn.allFinite())
    for (index i = 0; i < n; ++i)
      if (!xn.row(i).allFinite())
        throw numeric_error(fn, arg, detail::str("holds a NaN or infinity in row ", i), "needs finite activations");
  switch (options_.normalize_activations) {
    case normalization::none: break;
    case normalization::expected_average_only_in: xn *= scaling_factor_; break;
    case normalization::constant_norm_rescale:
      rows.scale.resize(n);
      for (index i = 0; i < n; ++i) {
        // Each row copied to its own aligned vector: the sum's bits then do not depend on where
        // the row sits in the batch (docs/distributed.md).
        const vectord row = xn.row(i).transpose().template cast<double>();
        const double norm = row.norm();
        rows.scale(i) = norm > 0 ? T(std::sqrt(double(d)) / norm) : T(1);
        xn.row(i) *= rows.scale(i);
      }
      break;
    case normalization::layer_norm:
      rows.scale.resize(n);
      rows.shift.resize(n);
      for (index i = 0; i < n; ++i) {
        const vectord row = xn.row(i).transpose().template cast<double>();  // aligned, as above
        const double mean = row.mean();
        const double var = d > 1 ? (row.array() - mean).square().sum() / double(d - 1) : 0.0;
        rows.shift(i) = T(mean);
        rows.scale(i) = T(std::sqrt(var));
        xn.row(i) = (xn.row(i).array() - rows.shift(i)) / T(std::sqrt(var) + 1e-5);
      }
      break;
  }
}

template <class T>
void basic_sae<T>::denormalize(matrix<T>& y, const row_scaling<T>& rows) const {
  denormalize_difference(y, rows);
  // SAELens undoes layer_norm with the standard deviation alone (ln_std), not the std + 1e-5
  // divided by, then adds the mean back.
  if (options_.normalize_activations == normalization::layer_norm)
    for (index i = 0; i < y.rows(); ++i) y.row(i).array() += rows.shift(i);
}

template <class T>
void basic_sae<T>::denormalize_difference(matrix<T>& dy, const row_scaling<T>& rows) const {
  switch (options_.normalize_activations) {
    case normalization::none: break;
    case normalization::expected_average_only_in: dy /= scaling_factor_; break;
    case normalization::constant_norm_rescale:
      for (index i = 0; i < dy.rows(); ++i) dy.row(i) /= rows.scale(i);
      break;
    case normalization::layer_norm:
      for (index i = 0; i < dy.rows(); ++i) dy.row(i) *= rows.scale(i);
      break;
  }
}

template <class T>
void basic_sae<T>::encode_normalized(const matrix<T>& xn, matrix<T>& z) const {
  const matrix<T> input = input_of(xn);
  matrix<T> h(xn.rows(), options_.d_sae);
  detail::fixed_order_product(input, W_enc(), h);
  z.setZero(xn.rows(), options_.d_sae);
  matrix<T> constants;
  detail::visit_sae_rule<T>(options_.architecture, [&](auto tag) {
    const typename decltype(tag)::type rule(*this, nullptr, constants);
    rule.encode(h, z);
  });
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
    throw shape_error(fn, "xn", detail::str("has ", xn.cols(), " columns"), detail::str("needs d_in = ", options_.d_in));
  if (gradient && gradient->size() != params_.size())
    throw shape_error(fn, "gradient", detail::str("has ", gradient->size(), " values"),
                      detail::str("needs ", params_.size(), ", the layout of parameters()"));
  if (!dead.empty() && index(dead.size()) != options_.d_sae)
    throw shape_error(fn, "dead", detail::str("has ", dead.size(), " flags"), detail::str("needs d_sae = ", options_.d_sae));
  if (options_.architecture == sae_architecture::jumprelu && !(o.bandwidth > 0))
    throw argument_error(fn, "o.bandwidth", detail::str("is ", o.bandwidth), "needs > 0");
  if (o.decoder_norm_blocks < 1 || options_.d_in % o.decoder_norm_blocks != 0)
    throw argument_error(fn, "o.decoder_norm_blocks", detail::str("is ", o.decoder_norm_blocks),
                         detail::str("needs >= 1 and a divisor of d_in = ", options_.d_in));
  ws.fires_.assign(std::size_t(options_.d_sae), 0);
  if (xn.rows() == 0) return {};
  const index n = xn.rows(), m = options_.d_sae;
  ws.xc_ = input_of(xn);
  ws.pre_.resize(n, m);
  detail::fixed_order_product(ws.xc_, W_enc(), ws.pre_);  // h; pre = h + b_enc
  return detail::visit_sae_rule<T>(options_.architecture, [&](auto tag) {
    const typename decltype(tag)::type rule(*this, &o, ws.constants_);
    return detail::sae_loss_core<T>::run(*this, rule, xn, o, ws, gradient, dead);
  });
}
#endif  // MINT_CORE_BODIES

/// The float SAE.
using sae = basic_sae<float>;

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_SAE(CORE)                \
  CORE(class mint::dictionary::basic_sae<float>)       \
  CORE(class mint::dictionary::basic_sae<double>)
MINT_CORES_DICTIONARY_SAE(MINT_CORE)
