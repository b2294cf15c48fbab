// Crosscoders for model diffing (Lindsey et al., Anthropic 2024): one sparse dictionary over two
// or more models' activations at the same site. The encoder reads the concatenation
// [x_1, ..., x_M], each model has its own decoder block, and the L1 weight of latent j is the sum
// of its blocks' norms. This is an SAE (mint/dictionary/sae.hpp) on the concatenated rows with
// sae_loss_options::decoder_norm_blocks = M, trained by the SAE trainer (train.hpp); this header
// adds per-model input scales, per-model decoders and the relative decoder norm that sorts
// latents into shared and model-exclusive ones. Cost: an SAE of width M d_in per step, plus one
// copy of the training rows (concatenated and scaled once); norms and classification O(d_sae M d_in).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/detail/views.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/dictionary/train.hpp"

namespace mint::diffing {

/// The shape of a crosscoder.
struct crosscoder_options {
  index d_in = 0;    ///< activation width of each model (the same for all)
  index models = 2;  ///< number of models (or checkpoints) read together, >= 2
  index d_sae = 0;   ///< latents
  /// relu (L1 on z_j sum_m ||W_dec^m[j]||), topk or batchtopk (no penalty, AuxK); others are rejected.
  dictionary::sae_architecture architecture = dictionary::sae_architecture::relu;
  index k = 32;                   ///< TopK: latents kept per row; BatchTopK: k x rows per batch
  bool normalize_inputs = true;   ///< scale each model's rows by its own factor so E||x_m||^2 = d_in
  double decoder_init_norm = 1.0; ///< norm of each initial concatenated decoder row
};

/// Latents sorted by relative decoder norm r_j (two models).
struct crosscoder_latents {
  std::vector<index> only_a;  ///< r_j < threshold
  std::vector<index> only_b;  ///< r_j > 1 - threshold
  std::vector<index> shared;  ///< the rest of the live latents
  std::vector<index> dead;    ///< zero decoder norm in both models, or dead at the end of the last train()
};

/// Counts of r_j over equal bins of [0, 1] (live latents only; r = 1 falls in the last bin).
struct norm_histogram {
  std::vector<double> edges;  ///< bins + 1 edges, 0 to 1
  std::vector<index> counts;  ///< bins counts
};

template <class T>
class basic_crosscoder;

}  // namespace mint::diffing

namespace mint::detail {

/// What basic_crosscoder does, over float or double (mint/core/compiled.hpp).
template <class T>
struct crosscoder_core {
  using crosscoder = diffing::basic_crosscoder<T>;
  /// Checks the models' rows and writes [x_1 s_1, ..., x_M s_M] into out ([n, M d_in]).
  static void concatenate(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs, const std::vector<T>& scales,
                          const char* fn, matrix<T>& out);
  /// s_m = sqrt(d_in / mean ||x_m||^2) over the first `rows` rows of each model (1 for all-zero rows).
  static std::vector<T> estimate_scales(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs, index rows,
                                        const char* fn);
  static void train(crosscoder& c, const std::vector<tensor_view<const T>>& inputs, dictionary::sae_train_options options);
  static matrix<T> encode(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs);
  static std::vector<matrix<T>> reconstruct(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs);
  static matrix<T> decoder_norms(const crosscoder& c);
  static vector<T> relative_norms(const crosscoder& c, const char* fn);
  static diffing::crosscoder_latents classify(const crosscoder& c, double threshold);
  static diffing::norm_histogram histogram(const crosscoder& c, index bins);
};

}  // namespace mint::detail

namespace mint::diffing {

/// A crosscoder over float or double: an SAE on the models' concatenated (and scaled) rows.
/// Decoder blocks are in the SAE's units, i.e. of the scaled inputs, so norms compare models
/// on an equal footing whatever their activation scales.
template <class T>
class basic_crosscoder {
public:
  basic_crosscoder() = default;

  /// A fresh crosscoder (random decoder, encoder its transpose, as dictionary::basic_sae).
  explicit basic_crosscoder(const crosscoder_options& options, std::uint64_t seed = 0)
      : options_(check(options)),
        sae_({.d_in = options.d_in * options.models, .d_sae = options.d_sae, .architecture = options.architecture,
              .k = options.k, .decoder_init_norm = options.decoder_init_norm},
             seed),
        scales_(std::size_t(options.models), T(1)) {}

  const crosscoder_options& options() const noexcept { return options_; }
  index d_in() const noexcept { return options_.d_in; }
  index models() const noexcept { return options_.models; }
  index d_sae() const noexcept { return options_.d_sae; }
  /// The underlying SAE ([M d_in] inputs, the models' blocks in order).
  const dictionary::basic_sae<T>& sae() const noexcept { return sae_; }
  dictionary::basic_sae<T>& sae() noexcept { return sae_; }

