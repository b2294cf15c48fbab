// Training sparse autoencoders: Adam with warm-up, decay and clipping; unit-norm
// decoder rows with the gradient projected off each row; b_dec from the geometric
// median (Weiszfeld); L1 warm-up; dead-latent tracking, AuxK and resampling
// (Bricken et al. 2023; Gao et al. 2024); batches from batches.hpp; checkpoints that
// resume bit for bit. Cost per step: the SAE's loss
// (sae.hpp) plus O(parameters) for the optimizer.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "mint/core/adam.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/random.hpp"
#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/geometric_median.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/distributed/communicator.hpp"
#include "mint/io/safetensors.hpp"

namespace mint::dictionary {

/// The trainer's knobs. Defaults follow the published recipes at small scale.
struct sae_train_options {
  index batch_size = 4096;
  std::int64_t steps = 1000;             ///< total steps (also the end of lr decay when adam.total_steps is 0)
  adam_options adam{.lr = 4e-4, .beta1 = 0.9, .beta2 = 0.999};
  sae_loss_options loss{};
  bool unit_norm_decoder = true;         ///< keep decoder rows at norm 1, projecting their gradient
  bool init_b_dec_geometric_median = true;  ///< b_dec from the first batch's geometric median
  std::int64_t l1_warmup_steps = 0;      ///< L1/L0 coefficient ramps linearly from 0 over these steps
  std::int64_t dead_after_tokens = 1'000'000;  ///< a latent silent this many rows is dead
  std::int64_t resample_every = 0;       ///< resample dead latents every this many steps (0: never)
  double resample_encoder_scale = 0.2;   ///< resampled encoder column norm, times the mean alive one
  double threshold_momentum = 0.99;      ///< BatchTopK: EMA of the smallest kept activation
  std::uint64_t seed = 0;                ///< resampling draws
  progress_callback progress{};          ///< hears step, tokens/s, loss, L0, dead fraction (rank 0's only, under a communicator)
  double progress_interval = 1.0;        ///< seconds between progress lines
  /// The batch is cut into this many equal blocks of rows; each block's loss and gradient are
  /// computed alone and the blocks' gradients added in block order, so a step's bits depend on
  /// the blocks, never on how many processes hold them. Each rank computes gradient_blocks / N
  /// blocks: a multiple of the communicator's size N, and a divisor of batch_size.
  index gradient_blocks = 1;
  /// The processes training this SAE together (docs/distributed.md); default: this one alone.
  /// Each rank steps on its own batch_size / N rows and ends every step with the same weights.
  distributed::communicator_ref communicator{};
};

/// What a step reports (means over the step's rows).
struct sae_step_stats {
  double loss = 0, reconstruction = 0, sparsity = 0, auxiliary = 0, l0 = 0;
  double dead_fraction = 0;
  double gradient_norm = 0;
};

/// Trains one SAE in place. The trainer keeps the optimizer, the step count, the rows seen
/// and each latent's rows since it last fired; save_checkpoint/load_checkpoint resume exactly.
template <class T = float>
class sae_trainer {
public:
  sae_trainer(basic_sae<T>& sae, sae_train_options options);

  /// Runs steps until options.steps, drawing batches from `source`.
  void train(batch_source& source);

  /// One step on a batch ([n, d_in] rows, n >= 1, in the data's units): under a communicator of
  /// N ranks, this rank's rows (its gradient_blocks / N blocks, in block order), n the same on
  /// every rank; every rank steps together.
  template <tensor X>
  sae_step_stats step(const X& batch) {
    const char* fn = "mint::dictionary::sae_trainer::step";
    together(fn, "batch", [&] {
      sae_.normalize_as(batch, xn_, rows_scaling_, fn, "batch");  // checks the batch: width, finite
      if (xn_.rows() == 0) throw shape_error(fn, "batch", "has 0 rows", "needs at least one row");
      (void)block_rows(fn);
    });
    distributed::check_same(options_.communicator, fn, "the batch's rows", detail::str(xn_.rows()));
    if (!initialized_) {
      std::vector<T> converted;
      initialize(detail::rows_as<T>(mint::view(batch), converted));
    }
    return step_normalized();
  }

