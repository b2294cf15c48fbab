// Linear probes per layer: does a layer's activation linearly encode a property of the input?
// A logistic probe (L2, mint's Newton solver; one-vs-rest for more than two classes) or a ridge
// probe (closed form) per site, fitted on a seeded training split of the rows and scored on the
// held-out rest: accuracy for classes, R^2 for real targets. Cost per site: the logistic
// probe's Newton steps (n d^2 + d^3 / 3 each, once per class beyond two), or for ridge one
// n d min(n, d) product and a min(n, d)^3 / 3 Cholesky factor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"
#include "mint/steering/probe.hpp"
#include "mint/steering/reading.hpp"

namespace mint {

/// What a probe predicts.
enum class probe_task : std::uint8_t {
  classification,  ///< int labels: logistic probes, scored by accuracy
  regression,      ///< real targets: a ridge probe, scored by R^2
};

/// How the probes are fitted and scored.
struct layer_probe_options {
  double test_fraction = 0.25;  ///< share of rows held out for the test score; in (0, 1)
  std::uint64_t seed = 0;       ///< the split's seed (mint::rng)
  bool stratify = true;         ///< classification: hold out the test fraction of each class
  probe_options logistic{};     ///< the logistic probe's penalty and Newton stopping rule
  double ridge = 1.0;           ///< ridge's penalty lambda |w|^2; >= 0 (0 only with full-rank rows)
};

/// Rows of a split: indices into the data, ascending.
struct probe_split {
  std::vector<index> train, test;
};

/// One fitted site.
struct layer_probe {
  std::string site;
  int layer = -1;               ///< the site's layer (probe_layers); its place in the list (fit_probes)
  double train_score = 0;       ///< accuracy or R^2 on the training rows
  double test_score = 0;        ///< accuracy or R^2 on the held-out rows
  /// [probes, features]: one probe for regression or two classes (pointing to the larger
  /// label), one per class (one-vs-rest) for more; score_k = weights.row(k) . x + bias[k].
  matrixd weights;
  std::vector<double> bias;
  bool converged = true;        ///< every logistic probe met its tolerance (ridge: always)
};

/// Probes of every site, in the order given.
struct probe_table {
  probe_task task = probe_task::classification;
  std::vector<int> classes;     ///< classification: the labels, ascending (the rows of weights)
  index train_rows = 0, test_rows = 0;
  std::vector<layer_probe> rows;
};

namespace detail {

/// The split, compiled once (mint/core/compiled.hpp); C is always char.
template <class C>
struct probe_split_core {
  static probe_split split(index rows, const std::vector<int>* labels, double test_fraction, std::uint64_t seed,
                           const char* function);
};

#if MINT_CORE_BODIES
/// Each row's share of the test set: per class when stratified (each class keeps one training
/// row at least), else of all rows (at least one row on each side).
template <class C>
probe_split probe_split_core<C>::split(index rows, const std::vector<int>* labels, double test_fraction,
                                       std::uint64_t seed, const char* function) {
  if (!(test_fraction > 0 && test_fraction < 1))
    throw argument_error(function, "options.test_fraction", detail::str("is ", test_fraction), "needs a value in (0, 1)");
  if (rows < 2)
    throw shape_error(function, "rows", detail::str("are ", rows), "needs at least two rows (one to fit, one to test)");
  std::map<int, std::vector<index>> groups;
  for (index i = 0; i < rows; ++i) groups[labels ? (*labels)[std::size_t(i)] : 0].push_back(i);
  rng r(seed);
  probe_split out;
  for (auto& [label, members] : groups) {
    r.shuffle(members.begin(), members.end());
    const index n = index(members.size());
    const index held = std::clamp<index>(index(std::llround(double(n) * test_fraction)), labels ? 0 : 1, n - 1);
    out.test.insert(out.test.end(), members.begin(), members.begin() + held);
    out.train.insert(out.train.end(), members.begin() + held, members.end());
  }
  if (out.test.empty())
    throw shape_error(function, "rows", detail::str("are ", rows, " in ", groups.size(), " classes, so test_fraction ",
                                                    test_fraction, " holds out none"),
                      "needs more rows per class, or a larger test_fraction");
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.test.begin(), out.test.end());
  return out;
}
#endif  // MINT_CORE_BODIES

/// One site's probe, compiled once per scalar type.
template <class T>
struct layer_probe_core {
  static layer_probe classify(const matrix<T>& x, const std::vector<int>& labels, const std::vector<int>& classes,
                              const probe_split& split, const layer_probe_options& options);
  static layer_probe regress(const matrix<T>& x, const std::vector<double>& targets, const probe_split& split,
                             const layer_probe_options& options);
};

#if MINT_CORE_BODIES
template <class T>
layer_probe layer_probe_core<T>::classify(const matrix<T>& x, const std::vector<int>& labels,
                                          const std::vector<int>& classes, const probe_split& split,
                                          const layer_probe_options& options) {
  const index d = x.cols(), k = classes.size() == 2 ? 1 : index(classes.size());
  layer_probe out;
  out.weights.resize(k, d);
  out.bias.resize(std::size_t(k));
  // Two classes: one probe for the larger label; more: one per class against the rest.
  for (index c = 0; c < k; ++c) {
    const int positive_label = classes[std::size_t(k == 1 ? 1 : c)];
    index positives = 0;
    for (const index i : split.train) positives += labels[std::size_t(i)] == positive_label;
    matrix<T> positive(positives, d), negative(index(split.train.size()) - positives, d);
    index p = 0, q = 0;
    for (const index i : split.train) {
      if (labels[std::size_t(i)] == positive_label) positive.row(p++) = x.row(i);
      else negative.row(q++) = x.row(i);
    }
    const probe_result<T> fit = probe_core<T>::fit(positive, negative, options.logistic);
    for (index j = 0; j < d; ++j) out.weights(c, j) = double(fit.weights[std::size_t(j)]);
    out.bias[std::size_t(c)] = fit.bias;
    out.converged = out.converged && fit.converged;
  }
  const Eigen::Map<const Eigen::VectorXd> bias(out.bias.data(), k);
  const auto accuracy = [&](const std::vector<index>& rows) {
    index right = 0;
    for (const index i : rows) {
      const Eigen::VectorXd score = out.weights * x.row(i).transpose().template cast<double>() + bias;
      index best = 0;
      if (k == 1) best = score(0) > 0 ? 1 : 0;
      else score.maxCoeff(&best);
      right += classes[std::size_t(best)] == labels[std::size_t(i)];
    }
    return double(right) / double(rows.size());
  };
  out.train_score = accuracy(split.train);
  out.test_score = accuracy(split.test);
  return out;
}

template <class T>
layer_probe layer_probe_core<T>::regress(const matrix<T>& x, const std::vector<double>& targets,
                                         const probe_split& split, const layer_probe_options& options) {
  const index n = index(split.train.size()), d = x.cols();
  matrixd a(n, d);
  Eigen::VectorXd y(n);
  for (index r = 0; r < n; ++r) {
    a.row(r) = x.row(split.train[std::size_t(r)]).template cast<double>();
    y(r) = targets[std::size_t(split.train[std::size_t(r)])];
  }
  // Centred, so the intercept is the means' difference and goes unpenalised.
  const Eigen::RowVectorXd mean = a.colwise().mean();
  const double y_mean = y.mean();
  a.rowwise() -= mean;
  y.array() -= y_mean;
  Eigen::VectorXd w;
  // (A'A + lambda I) w = A'y, or through the n x n system w = A'(AA' + lambda I)^-1 y: the smaller.
  if (d <= n) {
    Eigen::MatrixXd gram = a.transpose() * a;
    gram.diagonal().array() += options.ridge;
    const Eigen::LDLT<Eigen::MatrixXd> f(gram);
    w = f.solve(a.transpose() * y);
  } else {
    Eigen::MatrixXd gram = a * a.transpose();
    gram.diagonal().array() += options.ridge;
    const Eigen::LDLT<Eigen::MatrixXd> f(gram);
    w = a.transpose() * f.solve(y);
  }
  if (!w.allFinite())
    throw numeric_error("mint::fit_probes", "options.ridge", detail::str("is ", options.ridge, " and the system is singular"),
                        "needs ridge > 0, or rows whose features are linearly independent");
  layer_probe out;
  out.weights = w.transpose();
  out.bias = {y_mean - mean.dot(w)};
  // R^2 = 1 - SS_res / SS_tot about the scored rows' own mean (scikit-learn's r2_score: 1 for a
  // constant target predicted exactly, else 0 when SS_tot is 0).
  const auto r2 = [&](const std::vector<index>& rows) {
    double mean_y = 0, residual = 0, total = 0;
    for (const index i : rows) mean_y += targets[std::size_t(i)];
    mean_y /= double(rows.size());
    for (const index i : rows) {
      const double t = targets[std::size_t(i)], e = t - (x.row(i).template cast<double>().dot(w) + out.bias[0]);
      residual += e * e, total += (t - mean_y) * (t - mean_y);
    }
    return total > 0 ? 1 - residual / total : residual == 0 ? 1.0 : 0.0;
  };
  out.train_score = r2(split.train);
  out.test_score = r2(split.test);
  return out;
}
#endif  // MINT_CORE_BODIES

/// Checks the activations (one [rows, features] matrix per site) against the label count.
template <class T>
void check_probe_data(const std::vector<std::string>& sites, const std::vector<matrix<T>>& activations, std::size_t labels,
                      const char* function) {
  if (activations.empty())
    throw argument_error(function, "activations", "are empty", "needs one [rows, features] matrix per site");
  if (sites.size() != activations.size())
    throw shape_error(function, "sites", detail::str("has ", sites.size(), " names"),
                      detail::str("needs one per activation matrix (", activations.size(), ")"));
  for (std::size_t s = 0; s < activations.size(); ++s) {
    const auto& x = activations[s];
    if (x.rows() < 1 || x.cols() < 1 || std::size_t(x.rows()) != labels)
      throw shape_error(function, "activations", detail::str("are [", x.rows(), ", ", x.cols(), "] at '", sites[s], "'"),
                        detail::str("needs one row per label (", labels, ") and at least one feature"));
    if (!x.allFinite())
      throw numeric_error(function, "activations", detail::str("hold NaN or infinity at '", sites[s], "'"),
                          "needs finite activations");
  }
}

}  // namespace detail