  /// Each model's input factor (1 until set or estimated).
  const std::vector<T>& scales() const noexcept { return scales_; }
  /// Sets the factors (models values, each finite and > 0); train() then keeps them.
  void set_scales(std::vector<T> s) {
    const char* fn = "mint::diffing::crosscoder::set_scales";
    if (index(s.size()) != options_.models)
      throw argument_error(fn, "s", detail::str("has ", s.size(), " values"), detail::str("needs models = ", options_.models));
    for (std::size_t m = 0; m < s.size(); ++m)
      if (!(s[m] > 0) || !std::isfinite(double(s[m])))
        throw argument_error(fn, detail::str("s[", m, "]"), detail::str("is ", s[m]), "needs a finite value > 0");
    scales_ = std::move(s);
    scales_set_ = true;
  }
  bool scales_set() const noexcept { return scales_set_; }
  /// Estimates the factors from the first `rows` rows of each model's sample and sets them.
  template <tensor X>
  void estimate_scales(const std::vector<X>& sample, index rows = 4096) {
    std::vector<std::vector<T>> storage;
    set_scales(detail::crosscoder_core<T>::estimate_scales(*this, views(sample, storage, "mint::diffing::crosscoder::estimate_scales"),
                                                           rows, "mint::diffing::crosscoder::estimate_scales"));
  }

  /// Trains on each model's rows (inputs[m] is [n, d_in]; row i of every model is the same token)
  /// with the SAE trainer, for options.steps steps from a fresh trainer. When normalize_inputs is
  /// on and no scales are set, they are estimated from the first min(n, batch_size) rows first.
  /// options.loss.decoder_norm_blocks is set to models(). The rows are concatenated once (a float
  /// copy of all of them), batches drawn in a seeded permutation per epoch (options.seed).
  template <tensor X>
  void train(const std::vector<X>& inputs, const dictionary::sae_train_options& options = {}) {
    std::vector<std::vector<T>> storage;
    detail::crosscoder_core<T>::train(*this, views(inputs, storage, "mint::diffing::crosscoder::train"), options);
  }
  /// train() for two models.
  template <tensor A, tensor B>
  void train(const A& a, const B& b, const dictionary::sae_train_options& options = {}) {
    train(std::vector<tensor_view<const value_t<const A>>>{mint::view(a), mint::view(b)}, options);
  }

  /// The codes of the models' rows, [n, d_sae].
  template <tensor X>
  matrix<T> encode(const std::vector<X>& inputs) const {
    std::vector<std::vector<T>> storage;
    return detail::crosscoder_core<T>::encode(*this, views(inputs, storage, "mint::diffing::crosscoder::encode"));
  }
  /// Each model's reconstruction of its rows, in its own units ([n, d_in] per model).
  template <tensor X>
  std::vector<matrix<T>> reconstruct(const std::vector<X>& inputs) const {
    std::vector<std::vector<T>> storage;
    return detail::crosscoder_core<T>::reconstruct(*this, views(inputs, storage, "mint::diffing::crosscoder::reconstruct"));
  }

  /// Model m's decoder, [d_sae, d_in] (row j: latent j's direction in model m's scaled space).
  matrix<T> decoder(index m) const {
    if (m < 0 || m >= options_.models)
      throw argument_error("mint::diffing::crosscoder::decoder", "m", detail::str("is ", m),
                           detail::str("needs 0 <= m < models = ", options_.models));
    return sae_.W_dec().middleCols(m * options_.d_in, options_.d_in);
  }
  /// ||W_dec^m[j]|| for every latent and model, [d_sae, models].
  matrix<T> decoder_norms() const { return detail::crosscoder_core<T>::decoder_norms(*this); }
  /// r_j = ||d_j^B|| / (||d_j^A|| + ||d_j^B||), [d_sae] (two models; 0.5 where both norms are 0).
  vector<T> relative_norms() const { return detail::crosscoder_core<T>::relative_norms(*this, "mint::diffing::crosscoder::relative_norms"); }
  /// Live latents sorted by r_j: below threshold only A, above 1 - threshold only B, else shared
  /// (two models; threshold in (0, 0.5)).
  crosscoder_latents exclusive_latents(double threshold = 0.1) const { return detail::crosscoder_core<T>::classify(*this, threshold); }
  /// Counts of the live latents' r_j in `bins` equal bins of [0, 1] (two models).
  norm_histogram relative_norm_histogram(index bins = 20) const { return detail::crosscoder_core<T>::histogram(*this, bins); }
  /// 1 for each latent the last train() left dead (silent for dead_after_tokens rows); empty before.
  const std::vector<std::uint8_t>& dead() const noexcept { return dead_; }

private:
  friend struct detail::crosscoder_core<T>;

