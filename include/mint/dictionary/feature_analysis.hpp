// Feature analysis for human or automatic review (as in Bricken et al. 2023 and
// Neuronpedia's feature pages): each latent's top-activating examples kept by a
// streaming top-n (a bounded heap per latent, no activations stored), its firing
// density, the tokens its decoder direction most boosts and suppresses (W_dec[j] W_U),
// and a JSON file per SAE. Cost: O(n m) per pass plus O(fires log top_n); logit
// effects O(m d vocab) in blocks; the file O(m top_n context).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/distributed/communicator.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/json.hpp"

namespace mint::dictionary {

/// Where an activation row came from: the caller's id of the example (a sequence, a
/// document) and the token's position in it.
struct example_ref {
  std::int64_t example = 0;
  std::int64_t position = 0;
  friend bool operator==(const example_ref&, const example_ref&) = default;
};

/// The refs of `sequences` sequences of `positions` tokens flattened row-major (row
/// s * positions + t is example first + s, position t): what a [batch, pos, d] cache holds.
inline std::vector<example_ref> sequence_refs(std::int64_t first, index sequences, index positions) {
  if (sequences < 0 || positions < 0)
    throw argument_error("mint::dictionary::sequence_refs", "sequences", detail::str("is ", sequences, " x ", positions),
                         "needs non-negative counts");
  std::vector<example_ref> out;
  out.reserve(std::size_t(sequences * positions));
  for (index s = 0; s < sequences; ++s)
    for (index t = 0; t < positions; ++t) out.push_back({first + s, t});
  return out;
}

/// One kept activation of a latent.
struct top_activation {
  double value = 0;     ///< the latent's activation
  example_ref where{};  ///< the row it came from
};

/// The order of top examples: larger activations first; equal ones by smaller example id,
/// then smaller position (so a pass split across collectors and merged gives the same lists).
inline bool ranks_before(const top_activation& a, const top_activation& b) noexcept {
  if (a.value != b.value) return a.value > b.value;
  return std::tie(a.where.example, a.where.position) < std::tie(b.where.example, b.where.position);
}

class feature_collector;
struct logit_effect;
struct feature_report_options;

}  // namespace mint::dictionary

namespace mint::detail {

/// The work of the functions below over float and double codes, decoders and SAEs
/// (mint/core/compiled.hpp); another element type compiles where it is used.
template <class T>
struct feature_analysis_core {
  static void add(dictionary::feature_collector& c, const tensor_view<const T>& codes, std::span<const dictionary::example_ref> refs);
  static std::vector<dictionary::logit_effect> logit_effects(const tensor_view<const T>& decoder,
                                                 const tensor_view<const T>& unembedding, index top_n);
  static nlohmann::ordered_json describe(const dictionary::basic_sae<T>& sae);
};

/// The JSON report of a collector, which has no scalar type: a core over the JSON type, so the
/// JSON code depends on a template argument and is compiled once, not in every unit that
/// includes this header (g++ instantiates what a template's non-dependent code calls).
template <class Json = nlohmann::ordered_json>
struct feature_report_core {
  static Json report(const dictionary::feature_collector& c, const dictionary::feature_report_options& o);
  static void write(const std::string& path, const dictionary::feature_collector& c, const dictionary::feature_report_options& o, int indent);
};

}  // namespace mint::detail

namespace mint::dictionary {

/// Knobs of feature_collector.
struct feature_collector_options {
  index top_n = 20;           ///< top examples kept per latent
  index histogram_bins = 0;   ///< bins of each latent's histogram of firing activations; 0: none, else even >= 2
};

/// A latent's firing activations (code > 0) in `counts.size()` equal bins over [0, top): bin i
/// holds [i top / bins, (i + 1) top / bins). `top` is the smallest power of two above every
/// activation seen (0 before any), so two passes merge exactly. Infinite activations are not counted.
struct activation_histogram {
  double top = 0;
  std::vector<std::int64_t> counts;
};

/// Streams codes ([rows, latents]) and keeps, per latent, how often it fired (code > 0),
/// the sum of its firing activations and its top_n activations with their example refs.
/// Memory O(latents top_n) whatever the number of rows.
class feature_collector {
public:
  explicit feature_collector(index latents, feature_collector_options options = {}) : options_(options), latents_(latents) {
    const char* fn = "mint::dictionary::feature_collector";
    if (latents < 1) throw argument_error(fn, "latents", detail::str("is ", latents), "needs >= 1");
    if (options.top_n < 1) throw argument_error(fn, "options.top_n", detail::str("is ", options.top_n), "needs >= 1");
    if (options.histogram_bins < 0 || options.histogram_bins % 2 != 0)
      throw argument_error(fn, "options.histogram_bins", detail::str("is ", options.histogram_bins), "needs 0 (none) or an even count >= 2");
    bins_.assign(std::size_t(latents * options.histogram_bins), 0);
    tops_.assign(std::size_t(latents), 0.0);
    heaps_.resize(std::size_t(latents * options.top_n));
    sizes_.assign(std::size_t(latents), 0);
    fires_.assign(std::size_t(latents), 0);
    sums_.assign(std::size_t(latents), 0.0);
  }

