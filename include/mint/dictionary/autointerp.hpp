// Automated interpretability (Bills et al. 2023), with the language model left to the
// caller: an explainer turns a feature's top-activating (and some random) examples into an
// explanation; a simulator predicts per-token activations of held-out examples from the
// explanation alone; the score is the Pearson correlation of simulated and true activations
// over the held-out tokens (top and random mixed), and over equal numbers of top and random
// examples (balanced). mint does the sampling, the seeded split, the batching and the
// scoring; the two callables are any C++ callables (an LLM client, or the token-set ones
// here). Cost: the callables' calls (one explain and one or n_held_out simulate per feature)
// plus O(held-out tokens) per feature; gathering examples O(rows latents).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"

namespace mint::dictionary {

/// A sequence of token ids and a feature's true activation on each of them.
struct feature_example {
  std::vector<std::int64_t> tokens;
  std::vector<double> activations;  ///< one per token
};

/// What the protocol reads of one feature: its top-activating examples and random ones.
struct feature_examples {
  std::vector<feature_example> top;     ///< sequences where it fires most (any order; sorted by max activation)
  std::vector<feature_example> random;  ///< sequences drawn at random (its background)
};

/// Turns a feature's explanation examples into an explanation.
template <class E>
concept explainer = std::invocable<E&, const std::vector<feature_example>&> &&
                    std::convertible_to<std::invoke_result_t<E&, const std::vector<feature_example>&>, std::string>;

/// Predicts a feature's activation on each token of one sequence from the explanation alone.
template <class S>
concept simulator = std::invocable<S&, const std::string&, const std::vector<std::int64_t>&> &&
                    std::convertible_to<std::invoke_result_t<S&, const std::string&, const std::vector<std::int64_t>&>,
                                        std::vector<double>>;

/// As simulator, for all of a feature's held-out sequences in one call (one request to a batch API).
template <class S>
concept batch_simulator =
    std::invocable<S&, const std::string&, const std::vector<std::vector<std::int64_t>>&> &&
    std::convertible_to<std::invoke_result_t<S&, const std::string&, const std::vector<std::vector<std::int64_t>>&>,
                        std::vector<std::vector<double>>>;

/// Knobs of gather_examples.
struct gather_options {
  index top = 20;          ///< top sequences per latent, by their largest activation
  index random = 20;       ///< random sequences per latent, drawn from the others
  std::uint64_t seed = 0;  ///< seeds the random draws (latent j's draws are its own)
};

/// Knobs of score_features.
struct autointerp_options {
  index explain_top = 10;     ///< top examples the explainer sees (>= 1)
  index score_top = 10;       ///< top examples held out for scoring
  index explain_random = 5;   ///< random examples the explainer sees
  index score_random = 20;    ///< random examples held out for scoring
  std::uint64_t seed = 0;     ///< seeds the split (each feature draws from its own stream)
  std::vector<index> features{};  ///< indices into the examples to score (empty: all, in order)
};

/// One feature's result.
struct feature_score {
  index feature = 0;            ///< index into examples_per_feature
  std::string explanation;      ///< the explainer's text
  double correlation = 0;       ///< Pearson r over every held-out token (0 if either side is constant)
  double balanced_correlation = 0;  ///< r over equal numbers of held-out top and random examples
  index held_out_tokens = 0;    ///< tokens behind `correlation`
  index held_out_top = 0;       ///< held-out top examples
  index held_out_random = 0;    ///< held-out random examples
};

/// The built-in explainer for features that fire on tokens: the (up to) max_tokens token ids of
/// highest mean activation over their occurrences in the examples (ties: smaller id; means <= 0
/// left out), written "tokens: 12:0.93 45:0.88" (id:mean, best first).
struct token_explainer {
  index max_tokens = 5;
  MINT_LAZY std::string operator()(const std::vector<feature_example>& examples) const;
};

/// The built-in simulator: parses "tokens: id[:weight] ..." and predicts each token's weight (1
/// when none is written) if it is listed, else 0. Refuses another text with a mint::argument_error.
struct token_simulator {
  MINT_LAZY std::vector<double> operator()(const std::string& explanation, const std::vector<std::int64_t>& tokens) const;
};

}  // namespace mint::dictionary