  std::int64_t steps_done() const noexcept { return step_; }
  std::uint64_t rows_seen() const noexcept { return rows_; }
  /// 1 for each latent silent for options.dead_after_tokens rows.
  const std::vector<std::uint8_t>& dead() const noexcept { return dead_; }
  double dead_fraction() const noexcept {
    return double(std::count(dead_.begin(), dead_.end(), std::uint8_t(1))) / double(dead_.size());
  }
  const adam<T>& optimizer() const noexcept { return optimizer_; }
  const sae_train_options& options() const noexcept { return options_; }

  /// Writes the SAE, Adam's moments and the trainer's counters to a safetensors file, atomically
  /// (under a communicator: rank 0 writes, every rank returns once the file is whole).
  void save_checkpoint(const std::string& path) const;

  /// Restores what save_checkpoint wrote; the SAE's architecture and shape must match. The
  /// next train() seeks its source to the rows already seen, so the run goes on identically.
  /// Under a communicator every rank reads `path`; a rank that cannot stops them all.
  void load_checkpoint(const std::string& path);

private:
  void write_checkpoint(const std::string& path) const;
  void read_checkpoint(const std::string& path);

  // step() once the batch is normalized into xn_ (the SAE initialized from it when first).
  sae_step_stats step_normalized();

  // The helpers below are called only from the members defined outside the class, which
  // mint/src compiles once (mint/core/compiled.hpp): no user unit instantiates them.
  static std::string exact(T v) {
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, double(v), std::chars_format::hex);
    return std::string(buffer, r.ptr);
  }
  static double parse_double(const std::string& s, const char* fn, const std::string& path) {
    double v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::hex);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size())
      throw format_error(fn, "file '" + path + "'", "has the number '" + s + "'", "needs a hexadecimal float");
    return v;
  }
  template <class I>
  static I parse_integer(const std::string& s, const char* fn, const std::string& path) {
    I v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size())
      throw format_error(fn, "file '" + path + "'", "has the count '" + s + "'", "needs a non-negative integer");
    return v;
  }

  // First batch: the scaling factor (E||x||^2 = d_in) and b_dec at the geometric median.
  void initialize(const tensor_view<const T>& batch);

  // Runs f; under a communicator a rank's error becomes every rank's communication_error (one
  // collective), so no rank is left waiting in the next collective. One process: f's own error.
  template <class F>
  void together(const char* fn, const char* arg, F&& f) const {
    auto comm = options_.communicator;
    if (comm.size() == 1) return f();
    std::string problem;
    try {
      f();
    } catch (const std::exception& e) {
      problem = e.what();
    }
    distributed::agree(comm, fn, arg, problem);
  }

  // What every rank of a group must share: the SAE's options, every option that shapes a step,
  // the counters and the weights (a hash of their bytes).
  std::string group_state() const;

  // Blocks this rank computes, and the rows in each of its batch's blocks.
  index local_blocks() const { return options_.gradient_blocks / options_.communicator.size(); }
  index block_rows(const char* fn) const {
    const index q = local_blocks();
    if (xn_.rows() % q != 0)
      throw shape_error(fn, "batch", detail::str("has ", xn_.rows(), " rows"),
                        detail::str("needs a multiple of the ", q, " gradient blocks this rank computes"));
    return xn_.rows() / q;
  }

  // The group's batch (rank order is block order), in an Eigen matrix: aligned as on every rank.
  matrix<T> group_rows() const {
    auto comm = options_.communicator;
    if (comm.size() == 1) return xn_;
    matrix<T> all(xn_.rows() * comm.size(), xn_.cols());
    comm.all_gather(std::span<const T>(xn_.data(), std::size_t(xn_.size())), std::span<T>(all.data(), std::size_t(all.size())));
    return all;
  }

  // The group's values, q per rank in block order, folded left to right (the same bits everywhere).
  std::vector<double> all_blocks(const std::vector<double>& mine) const {
    return distributed::gathered(options_.communicator, std::span<const double>(mine));
  }

  // Removes from each decoder row's gradient its component along the (unit) row.
  void project_decoder_gradient() {
    const auto dec = sae_.W_dec();
    auto& e = gradient_.find("W_dec");
    Eigen::Map<matrix<T>> g(gradient_.flat().data() + e.offset, e.extents[0], e.extents[1]);
    for (index j = 0; j < g.rows(); ++j) {
      const T norm2 = dec.row(j).squaredNorm();
      if (norm2 > 0) g.row(j) -= (g.row(j).dot(dec.row(j)) / norm2) * dec.row(j);
    }
  }

  void after_update(T batch_threshold) {
    if (options_.unit_norm_decoder) {
      auto dec = sae_.W_dec();
      for (index j = 0; j < dec.rows(); ++j) {
        const T norm = dec.row(j).norm();
        if (norm > 0) dec.row(j) /= norm;
      }
    }
    if (sae_.architecture() == sae_architecture::jumprelu) sae_.threshold() = sae_.threshold().cwiseMax(T(0));
    if (sae_.architecture() == sae_architecture::batchtopk && batch_threshold > 0) {
      const T t = batch_threshold, old = sae_.batch_threshold();
      const T m = T(options_.threshold_momentum);
      sae_.set_batch_threshold(old > 0 ? m * old + (1 - m) * t : t);
    }
  }

  void track_dead(index rows) {
    for (std::size_t j = 0; j < silent_rows_.size(); ++j) {
      silent_rows_[j] = fires_[j] > 0 ? 0 : silent_rows_[j] + rows;
      dead_[j] = silent_rows_[j] >= options_.dead_after_tokens;
    }
  }

  // Anthropic (2023): each dead latent's decoder row becomes a high-loss input (drawn with
  // probability proportional to its squared loss), its encoder column the same direction at
  // resample_encoder_scale times the mean alive encoder norm, its bias 0, its Adam state 0.
  // The group's rows (rank order is block order) and their weights, the same on every rank.
  void resample() {
    std::vector<index> dead;
    for (std::size_t j = 0; j < dead_.size(); ++j)
      if (dead_[j]) dead.push_back(index(j));
    if (dead.empty()) return;
    mint::rng r(options_.seed, std::uint64_t(step_));
    const std::vector<double> weight = all_blocks(row_loss_);
    const matrix<T> x = group_rows();
    double total = 0;
    for (const double w : weight) total += w;
    auto enc = sae_.W_enc();
    auto dec = sae_.W_dec();
    double alive_norm = 0;
    index alive = 0;
    for (index j = 0; j < sae_.d_sae(); ++j)
      if (!dead_[std::size_t(j)]) {
        alive_norm += double(enc.col(j).norm());
        ++alive;
      }
    const T scale = T(options_.resample_encoder_scale * (alive > 0 ? alive_norm / double(alive) : 1.0));
    const bool gated = sae_.gated();
    for (index j : dead) {
      index pick = 0;
      double u = r.uniform() * total;
      if (total > 0) {
        while (pick + 1 < x.rows() && u >= weight[std::size_t(pick)]) u -= weight[std::size_t(pick++)];
      } else {
        pick = index(r.below(std::uint64_t(x.rows())));
      }
      vector<T> dir = x.row(pick).transpose();
      if (sae_.options().apply_b_dec_to_input) dir -= sae_.b_dec();
      const T norm = dir.norm();
      if (!(norm > 0)) continue;
      dir /= norm;
      dec.row(j) = dir.transpose();
      enc.col(j) = scale * dir;
      sae_.b_enc()(j) = 0;
      if (gated) sae_.b_mag()(j) = 0, sae_.r_mag()(j) = 0;
      reset_moments(j);
      silent_rows_[std::size_t(j)] = 0;
      dead_[std::size_t(j)] = 0;
    }
  }

  void reset_moments(index j) {
    auto m = optimizer_.first_moment(), v = optimizer_.second_moment();
    for (const index p : sae_.latent_slots(j)) m[std::size_t(p)] = 0, v[std::size_t(p)] = 0;
  }

  basic_sae<T>& sae_;
  sae_train_options options_;
  adam<T> optimizer_;
  parameter_store<T> gradient_;
  std::vector<parameter_store<T>> block_gradients_;  // blocks 1.. of this rank (block 0: gradient_)
  sae_workspace<T> ws_;
  matrixf batch_;
  matrix<T> xn_, block_;
  std::vector<double> fires_, row_loss_;  // the step's firings (the group's), this rank's rows' resampling weights
  row_scaling<T> rows_scaling_;
  std::vector<std::int64_t> silent_rows_;
  std::vector<std::uint8_t> dead_;
  std::int64_t step_ = 0;
  std::uint64_t rows_ = 0;
  bool initialized_ = false;
  bool needs_seek_ = false;
};

