// Synthetic data with known features in superposition (Sharkey, Braun and Millidge
// 2022): m unit vectors in R^d (d < m), sparse non-negative coefficients with a set
// firing probability and optional correlation, and the mean max cosine similarity
// (MMCS) that scores a learned dictionary against them; and a two-model version (features
// shared by two models or exclusive to one) for model diffing. Sampling costs O(n m + n k d)
// for k active features per row (paired: O(n m (1 + d_A + d_B))); MMCS costs O(m m' d).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"

namespace mint::dictionary {

/// The generator's knobs. Feature i fires with probability p_i; the p_i average
/// `firing_probability` and decay geometrically with i by `probability_decay`
/// (1: every feature alike; Sharkey et al. use 0.99). With `correlation` c > 0,
/// features fall into `groups` groups and fire when sqrt(c) g + sqrt(1 - c) e
/// exceeds their normal quantile (g shared by the group, e their own): the marginal
/// p_i stays exact and the latent normals of two features of a group correlate by c.
struct synthetic_options {
  index features = 512;             ///< m, the number of true features
  index dims = 256;                 ///< d, the dimension they live in
  double firing_probability = 0.01; ///< mean over features of P(feature fires)
  double correlation = 0;           ///< in [0, 1): correlation of firing within a group
  std::uint64_t seed = 0;           ///< seeds the dictionary (samples draw from the caller's rng)
  double probability_decay = 1.0;   ///< p_i proportional to decay^i, in (0, 1]
  index groups = 16;                ///< groups of correlated features (used when correlation > 0)
  double min_coefficient = 0.0;     ///< coefficients of firing features ~ Uniform[min, max)
  double max_coefficient = 1.0;
};

class synthetic_features;

/// Two models' activations with known features: `shared` features have a direction in each
/// model's space (two independent random unit vectors), `exclusive_a` only in A's, `exclusive_b`
/// only in B's. Each row draws one coefficient vector c over all features (each fires with
/// `firing_probability`, its coefficient ~ Uniform[min, max)), and x_A = c D_A, x_B = c D_B.
struct paired_synthetic_options {
  index shared = 24;                ///< features present in both models
  index exclusive_a = 12;           ///< features only model A represents
  index exclusive_b = 12;           ///< features only model B represents
  index dims_a = 32;                ///< model A's activation width
  index dims_b = 32;                ///< model B's activation width
  double firing_probability = 0.05; ///< P(a feature fires in a row), the same for every feature
  std::uint64_t seed = 0;           ///< seeds the directions (samples draw from the caller's rng)
  double min_coefficient = 0.0;     ///< coefficients of firing features ~ Uniform[min, max)
  double max_coefficient = 1.0;
};

class paired_synthetic_features;

}  // namespace mint::dictionary

namespace mint::detail {

/// What synthetic_features does, over the float it samples (mint/core/compiled.hpp).
template <class T>
struct synthetic_core {
  static void build(dictionary::synthetic_features& f);
  static void sample(const dictionary::synthetic_features& f, mint::rng& r, index n, matrix<T>& x, matrix<T>* coefficients);
  // z with P(N(0,1) > z) = p, by bisection on erfc (once per feature, at construction).
  static double upper_quantile(double p);
};

/// What paired_synthetic_features does, over the float it samples (mint/core/compiled.hpp).
template <class T>
struct paired_synthetic_core {
  static void build(dictionary::paired_synthetic_features& f);
  static void sample(const dictionary::paired_synthetic_features& f, mint::rng& r, index n, matrix<T>& xa, matrix<T>& xb,
                     matrix<T>* coefficients);
};

/// mmcs over float and double directions (mint/core/compiled.hpp).
template <class T, class U>
struct mmcs_core {
  static double run(const tensor_view<const T>& learned, const tensor_view<const U>& truth);
};

}  // namespace mint::detail

namespace mint::dictionary {

/// A fixed dictionary of unit feature directions and a sampler of sparse mixtures of them.
class synthetic_features {
public:
  explicit synthetic_features(const synthetic_options& options) : options_(options) {
    detail::synthetic_core<float>::build(*this);
  }

  /// The true dictionary, [features, dims]; each row a unit vector.
  const matrixf& dictionary() const noexcept { return dictionary_; }
  /// P(feature i fires), [features].
  const std::vector<double>& firing_probabilities() const noexcept { return probabilities_; }
  /// The expected number of active features per sample.
  double expected_l0() const noexcept {
    double s = 0;
    for (double p : probabilities_) s += p;
    return s;
  }
  const synthetic_options& options() const noexcept { return options_; }

