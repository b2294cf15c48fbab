// Automated interpretability: the protocol's split, batching and scores on hand-made
// features with known answers, its errors, and the ground truth: an SAE trained on planted
// token-level features scores far above a random SAE of the same shape with the built-in
// token explainer and simulator.
#include "mint/dictionary/autointerp.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "mint/dictionary/feature_analysis.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/dictionary/train.hpp"

namespace dict = mint::dictionary;

// A named namespace: tests/dictionary/*.cpp build as one unit.
namespace autointerp_test {

// Planted token-level features, kept here rather than in synthetic.hpp: they exist to check the
// token explainer, and the library's users bring their own model's activations. A vocabulary of
// `vocab` tokens; feature i fires on `per_feature` distinct tokens; a token's activation is
// sum over the features firing on it of c * direction_i, c ~ Uniform[0.5, 1.5) drawn per
// occurrence; sequences are i.i.d. uniform tokens. Beside the features' `dims` dimensions,
// `context_dims` more hold a vector per position of norm `context_norm` (as a residual stream
// carries positional and contextual directions beside token features): what no token list
// predicts, and what a direction not aligned with a feature mixes in.
struct planted {
  mint::index vocab = 512, features = 128, dims = 32, per_feature = 3, sequences = 2000, positions = 16;
  mint::index context_dims = 16;
  double context_norm = 1.5;
  std::uint64_t seed = 1;
  mint::matrixf directions;                          // [features, dims + context_dims], unit rows, 0 in the context dims
  std::vector<std::vector<mint::index>> fires_on;    // per token, its features
  Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> tokens;  // [sequences, positions]
  mint::matrixf activations;                         // [sequences * positions, dims]

  void build() {
    mint::rng r(seed);
    mint::matrixf feature_part(features, dims);
    r.fill_normal(feature_part);
    feature_part.rowwise().normalize();
    directions = mint::matrixf::Zero(features, dims + context_dims);
    directions.leftCols(dims) = feature_part;
    fires_on.assign(std::size_t(vocab), {});
    std::vector<mint::index> ids(static_cast<std::size_t>(vocab));
    for (mint::index i = 0; i < features; ++i) {
      for (mint::index t = 0; t < vocab; ++t) ids[std::size_t(t)] = t;
      r.shuffle(ids.begin(), ids.end());
      for (mint::index k = 0; k < per_feature; ++k) fires_on[std::size_t(ids[std::size_t(k)])].push_back(i);
    }
    tokens.resize(sequences, positions);
    mint::matrixf coefficients = mint::matrixf::Zero(sequences * positions, features);
    for (mint::index s = 0; s < sequences; ++s)
      for (mint::index p = 0; p < positions; ++p) {
        const auto t = mint::index(r.below(std::uint64_t(vocab)));
        tokens(s, p) = t;
        for (const mint::index i : fires_on[std::size_t(t)]) coefficients(s * positions + p, i) = float(r.uniform(0.5, 1.5));
      }
    activations = coefficients * directions;
    mint::matrixf context(positions, context_dims);
    r.fill_normal(context);
    context.rowwise().normalize();
    for (mint::index row = 0; row < activations.rows(); ++row)
      activations.row(row).rightCols(context_dims) = float(context_norm) * context.row(row % positions);
  }
};

struct quartiles {
  double q1, median, q3;
};

quartiles quartiles_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::size_t(std::lround(q * double(v.size() - 1)))]; };
  return {at(0.25), at(0.5), at(0.75)};
}

// Scores of every latent of `sae` that fired in at least 4 sequences (a dead latent has nothing to explain).
std::vector<double> latent_scores(const dict::sae& sae, const planted& data, bool balanced) {
  const mint::matrixf codes = sae.encode(data.activations);
  const auto examples = dict::gather_examples(codes, data.tokens, {.top = 20, .random = 30, .seed = 3});
  dict::autointerp_options o{.seed = 4};
  for (mint::index j = 0; j < mint::index(examples.size()); ++j)
    if (examples[std::size_t(j)].top.size() >= 4) o.features.push_back(j);
  std::vector<double> out;
  for (const auto& s : dict::score_features(examples, dict::token_explainer{}, dict::token_simulator{}, o))
    out.push_back(balanced ? s.balanced_correlation : s.correlation);
  return out;
}

}  // namespace autointerp_test