#if MINT_CORE_BODIES
template <class T>
std::string sae_trainer<T>::group_state() const {
  const auto& so = sae_.options();
  const auto& o = options_;
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a over the parameters' bytes
  for (const std::byte b : std::as_bytes(sae_.parameters().flat())) hash = (hash ^ std::uint64_t(b)) * 1099511628211ull;
  std::ostringstream out;
  out << std::hexfloat << to_string(so.architecture) << ' ' << so.d_in << 'x' << so.d_sae << " k " << so.k << " b_dec_in "
      << so.apply_b_dec_to_input << " normalize " << int(so.normalize_activations) << " batch " << o.batch_size << " steps "
      << o.steps << " blocks " << o.gradient_blocks << " adam " << o.adam.lr << ',' << o.adam.beta1 << ',' << o.adam.beta2 << ','
      << o.adam.epsilon << ',' << o.adam.weight_decay << ',' << o.adam.clip_norm << ',' << o.adam.warmup << ','
      << int(o.adam.decay) << ',' << o.adam.total_steps << " loss " << o.loss.l1_coefficient << ',' << o.loss.l0_coefficient
      << ',' << o.loss.penalty_uses_decoder_norm << ',' << o.loss.decoder_norm_blocks << ',' << o.loss.bandwidth << ','
      << o.loss.auxk_coefficient << ',' << o.loss.k_aux << ',' << o.loss.sparse_density << " unit_norm "
      << o.unit_norm_decoder << " median " << o.init_b_dec_geometric_median << " l1_warmup " << o.l1_warmup_steps
      << " dead_after " << o.dead_after_tokens << " resample " << o.resample_every << ',' << o.resample_encoder_scale
      << " momentum " << o.threshold_momentum << " seed " << o.seed << " step " << step_ << " rows " << rows_
      << " scaling " << double(sae_.scaling_factor()) << " weights " << std::hex << hash;
  return out.str();
}