  index latents() const noexcept { return latents_; }
  index top_n() const noexcept { return options_.top_n; }
  const feature_collector_options& options() const noexcept { return options_; }
  /// Rows seen so far.
  std::int64_t rows() const noexcept { return rows_; }
  /// Rows where latent j fired (code > 0; NaN never fires).
  std::int64_t fires(index j) const { return fires_.at(std::size_t(j)); }
  /// fires(j) / rows() (0 before any row).
  double density(index j) const { return rows_ > 0 ? double(fires(j)) / double(rows_) : 0.0; }
  /// The mean activation of latent j over the rows where it fired (0 if it never did).
  double mean_activation(index j) const {
    const auto f = fires(j);
    return f > 0 ? sums_[std::size_t(j)] / double(f) : 0.0;
  }

  /// Latent j's histogram of firing activations (no counts when options.histogram_bins is 0).
  activation_histogram histogram(index j) const {
    if (j < 0 || j >= latents_)
      throw argument_error("mint::dictionary::feature_collector::histogram", "j", detail::str("is ", j),
                           detail::str("needs 0 <= j < latents = ", latents_));
    const auto* b = bins_.data() + j * options_.histogram_bins;
    return {tops_[std::size_t(j)], std::vector<std::int64_t>(b, b + options_.histogram_bins)};
  }

  /// Latent j's kept examples, best first (see ranks_before); fewer than top_n if it fired less.
  std::vector<top_activation> top(index j) const {
    if (j < 0 || j >= latents_)
      throw argument_error("mint::dictionary::feature_collector::top", "j", detail::str("is ", j),
                           detail::str("needs 0 <= j < latents = ", latents_));
    const auto* h = heap(j);
    std::vector<top_activation> out(h, h + sizes_[std::size_t(j)]);
    std::sort(out.begin(), out.end(), ranks_before);
    return out;
  }

  /// Adds a batch of codes ([rows, latents], or [..., latents]) whose rows came from `refs`.
  template <tensor Z>
  void add(const Z& codes, std::span<const dictionary::example_ref> refs) {
    detail::feature_analysis_core<value_t<const Z>>::add(*this, mint::view(codes), refs);
  }

  /// Encodes activations ([rows, d_in], or [batch, pos, d_in] as a cache holds them, rows
  /// flattened as sequence_refs numbers them) with the SAE in batches, then adds the codes.
  template <class T, tensor X>
  void add(const basic_sae<T>& sae, const X& activations, std::span<const dictionary::example_ref> refs, index batch_size = 4096) {
    const char* fn = "mint::dictionary::feature_collector::add";
    if (sae.d_sae() != latents_)
      throw shape_error(fn, "sae", detail::str("has d_sae ", sae.d_sae()), detail::str("needs latents = ", latents_));
    if (batch_size < 1) throw argument_error(fn, "batch_size", detail::str("is ", batch_size), "needs >= 1");
    const auto given = mint::view(activations);
    if (given.rank() < 2 || given.extent(given.rank() - 1) != sae.d_in())
      throw shape_error(fn, "activations", "has extents " + detail::shape_string(given.extents()),
                        detail::str("needs [rows, d_in = ", sae.d_in(), "] or [batch, pos, d_in]"));
    const auto xv = detail::as_rank2(given, fn);
    if (index(refs.size()) != xv.extent(0))
      throw shape_error(fn, "refs", detail::str("has ", refs.size(), " entries"),
                        detail::str("needs one per row of activations, ", xv.extent(0)));
    matrix<T> xn, z;
    row_scaling<T> scaling;
    for (index start = 0; start < xv.extent(0); start += batch_size) {
      const index end = std::min(xv.extent(0), start + batch_size);
      sae.normalize(xv.slice(start, end), xn, scaling);
      sae.encode_normalized(xn, z);
      add(z, refs.subspan(std::size_t(start), std::size_t(end - start)));
    }
  }