namespace mint::detail {

/// gather_examples over float and double codes (mint/core/compiled.hpp).
template <class T>
struct autointerp_core {
  static std::vector<dictionary::feature_examples> gather(const tensor_view<const T>& codes, const std::vector<std::int64_t>& tokens,
                                                          index sequences, index positions, const dictionary::gather_options& o);
};

/// The protocol's parts that have no scalar type (the split, the checks, Pearson's r, the token
/// explainer and simulator): a core over char (mint/core/compiled.hpp).
template <class C = char>
struct autointerp_protocol_core {
  /// Feature f's explanation examples (top first, best first) and held-out ones (top, then random),
  /// checked; n_top receives how many held-out ones are top.
  static void split(const dictionary::feature_examples& f, index feature, const dictionary::autointerp_options& o,
                    std::vector<dictionary::feature_example>& explain, std::vector<dictionary::feature_example>& held_out, index& n_top);
  /// Checks the simulator's predictions of held-out example e.
  static void check_prediction(const std::vector<double>& predicted, const dictionary::feature_example& e, index feature, index example);
  /// The correlations of `predicted` (one vector per held-out example) against the truth.
  static void score(const std::vector<dictionary::feature_example>& held_out, index n_top,
                    const std::vector<std::vector<double>>& predicted, dictionary::feature_score& out);
  static double pearson(std::span<const double> a, std::span<const double> b);
  static void check_options(const dictionary::autointerp_options& o, index features);
  static std::string explain_tokens(const std::vector<dictionary::feature_example>& examples, index max_tokens);
  static std::vector<double> simulate_tokens(const std::string& explanation, const std::vector<std::int64_t>& tokens);
};

}  // namespace mint::detail

namespace mint::dictionary {

/// Per latent, its `options.top` sequences of largest activation (best first; ties: smaller
/// sequence; only sequences where it fires, code > 0) and `options.random` other sequences drawn
/// uniformly without replacement, each with its tokens and the latent's code at every position.
/// `codes`: [sequences * positions, latents] (rows sequence-major, as sequence_refs numbers them)
/// or [sequences, positions, latents]; `tokens`: [sequences, positions] integer ids.
template <tensor Z, tensor K>
std::vector<feature_examples> gather_examples(const Z& codes, const K& tokens, const gather_options& options = {}) {
  using V = std::remove_const_t<value_t<const K>>;
  static_assert(std::is_integral_v<V>, "gather_examples: tokens needs integer token ids");
  const char* fn = "mint::dictionary::gather_examples";
  const tensor_view<const V> tv = mint::view(tokens);
  if (tv.rank() != 2)
    throw shape_error(fn, "tokens", "has extents " + detail::shape_string(tv.extents()), "needs rank 2 [sequences, positions]");
  std::vector<std::int64_t> ids(std::size_t(tv.extent(0) * tv.extent(1)));
  for (index s = 0; s < tv.extent(0); ++s)
    for (index t = 0; t < tv.extent(1); ++t) ids[std::size_t(s * tv.extent(1) + t)] = std::int64_t(tv(s, t));
  return detail::autointerp_core<std::remove_const_t<value_t<const Z>>>::gather(mint::view(codes), ids, tv.extent(0), tv.extent(1),
                                                                               options);
}

/// The protocol: for each chosen feature, split its examples (seeded), ask `explain` for an
/// explanation of the explanation examples, ask `simulate` for predictions on the held-out ones
/// (one call per sequence, or one call per feature for a batch_simulator), and score. Features
/// go one by one, in order; the callables are called from the calling thread only.
template <explainer E, class S>
  requires simulator<S> || batch_simulator<S>
std::vector<feature_score> score_features(const std::vector<feature_examples>& examples_per_feature, E&& explain, S&& simulate,
                                          const autointerp_options& options = {}) {
  using core = detail::autointerp_protocol_core<>;
  core::check_options(options, index(examples_per_feature.size()));
  std::vector<index> chosen = options.features;
  if (chosen.empty()) {
    chosen.resize(examples_per_feature.size());
    std::iota(chosen.begin(), chosen.end(), index(0));
  }
  std::vector<feature_score> out;
  out.reserve(chosen.size());
  std::vector<feature_example> explain_set, held_out;
  for (const index j : chosen) {
    feature_score r;
    r.feature = j;
    core::split(examples_per_feature[std::size_t(j)], j, options, explain_set, held_out, r.held_out_top);
    r.explanation = std::string(explain(std::as_const(explain_set)));
    std::vector<std::vector<double>> predicted;
    if constexpr (simulator<S>) {
      for (const auto& e : held_out) predicted.push_back(std::vector<double>(simulate(std::as_const(r.explanation), e.tokens)));
    } else {
      std::vector<std::vector<std::int64_t>> sequences;
      for (const auto& e : held_out) sequences.push_back(e.tokens);
      predicted = std::vector<std::vector<double>>(simulate(std::as_const(r.explanation), std::as_const(sequences)));
      if (predicted.size() != held_out.size())
        throw shape_error("mint::dictionary::score_features", "simulate",
                          detail::str("returned ", predicted.size(), " sequences for feature ", j),
                          detail::str("needs one per held-out example, ", held_out.size()));
    }
    for (std::size_t e = 0; e < held_out.size(); ++e) core::check_prediction(predicted[e], held_out[e], j, index(e));
    core::score(held_out, r.held_out_top, predicted, r);
    out.push_back(std::move(r));
  }
  return out;
}

template <class>
std::string token_explainer::operator()(const std::vector<feature_example>& examples) const {
  return detail::autointerp_protocol_core<>::explain_tokens(examples, max_tokens);
}

template <class>
std::vector<double> token_simulator::operator()(const std::string& explanation, const std::vector<std::int64_t>& tokens) const {
  return detail::autointerp_protocol_core<>::simulate_tokens(explanation, tokens);
}

}  // namespace mint::dictionary