template <class T>
sae_trainer<T>::sae_trainer(basic_sae<T>& sae, sae_train_options options) : sae_(sae), options_(std::move(options)) {
  const char* fn = "mint::dictionary::sae_trainer";
  if (options_.batch_size < 1) throw argument_error(fn, "options.batch_size", detail::str("is ", options_.batch_size), "needs >= 1");
  if (options_.steps < 1) throw argument_error(fn, "options.steps", detail::str("is ", options_.steps), "needs >= 1");
  if (options_.dead_after_tokens < 1)
    throw argument_error(fn, "options.dead_after_tokens", detail::str("is ", options_.dead_after_tokens), "needs >= 1");
  if (options_.loss.decoder_norm_blocks < 1 || sae.d_in() % options_.loss.decoder_norm_blocks != 0)
    throw argument_error(fn, "options.loss.decoder_norm_blocks", detail::str("is ", options_.loss.decoder_norm_blocks),
                         detail::str("needs >= 1 and a divisor of d_in = ", sae.d_in()));
  if (options_.adam.decay != lr_decay::none && options_.adam.total_steps == 0) options_.adam.total_steps = options_.steps;
  optimizer_ = adam<T>(std::size_t(sae.parameters().size()), options_.adam);
  gradient_ = sae.parameters().zeros_like();
  silent_rows_.assign(std::size_t(sae.d_sae()), 0);
  dead_.assign(std::size_t(sae.d_sae()), 0);
  const index ranks = options_.communicator.size(), blocks = options_.gradient_blocks;
  // Every rank the same SAE, options and starting weights (else they would drift apart silently).
  distributed::check_same(options_.communicator, fn, "options and sae", group_state());
  if (blocks < 1 || blocks % ranks != 0 || options_.batch_size % blocks != 0)
    throw argument_error(fn, "options.gradient_blocks", detail::str("is ", blocks),
                         detail::str("needs >= 1, a multiple of the communicator's ", ranks, " ranks and a divisor of batch_size = ",
                                     options_.batch_size));
  for (index b = 1; b < blocks / ranks; ++b) block_gradients_.push_back(sae.parameters().zeros_like());
  batch_.resize(options_.batch_size / ranks, sae.d_in());
}