TEST_CASE("autointerp: a trained SAE learns the true features and scores far above a random one") {
  // 128 planted features (3 tokens each of 512) in 32 dimensions, plus a position vector of norm
  // 1.5 in 16 more; 2000 sequences of 16 tokens; a ReLU SAE of 256 latents, 1500 steps of 128
  // rows, against the same SAE before training. Latents that fired in >= 4 sequences (all 256 of
  // both), default options, token explainer (5 tokens) and simulator. Measured (q1 / median / q3):
  //   correlation           trained 0.808 / 0.938 / 0.968   random 0.436 / 0.564 / 0.638
  //   balanced correlation  trained 0.833 / 0.948 / 0.976   random 0.497 / 0.630 / 0.713
  // A random direction mixes the position vector into its codes, which no token list predicts; a
  // trained latent aligned with a planted feature reads its tokens alone (the trained first
  // quartile holds the SAE's position latents). Without the position vector the random SAE
  // scored 0.79 (its codes were then a function of the token too, mostly of the one or two
  // features nearest it). The bounds leave about 0.03 on each side of the measurements.
  using namespace autointerp_test;
  planted data;
  data.build();
  dict::sae trained({.d_in = 48, .d_sae = 256, .architecture = dict::sae_architecture::relu}, 5);
  const dict::sae random = trained;
  dict::sae_train_options o{.batch_size = 128, .steps = 1500, .adam = {.lr = 3e-3, .warmup = 20}};
  o.loss.l1_coefficient = 0.3;
  o.dead_after_tokens = 5000;
  o.resample_every = 250;
  dict::sae_trainer<float> t(trained, o);
  auto source = dict::matrix_batches(data.activations, 6);
  t.train(source);
  const double recovered = dict::mmcs(trained.W_dec(), data.directions);
  MESSAGE("MMCS " << recovered);
  CHECK(recovered >= 0.75);
  for (const bool balanced : {false, true}) {
    CAPTURE(balanced);
    const auto a = latent_scores(trained, data, balanced), b = latent_scores(random, data, balanced);
    CHECK(a.size() >= 200);
    CHECK(b.size() >= 200);
    const auto qa = quartiles_of(a), qb = quartiles_of(b);
    MESSAGE("trained " << qa.q1 << " / " << qa.median << " / " << qa.q3 << ", random " << qb.q1 << " / " << qb.median << " / " << qb.q3);
    CHECK(qa.median >= 0.9);
    CHECK(qb.median <= (balanced ? 0.66 : 0.6));
    CHECK(qa.median - qb.median >= 0.25);
    CHECK(qa.q1 > qb.q3);
  }
}