namespace mint::detail {
#if MINT_CORE_BODIES

template <class T>
std::vector<dictionary::feature_examples> autointerp_core<T>::gather(const tensor_view<const T>& zv, const std::vector<std::int64_t>& ids,
                                                                     index sequences, index positions,
                                                                     const dictionary::gather_options& o) {
  const char* fn = "mint::dictionary::gather_examples";
  if (o.top < 0 || o.random < 0)
    throw argument_error(fn, "options", detail::str("has top ", o.top, " and random ", o.random), "needs both >= 0");
  if (zv.rank() < 2 || zv.rank() > 3 || (zv.rank() == 3 && (zv.extent(0) != sequences || zv.extent(1) != positions)))
    throw shape_error(fn, "codes", "has extents " + detail::shape_string(zv.extents()),
                      detail::str("needs [sequences * positions = ", sequences * positions, ", latents] or [", sequences, ", ",
                                  positions, ", latents], as tokens [sequences, positions]"));
  std::vector<dictionary::feature_examples> out;
  visit_matrix(zv, [&](const auto& z) {
    if (z.rows() != sequences * positions)
      throw shape_error(fn, "codes", detail::str("has ", z.rows(), " rows"),
                        detail::str("needs sequences * positions = ", sequences * positions, ", one per token"));
    const index m = z.cols();
    out.resize(std::size_t(m));
    // Each sequence's largest code per latent: the ranking key.
    matrixd peak(sequences, m);
    for (index s = 0; s < sequences; ++s)
      peak.row(s) = z.middleRows(s * positions, positions).template cast<double>().colwise().maxCoeff();
    if (positions == 0) peak.setZero();
    auto example = [&](index s, index j) {
      dictionary::feature_example e;
      e.tokens.assign(ids.begin() + s * positions, ids.begin() + (s + 1) * positions);
      e.activations.resize(std::size_t(positions));
      for (index t = 0; t < positions; ++t) e.activations[std::size_t(t)] = double(z(s * positions + t, j));
      return e;
    };
    std::vector<index> order(static_cast<std::size_t>(sequences)), rest;
    for (index j = 0; j < m; ++j) {
      std::iota(order.begin(), order.end(), index(0));
      const auto firing = std::partition(order.begin(), order.end(), [&](index s) { return peak(s, j) > 0; });
      const index n_top = std::min<index>(o.top, index(firing - order.begin()));
      std::partial_sort(order.begin(), order.begin() + n_top, firing,
                        [&](index a, index b) { return peak(a, j) > peak(b, j) || (peak(a, j) == peak(b, j) && a < b); });
      auto& f = out[std::size_t(j)];
      for (index i = 0; i < n_top; ++i) f.top.push_back(example(order[std::size_t(i)], j));
      // The random ones from the sequences not taken as top, in sequence order, then shuffled.
      rest.assign(order.begin() + n_top, order.end());
      std::sort(rest.begin(), rest.end());
      mint::rng r(o.seed, 2 * std::uint64_t(j));
      r.shuffle(rest.begin(), rest.end());
      const index n_random = std::min<index>(o.random, index(rest.size()));
      for (index i = 0; i < n_random; ++i) f.random.push_back(example(rest[std::size_t(i)], j));
    }
  });
  return out;
}

template <class C>
void autointerp_protocol_core<C>::check_options(const dictionary::autointerp_options& o, index features) {
  const char* fn = "mint::dictionary::score_features";
  if (features < 1) throw argument_error(fn, "examples_per_feature", "is empty", "needs at least one feature's examples");
  if (o.explain_top < 1) throw argument_error(fn, "options.explain_top", detail::str("is ", o.explain_top), "needs >= 1");
  if (o.score_top < 0 || o.explain_random < 0 || o.score_random < 0)
    throw argument_error(fn, "options", detail::str("has score_top ", o.score_top, ", explain_random ", o.explain_random, ", score_random ",
                                                    o.score_random),
                         "needs each >= 0");
  if (o.score_top + o.score_random < 1)
    throw argument_error(fn, "options", "has score_top = score_random = 0", "needs at least one held-out example to score");
  for (const index j : o.features)
    if (j < 0 || j >= features)
      throw argument_error(fn, "options.features", detail::str("holds ", j), detail::str("needs 0 <= feature < ", features));
}

template <class C>
void autointerp_protocol_core<C>::split(const dictionary::feature_examples& f, index feature, const dictionary::autointerp_options& o,
                                        std::vector<dictionary::feature_example>& explain,
                                        std::vector<dictionary::feature_example>& held_out, index& n_top) {
  const char* fn = "mint::dictionary::score_features";
  auto check = [&](const std::vector<dictionary::feature_example>& list, const char* which) {
    for (std::size_t e = 0; e < list.size(); ++e) {
      const auto& x = list[e];
      if (x.tokens.empty() || x.tokens.size() != x.activations.size())
        throw shape_error(fn, "examples_per_feature",
                          detail::str("has feature ", feature, "'s ", which, " example ", e, " with ", x.tokens.size(), " tokens and ",
                                      x.activations.size(), " activations"),
                          "needs one activation per token, and at least one token");
      for (const double a : x.activations)
        if (!std::isfinite(a))
          throw numeric_error(fn, "examples_per_feature", detail::str("has a NaN or infinite activation in feature ", feature, "'s ", which,
                                                                      " example ", e),
                              "needs finite activations");
    }
  };
  check(f.top, "top");
  check(f.random, "random");
  if (f.top.empty())
    throw argument_error(fn, "examples_per_feature", detail::str("has no top examples for feature ", feature),
                         "needs at least one to explain");
  const index want_top = o.explain_top + o.score_top;
  auto peak = [](const dictionary::feature_example& e) { return *std::max_element(e.activations.begin(), e.activations.end()); };
  // The best explain_top + score_top top examples (ties: given order), then a seeded shuffle splits them.
  std::vector<index> top(f.top.size());
  std::iota(top.begin(), top.end(), index(0));
  std::stable_sort(top.begin(), top.end(), [&](index a, index b) { return peak(f.top[std::size_t(a)]) > peak(f.top[std::size_t(b)]); });
  top.resize(std::size_t(std::min<index>(want_top, index(top.size()))));
  std::vector<index> random(std::size_t(std::min<index>(o.explain_random + o.score_random, index(f.random.size()))));
  std::iota(random.begin(), random.end(), index(0));
  mint::rng r(o.seed, 2 * std::uint64_t(feature) + 1);  // odd streams: gather_examples draws from the even ones
  r.shuffle(top.begin(), top.end());
  r.shuffle(random.begin(), random.end());
  // Fewer than asked for: each side keeps its share (at least one to explain).
  auto explain_count = [](index have, index e, index s) {
    if (have >= e + s || e + s == 0) return std::min(have, e);
    return std::max<index>(std::min<index>(have, e > 0 ? 1 : 0), index(std::llround(double(have) * double(e) / double(e + s))));
  };
  const index top_explain = explain_count(index(top.size()), o.explain_top, o.score_top);
  const index random_explain = explain_count(index(random.size()), o.explain_random, o.score_random);
  explain.clear();
  held_out.clear();
  std::vector<index> shown(top.begin(), top.begin() + top_explain);
  std::sort(shown.begin(), shown.end());  // best first, as an LLM prompt would list them
  for (const index i : shown) explain.push_back(f.top[std::size_t(i)]);
  for (index i = 0; i < random_explain; ++i) explain.push_back(f.random[std::size_t(random[std::size_t(i)])]);
  for (std::size_t i = std::size_t(top_explain); i < top.size(); ++i) held_out.push_back(f.top[std::size_t(top[i])]);
  n_top = index(held_out.size());
  for (std::size_t i = std::size_t(random_explain); i < random.size(); ++i) held_out.push_back(f.random[std::size_t(random[i])]);
  if (held_out.empty())
    throw argument_error(fn, "examples_per_feature",
                         detail::str("has ", f.top.size(), " top and ", f.random.size(), " random examples for feature ", feature),
                         "needs at least one example left to score after the explanation examples");
}

template <class C>
void autointerp_protocol_core<C>::check_prediction(const std::vector<double>& p, const dictionary::feature_example& e, index feature,
                                                   index example) {
  const char* fn = "mint::dictionary::score_features";
  if (p.size() != e.tokens.size())
    throw shape_error(fn, "simulate", detail::str("returned ", p.size(), " activations for held-out example ", example, " of feature ", feature),
                      detail::str("needs one per token, ", e.tokens.size()));
  for (std::size_t t = 0; t < p.size(); ++t)
    if (!std::isfinite(p[t]))
      throw numeric_error(fn, "simulate",
                          detail::str("returned a NaN or infinity at token ", t, " of held-out example ", example, " of feature ", feature),
                          "needs finite predictions");
}

template <class C>
double autointerp_protocol_core<C>::pearson(std::span<const double> a, std::span<const double> b) {
  if (a.empty()) return 0;
  const Eigen::Map<const Eigen::ArrayXd> x(a.data(), index(a.size())), y(b.data(), index(b.size()));
  const Eigen::ArrayXd dx = x - x.mean(), dy = y - y.mean();
  const double sxx = dx.square().sum(), syy = dy.square().sum();
  // A constant side carries no information on the other: score 0, not NaN.
  if (!(sxx > 0) || !(syy > 0)) return 0;
  return std::clamp((dx * dy).sum() / std::sqrt(sxx * syy), -1.0, 1.0);
}

template <class C>
void autointerp_protocol_core<C>::score(const std::vector<dictionary::feature_example>& held_out, index n_top,
                                        const std::vector<std::vector<double>>& predicted, dictionary::feature_score& out) {
  const index n_random = index(held_out.size()) - n_top, balanced = std::min(n_top, n_random);
  std::vector<double> truth, guess, balanced_truth, balanced_guess;
  for (std::size_t e = 0; e < held_out.size(); ++e) {
    const auto& x = held_out[e];
    truth.insert(truth.end(), x.activations.begin(), x.activations.end());
    guess.insert(guess.end(), predicted[e].begin(), predicted[e].end());
    // The first `balanced` of each kind (both already in shuffled order).
    if (index(e) < balanced || (index(e) >= n_top && index(e) < n_top + balanced)) {
      balanced_truth.insert(balanced_truth.end(), x.activations.begin(), x.activations.end());
      balanced_guess.insert(balanced_guess.end(), predicted[e].begin(), predicted[e].end());
    }
  }
  out.correlation = pearson(truth, guess);
  out.balanced_correlation = pearson(balanced_truth, balanced_guess);
  out.held_out_tokens = index(truth.size());
  out.held_out_top = n_top;
  out.held_out_random = n_random;
}

template <class C>
std::string autointerp_protocol_core<C>::explain_tokens(const std::vector<dictionary::feature_example>& examples, index max_tokens) {
  if (max_tokens < 1)
    throw argument_error("mint::dictionary::token_explainer", "max_tokens", detail::str("is ", max_tokens), "needs >= 1");
  // Sum and count of the activation per token id, over every occurrence.
  std::vector<std::pair<std::int64_t, double>> seen;  // (token, activation), sorted by token below
  for (const auto& e : examples) {
    if (e.tokens.size() != e.activations.size())
      throw shape_error("mint::dictionary::token_explainer", "examples",
                        detail::str("has an example with ", e.tokens.size(), " tokens and ", e.activations.size(), " activations"),
                        "needs one activation per token");
    for (std::size_t t = 0; t < e.tokens.size(); ++t) seen.emplace_back(e.tokens[t], e.activations[t]);
  }
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::int64_t, double>> means;
  for (std::size_t i = 0; i < seen.size();) {
    std::size_t k = i;
    double sum = 0;
    for (; k < seen.size() && seen[k].first == seen[i].first; ++k) sum += seen[k].second;
    const double mean = sum / double(k - i);
    if (mean > 0) means.emplace_back(seen[i].first, mean);
    i = k;
  }
  const auto n = std::min<std::size_t>(means.size(), std::size_t(max_tokens));
  std::partial_sort(means.begin(), means.begin() + std::ptrdiff_t(n), means.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
  std::string text = "tokens:";
  char buffer[64];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buffer, sizeof buffer, " %lld:%.6g", static_cast<long long>(means[i].first), means[i].second);
    text += buffer;
  }
  return text;
}