template <class T>
void sae_trainer<T>::train(batch_source& source) {
  const char* fn = "mint::dictionary::sae_trainer::train";
  if (needs_seek_) {
    together(fn, "source", [&] {
      if (!source.seek) throw argument_error(fn, "source", "cannot seek", "needs a source with seek to resume from a checkpoint");
      source.seek(rows_);
    });
    needs_seek_ = false;
  }
  // Under a communicator, rank 0 reports for the group (every rank has the same statistics).
  progress_reporter reporter(options_.communicator.rank() == 0 ? options_.progress : progress_callback{},
                             std::string("train ") + std::string(to_string(sae_.architecture())),
                             options_.steps, options_.progress_interval);
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t first = step_;
  while (step_ < options_.steps) {
    together(fn, "source", [&] {
      const index got = source.next(tensor_view<float>(batch_.data(), {batch_.rows(), batch_.cols()}));
      if (got != batch_.rows()) throw argument_error(fn, "source", detail::str("filled ", got, " rows"), detail::str("needs ", batch_.rows(), " per batch"));
    });
    const auto stats = step(batch_);
    if (reporter.active()) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double tokens_per_second = seconds > 0 ? double(step_ - first) * double(options_.batch_size) / seconds : 0.0;
      reporter.report(step_, {{"tokens/s", tokens_per_second}, {"loss", stats.loss}, {"l0", stats.l0},
                              {"dead", stats.dead_fraction}});
    }
  }
}

template <class T>
void sae_trainer<T>::save_checkpoint(const std::string& path) const {
  auto comm = options_.communicator;
  if (comm.rank() != 0) {
    distributed::agree(comm, "mint::dictionary::sae_trainer::save_checkpoint", "path", "");
    return;
  }
  std::string problem;
  try {
    write_checkpoint(path);
  } catch (const std::exception& e) {
    if (comm.size() == 1) throw;
    problem = e.what();
  }
  distributed::agree(comm, "mint::dictionary::sae_trainer::save_checkpoint", "path", problem);
}

template <class T>
void sae_trainer<T>::write_checkpoint(const std::string& path) const {
  std::vector<std::pair<std::string, array_ref>> tensors;
  for (const auto& e : sae_.parameters().entries())
    tensors.emplace_back(e.name, array_ref(dtype_of<T>, shape_t(e.extents.begin(), e.extents.end()),
                                           sae_.parameters().flat().data() + e.offset));
  const auto n = index(optimizer_.first_moment().size());
  tensors.emplace_back("optimizer.m", array_ref(dtype::float64, {n}, optimizer_.first_moment().data()));
  tensors.emplace_back("optimizer.v", array_ref(dtype::float64, {n}, optimizer_.second_moment().data()));
  tensors.emplace_back("trainer.silent_rows", array_ref(dtype::int64, {index(silent_rows_.size())}, silent_rows_.data()));
  write_safetensors(path, tensors,
                    {{"mint.sae.architecture", std::string(to_string(sae_.architecture()))},
                     {"mint.sae.shape", detail::str(sae_.d_in(), "x", sae_.d_sae())},
                     {"mint.trainer.step", std::to_string(step_)},
                     {"mint.trainer.rows", std::to_string(rows_)},
                     {"mint.trainer.initialized", initialized_ ? "1" : "0"},
                     {"mint.trainer.gradient_blocks", std::to_string(options_.gradient_blocks)},
                     {"mint.sae.scaling_factor", exact(sae_.scaling_factor())},
                     {"mint.sae.batch_threshold", exact(sae_.batch_threshold())}});
}

template <class T>
void sae_trainer<T>::load_checkpoint(const std::string& path) {
  auto comm = options_.communicator;
  if (comm.size() == 1) return read_checkpoint(path);
  together("mint::dictionary::sae_trainer::load_checkpoint", "path", [&] { read_checkpoint(path); });
  // Every rank read the same run (a stale copy of the file on one machine would split the group).
  distributed::check_same(comm, "mint::dictionary::sae_trainer::load_checkpoint", "the checkpoint read", group_state());
}