  /// Folds in another collector's pass (same latents and top_n), as if its rows had been added here.
  void merge(const feature_collector& other) {
    if (&other == this) {  // the loop below would read the heaps it changes
      const feature_collector copy = other;
      merge(copy);
      return;
    }
    if (other.latents_ != latents_ || other.options_.top_n != options_.top_n || other.options_.histogram_bins != options_.histogram_bins)
      throw argument_error("mint::dictionary::feature_collector::merge", "other",
                           detail::str("has ", other.latents_, " latents, top_n ", other.options_.top_n, " and ",
                                       other.options_.histogram_bins, " histogram bins"),
                           detail::str("needs ", latents_, ", ", options_.top_n, " and ", options_.histogram_bins));
    for (index j = 0; j < latents_; ++j) {
      const auto* h = other.heap(j);
      for (index e = 0; e < other.sizes_[std::size_t(j)]; ++e) keep(j, h[e]);
      if (options_.histogram_bins > 0 && other.tops_[std::size_t(j)] > 0) {
        // Both to the larger top (a power of two), then add.
        const double top = std::max(tops_[std::size_t(j)], other.tops_[std::size_t(j)]);
        widen(j, top);
        std::vector<std::int64_t> theirs(other.bins_.begin() + j * options_.histogram_bins,
                                         other.bins_.begin() + (j + 1) * options_.histogram_bins);
        for (double t = other.tops_[std::size_t(j)]; t < top; t *= 2) fold(theirs.data());
        for (index i = 0; i < options_.histogram_bins; ++i) bins_[std::size_t(j * options_.histogram_bins + i)] += theirs[std::size_t(i)];
      }
      fires_[std::size_t(j)] += other.fires_[std::size_t(j)];
      sums_[std::size_t(j)] += other.sums_[std::size_t(j)];
    }
    rows_ += other.rows_;
  }

  /// Every rank ends with the group's collector (a collective: every rank calls it): rank 0
  /// merges the others' in rank order and sends the result back. Counts, top lists and
  /// histograms are exact (one process's on the same rows); the activation sums to rounding. Call
  /// it once for the group's rows: a second call would count them again.
  MINT_LAZY void allreduce(distributed::communicator_ref comm) {
    const char* fn = "mint::dictionary::feature_collector::allreduce";
    distributed::check_same(comm, fn, "the collector",
                            detail::str(latents_, " latents, top_n ", options_.top_n, ", ", options_.histogram_bins, " bins"));
    if (comm.size() == 1) return;
    const auto all = comm.gather(packed(), 0);
    std::vector<std::byte> merged;
    if (comm.rank() == 0) {
      for (std::size_t r = 1; r < all.size(); ++r) {
        feature_collector other(latents_, options_);
        other.unpack(all[r]);
        merge(other);
      }
      merged = packed();
    }
    std::uint64_t size = merged.size();
    comm.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(&size, 1)), 0);
    merged.resize(std::size_t(size));
    comm.broadcast(merged, 0);
    if (comm.rank() != 0) unpack(merged);
  }

