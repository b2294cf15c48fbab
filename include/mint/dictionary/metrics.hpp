// How good an SAE is, measured as SAELens and SAEBench do: L0, mean squared error,
// fraction of variance unexplained about the data's mean (not about zero), explained
// variance, cosine of reconstructions, dead and dense latent fractions, and a
// histogram of log10 firing frequencies. O(n d m) for an SAE pass over n rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/dictionary/sae.hpp"

namespace mint::dictionary {

/// Reconstruction quality of x_hat against x (both [n, d]).
struct reconstruction_metrics {
  double mse = 0;                 ///< mean over rows and columns of (x - x_hat)^2
  double fvu = 0;                 ///< sum ||x - x_hat||^2 / sum ||x - mean(x)||^2
  double explained_variance = 0;  ///< 1 - fvu
  double cosine = 0;              ///< mean over rows of cos(x, x_hat) (rows of zeros count 0)
};

/// Everything measured on a pass of an SAE over data.
struct sae_metrics {
  reconstruction_metrics reconstruction;
  double l0 = 0;               ///< mean active latents per row
  double dead_fraction = 0;    ///< latents that never fired on the data
  double dense_fraction = 0;   ///< latents firing on more than dense_threshold of the rows
  std::vector<double> firing_frequency;  ///< per latent, the fraction of rows where it fired
  index rows = 0;
};

/// Knobs of evaluate().
struct sae_metrics_options {
  index batch_size = 4096;       ///< rows encoded at a time
  double dense_threshold = 0.1;  ///< a latent firing on more than this fraction of rows is dense
};

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// Sums in S (double) over the rows of reconstructions. A template only so that finish()'s
/// Eigen code compiles where metrics_core uses it, not in every unit that includes this header.
template <class S = double>
struct reconstruction_sums {
  double error = 0, cosine = 0;
  vector<S> sum, sum_sq;  // per column: for the variance about the mean
  index rows = 0;

  template <class A, class B>
  void add(const A& x, const B& xhat) {
    if (sum.size() == 0) {
      sum.setZero(x.cols());
      sum_sq.setZero(x.cols());
    }
    for (index i = 0; i < x.rows(); ++i) {
      const auto xi = x.row(i).template cast<double>();
      const auto yi = xhat.row(i).template cast<double>();
      error += (xi - yi).squaredNorm();
      const double nx = xi.norm(), ny = yi.norm();
      if (nx > 0 && ny > 0) cosine += xi.dot(yi) / (nx * ny);
      sum += xi.transpose();
      sum_sq += xi.array().square().matrix().transpose();
    }
    rows += x.rows();
  }