template <class T>
void sae_trainer<T>::read_checkpoint(const std::string& path) {
  const char* fn = "mint::dictionary::sae_trainer::load_checkpoint";
  const safetensors_file file(path);
  const auto& meta = file.metadata();
  auto get = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end())
      throw format_error(fn, "file '" + path + "'", std::string("has no '") + key + "' metadata",
                         "needs a file written by sae_trainer::save_checkpoint");
    return it->second;
  };
  if (get("mint.sae.architecture") != to_string(sae_.architecture()) ||
      get("mint.sae.shape") != detail::str(sae_.d_in(), "x", sae_.d_sae()))
    throw argument_error(fn, "sae", detail::str("is ", to_string(sae_.architecture()), " ", sae_.d_in(), "x", sae_.d_sae()),
                         "needs the checkpoint's " + get("mint.sae.architecture") + " " + get("mint.sae.shape"));
  // Blocks decide which rows each source skips on resume, and the bits: a run resumes with its own.
  const auto blocks_it = meta.find("mint.trainer.gradient_blocks");
  const index blocks = blocks_it == meta.end() ? 1 : parse_integer<index>(blocks_it->second, fn, path);
  if (blocks != options_.gradient_blocks)
    throw argument_error(fn, "options.gradient_blocks", detail::str("is ", options_.gradient_blocks),
                         detail::str("needs the checkpoint's ", blocks));
  auto read_into = [&](const std::string& name, auto span) {
    using V = std::remove_cv_t<typename decltype(span)::element_type>;
    if (!file.contains(name)) throw format_error(fn, "file '" + path + "'", "has no '" + name + "'", "needs every tensor of a checkpoint");
    const auto a = file.read<V>(name);
    if (a.size() != index(span.size()))
      throw format_error(fn, "file '" + path + "'", detail::str("holds ", a.size(), " values in '", name, "'"),
                         detail::str("needs ", span.size()));
    std::copy(a.values().begin(), a.values().end(), span.begin());
  };
  for (const auto& e : sae_.parameters().entries())
    read_into(e.name, sae_.parameters().flat().subspan(std::size_t(e.offset), std::size_t(e.size)));
  read_into("optimizer.m", optimizer_.first_moment());
  read_into("optimizer.v", optimizer_.second_moment());
  read_into("trainer.silent_rows", std::span<std::int64_t>(silent_rows_));
  step_ = parse_integer<std::int64_t>(get("mint.trainer.step"), fn, path);
  rows_ = parse_integer<std::uint64_t>(get("mint.trainer.rows"), fn, path);
  initialized_ = get("mint.trainer.initialized") == "1";
  const double scaling = parse_double(get("mint.sae.scaling_factor"), fn, path);
  if (scaling > 0) sae_.set_scaling_factor(T(scaling));
  sae_.set_batch_threshold(T(parse_double(get("mint.sae.batch_threshold"), fn, path)));
  optimizer_.set_steps(step_);
  for (std::size_t j = 0; j < silent_rows_.size(); ++j) dead_[j] = silent_rows_[j] >= options_.dead_after_tokens;
  needs_seek_ = true;
}