private:
  template <class>
  friend struct detail::feature_analysis_core;

  // The state as bytes, for allreduce (the same build on every rank: no format to version).
  std::vector<std::byte> packed() const {
    std::vector<std::byte> out;
    auto put = [&](const auto& v) {
      using V = typename std::remove_cvref_t<decltype(v)>::value_type;
      static_assert(std::is_trivially_copyable_v<V>);
      const auto* p = reinterpret_cast<const std::byte*>(v.data());
      out.insert(out.end(), p, p + v.size() * sizeof(V));
    };
    put(std::vector<std::int64_t>{rows_});
    put(heaps_), put(sizes_), put(fires_), put(sums_), put(bins_), put(tops_);
    return out;
  }
  void unpack(std::span<const std::byte> in) {
    std::size_t at = 0;
    auto get = [&](auto& v) {
      using V = typename std::remove_cvref_t<decltype(v)>::value_type;
      const std::size_t bytes = v.size() * sizeof(V);
      if (at + bytes > in.size())
        throw distributed::communication_error("mint::dictionary::feature_collector::allreduce", "a rank's collector",
                                               detail::str("arrived with ", in.size(), " bytes"), "needs the layout of this build");
      std::memcpy(v.data(), in.data() + at, bytes);
      at += bytes;
    };
    std::vector<std::int64_t> rows(1);
    get(rows), get(heaps_), get(sizes_), get(fires_), get(sums_), get(bins_), get(tops_);
    rows_ = rows[0];
  }

  // The heap's front is its worst entry: the first to go when a better one comes.
  static bool heap_order(const top_activation& a, const top_activation& b) noexcept { return ranks_before(a, b); }
  top_activation* heap(index j) noexcept { return heaps_.data() + j * options_.top_n; }
  const top_activation* heap(index j) const noexcept { return heaps_.data() + j * options_.top_n; }

  void offer(index j, const top_activation& a) {
    ++fires_[std::size_t(j)];
    sums_[std::size_t(j)] += a.value;
    if (options_.histogram_bins > 0) count(j, a.value);
    keep(j, a);
  }

  // Histograms: the range [0, top) doubles (pairs of bins fold into one) until it holds v.
  void count(index j, double v) {
    if (std::isinf(v)) return;  // no finite range holds it
    double& top = tops_[std::size_t(j)];
    if (!(v < top)) {
      int e = 0;
      (void)std::frexp(v, &e);  // v < 2^e
      widen(j, std::ldexp(1.0, e));
    }
    const index bins = options_.histogram_bins;
    ++bins_[std::size_t(j * bins + std::min(bins - 1, index(v / top * double(bins))))];
  }
  void widen(index j, double top) {
    double& current = tops_[std::size_t(j)];
    if (current == 0) current = top;
    for (; current < top; current *= 2) fold(bins_.data() + j * options_.histogram_bins);
  }
  void fold(std::int64_t* b) const {
    const index half = options_.histogram_bins / 2;
    for (index i = 0; i < half; ++i) b[i] = b[2 * i] + b[2 * i + 1];
    std::fill(b + half, b + 2 * half, std::int64_t(0));
  }

  void keep(index j, const top_activation& a) {
    top_activation* h = heap(j);
    index& size = sizes_[std::size_t(j)];
    if (size < options_.top_n) {
      h[size++] = a;
      std::push_heap(h, h + size, heap_order);
    } else if (ranks_before(a, h[0])) {
      std::pop_heap(h, h + size, heap_order);
      h[size - 1] = a;
      std::push_heap(h, h + size, heap_order);
    }
  }

  feature_collector_options options_;
  index latents_ = 0;
  std::vector<top_activation> heaps_;  // [latents, top_n], each a heap of sizes_[j] entries
  std::vector<index> sizes_;
  std::vector<std::int64_t> fires_;
  std::vector<double> sums_;
  std::vector<std::int64_t> bins_;  // [latents, histogram_bins]
  std::vector<double> tops_;        // each histogram's range
  std::int64_t rows_ = 0;
};

/// A token and a score.
struct token_score {
  std::int64_t token = 0;
  double value = 0;
};

/// The tokens a latent's decoder direction most raises and lowers in the logits.
struct logit_effect {
  std::vector<token_score> boosted;     ///< largest W_dec[j] W_U first (ties: smaller token id)
  std::vector<token_score> suppressed;  ///< smallest first (ties: smaller token id)
};

/// For each row of `decoder` ([latents, d_model], an SAE's W_dec) the top_n tokens of
/// decoder[j] W_U, W_U = `unembedding` ([d_model, vocab]; pass view(W).transposed() for a
/// [vocab, d_model] lm_head weight), largest and smallest. Fold the final layer norm's
/// scale into W_U first if the model has one. Computed in blocks of latents (~64 MiB).
template <tensor D, tensor U>
std::vector<logit_effect> logit_effects(const D& decoder, const U& unembedding, index top_n = 10) {
  using T = std::remove_const_t<value_t<const D>>;
  static_assert(std::is_same_v<T, std::remove_const_t<value_t<const U>>>, "logit_effects: decoder and unembedding need one element type");
  return detail::feature_analysis_core<T>::logit_effects(mint::view(decoder), mint::view(unembedding), top_n);
}

/// An example's token ids (its whole sequence); the report cuts a window around a position.
using token_source = std::function<std::vector<std::int64_t>(std::int64_t example)>;