  /// n samples into x ([n, dims], resized): sparse non-negative coefficients times the dictionary.
  void sample(mint::rng& r, index n, matrixf& x) const {
    sample_into(r, n, x, nullptr);
  }

  /// As above, also writing the coefficients ([n, features], resized; zero where a feature is off).
  void sample(mint::rng& r, index n, matrixf& x, matrixf& coefficients) const {
    sample_into(r, n, x, &coefficients);
  }

private:
  template <class>
  friend struct detail::synthetic_core;

  tensor_view<float> row_view(index i) {
    return tensor_view<float>(dictionary_.row(i).data(), {options_.dims}, {1});
  }

  void sample_into(mint::rng& r, index n, matrixf& x, matrixf* coefficients) const {
    detail::synthetic_core<float>::sample(*this, r, n, x, coefficients);
  }

  synthetic_options options_;
  matrixf dictionary_;
  std::vector<double> probabilities_;
  std::vector<double> quantiles_;
};

/// Two models' directions for the same features, and a sampler of rows both models see. Features
/// are numbered shared first, then exclusive to A, then exclusive to B.
class paired_synthetic_features {
public:
  explicit paired_synthetic_features(const paired_synthetic_options& options) : options_(options) {
    detail::paired_synthetic_core<float>::build(*this);
  }

  index features() const noexcept { return options_.shared + options_.exclusive_a + options_.exclusive_b; }
  /// Model A's directions for every feature, [features, dims_a]: unit rows, zero rows for B's exclusives.
  const matrixf& dictionary_a() const noexcept { return dictionary_a_; }
  /// Model B's directions, [features, dims_b]: unit rows, zero rows for A's exclusives.
  const matrixf& dictionary_b() const noexcept { return dictionary_b_; }
  /// The shared features' directions in A's space, [shared, dims_a] (scoring).
  matrixf shared_a() const { return dictionary_a_.topRows(options_.shared); }
  /// The shared features' directions in B's space, [shared, dims_b].
  matrixf shared_b() const { return dictionary_b_.topRows(options_.shared); }
  /// A's exclusive features, [exclusive_a, dims_a].
  matrixf exclusive_a() const { return dictionary_a_.middleRows(options_.shared, options_.exclusive_a); }
  /// B's exclusive features, [exclusive_b, dims_b].
  matrixf exclusive_b() const { return dictionary_b_.bottomRows(options_.exclusive_b); }
  double expected_l0() const noexcept { return options_.firing_probability * double(features()); }
  const paired_synthetic_options& options() const noexcept { return options_; }

  /// n rows of each model into xa ([n, dims_a]) and xb ([n, dims_b]), resized; row i of both is
  /// the same draw of coefficients.
  void sample(mint::rng& r, index n, matrixf& xa, matrixf& xb) const {
    detail::paired_synthetic_core<float>::sample(*this, r, n, xa, xb, nullptr);
  }
  /// As above, also writing the coefficients ([n, features], resized; zero where a feature is off).
  void sample(mint::rng& r, index n, matrixf& xa, matrixf& xb, matrixf& coefficients) const {
    detail::paired_synthetic_core<float>::sample(*this, r, n, xa, xb, &coefficients);
  }

private:
  template <class>
  friend struct detail::paired_synthetic_core;