template <class T>
sae_step_stats sae_trainer<T>::step_normalized() {
  const char* fn = "mint::dictionary::sae_trainer::step";
  auto comm = options_.communicator;
  sae_loss_options o = options_.loss;
  if (options_.l1_warmup_steps > 0) {
    const double ramp = std::min(1.0, double(step_ + 1) / double(options_.l1_warmup_steps));
    o.l1_coefficient *= ramp;
    o.l0_coefficient *= ramp;
  }
  const bool any_dead = std::any_of(dead_.begin(), dead_.end(), [](std::uint8_t f) { return f != 0; });
  const auto dead = any_dead ? std::span<const std::uint8_t>(dead_) : std::span<const std::uint8_t>();
  const bool resampling = options_.resample_every > 0 && (step_ + 1) % options_.resample_every == 0;
  // Each block alone: its gradient, firings, loss parts and (BatchTopK) threshold.
  const index q = local_blocks(), rows = block_rows(fn);
  constexpr std::size_t parts = 6;  // rows, reconstruction, sparsity, auxiliary, l0, threshold
  std::vector<double> mine(std::size_t(q) * parts);
  std::vector<std::span<const T>> blocks;
  fires_.assign(std::size_t(sae_.d_sae()), 0.0);
  row_loss_.assign(resampling ? std::size_t(xn_.rows()) : 0, 0.0);
  for (index b = 0; b < q; ++b) {
    parameter_store<T>& g = b == 0 ? gradient_ : block_gradients_[std::size_t(b - 1)];
    auto flat = g.flat();
    std::fill(flat.begin(), flat.end(), T(0));
    if (q > 1) block_ = xn_.middleRows(b * rows, rows);
    const matrix<T>& x = q > 1 ? block_ : xn_;
    const sae_loss l = sae_.loss(x, o, ws_, &g, dead);
    blocks.emplace_back(flat.data(), flat.size());
    for (std::size_t j = 0; j < fires_.size(); ++j) fires_[j] += double(ws_.fires()[j]);
    const double block_stats[parts] = {double(l.rows), l.reconstruction, l.sparsity, l.auxiliary, l.l0, double(ws_.batch_threshold())};
    std::copy(block_stats, block_stats + parts, mine.begin() + std::ptrdiff_t(std::size_t(b) * parts));
    if (resampling)
      for (index i = 0; i < rows; ++i)
        row_loss_[std::size_t(b * rows + i)] = std::pow(double((x.row(i) - ws_.reconstruction().row(i)).squaredNorm()), 2);
  }
  // The group's blocks in order: loss parts summed, the smallest positive threshold kept.
  const std::vector<double> all = all_blocks(mine);
  sae_loss l;
  double threshold = 0;
  for (std::size_t b = 0; b * parts < all.size(); ++b) {
    const double* v = &all[b * parts];
    if (v[0] != all[0])
      throw distributed::communication_error(fn, "batch", detail::str("has blocks of ", all[0], " and ", v[0], " rows across ranks"),
                                             "needs the same rows on every rank");
    l.rows += index(v[0]), l.reconstruction += v[1], l.sparsity += v[2], l.auxiliary += v[3], l.l0 += v[4];
    if (v[5] > 0) threshold = threshold > 0 ? std::min(threshold, v[5]) : v[5];
  }
  comm.allreduce_sum(std::span<double>(fires_));  // whole counts: exact in any order
  auto flat = gradient_.flat();
  distributed::ordered_block_sum<T>(comm, blocks, flat);
  const T inv = T(1) / T(l.rows);
  for (auto& g : flat) g *= inv;
  if (options_.unit_norm_decoder) project_decoder_gradient();
  sae_step_stats stats;
  stats.gradient_norm = optimizer_.step(sae_.parameters().flat(), flat);
  after_update(T(threshold));
  ++step_;
  rows_ += std::uint64_t(l.rows);
  track_dead(l.rows);
  if (resampling) resample();
  const double n = double(l.rows);
  stats.loss = l.total() / n;
  stats.reconstruction = l.reconstruction / n;
  stats.sparsity = l.sparsity / n;
  stats.auxiliary = l.auxiliary / n;
  stats.l0 = l.l0 / n;
  stats.dead_fraction = dead_fraction();
  return stats;
}

template <class T>
void sae_trainer<T>::initialize(const tensor_view<const T>& batch) {
  initialized_ = true;
  if (sae_.options().normalize_activations == normalization::expected_average_only_in) {
    // The group's mean squared norm: each block's sum, added in block order.
    const index q = local_blocks(), rows = block_rows("mint::dictionary::sae_trainer::step");
    std::vector<double> mine(std::size_t(q), 0.0);
    for (index b = 0; b < q; ++b) {
      const matrix<double> block = xn_.middleRows(b * rows, rows).template cast<double>();  // aligned alike everywhere
      mine[std::size_t(b)] = block.rowwise().squaredNorm().sum();
    }
    double sum = 0;
    for (const double v : all_blocks(mine)) sum += v;
    const double mean_sq = sum / double(xn_.rows() * options_.communicator.size()) / std::pow(double(sae_.scaling_factor()), 2);
    if (mean_sq > 0) {
      sae_.set_scaling_factor(T(std::sqrt(double(sae_.d_in()) / mean_sq)));
      sae_.normalize(batch, xn_, rows_scaling_);
    }
  }
  if (options_.init_b_dec_geometric_median) {
    // Up to 4096 of the group's rows (rank order is block order).
    const matrix<T> x = group_rows();
    sae_.b_dec() = geometric_median(x.topRows(std::min<index>(x.rows(), 4096))).template cast<T>();
  }
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_TRAIN(CORE)          \
  CORE(class mint::dictionary::sae_trainer<float>) \
  CORE(class mint::dictionary::sae_trainer<double>)
MINT_CORES_DICTIONARY_TRAIN(MINT_CORE)