/// The rows of an integer tensor [examples, positions] as a token_source (example id = row).
/// The tensor must outlive the source.
template <tensor X>
token_source tokens_from(const X& tokens) {
  using V = std::remove_const_t<value_t<const X>>;
  static_assert(std::is_integral_v<V>, "tokens_from: needs a tensor of integer token ids");
  const tensor_view<const V> v = mint::view(tokens);
  if (v.rank() != 2)
    throw shape_error("mint::dictionary::tokens_from", "tokens", detail::str("has rank ", v.rank()), "needs rank 2 [examples, positions]");
  return [v](std::int64_t example) {
    if (example < 0 || example >= v.extent(0))
      throw argument_error("mint::dictionary::tokens_from", "example", detail::str("is ", example),
                           detail::str("needs 0 <= example < ", v.extent(0), ", the rows of tokens"));
    std::vector<std::int64_t> out(std::size_t(v.extent(1)));
    for (index t = 0; t < v.extent(1); ++t) out[std::size_t(t)] = std::int64_t(v(index(example), t));
    return out;
  };
}

/// What the report holds beyond the collector's figures.
struct feature_report_options {
  token_source tokens{};                  ///< each top example's tokens (empty: refs only, no context)
  std::span<const std::string> vocab{};   ///< token strings by id (empty: ids only)
  index context_before = 8;               ///< tokens kept before the activating one
  index context_after = 2;                ///< and after it
  std::span<const logit_effect> logit_effects{};  ///< per latent, from logit_effects() (empty: left out)
  nlohmann::ordered_json metadata = nlohmann::ordered_json(nlohmann::ordered_json::value_t::object);  ///< the caller's facts (model, hook, data, ...), copied as is
  nlohmann::ordered_json sae = nullptr;   ///< the SAE's description, e.g. describe(sae)
  bool skip_dead = false;                 ///< leave out latents that never fired
  std::span<const double> interpretability_scores{};  ///< per latent, e.g. score_features' correlations (empty: left out; NaN: null in the file)
  std::span<const std::string> explanations{};        ///< per latent (empty: left out)
};

/// The SAE's shape and rule as the report's "sae" object.
template <class T>
nlohmann::ordered_json describe(const basic_sae<T>& sae) {
  return detail::feature_analysis_core<T>::describe(sae);
}

/// The report as a JSON value; its schema is in docs/sae_analysis.md ("format":
/// "mint.feature_analysis", "version": 1), its keys in the schema's order.
inline nlohmann::ordered_json feature_report(const feature_collector& c, const feature_report_options& o = {}) {
  return detail::feature_report_core<>::report(c, o);
}

/// Writes feature_report() to `path` atomically (a temporary beside it, then a rename), one
/// line unless indent >= 0. Token strings that are not valid UTF-8 (a BPE piece cut inside a
/// character) are written with U+FFFD in place of the bad bytes.
inline void write_feature_report(const std::string& path, const feature_collector& c, const feature_report_options& o = {},
                                 int indent = -1) {
  detail::feature_report_core<>::write(path, c, o, indent);
}

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES
template <class T>
void feature_analysis_core<T>::add(dictionary::feature_collector& c, const tensor_view<const T>& zv, std::span<const dictionary::example_ref> refs) {
  const char* fn = "mint::dictionary::feature_collector::add";
  if (zv.rank() < 2 || zv.extent(zv.rank() - 1) != c.latents_)
    throw shape_error(fn, "codes", "has extents " + detail::shape_string(zv.extents()),
                      detail::str("needs [rows, latents = ", c.latents_, "]"));
  visit_matrix(zv, [&](const auto& z) {
    if (index(refs.size()) != z.rows())
      throw shape_error(fn, "refs", detail::str("has ", refs.size(), " entries"),
                        detail::str("needs one per row of codes, ", z.rows()));
    const index n = z.rows();
    constexpr index block = 64;
    const index blocks = (c.latents_ + block - 1) / block;
    // Threads own blocks of latents (their heaps and counts): no sharing, any schedule, same result.
    MINT_PARALLEL_FOR(double(n) * double(c.latents_))
    for (index b = 0; b < blocks; ++b) {
      const index j0 = b * block, j1 = std::min(c.latents_, j0 + block);
      for (index i = 0; i < n; ++i)
        for (index j = j0; j < j1; ++j) {
          const double v = double(z(i, j));
          if (v > 0) c.offer(j, dictionary::top_activation{v, refs[std::size_t(i)]});
        }
    }
  });
  c.rows_ += std::int64_t(refs.size());
}