/// The seeded split fit_probes uses: options.test_fraction of the rows held out (stratified by
/// label when labels are given and options.stratify).
template <class C = char>
probe_split split_probe_rows(index rows, const std::vector<int>& labels, const layer_probe_options& options = {}) {
  if (!labels.empty() && index(labels.size()) != rows)
    throw shape_error("mint::split_probe_rows", "labels", detail::str("has ", labels.size(), " entries"),
                      detail::str("needs none or one per row (", rows, ")"));
  return detail::probe_split_core<C>::split(rows, labels.empty() || !options.stratify ? nullptr : &labels,
                                            options.test_fraction, options.seed, "mint::split_probe_rows");
}

namespace detail {

template <class T>
probe_table fit_probes(const std::vector<std::string>& sites, const std::vector<matrix<T>>& activations,
                       const std::vector<int>& labels, const layer_probe_options& options, const char* fn) {
  if (labels.empty()) throw argument_error(fn, "labels", "are empty", "needs one label per row");
  detail::check_probe_data(sites, activations, labels.size(), fn);
  probe_table out;
  out.classes = labels;
  std::sort(out.classes.begin(), out.classes.end());
  out.classes.erase(std::unique(out.classes.begin(), out.classes.end()), out.classes.end());
  if (out.classes.size() < 2)
    throw argument_error(fn, "labels", detail::str("hold one class (", out.classes[0], ")"), "needs at least two classes");
  const probe_split split = detail::probe_split_core<char>::split(
      index(labels.size()), options.stratify ? &labels : nullptr, options.test_fraction, options.seed, fn);
  for (const int c : out.classes) {
    const bool trained = std::any_of(split.train.begin(), split.train.end(), [&](index i) { return labels[std::size_t(i)] == c; });
    if (!trained)
      throw shape_error(fn, "labels", detail::str("leave class ", c, " out of the training rows"),
                        "needs every class among the training rows (use stratify, or more rows)");
  }
  out.train_rows = index(split.train.size()), out.test_rows = index(split.test.size());
  for (std::size_t s = 0; s < sites.size(); ++s) {
    layer_probe p = detail::layer_probe_core<T>::classify(activations[s], labels, out.classes, split, options);
    p.site = sites[s], p.layer = int(s);
    out.rows.push_back(std::move(p));
  }
  return out;
}

template <class T>
probe_table fit_probes(const std::vector<std::string>& sites, const std::vector<matrix<T>>& activations,
                       const std::vector<double>& targets, const layer_probe_options& options, const char* fn) {
  if (targets.empty()) throw argument_error(fn, "targets", "are empty", "needs one target per row");
  if (!(options.ridge >= 0) || !std::isfinite(options.ridge))
    throw argument_error(fn, "options.ridge", detail::str("is ", options.ridge), "needs a finite value >= 0");
  if (!std::all_of(targets.begin(), targets.end(), [](double t) { return std::isfinite(t); }))
    throw numeric_error(fn, "targets", "hold NaN or infinity", "needs finite targets");
  detail::check_probe_data(sites, activations, targets.size(), fn);
  const probe_split split =
      detail::probe_split_core<char>::split(index(targets.size()), nullptr, options.test_fraction, options.seed, fn);
  probe_table out;
  out.task = probe_task::regression;
  out.train_rows = index(split.train.size()), out.test_rows = index(split.test.size());
  for (std::size_t s = 0; s < sites.size(); ++s) {
    layer_probe p = detail::layer_probe_core<T>::regress(activations[s], targets, split, options);
    p.site = sites[s], p.layer = int(s);
    out.rows.push_back(std::move(p));
  }
  return out;
}

}  // namespace detail