  paired_synthetic_options options_;
  matrixf dictionary_a_, dictionary_b_;
};

/// Mean max cosine similarity: for each row of `truth`, the largest |cosine| with any
/// row of `learned`, averaged over the rows of `truth` (Sharkey et al. 2022). Rows are
/// directions ([features, dims] for both: pass an SAE's W_dec, not W_enc). The absolute
/// value makes a feature found with its sign flipped count as found; a zero row has
/// cosine 0 with everything. 1 means every true feature has an exact match.
template <tensor A, tensor B>
double mmcs(const A& learned, const B& truth) {
  return detail::mmcs_core<value_t<const A>, value_t<const B>>::run(mint::view(learned), mint::view(truth));
}

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES
template <class T>
void synthetic_core<T>::build(dictionary::synthetic_features& f) {
  const dictionary::synthetic_options& options = f.options_;
  const char* fn = "mint::dictionary::synthetic_features";
  if (options.features < 1 || options.dims < 1)
    throw argument_error(fn, "options", detail::str("has features ", options.features, " and dims ", options.dims),
                         "needs both >= 1");
  if (!(options.firing_probability > 0 && options.firing_probability <= 1))
    throw argument_error(fn, "options.firing_probability", detail::str("is ", options.firing_probability),
                         "needs a value in (0, 1]");
  if (!(options.correlation >= 0 && options.correlation < 1))
    throw argument_error(fn, "options.correlation", detail::str("is ", options.correlation), "needs a value in [0, 1)");
  if (!(options.probability_decay > 0 && options.probability_decay <= 1))
    throw argument_error(fn, "options.probability_decay", detail::str("is ", options.probability_decay),
                         "needs a value in (0, 1]");
  if (options.correlation > 0 && options.groups < 1)
    throw argument_error(fn, "options.groups", detail::str("is ", options.groups), "needs >= 1 with a correlation");
  if (!(options.min_coefficient >= 0 && options.max_coefficient > options.min_coefficient))
    throw argument_error(fn, "options", detail::str("has coefficients in [", options.min_coefficient, ", ",
                                                    options.max_coefficient, ")"),
                         "needs 0 <= min_coefficient < max_coefficient");

  mint::rng r(options.seed, 0xD1C7);
  f.dictionary_.resize(options.features, options.dims);
  for (index i = 0; i < options.features; ++i) {
    double norm = 0;
    do {
      r.fill_normal(f.row_view(i));
      norm = f.dictionary_.row(i).template cast<double>().norm();
    } while (norm == 0);
    f.dictionary_.row(i) /= float(norm);
  }

  // p_i proportional to decay^i with mean p, clamped to 1 (then the mean falls short).
  f.probabilities_.resize(std::size_t(options.features));
  double sum = 0, w = 1;
  for (auto& p : f.probabilities_) {
    p = w;
    sum += w;
    w *= options.probability_decay;
  }
  const double scale = options.firing_probability * double(options.features) / sum;
  for (auto& p : f.probabilities_) p = std::min(1.0, p * scale);
  if (options.correlation > 0) {
    f.quantiles_.resize(f.probabilities_.size());
    for (std::size_t i = 0; i < f.probabilities_.size(); ++i) f.quantiles_[i] = upper_quantile(f.probabilities_[i]);
  }
}

template <class T>
void synthetic_core<T>::sample(const dictionary::synthetic_features& f, mint::rng& r, index n, matrix<T>& x, matrix<T>* coefficients) {
  if (n < 0)
    throw argument_error("mint::dictionary::synthetic_features::sample", "n", detail::str("is ", n), "needs n >= 0");
  const index m = f.options_.features;
  x.setZero(n, f.options_.dims);
  if (coefficients) coefficients->setZero(n, m);
  const double c = f.options_.correlation, shared = std::sqrt(c), own = std::sqrt(1 - c);
  const double lo = f.options_.min_coefficient, width = f.options_.max_coefficient - f.options_.min_coefficient;
  std::vector<double> group(c > 0 ? std::size_t(f.options_.groups) : 0);
  for (index s = 0; s < n; ++s) {
    for (auto& g : group) g = r.normal();
    for (index i = 0; i < m; ++i) {
      const bool fires = c > 0 ? shared * group[std::size_t(i % f.options_.groups)] + own * r.normal() > f.quantiles_[std::size_t(i)]
                               : r.uniform() < f.probabilities_[std::size_t(i)];
      if (!fires) continue;
      const float a = float(lo + width * r.uniform());
      x.row(s) += a * f.dictionary_.row(i);
      if (coefficients) (*coefficients)(s, i) = a;
    }
  }
}

template <class T>
double synthetic_core<T>::upper_quantile(double p) {
  if (p >= 1) return -1e300;
  double lo = -40, hi = 40;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(mid / std::sqrt(2.0)) > p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

template <class T>
void paired_synthetic_core<T>::build(dictionary::paired_synthetic_features& f) {
  const dictionary::paired_synthetic_options& o = f.options_;
  const char* fn = "mint::dictionary::paired_synthetic_features";
  if (o.shared < 0 || o.exclusive_a < 0 || o.exclusive_b < 0 || f.features() < 1)
    throw argument_error(fn, "options", detail::str("has shared ", o.shared, ", exclusive_a ", o.exclusive_a, ", exclusive_b ", o.exclusive_b),
                         "needs each >= 0 and at least one feature");
  if (o.dims_a < 1 || o.dims_b < 1)
    throw argument_error(fn, "options", detail::str("has dims_a ", o.dims_a, " and dims_b ", o.dims_b), "needs both >= 1");
  if (!(o.firing_probability > 0 && o.firing_probability <= 1))
    throw argument_error(fn, "options.firing_probability", detail::str("is ", o.firing_probability), "needs a value in (0, 1]");
  if (!(o.min_coefficient >= 0 && o.max_coefficient > o.min_coefficient))
    throw argument_error(fn, "options", detail::str("has coefficients in [", o.min_coefficient, ", ", o.max_coefficient, ")"),
                         "needs 0 <= min_coefficient < max_coefficient");
  // Each model's rows from its own stream: A's directions do not depend on B's counts.
  auto directions = [&](matrixf& d, index dims, index first, index count, std::uint64_t stream) {
    d.setZero(f.features(), dims);
    mint::rng r(o.seed, stream);
    for (index i = first; i < first + count; ++i) {
      double norm = 0;
      do {
        r.fill_normal(tensor_view<float>(d.row(i).data(), {dims}, {1}));
        norm = d.row(i).template cast<double>().norm();
      } while (norm == 0);
      d.row(i) /= float(norm);
    }
  };
  // The row-major matrixf keeps a row contiguous, as the view above assumes.
  directions(f.dictionary_a_, o.dims_a, 0, o.shared + o.exclusive_a, 0xA);
  directions(f.dictionary_b_, o.dims_b, 0, o.shared, 0xB);
  matrixf exclusive_b;
  directions(exclusive_b, o.dims_b, 0, o.exclusive_b, 0xBE);
  f.dictionary_b_.bottomRows(o.exclusive_b) = exclusive_b.topRows(o.exclusive_b);
}

template <class T>
void paired_synthetic_core<T>::sample(const dictionary::paired_synthetic_features& f, mint::rng& r, index n, matrix<T>& xa,
                                      matrix<T>& xb, matrix<T>* coefficients) {
  if (n < 0)
    throw argument_error("mint::dictionary::paired_synthetic_features::sample", "n", detail::str("is ", n), "needs n >= 0");
  const auto& o = f.options_;
  const double lo = o.min_coefficient, width = o.max_coefficient - o.min_coefficient;
  matrix<T> c = matrix<T>::Zero(n, f.features());
  for (index s = 0; s < n; ++s)
    for (index i = 0; i < c.cols(); ++i)
      if (r.uniform() < o.firing_probability) c(s, i) = T(lo + width * r.uniform());
  xa.noalias() = c * f.dictionary_a_;
  xb.noalias() = c * f.dictionary_b_;
  if (coefficients) *coefficients = std::move(c);
}

template <class T, class U>
double mmcs_core<T, U>::run(const tensor_view<const T>& lv, const tensor_view<const U>& tv) {
  const char* fn = "mint::dictionary::mmcs";
  if (lv.rank() != 2) throw shape_error(fn, "learned", detail::str("has rank ", lv.rank()), "needs rank 2 [features, dims]");
  if (tv.rank() != 2) throw shape_error(fn, "truth", detail::str("has rank ", tv.rank()), "needs rank 2 [features, dims]");
  if (lv.extent(1) != tv.extent(1))
    throw shape_error(fn, "learned", detail::str("has ", lv.extent(1), " columns"),
                      detail::str("needs ", tv.extent(1), ", the columns (dims) of truth"));
  if (lv.extent(0) < 1 || tv.extent(0) < 1)
    throw shape_error(fn, "learned", detail::str("has ", lv.extent(0), " rows and truth ", tv.extent(0)),
                      "needs at least one row each");
  auto unit_rows = [](auto&& v) {
    matrixd m = as_matrix(v).template cast<double>();
    for (index i = 0; i < m.rows(); ++i) {
      const double norm = m.row(i).norm();
      if (norm > 0) m.row(i) /= norm;
    }
    return m;
  };
  const matrixd l = unit_rows(lv), t = unit_rows(tv);
  const matrixd cosines = (t * l.transpose()).cwiseAbs();
  return cosines.rowwise().maxCoeff().mean();
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_SYNTHETIC(CORE)                   \
  CORE(struct mint::detail::synthetic_core<float>)  \
  CORE(struct mint::detail::paired_synthetic_core<float>)  \
  MINT_CORE_FD2(CORE, mint::detail::mmcs_core)
MINT_CORES_DICTIONARY_SYNTHETIC(MINT_CORE)