template <class C>
std::vector<double> autointerp_protocol_core<C>::simulate_tokens(const std::string& explanation, const std::vector<std::int64_t>& tokens) {
  const char* fn = "mint::dictionary::token_simulator";
  const std::string head = "tokens:";
  if (explanation.compare(0, head.size(), head) != 0)
    throw argument_error(fn, "explanation", "is '" + explanation.substr(0, 40) + "'", "needs the form 'tokens: id[:weight] ...'");
  std::vector<std::pair<std::int64_t, double>> listed;
  std::size_t i = head.size();
  while (i < explanation.size()) {
    if (explanation[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t used = 0;
    std::pair<std::int64_t, double> entry{0, 1.0};
    try {
      const std::string rest = explanation.substr(i);
      entry.first = std::stoll(rest, &used);
      if (used < rest.size() && rest[used] == ':') {
        std::size_t more = 0;
        entry.second = std::stod(rest.substr(used + 1), &more);
        used += 1 + more;
      }
    } catch (const std::logic_error&) {
      used = 0;
    }
    if (used == 0 || (i + used < explanation.size() && explanation[i + used] != ' '))
      throw argument_error(fn, "explanation", "has '" + explanation.substr(i, 20) + "'", "needs token ids, each optionally ':weight'");
    listed.push_back(entry);
    i += used;
  }
  std::vector<double> out(tokens.size(), 0.0);
  for (std::size_t t = 0; t < tokens.size(); ++t)
    for (const auto& [token, weight] : listed)
      if (token == tokens[t]) {
        out[t] = weight;
        break;
      }
  return out;
}

#endif  // MINT_CORE_BODIES
}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_AUTOINTERP(CORE)          \
  MINT_CORE_FD(CORE, mint::detail::autointerp_core) \
  CORE(struct mint::detail::autointerp_protocol_core<>)
MINT_CORES_DICTIONARY_AUTOINTERP(MINT_CORE)