  static const crosscoder_options& check(const crosscoder_options& o) {
    const char* fn = "mint::diffing::crosscoder";
    if (o.models < 2) throw argument_error(fn, "options.models", detail::str("is ", o.models), "needs >= 2");
    if (o.d_in < 1) throw argument_error(fn, "options.d_in", detail::str("is ", o.d_in), "needs >= 1");
    using dictionary::sae_architecture;
    if (o.architecture != sae_architecture::relu && o.architecture != sae_architecture::topk &&
        o.architecture != sae_architecture::batchtopk)
      throw argument_error(fn, "options.architecture", detail::str("is ", dictionary::to_string(o.architecture)),
                           "needs relu, topk or batchtopk");
    return o;
  }

  // The inputs as [n, d_in] views of T (copies when they hold another type); storage keeps copies.
  template <tensor X>
  std::vector<tensor_view<const T>> views(const std::vector<X>& inputs, std::vector<std::vector<T>>& storage,
                                          const char* fn) const {
    std::vector<tensor_view<const T>> out;
    storage.resize(inputs.size());
    for (std::size_t m = 0; m < inputs.size(); ++m) {
      const auto v = mint::view(inputs[m]);
      if (v.rank() != 2)
        throw shape_error(fn, detail::str("inputs[", m, "]"), detail::str("has rank ", v.rank()), "needs rank 2 [rows, d_in]");
      out.push_back(detail::view_as<T>(v, storage[m]));
    }
    return out;
  }

  crosscoder_options options_{};
  dictionary::basic_sae<T> sae_;
  std::vector<T> scales_;
  bool scales_set_ = false;
  std::vector<std::uint8_t> dead_;
};

/// The float crosscoder.
using crosscoder = basic_crosscoder<float>;

}  // namespace mint::diffing