template <class T>
std::vector<dictionary::logit_effect> feature_analysis_core<T>::logit_effects(const tensor_view<const T>& dv,
                                                                  const tensor_view<const T>& uv, index top_n) {
  const char* fn = "mint::dictionary::logit_effects";
  if (dv.rank() != 2) throw shape_error(fn, "decoder", detail::str("has rank ", dv.rank()), "needs rank 2 [latents, d_model]");
  if (uv.rank() != 2) throw shape_error(fn, "unembedding", detail::str("has rank ", uv.rank()), "needs rank 2 [d_model, vocab]");
  if (uv.extent(0) != dv.extent(1))
    throw shape_error(fn, "unembedding", "has extents " + detail::shape_string(uv.extents()),
                      detail::str("needs [d_model = ", dv.extent(1), ", vocab], d_model being the decoder's columns"));
  if (top_n < 1) throw argument_error(fn, "top_n", detail::str("is ", top_n), "needs >= 1");
  const index m = dv.extent(0), vocab = uv.extent(1), n = std::min(top_n, vocab);
  std::vector<dictionary::logit_effect> out(static_cast<std::size_t>(m));
  if (vocab == 0) return out;
  const index block = std::max<index>(1, std::min<index>(m, index((std::size_t(64) << 20) / sizeof(T)) / vocab));
  matrix<T> logits;
  std::vector<index> order(static_cast<std::size_t>(vocab));
  visit_matrix(uv, [&](const auto& w) {
    for (index start = 0; start < m; start += block) {
      const index rows = std::min(block, m - start);
      logits.resize(rows, vocab);
      visit_matrix(dv.slice(start, start + rows), [&](const auto& d) { logits.noalias() = d * w; });
      if (!logits.allFinite())  // NaN would also break the sort's ordering
        throw numeric_error(fn, "decoder", detail::str("times unembedding gives a NaN or infinite logit for latents ", start, " to ",
                                                             start + rows - 1),
                            "needs finite decoder and unembedding values");
      for (index r = 0; r < rows; ++r) {
        const T* row = &logits(r, 0);
        auto& e = out[std::size_t(start + r)];
        auto pick = [&](auto before, std::vector<dictionary::token_score>& dst) {
          std::iota(order.begin(), order.end(), index(0));
          std::partial_sort(order.begin(), order.begin() + n, order.end(), before);
          dst.resize(std::size_t(n));
          for (index i = 0; i < n; ++i) dst[std::size_t(i)] = {order[std::size_t(i)], double(row[order[std::size_t(i)]])};
        };
        pick([row](index a, index b) { return row[a] > row[b] || (row[a] == row[b] && a < b); }, e.boosted);
        pick([row](index a, index b) { return row[a] < row[b] || (row[a] == row[b] && a < b); }, e.suppressed);
      }
    }
  });
  return out;
}

template <class T>
nlohmann::ordered_json feature_analysis_core<T>::describe(const dictionary::basic_sae<T>& sae) {
  nlohmann::ordered_json j = {{"architecture", std::string(dictionary::to_string(sae.architecture()))}, {"d_in", sae.d_in()}, {"d_sae", sae.d_sae()}};
  if (sae.uses_k()) j["k"] = sae.options().k;
  return j;
}