TEST_CASE("autointerp: a known explanation scores 1, a constant simulator 0, and a seed fixes the split") {
  // Feature 0 fires 2.0 on token 7 and 0.5 on token 3; feature 1 is the same feature again.
  auto make = [](std::int64_t first, mint::index n) {
    std::vector<dict::feature_example> out;
    for (mint::index s = 0; s < n; ++s) {
      dict::feature_example e;
      for (mint::index p = 0; p < 6; ++p) {
        const std::int64_t t = (first + s * 5 + p * 3) % 11;
        e.tokens.push_back(t);
        e.activations.push_back(t == 7 ? 2.0 : t == 3 ? 0.5 : 0.0);
      }
      out.push_back(std::move(e));
    }
    return out;
  };
  dict::feature_examples f{make(0, 12), make(100, 12)};
  const std::vector<dict::feature_examples> features = {f, f};
  auto perfect = [](const std::string& explanation, const std::vector<std::int64_t>& tokens) {
    CHECK(explanation == "tokens: 7:2 3:0.5");
    std::vector<double> p;
    for (const auto t : tokens) p.push_back(t == 7 ? 2.0 : t == 3 ? 0.5 : 0.0);
    return p;
  };
  const auto s = dict::score_features(features, dict::token_explainer{}, perfect, {.seed = 1});
  REQUIRE(s.size() == 2);
  CHECK(s[0].correlation == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(s[0].balanced_correlation == doctest::Approx(1.0).epsilon(1e-12));
  // 12 examples of each kind, fewer than asked (10 + 10 top, 5 + 20 random): each split keeps its
  // share, 6 top to explain and 6 to score, round(12 * 5 / 25) = 2 random to explain and 10 to score.
  CHECK(s[0].held_out_top == 6);
  CHECK(s[0].held_out_random == 10);
  CHECK(s[0].held_out_tokens == 16 * 6);
  // The built-in pair recovers the same explanation and simulation.
  const auto b = dict::score_features(features, dict::token_explainer{}, dict::token_simulator{}, {.seed = 1});
  CHECK(b[0].correlation == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(b[0].explanation == "tokens: 7:2 3:0.5");
  // A constant prediction carries nothing: 0, not NaN.
  auto constant = [](const std::string&, const std::vector<std::int64_t>& tokens) { return std::vector<double>(tokens.size(), 0.25); };
  const auto c = dict::score_features(features, dict::token_explainer{}, constant, {.features = {1}});
  REQUIRE(c.size() == 1);
  CHECK(c[0].feature == 1);
  CHECK(c[0].correlation == 0.0);
  CHECK(c[0].balanced_correlation == 0.0);

  // A noisy simulator: the split (which examples are held out) shows in the score.
  auto noisy = [](const std::string&, const std::vector<std::int64_t>& tokens) {
    std::vector<double> p;
    for (const auto t : tokens) p.push_back(t == 7 ? 2.0 : double(t % 4) * 0.3);
    return p;
  };
  dict::feature_examples g{make(0, 40), make(3, 40)};
  for (std::size_t e = 0; e < g.top.size(); ++e) g.top[e].activations[0] += 0.01 * double(e);  // distinct peaks
  const std::vector<dict::feature_examples> one = {g};
  const auto r1 = dict::score_features(one, dict::token_explainer{}, noisy, {.seed = 9});
  const auto r2 = dict::score_features(one, dict::token_explainer{}, noisy, {.seed = 9});
  const auto r3 = dict::score_features(one, dict::token_explainer{}, noisy, {.seed = 10});
  CHECK(r1[0].correlation == r2[0].correlation);
  CHECK(r1[0].balanced_correlation == r2[0].balanced_correlation);
  CHECK(r1[0].explanation == r2[0].explanation);
  CHECK(r1[0].correlation != r3[0].correlation);
  // A batch simulator (one call per feature) gives what the per-sequence one gives.
  int calls = 0;
  auto batch = [&](const std::string& e, const std::vector<std::vector<std::int64_t>>& sequences) {
    ++calls;
    std::vector<std::vector<double>> out;
    for (const auto& tokens : sequences) out.push_back(noisy(e, tokens));
    return out;
  };
  const auto r4 = dict::score_features(one, dict::token_explainer{}, batch, {.seed = 9});
  CHECK(calls == 1);
  CHECK(r4[0].correlation == r1[0].correlation);
}

TEST_CASE("autointerp: gather_examples keeps the top sequences with every token's code, and seeded random ones") {
  // 5 sequences of 3 tokens, 2 latents. Latent 0 peaks in sequences 3 (0.9), 1 (0.5), 4 (0.5); latent 1 never fires.
  mint::matrixf z = mint::matrixf::Zero(15, 2);
  z(3 * 3 + 1, 0) = 0.9f;
  z(1 * 3 + 2, 0) = 0.5f;
  z(4 * 3 + 0, 0) = 0.5f;
  z(1 * 3 + 0, 0) = 0.1f;
  Eigen::Matrix<std::int32_t, 5, 3, Eigen::RowMajor> tokens;
  tokens << 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14;
  const auto e = dict::gather_examples(z, tokens, {.top = 2, .random = 2, .seed = 1});
  REQUIRE(e.size() == 2);
  REQUIRE(e[0].top.size() == 2);
  CHECK(e[0].top[0].tokens == std::vector<std::int64_t>{9, 10, 11});
  CHECK(e[0].top[0].activations == std::vector<double>{0, double(0.9f), 0});
  CHECK(e[0].top[1].tokens == std::vector<std::int64_t>{3, 4, 5});  // a tie at 0.5: the smaller sequence
  CHECK(e[0].top[1].activations == std::vector<double>{double(0.1f), 0, double(0.5f)});
  REQUIRE(e[0].random.size() == 2);
  for (const auto& r : e[0].random) CHECK((r.tokens[0] == 0 || r.tokens[0] == 6 || r.tokens[0] == 12));  // not a top one
  CHECK(e[1].top.empty());
  CHECK(e[1].random.size() == 2);
  const auto again = dict::gather_examples(z, tokens, {.top = 2, .random = 2, .seed = 1});
  CHECK(again[0].random[0].tokens == e[0].random[0].tokens);
  // The same codes as a [5, 3, 2] cache.
  const auto cached = dict::gather_examples(mint::view(z).reshape({5, 3, 2}), tokens, {.top = 2, .random = 2, .seed = 1});
  CHECK(cached[0].top[0].tokens == e[0].top[0].tokens);
  CHECK_THROWS_AS(dict::gather_examples(mint::matrixf(14, 2), tokens), mint::shape_error);
}

TEST_CASE("autointerp: bad input is a named mint error") {
  const char* fn = "mint::dictionary::score_features";
  dict::feature_example a{{1, 2, 3}, {0.0, 1.0, 0.0}};
  const std::vector<dict::feature_examples> good = {{{a, a, a, a}, {a, a}}};
  auto fine = [](const std::string&, const std::vector<std::int64_t>& tokens) { return std::vector<double>(tokens.size(), 0.0); };
  CHECK_THROWS_WITH_AS(dict::score_features({}, dict::token_explainer{}, fine), doctest::Contains(fn), mint::argument_error);
  const std::vector<dict::feature_examples> no_top = {{{}, {a, a}}};
  CHECK_THROWS_WITH_AS(dict::score_features(no_top, dict::token_explainer{}, fine),
                       doctest::Contains("examples_per_feature has no top examples for feature 0"), mint::argument_error);
  const std::vector<dict::feature_examples> ragged = {{{a, {{1, 2}, {0.5}}}, {}}};
  CHECK_THROWS_WITH_AS(dict::score_features(ragged, dict::token_explainer{}, fine), doctest::Contains("2 tokens and 1 activations"),
                       mint::shape_error);
  const std::vector<dict::feature_examples> nan = {{{a, {{1}, {std::nan("")}}}, {}}};
  CHECK_THROWS_AS(dict::score_features(nan, dict::token_explainer{}, fine), mint::numeric_error);
  auto short_by_one = [](const std::string&, const std::vector<std::int64_t>& tokens) { return std::vector<double>(tokens.size() - 1, 0.0); };
  CHECK_THROWS_WITH_AS(dict::score_features(good, dict::token_explainer{}, short_by_one),
                       doctest::Contains("simulate returned 2 activations for held-out example 0 of feature 0; needs one per token, 3"),
                       mint::shape_error);
  auto nan_out = [](const std::string&, const std::vector<std::int64_t>& tokens) {
    return std::vector<double>(tokens.size(), std::numeric_limits<double>::quiet_NaN());
  };
  CHECK_THROWS_WITH_AS(dict::score_features(good, dict::token_explainer{}, nan_out), doctest::Contains("simulate returned a NaN"),
                       mint::numeric_error);
  auto batch_short = [](const std::string&, const std::vector<std::vector<std::int64_t>>&) { return std::vector<std::vector<double>>{}; };
  CHECK_THROWS_AS(dict::score_features(good, dict::token_explainer{}, batch_short), mint::shape_error);
  CHECK_THROWS_WITH_AS(dict::score_features(good, dict::token_explainer{}, fine, {.features = {1}}), doctest::Contains("options.features holds 1"),
                       mint::argument_error);
  CHECK_THROWS_AS(dict::score_features(good, dict::token_explainer{}, fine, {.explain_top = 0}), mint::argument_error);
  CHECK_THROWS_AS(dict::score_features(good, dict::token_explainer{}, fine, {.score_top = 0, .score_random = 0}), mint::argument_error);
  // Only top examples, all used to explain: nothing left to score.
  const std::vector<dict::feature_examples> tiny = {{{a}, {}}};
  CHECK_THROWS_WITH_AS(dict::score_features(tiny, dict::token_explainer{}, fine), doctest::Contains("needs at least one example left to score"),
                       mint::argument_error);
  CHECK_THROWS_AS(dict::token_simulator{}("the letter e", {1, 2}), mint::argument_error);
  CHECK_THROWS_AS(dict::token_simulator{}("tokens: 1 x", {1, 2}), mint::argument_error);
  CHECK(dict::token_simulator{}("tokens: 2 5:0.5", {5, 2, 9}) == std::vector<double>{0.5, 1.0, 0.0});
  CHECK(dict::token_simulator{}("tokens:", {5}) == std::vector<double>{0.0});
  CHECK_THROWS_AS(dict::token_explainer{.max_tokens = 0}({a}), mint::argument_error);
}

TEST_CASE("autointerp: scores and explanations go into the feature report under their keys") {
  mint::matrixf z = mint::matrixf::Zero(4, 3);
  z(1, 0) = 1.0f;
  z(2, 2) = 0.5f;
  dict::feature_collector c(3, {.top_n = 2});
  c.add(z, dict::sequence_refs(0, 2, 2));
  const std::vector<double> scores = {0.9, std::numeric_limits<double>::quiet_NaN(), -0.1};  // latent 1 was not scored
  const std::vector<std::string> explanations = {"tokens: 4:1", "", "tokens: 7:0.5"};
  const auto j = dict::feature_report(c, {.interpretability_scores = scores, .explanations = explanations});
  CHECK(j["features"][0]["interpretability_score"].get<double>() == 0.9);
  CHECK(std::isnan(j["features"][1]["interpretability_score"].get<double>()));
  CHECK(j.dump().find(R"("interpretability_score":null)") != std::string::npos);  // JSON has no NaN
  CHECK(j["features"][2]["explanation"] == "tokens: 7:0.5");
  CHECK(!dict::feature_report(c)["features"][0].contains("interpretability_score"));
  CHECK(!dict::feature_report(c)["features"][0].contains("explanation"));
  CHECK_THROWS_WITH_AS(dict::feature_report(c, {.interpretability_scores = std::span(scores).first(2)}),
                       doctest::Contains("mint::dictionary::feature_report: options.interpretability_scores has 2 entries"), mint::shape_error);
  CHECK_THROWS_AS(dict::feature_report(c, {.explanations = std::span(explanations).first(1)}), mint::shape_error);
}