/// Logistic probes of int labels (at least two distinct), one per site: activations[s] is
/// [rows, features] for sites[s], row i labelled labels[i].
template <class T>
probe_table fit_probes(const std::vector<std::string>& sites, const std::vector<matrix<T>>& activations,
                       const std::vector<int>& labels, const layer_probe_options& options = {}) {
  return detail::fit_probes(sites, activations, labels, options, "mint::fit_probes");
}

/// Ridge probes of real targets, one per site (activations as above).
template <class T>
probe_table fit_probes(const std::vector<std::string>& sites, const std::vector<matrix<T>>& activations,
                       const std::vector<double>& targets, const layer_probe_options& options = {}) {
  return detail::fit_probes(sites, activations, targets, options, "mint::fit_probes");
}

/// Where probe_layers reads.
struct probe_layers_options {
  /// Sites of [batch, pos, features...]; empty: the first layer's resid_pre and every layer's
  /// resid_post, in site order (as the logit lens).
  std::vector<std::string> sites{};
  std::vector<index> positions{};  ///< the token read per row, as reading_options::positions (empty: the last)
  index max_batch = 0;             ///< rows per forward; 0: all rows in one forward
  layer_probe_options probe{};
};

namespace detail {

template <runtime R, class Labels>
probe_table probe_layers_impl(R& model, const token_batch& tokens, const Labels& labels, const probe_layers_options& options) {
  const char* fn = "mint::probe_layers";
  if (index(labels.size()) != tokens.batch())
    throw shape_error(fn, "labels", detail::str("has ", labels.size(), " entries"),
                      detail::str("needs one per row of tokens (", tokens.batch(), ")"));
  reading_options read{block_boundary_sites(model.sites(), options.sites, fn), options.positions, options.max_batch};
  const auto activations = read_activations(model, tokens, read);
  probe_table out = detail::fit_probes(read.sites, activations, labels, options.probe, fn);
  for (auto& row : out.rows) row.layer = model.sites()[model.sites().at(row.site, fn)].layer;
  return out;
}

}  // namespace detail