template <class Json>
Json feature_report_core<Json>::report(const dictionary::feature_collector& c, const dictionary::feature_report_options& o) {
  using report_json = Json;
  const char* fn = "mint::dictionary::feature_report";
  if (o.context_before < 0 || o.context_after < 0)
    throw argument_error(fn, "options.context_before", detail::str("is ", o.context_before, " (after ", o.context_after, ")"),
                         "needs both >= 0");
  if (!o.logit_effects.empty() && index(o.logit_effects.size()) != c.latents())
    throw shape_error(fn, "options.logit_effects", detail::str("has ", o.logit_effects.size(), " entries"),
                      detail::str("needs one per latent, ", c.latents()));
  if (!o.interpretability_scores.empty() && index(o.interpretability_scores.size()) != c.latents())
    throw shape_error(fn, "options.interpretability_scores", detail::str("has ", o.interpretability_scores.size(), " entries"),
                      detail::str("needs one per latent, ", c.latents()));
  if (!o.explanations.empty() && index(o.explanations.size()) != c.latents())
    throw shape_error(fn, "options.explanations", detail::str("has ", o.explanations.size(), " entries"),
                      detail::str("needs one per latent, ", c.latents()));
  auto string_of = [&](std::int64_t token) -> const std::string& {
    if (token < 0 || token >= std::int64_t(o.vocab.size()))
      throw argument_error(fn, "options.vocab", detail::str("has ", o.vocab.size(), " strings"),
                           detail::str("needs one for token id ", token));
    return o.vocab[std::size_t(token)];
  };
  auto scores = [&](const std::vector<dictionary::token_score>& list) {
    report_json a = report_json::array();
    for (const auto& s : list) {
      report_json t = {{"token", s.token}, {"logit", s.value}};
      if (!o.vocab.empty()) t["string"] = string_of(s.token);
      a.push_back(std::move(t));
    }
    return a;
  };
  report_json features = report_json::array();
  for (index j = 0; j < c.latents(); ++j) {
    if (o.skip_dead && c.fires(j) == 0) continue;
    report_json examples = report_json::array();
    for (const auto& a : c.top(j)) {
      report_json e = {{"activation", a.value}, {"example", a.where.example}, {"position", a.where.position}};
      if (o.tokens) {
        const auto tokens = o.tokens(a.where.example);
        if (a.where.position < 0 || a.where.position >= std::int64_t(tokens.size()))
          throw argument_error(fn, "options.tokens", detail::str("gives example ", a.where.example, " ", tokens.size(), " tokens"),
                               detail::str("needs a token at position ", a.where.position));
        const std::int64_t first = std::max<std::int64_t>(0, a.where.position - o.context_before);
        const std::int64_t last = std::min<std::int64_t>(std::int64_t(tokens.size()) - 1, a.where.position + o.context_after);
        report_json ids = report_json::array(), strings = report_json::array();
        for (std::int64_t t = first; t <= last; ++t) {
          ids.push_back(tokens[std::size_t(t)]);
          if (!o.vocab.empty()) strings.push_back(string_of(tokens[std::size_t(t)]));
        }
        e["context_start"] = first;
        e["token_index"] = a.where.position - first;
        e["tokens"] = std::move(ids);
        if (!o.vocab.empty()) e["strings"] = std::move(strings);
      }
      examples.push_back(std::move(e));
    }
    report_json f = {{"index", j},
              {"fires", c.fires(j)},
              {"density", c.density(j)},
              {"mean_activation", c.mean_activation(j)},
              {"top_examples", std::move(examples)}};
    if (c.options().histogram_bins > 0) {
      const auto h = c.histogram(j);
      f["histogram"] = {{"top", h.top}, {"counts", h.counts}};
    }
    if (!o.logit_effects.empty()) {
      f["boosted_tokens"] = scores(o.logit_effects[std::size_t(j)].boosted);
      f["suppressed_tokens"] = scores(o.logit_effects[std::size_t(j)].suppressed);
    }
    if (!o.interpretability_scores.empty()) f["interpretability_score"] = o.interpretability_scores[std::size_t(j)];
    if (!o.explanations.empty()) f["explanation"] = o.explanations[std::size_t(j)];
    features.push_back(std::move(f));
  }
  return report_json{{"format", "mint.feature_analysis"},
              {"version", 1},
              {"metadata", o.metadata},
              {"sae", o.sae},
              {"rows", c.rows()},
              {"latents", c.latents()},
              {"top_n", c.top_n()},
              {"context", {{"before", o.context_before}, {"after", o.context_after}}},
              {"features", std::move(features)}};
}

template <class Json>
void feature_report_core<Json>::write(const std::string& path, const dictionary::feature_collector& c, const dictionary::feature_report_options& o,
                                   int indent) {
  const auto report = feature_report_core::report(c, o);
  const std::string text = report.dump(indent, ' ', false, Json::error_handler_t::replace);
  atomic_file out(path);
  out.write(text);
  out.write("\n");
  out.commit();
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_FEATURE_ANALYSIS(CORE)                  \
  MINT_CORE_FD(CORE, mint::detail::feature_analysis_core) \
  CORE(struct mint::detail::feature_report_core<>)
MINT_CORES_DICTIONARY_FEATURE_ANALYSIS(MINT_CORE)