  dictionary::reconstruction_metrics finish() const {
    dictionary::reconstruction_metrics m;
    if (rows == 0) return m;
    const double n = double(rows);
    // Total squared deviation about the column means: sum x^2 - n mean^2, per column.
    const double total = (sum_sq.array() - sum.array().square() / n).sum();
    m.mse = error / (n * double(sum.size()));
    m.fvu = total > 0 ? error / total : (error > 0 ? INFINITY : 0.0);
    m.explained_variance = 1 - m.fvu;
    m.cosine = cosine / n;
    return m;
  }
};
#endif  // MINT_CORE_BODIES

/// The measures below over float and double tensors (mint/core/compiled.hpp): T is the first
/// argument's element type (the SAE's for evaluate), V the second's.
template <class T, class V>
struct metrics_core {
  static dictionary::reconstruction_metrics quality(const tensor_view<const T>& x, const tensor_view<const V>& x_hat);
  static dictionary::sae_metrics evaluate(const dictionary::basic_sae<T>& sae, const tensor_view<const V>& x, const dictionary::sae_metrics_options& options);
};

#if MINT_CORE_BODIES
template <class T, class V>
dictionary::reconstruction_metrics metrics_core<T, V>::quality(const tensor_view<const T>& xv, const tensor_view<const V>& yv) {
  const auto a = as_matrix(xv);
  const auto b = as_matrix(yv);
  if (a.rows() != b.rows() || a.cols() != b.cols())
    throw shape_error("mint::dictionary::reconstruction_quality", "x_hat", detail::str("is ", b.rows(), " x ", b.cols()),
                      detail::str("needs the shape of x, ", a.rows(), " x ", a.cols()));
  reconstruction_sums<> s;
  s.add(a, b);
  return s.finish();
}

template <class T, class V>
dictionary::sae_metrics metrics_core<T, V>::evaluate(const dictionary::basic_sae<T>& sae, const tensor_view<const V>& xv,
                                         const dictionary::sae_metrics_options& options) {
  const char* fn = "mint::dictionary::evaluate";
  if (xv.rank() != 2 || xv.extent(1) != sae.d_in())
    throw shape_error(fn, "x", "has extents " + detail::shape_string(xv.extents()),
                      detail::str("needs [rows, d_in = ", sae.d_in(), "]"));
  if (xv.extent(0) < 1)
    throw shape_error(fn, "x", "has 0 rows", "needs at least one row (no rows would read as a perfect SAE)");
  if (options.batch_size < 1)
    throw argument_error(fn, "options.batch_size", detail::str("is ", options.batch_size), "needs >= 1");
  const index n = xv.extent(0), m = sae.d_sae();
  dictionary::sae_metrics out;
  out.rows = n;
  std::vector<std::int64_t> fired(std::size_t(m), 0);
  reconstruction_sums<> sums;
  matrix<T> xn, z, y;
  dictionary::row_scaling<T> rows;
  double active = 0;
  for (index start = 0; start < n; start += options.batch_size) {
    const auto part = xv.slice(start, std::min(n, start + options.batch_size));
    sae.normalize(part, xn, rows);
    sae.encode_normalized(xn, z);
    for (index i = 0; i < z.rows(); ++i)
      for (index j = 0; j < m; ++j)
        if (z(i, j) > 0) {
          ++fired[std::size_t(j)];
          active += 1;
        }
    y = (z * sae.W_dec()).rowwise() + sae.b_dec().transpose();
    sae.denormalize(y, rows);
    sums.add(as_matrix(part), y);
  }
  out.reconstruction = sums.finish();
  out.firing_frequency.resize(std::size_t(m));
  index dead = 0, dense = 0;
  for (std::size_t j = 0; j < fired.size(); ++j) {
    const double f = n > 0 ? double(fired[j]) / double(n) : 0.0;
    out.firing_frequency[j] = f;
    dead += fired[j] == 0;
    dense += f > options.dense_threshold;
  }
  out.l0 = n > 0 ? active / double(n) : 0.0;
  out.dead_fraction = double(dead) / double(m);
  out.dense_fraction = double(dense) / double(m);
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// MSE, FVU (about the mean of x), explained variance and mean cosine of x_hat against x.
template <tensor X, tensor Y>
reconstruction_metrics reconstruction_quality(const X& x, const Y& x_hat) {
  return detail::metrics_core<value_t<const X>, value_t<const Y>>::quality(mint::view(x), mint::view(x_hat));
}

/// Runs the SAE over x ([n, d_in], in batches) and measures it: L0 and firing on the codes,
/// reconstruction metrics in x's units (normalization undone).
template <class T, tensor X>
sae_metrics evaluate(const basic_sae<T>& sae, const X& x, const sae_metrics_options& options = {}) {
  return detail::metrics_core<T, value_t<const X>>::evaluate(sae, mint::view(x), options);
}

/// A histogram of log10 firing frequencies (SAELens's feature-density plot).
struct firing_histogram {
  std::vector<double> edges;          ///< bins + 1 edges in log10 units, ascending
  std::vector<std::int64_t> counts;   ///< latents per bin (frequencies below edges[0] go to bin 0)
  std::int64_t never = 0;             ///< latents that never fired (log10 0 = -infinity), not in counts
};

/// Bins log10(frequency) over [low, high] (default 1e-8 to 1) into `bins` equal bins.
inline firing_histogram histogram_of_firing(const std::vector<double>& frequencies, int bins = 16, double low = -8,
                                            double high = 0) {
  if (bins < 1 || !(high > low))
    throw argument_error("mint::dictionary::histogram_of_firing", "bins", detail::str("is ", bins, " over [", low, ", ", high, "]"),
                         "needs bins >= 1 and high > low");
  firing_histogram h;
  h.counts.assign(std::size_t(bins), 0);
  for (int b = 0; b <= bins; ++b) h.edges.push_back(low + (high - low) * double(b) / double(bins));
  for (double f : frequencies) {
    if (!(f > 0)) {
      ++h.never;
      continue;
    }
    const double t = (std::log10(f) - low) / (high - low) * double(bins);
    ++h.counts[std::size_t(std::clamp(int(std::floor(t)), 0, bins - 1))];
  }
  return h;
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_METRICS(CORE) \
  MINT_CORE_FD2(CORE, mint::detail::metrics_core)
MINT_CORES_DICTIONARY_METRICS(MINT_CORE)