/// Probes of a label per row of `tokens` at each site, read at each row's chosen token
/// (read_activations): logistic probes for int labels.
template <runtime R>
probe_table probe_layers(R& model, const token_batch& tokens, const std::vector<int>& labels,
                         const probe_layers_options& options = {}) {
  return detail::probe_layers_impl(model, tokens, labels, options);
}

/// Ridge probes for a real target per row.
template <runtime R>
probe_table probe_layers(R& model, const token_batch& tokens, const std::vector<double>& targets,
                         const probe_layers_options& options = {}) {
  return detail::probe_layers_impl(model, tokens, targets, options);
}

/// The table as Markdown: site, layer, train and test accuracy (or R^2), 4 decimals.
MINT_LAZY std::string to_markdown(const probe_table& table) {
  const char* score = table.task == probe_task::classification ? "accuracy" : "R^2";
  std::string out = detail::str("| site | layer | train ", score, " | test ", score, " |\n|---|---|---|---|\n");
  const auto fixed = [](double x) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4f", x);
    return std::string(buffer);
  };
  for (const auto& row : table.rows)
    out += detail::str("| ", row.site, " | ", row.layer, " | ", fixed(row.train_score), " | ", fixed(row.test_score), " |\n");
  return out;
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_EXPLAIN_PROBES(CORE)              \
  CORE(struct mint::detail::probe_split_core<char>)  \
  MINT_CORE_FD(CORE, mint::detail::layer_probe_core)
MINT_CORES_EXPLAIN_PROBES(MINT_CORE)