namespace mint::detail {

#if MINT_CORE_BODIES
template <class T>
void crosscoder_core<T>::concatenate(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs,
                                     const std::vector<T>& scales, const char* fn, matrix<T>& out) {
  const index models = c.models(), d = c.d_in();
  if (index(inputs.size()) != models)
    throw argument_error(fn, "inputs", detail::str("has ", inputs.size(), " matrices"), detail::str("needs one per model, models = ", models));
  const index n = inputs[0].extent(0);
  for (index m = 0; m < models; ++m) {
    const auto& v = inputs[std::size_t(m)];
    if (v.extent(1) != d)
      throw shape_error(fn, detail::str("inputs[", m, "]"), detail::str("has rows of ", v.extent(1), " values"), detail::str("needs d_in = ", d));
    if (v.extent(0) != n)
      throw shape_error(fn, detail::str("inputs[", m, "]"), detail::str("has ", v.extent(0), " rows"),
                        detail::str("needs ", n, ", the rows of inputs[0] (row i of every model is the same token)"));
  }
  out.resize(n, models * d);
  for (index m = 0; m < models; ++m) {
    out.middleCols(m * d, d) = as_matrix(inputs[std::size_t(m)]) * scales[std::size_t(m)];
    // A NaN would pass into every code and into b_dec's geometric median.
    if (!out.middleCols(m * d, d).allFinite())
      throw numeric_error(fn, detail::str("inputs[", m, "]"), "holds a NaN or infinity", "needs finite activations");
  }
}

template <class T>
std::vector<T> crosscoder_core<T>::estimate_scales(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs, index rows,
                                                   const char* fn) {
  if (rows < 1) throw argument_error(fn, "rows", detail::str("is ", rows), "needs >= 1");
  matrix<T> x;
  std::vector<tensor_view<const T>> head;
  for (const auto& v : inputs) head.push_back(v.extent(0) > rows ? v.slice(0, rows) : v);
  concatenate(c, head, std::vector<T>(std::size_t(c.models()), T(1)), fn, x);
  if (x.rows() == 0) throw shape_error(fn, "inputs", "have 0 rows", "need at least one row");
  std::vector<T> out;
  for (index m = 0; m < c.models(); ++m) {
    const double mean_sq = x.middleCols(m * c.d_in(), c.d_in()).template cast<double>().rowwise().squaredNorm().mean();
    out.push_back(mean_sq > 0 ? T(std::sqrt(double(c.d_in()) / mean_sq)) : T(1));
  }
  return out;
}

template <class T>
void crosscoder_core<T>::train(crosscoder& c, const std::vector<tensor_view<const T>>& inputs, dictionary::sae_train_options options) {
  const char* fn = "mint::diffing::crosscoder::train";
  options.loss.decoder_norm_blocks = c.models();
  dictionary::sae_trainer<T> trainer(c.sae_, options);  // checks the options before any work
  matrix<T> x;
  concatenate(c, inputs, c.scales_, fn, x);  // checks the inputs before anything is estimated
  if (x.rows() == 0) throw shape_error(fn, "inputs", "have 0 rows", "need at least one row");
  if (c.options_.normalize_inputs && !c.scales_set_) {
    c.set_scales(estimate_scales(c, inputs, std::min(x.rows(), options.batch_size), fn));
    concatenate(c, inputs, c.scales_, fn, x);
  }
  // The trainer's batches are float rows.
  matrixf rows;
  if constexpr (std::is_same_v<T, float>)
    rows = std::move(x);
  else
    rows = x.template cast<float>();
  auto source = dictionary::matrix_batches(rows, options.seed);
  trainer.train(source);
  c.dead_ = trainer.dead();
}

template <class T>
matrix<T> crosscoder_core<T>::encode(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs) {
  matrix<T> x;
  concatenate(c, inputs, c.scales_, "mint::diffing::crosscoder::encode", x);
  return c.sae_.encode(x);
}

template <class T>
std::vector<matrix<T>> crosscoder_core<T>::reconstruct(const crosscoder& c, const std::vector<tensor_view<const T>>& inputs) {
  matrix<T> x;
  concatenate(c, inputs, c.scales_, "mint::diffing::crosscoder::reconstruct", x);
  const matrix<T> y = c.sae_.forward(x);
  std::vector<matrix<T>> out;
  for (index m = 0; m < c.models(); ++m) out.emplace_back(y.middleCols(m * c.d_in(), c.d_in()) / c.scales_[std::size_t(m)]);
  return out;
}

template <class T>
matrix<T> crosscoder_core<T>::decoder_norms(const crosscoder& c) {
  const auto dec = c.sae_.W_dec();
  matrix<T> out(c.d_sae(), c.models());
  for (index m = 0; m < c.models(); ++m) out.col(m) = dec.middleCols(m * c.d_in(), c.d_in()).rowwise().norm();
  return out;
}

template <class T>
vector<T> crosscoder_core<T>::relative_norms(const crosscoder& c, const char* fn) {
  if (c.models() != 2)
    throw argument_error(fn, "crosscoder", detail::str("has ", c.models(), " models"), "needs 2 (A and B) for a relative norm");
  const matrix<T> norms = decoder_norms(c);
  const vector<T> sum = norms.rowwise().sum();
  return (sum.array() > 0).select(norms.col(1).array() / sum.array(), T(0.5));
}

template <class T>
diffing::crosscoder_latents crosscoder_core<T>::classify(const crosscoder& c, double threshold) {
  const char* fn = "mint::diffing::crosscoder::exclusive_latents";
  if (!(threshold > 0 && threshold < 0.5))
    throw argument_error(fn, "threshold", detail::str("is ", threshold), "needs a value in (0, 0.5)");
  const vector<T> r = relative_norms(c, fn);
  const matrix<T> norms = decoder_norms(c);
  diffing::crosscoder_latents out;
  for (index j = 0; j < c.d_sae(); ++j) {
    const bool dead = norms.row(j).sum() == T(0) || (!c.dead_.empty() && c.dead_[std::size_t(j)]);
    if (dead) out.dead.push_back(j);
    else if (double(r(j)) < threshold) out.only_a.push_back(j);
    else if (double(r(j)) > 1 - threshold) out.only_b.push_back(j);
    else out.shared.push_back(j);
  }
  return out;
}

template <class T>
diffing::norm_histogram crosscoder_core<T>::histogram(const crosscoder& c, index bins) {
  const char* fn = "mint::diffing::crosscoder::relative_norm_histogram";
  if (bins < 1) throw argument_error(fn, "bins", detail::str("is ", bins), "needs >= 1");
  const vector<T> r = relative_norms(c, fn);
  const matrix<T> norms = decoder_norms(c);
  diffing::norm_histogram out;
  for (index b = 0; b <= bins; ++b) out.edges.push_back(double(b) / double(bins));
  out.counts.assign(std::size_t(bins), 0);
  for (index j = 0; j < c.d_sae(); ++j) {
    if (norms.row(j).sum() == T(0) || (!c.dead_.empty() && c.dead_[std::size_t(j)])) continue;
    const index b = std::min(bins - 1, index(double(r(j)) * double(bins)));
    ++out.counts[std::size_t(b)];
  }
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DIFFING_CROSSCODER(CORE) MINT_CORE_FD(CORE, mint::detail::crosscoder_core)
MINT_CORES_DIFFING_CROSSCODER(MINT_CORE)
