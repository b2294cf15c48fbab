// Width sweeps: a family of SAEs of growing width trained on the same rows with the
// same seeds, measured with evaluate(), and feature splitting between neighbours
// (Bricken et al. 2023, "Towards Monosemanticity", feature splitting): each latent of
// the wider SAE matched to the narrower latent of largest decoder cosine. Cost: the
// training of every width, plus O(m_wide m_narrow d) per matching (one product).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/metrics.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/dictionary/train.hpp"

namespace mint::dictionary {

/// Knobs of match_features().
struct match_options {
  /// A wide latent whose best cosine is below this has no parent (it counts as new, not
  /// as a child); 0.3 is a common cut between a sub-feature and a partial overlap.
  double min_cosine = 0.3;
  /// Match by |cosine| (a latent found with its sign flipped counts); off by default, since
  /// SAE codes are non-negative and a flipped decoder row is a different feature.
  bool absolute = false;
  /// Latents left out (1 = skip), e.g. dead ones: [wide rows] and [narrow rows], or empty.
  /// A skipped wide latent gets no match (-1); a skipped narrow latent is never chosen.
  std::span<const std::uint8_t> skip_wide{};
  std::span<const std::uint8_t> skip_narrow{};
};

/// For each latent of a wider SAE, its best-matching latent of a narrower one, and the
/// splitting this implies.
struct feature_matching {
  std::vector<index> best;      ///< per wide latent: the narrow latent of largest cosine (-1: skipped or none)
  std::vector<double> cosine;   ///< per wide latent: that cosine (0 when best is -1)
  std::vector<index> children;  ///< per narrow latent: wide latents choosing it with cosine >= min_cosine
  index split = 0;       ///< narrow latents that are the best match of 2 or more wide latents
  index kept = 0;        ///< narrow latents that are the best match of exactly one wide latent
  index vanished = 0;    ///< narrow latents (not skipped) that no wide latent matches
  index new_latents = 0; ///< wide latents (not skipped) whose best cosine is below min_cosine
  double mean_cosine = 0;  ///< mean of `cosine` over the wide latents not skipped
};

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
template <class T>
matrix<T> unit_rows(const tensor_view<const T>& v) {
  matrix<T> m = as_matrix(v);
  for (index i = 0; i < m.rows(); ++i) {
    const T norm = m.row(i).norm();
    if (norm > 0) m.row(i) /= norm;  // a zero row stays zero: cosine 0 with everything
  }
  return m;
}
#endif  // MINT_CORE_BODIES

/// match_features over float and double decoders (mint/core/compiled.hpp).
template <class T>
struct match_features_core {
  static dictionary::feature_matching run(const tensor_view<const T>& wide, const tensor_view<const T>& narrow,
                              const dictionary::match_options& options);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::feature_matching match_features_core<T>::run(const tensor_view<const T>& wv, const tensor_view<const T>& nv,
                                             const dictionary::match_options& options) {
  const char* fn = "mint::dictionary::match_features";
  if (wv.rank() != 2) throw shape_error(fn, "wide", detail::str("has rank ", wv.rank()), "needs rank 2 [latents, d]");
  if (nv.rank() != 2) throw shape_error(fn, "narrow", detail::str("has rank ", nv.rank()), "needs rank 2 [latents, d]");
  if (wv.extent(1) != nv.extent(1))
    throw shape_error(fn, "narrow", detail::str("has rows of ", nv.extent(1), " values"),
                      detail::str("needs ", wv.extent(1), ", the row length of wide"));
  const index mw = wv.extent(0), mn = nv.extent(0);
  if (mn < 1) throw shape_error(fn, "narrow", "has no rows", "needs at least one latent to match against");
  if (!options.skip_wide.empty() && index(options.skip_wide.size()) != mw)
    throw shape_error(fn, "options.skip_wide", detail::str("has ", options.skip_wide.size(), " flags"),
                      detail::str("needs one per wide latent, ", mw));
  if (!options.skip_narrow.empty() && index(options.skip_narrow.size()) != mn)
    throw shape_error(fn, "options.skip_narrow", detail::str("has ", options.skip_narrow.size(), " flags"),
                      detail::str("needs one per narrow latent, ", mn));
  if (!std::isfinite(options.min_cosine))
    throw argument_error(fn, "options.min_cosine", detail::str("is ", options.min_cosine), "needs a finite number");

  const matrix<T> a = unit_rows(wv), b = unit_rows(nv);
  auto skipped = [](std::span<const std::uint8_t> s, index i) { return !s.empty() && s[std::size_t(i)] != 0; };

  dictionary::feature_matching out;
  out.best.assign(std::size_t(mw), -1);
  out.cosine.assign(std::size_t(mw), 0.0);
  out.children.assign(std::size_t(mn), 0);
  const index block = std::max<index>(1, std::min<index>(mw, index((std::size_t(64) << 20) / sizeof(T)) / mn));
  matrix<T> cosines;
  for (index start = 0; start < mw; start += block) {
    const index rows = std::min(block, mw - start);
    cosines.resize(rows, mn);
    cosines.noalias() = a.middleRows(start, rows) * b.transpose();
    for (index r = 0; r < rows; ++r) {
      const index i = start + r;
      if (skipped(options.skip_wide, i)) continue;
      index best = -1;
      T top = 0;
      for (index j = 0; j < mn; ++j) {
        if (skipped(options.skip_narrow, j)) continue;
        const T c = options.absolute ? std::abs(cosines(r, j)) : cosines(r, j);
        if (best < 0 || c > top) best = j, top = c;  // strict: ties keep the lower index
      }
      out.best[std::size_t(i)] = best;
      out.cosine[std::size_t(i)] = best < 0 ? 0.0 : double(top);
    }
  }
  index counted = 0;
  double sum = 0;
  for (index i = 0; i < mw; ++i) {
    if (skipped(options.skip_wide, i)) continue;
    ++counted;
    sum += out.cosine[std::size_t(i)];
    const index j = out.best[std::size_t(i)];
    if (j >= 0 && out.cosine[std::size_t(i)] >= options.min_cosine) ++out.children[std::size_t(j)];
    else ++out.new_latents;
  }
  for (index j = 0; j < mn; ++j) {
    if (skipped(options.skip_narrow, j)) continue;
    const index c = out.children[std::size_t(j)];
    out.split += c >= 2;
    out.kept += c == 1;
    out.vanished += c == 0;
  }
  out.mean_cosine = counted > 0 ? sum / double(counted) : 0.0;
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Matches each row of `wide` ([m_wide, d], e.g. the wider SAE's W_dec) to the row of
/// `narrow` ([m_narrow, d]) of largest cosine. Ties go to the lower narrow index. The
/// cosines come from one product of row-normalized matrices, taken in blocks of wide
/// rows so memory stays near 64 MiB whatever the widths.
template <tensor W, tensor N>
feature_matching match_features(const W& wide, const N& narrow, const match_options& options = {}) {
  using T = std::remove_const_t<value_t<const W>>;
  static_assert(std::is_same_v<T, std::remove_const_t<value_t<const N>>>, "match_features: wide and narrow need one element type");
  return detail::match_features_core<T>::run(mint::view(wide), mint::view(narrow), options);
}

/// One width of a sweep.
template <class T = float>
struct width_result {
  index width = 0;             ///< d_sae
  sae_metrics metrics;         ///< evaluate() on the sweep's evaluation rows
  double train_seconds = 0;    ///< wall time of the training
  /// Against the previous (narrower) width, with dead latents of both skipped; empty for the first.
  feature_matching matching;
  basic_sae<T> sae;            ///< the trained SAE (default-constructed when keep_saes is off)
};

/// Knobs of width_sweep().
template <class T = float>
struct width_sweep_options {
  std::vector<index> widths;    ///< d_sae of each SAE, strictly growing
  sae_options sae{};            ///< every SAE's shape and rule; d_sae is set per width, d_in 0 means the data's
  std::uint64_t seed = 0;       ///< initializes every SAE (the same seed for each width)
  sae_train_options train{};    ///< the same training for each width (its progress is wrapped, see below)
  sae_metrics_options metrics{};
  match_options matching{};     ///< min_cosine and absolute (the skip masks are filled with dead latents)
  bool keep_saes = true;        ///< keep each trained SAE in its result (else only the newest is held)
  /// Hears the training of each width (task "width 256 (2/4): train topk") and, after each
  /// width, one report of task "width sweep" (step = widths done) with its figures.
  progress_callback progress{};
  /// Called after each width with its result (e.g. to save the SAE while the sweep goes on).
  std::function<void(const width_result<T>&)> on_width{};
};

}  // namespace mint::dictionary

namespace mint::detail {

/// width_sweep over the SAEs' type T and the evaluation rows' element type V, float or double
/// (mint/core/compiled.hpp).
template <class T, class V>
struct width_sweep_core {
  static std::vector<dictionary::width_result<T>> run(const std::function<dictionary::batch_source()>& make_source,
                                          const tensor_view<const V>& eval, const dictionary::width_sweep_options<T>& options);
};

#if MINT_CORE_BODIES
template <class T, class V>
std::vector<dictionary::width_result<T>> width_sweep_core<T, V>::run(const std::function<dictionary::batch_source()>& make_source,
                                                         const tensor_view<const V>& ev,
                                                         const dictionary::width_sweep_options<T>& options) {
  const char* fn = "mint::dictionary::width_sweep";
  if (ev.rank() != 2 || ev.extent(0) < 1)
    throw shape_error(fn, "eval", "has extents " + detail::shape_string(ev.extents()), "needs [rows >= 1, d_in]");
  if (options.widths.empty()) throw argument_error(fn, "options.widths", "is empty", "needs at least one width");
  for (std::size_t i = 0; i < options.widths.size(); ++i) {
    if (options.widths[i] < 1 || (i > 0 && options.widths[i] <= options.widths[i - 1]))
      throw argument_error(fn, "options.widths", detail::str("has ", options.widths[i], " at position ", i),
                           "needs strictly growing widths >= 1");
  }
  if (options.sae.d_in != 0 && options.sae.d_in != ev.extent(1))
    throw shape_error(fn, "eval", detail::str("has rows of ", ev.extent(1), " values"),
                      detail::str("needs options.sae.d_in = ", options.sae.d_in));
  if (!make_source) throw argument_error(fn, "make_source", "is empty", "needs a function returning a batch_source");

  std::vector<dictionary::width_result<T>> out;
  out.reserve(options.widths.size());
  dictionary::basic_sae<T> previous;
  std::vector<std::uint8_t> previous_dead;
  const auto count = index(options.widths.size());
  progress_reporter sweep_reporter(options.progress, "width sweep", count, 0.0);
  for (index w = 0; w < count; ++w) {
    dictionary::width_result<T> r;
    r.width = options.widths[std::size_t(w)];
    dictionary::sae_options so = options.sae;
    so.d_in = ev.extent(1);
    so.d_sae = r.width;
    dictionary::basic_sae<T> sae(so, options.seed);
    dictionary::sae_train_options to = options.train;
    if (options.progress) {
      const std::string prefix = detail::str("width ", r.width, " (", w + 1, "/", count, "): ");
      to.progress = [prefix, &options](const progress& p) {
        const std::string task = prefix + std::string(p.task);
        options.progress(progress{task, p.step, p.total, p.seconds, p.values});
      };
    }
    dictionary::batch_source source = make_source();
    const auto start = std::chrono::steady_clock::now();
    {
      dictionary::sae_trainer<T> trainer(sae, to);
      trainer.train(source);
    }
    r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.metrics = evaluate(sae, ev, options.metrics);
    std::vector<std::uint8_t> dead(std::size_t(r.width));
    for (std::size_t j = 0; j < dead.size(); ++j) dead[j] = r.metrics.firing_frequency[j] == 0;
    if (w > 0) {
      dictionary::match_options mo = options.matching;
      mo.skip_wide = dead;
      mo.skip_narrow = previous_dead;
      r.matching = dictionary::match_features(sae.W_dec(), previous.W_dec(), mo);
    }
    if (options.keep_saes) r.sae = sae;
    out.push_back(std::move(r));
    if (options.on_width) options.on_width(out.back());
    const auto& last = out.back();
    sweep_reporter.report(w + 1, {{"width", double(last.width)},
                                  {"l0", last.metrics.l0},
                                  {"fvu", last.metrics.reconstruction.fvu},
                                  {"dead", last.metrics.dead_fraction},
                                  {"split", double(last.matching.split)}});
    previous = std::move(sae);
    previous_dead = std::move(dead);
  }
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Trains one SAE per width on rows from make_source() (a fresh source per width: give each
/// the same rows in the same order), evaluates each on `eval` ([rows, d_in]) and matches each
/// to the one before it. Results in the order of options.widths.
template <class T = float, tensor E>
std::vector<width_result<T>> width_sweep(const std::function<batch_source()>& make_source, const E& eval,
                                         const width_sweep_options<T>& options) {
  return detail::width_sweep_core<T, value_t<const E>>::run(make_source, mint::view(eval), options);
}

/// As above, every width drawing batches from `train` ([rows, d_in], kept alive by the
/// caller) through matrix_batches(train, data_seed): the same rows in the same order.
template <class T = float, tensor X, tensor E>
std::vector<width_result<T>> width_sweep(const X& train, const E& eval, const width_sweep_options<T>& options,
                                         std::uint64_t data_seed = 0) {
  const auto tv = mint::view(train);
  const auto ev = mint::view(eval);
  if (tv.rank() != 2 || ev.rank() != 2 || tv.extent(1) != ev.extent(1))
    throw shape_error("mint::dictionary::width_sweep", "train", "has extents " + detail::shape_string(tv.extents()),
                      "needs [rows, d_in] with the columns of eval, " + detail::shape_string(ev.extents()));
  const std::function<batch_source()> make = [&train, data_seed] { return matrix_batches(train, data_seed); };
  return width_sweep<T>(make, eval, options);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_WIDTH_SWEEP(CORE)                    \
  MINT_CORE_FD(CORE, mint::detail::match_features_core) \
  MINT_CORE_FD2(CORE, mint::detail::width_sweep_core)
MINT_CORES_DICTIONARY_WIDTH_SWEEP(MINT_CORE)
