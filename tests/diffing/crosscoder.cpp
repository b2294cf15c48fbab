// Crosscoders on two models with known shared and exclusive features: the learned decoders
// recover each set (MMCS) and the relative decoder norm sorts them; per-model scales, the
// accessors, and bad input.
#include "mint/diffing/crosscoder.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/synthetic.hpp"

namespace dict = mint::dictionary;
namespace diff = mint::diffing;

namespace {

struct recovery {
  double shared_a = 0, shared_b = 0, only_a = 0, only_b = 0;  // MMCS per set
  // Relative norms of the latents best matched to each set's features: [min, max].
  double shared_low = 1, shared_high = 0, only_a_high = 0, only_b_low = 1;
};

// The latent whose whole decoder row (both blocks) has the largest |cosine| with `truth` ([2d]).
mint::index best_latent(const mint::matrixf& dec, const Eigen::VectorXf& truth) {
  mint::index best = 0;
  (dec.rowwise().normalized() * truth.normalized()).cwiseAbs().maxCoeff(&best);
  return best;
}

recovery score(const diff::crosscoder& c, const dict::paired_synthetic_features& truth) {
  recovery out;
  out.shared_a = dict::mmcs(c.decoder(0), truth.shared_a());
  out.shared_b = dict::mmcs(c.decoder(1), truth.shared_b());
  out.only_a = dict::mmcs(c.decoder(0), truth.exclusive_a());
  out.only_b = dict::mmcs(c.decoder(1), truth.exclusive_b());
  const mint::matrixf dec = c.sae().W_dec();
  const Eigen::VectorXf r = c.relative_norms();
  const auto& o = truth.options();
  const mint::index d = o.dims_a;
  // The crosscoder sees x_m s_m, so a feature's direction in its concatenated space is [s_A a, s_B b].
  for (mint::index i = 0; i < truth.features(); ++i) {
    Eigen::VectorXf t(2 * d);
    t.head(d) = c.scales()[0] * truth.dictionary_a().row(i).transpose();
    t.tail(d) = c.scales()[1] * truth.dictionary_b().row(i).transpose();
    const double rj = r(best_latent(dec, t));
    if (i < o.shared) {
      out.shared_low = std::min(out.shared_low, rj);
      out.shared_high = std::max(out.shared_high, rj);
    } else if (i < o.shared + o.exclusive_a) {
      out.only_a_high = std::max(out.only_a_high, rj);
    } else {
      out.only_b_low = std::min(out.only_b_low, rj);
    }
  }
  return out;
}

// The bounds below (MMCS 0.95 per set, exclusive r beyond 0.1, shared r in (0.3, 0.7)).
void check_recovery(const recovery& s) {
  CHECK(s.shared_a >= 0.95);
  CHECK(s.shared_b >= 0.95);
  CHECK(s.only_a >= 0.95);
  CHECK(s.only_b >= 0.95);
  CHECK(s.only_a_high < 0.1);
  CHECK(s.only_b_low > 0.9);
  CHECK(s.shared_low > 0.3);
  CHECK(s.shared_high < 0.7);
}

}  // namespace

// 24 shared + 12 + 12 exclusive features in 32 dimensions per model, 2.4 active per row, 20000
// rows; 96 latents. Measured (seeds as here): MMCS >= 0.9997 per set for ReLU and >= 0.9996 for
// TopK (k = 4); relative norms of the latents matched to exclusive features within 0.005 (ReLU)
// and 0.04 (TopK) of 0 or 1, to shared ones in [0.39, 0.65] (ReLU) and [0.50, 0.51] (TopK).
// The bounds: MMCS 0.95 (a feature missed entirely drops its set's MMCS by at
// least (1 - 0.2) / 24 = 0.03, random cosines in 32 dimensions being ~0.2), exclusive r beyond
// the default classification threshold 0.1, shared r in (0.3, 0.7): shared features have equal
// magnitude in both models, and spare latents (96 for 48 features) split a shared feature
// unevenly, so its best match sits within ~0.15 of 0.5.
struct paired_data {
  dict::paired_synthetic_features truth{{.shared = 24, .exclusive_a = 12, .exclusive_b = 12, .dims_a = 32, .dims_b = 32,
                                         .firing_probability = 0.05, .seed = 1}};
  mint::matrixf xa, xb;
  paired_data() {
    mint::rng r(2);
    truth.sample(r, 20000, xa, xb);
  }
};

TEST_CASE("a ReLU crosscoder recovers shared and exclusive features and its relative norms sort them") {
  const paired_data data;
  const auto& truth = data.truth;
  const auto& xa = data.xa;
  const auto& xb = data.xb;
  diff::crosscoder c({.d_in = 32, .models = 2, .d_sae = 96}, 3);
  c.train(xa, xb, {.batch_size = 256, .steps = 3000, .adam = {.lr = 3e-3}, .loss = {.l1_coefficient = 1.0}, .seed = 4});
  const recovery s = score(c, truth);
  check_recovery(s);
  // Every exclusive feature has a latent on its side of the threshold.
  const auto kinds = c.exclusive_latents(0.1);
  CHECK(kinds.only_a.size() >= 12);
  CHECK(kinds.only_b.size() >= 12);
}

TEST_CASE("a TopK crosscoder recovers the same sets") {
  const paired_data data;
  diff::crosscoder c({.d_in = 32, .models = 2, .d_sae = 96, .architecture = dict::sae_architecture::topk, .k = 4}, 3);
  c.train(data.xa, data.xb, {.batch_size = 256, .steps = 3000, .adam = {.lr = 3e-3}, .seed = 4});
  const recovery s = score(c, data.truth);
  check_recovery(s);
}

TEST_CASE("per-model scales, decoder blocks, reconstructions and the histogram agree with the SAE underneath") {
  const paired_data data;
  // Model B at 10 times A's scale: its own factor brings both to E||x_m||^2 = d_in.
  const mint::matrixf xb = 10 * data.xb;
  diff::crosscoder c({.d_in = 32, .models = 2, .d_sae = 64}, 5);
  c.train(data.xa, xb, {.batch_size = 256, .steps = 200, .adam = {.lr = 3e-3}});
  REQUIRE(c.scales().size() == 2);
  CHECK(c.scales()[0] / c.scales()[1] == doctest::Approx(10).epsilon(0.05));
  const mint::matrixf first = data.xa.topRows(256);
  CHECK((first * c.scales()[0]).rowwise().squaredNorm().mean() == doctest::Approx(32).epsilon(1e-4));
  // decoder(m) is the m-th block of W_dec; the norms are theirs; r from them.
  const mint::matrixf norms = c.decoder_norms();
  REQUIRE(norms.rows() == 64);
  REQUIRE(norms.cols() == 2);
  CHECK(c.decoder(1) == c.sae().W_dec().rightCols(32));
  CHECK((norms.col(0) - c.decoder(0).rowwise().norm()).norm() == 0);
  const Eigen::VectorXf r = c.relative_norms();
  CHECK(r(7) == doctest::Approx(norms(7, 1) / (norms(7, 0) + norms(7, 1))));
  // Reconstructions are the SAE's forward pass on the scaled rows, each block unscaled.
  const std::vector<mint::matrixf> inputs{data.xa.topRows(50), xb.topRows(50)};
  mint::matrixf joined(50, 64);
  joined << inputs[0] * c.scales()[0], inputs[1] * c.scales()[1];
  const mint::matrixf y = c.sae().forward(joined);
  const auto rec = c.reconstruct(inputs);
  REQUIRE(rec.size() == 2);
  CHECK((rec[1] - y.rightCols(32) / c.scales()[1]).cwiseAbs().maxCoeff() <= 1e-6f * y.cwiseAbs().maxCoeff() / c.scales()[1]);
  CHECK(c.encode(inputs) == c.sae().encode(joined));
  // Every live latent lands in one class and one histogram bin.
  const auto kinds = c.exclusive_latents();
  CHECK(kinds.only_a.size() + kinds.only_b.size() + kinds.shared.size() + kinds.dead.size() == 64);
  const auto h = c.relative_norm_histogram(8);
  CHECK(h.edges.size() == 9);
  CHECK(h.edges.back() == 1.0);
  mint::index total = 0;
  for (auto n : h.counts) total += n;
  CHECK(total == 64 - mint::index(kinds.dead.size()));
  // Given scales are kept; a double crosscoder takes the same float rows.
  diff::basic_crosscoder<double> d({.d_in = 32, .models = 2, .d_sae = 16}, 1);
  d.set_scales({2.0, 0.5});
  d.train(data.xa, xb, {.batch_size = 64, .steps = 5});
  CHECK(d.scales()[1] == 0.5);
}

TEST_CASE("bad crosscoder input gives mint errors naming the function") {
  CHECK_THROWS_WITH_AS(diff::crosscoder({.d_in = 8, .models = 1, .d_sae = 4}),
                       doctest::Contains("mint::diffing::crosscoder: options.models is 1"), mint::argument_error);
  CHECK_THROWS_AS(diff::crosscoder({.d_in = 8, .models = 2, .d_sae = 4, .architecture = dict::sae_architecture::jumprelu}),
                  mint::argument_error);
  diff::crosscoder c({.d_in = 8, .models = 2, .d_sae = 4}, 0);
  const mint::matrixf a = mint::matrixf::Ones(10, 8), b9 = mint::matrixf::Ones(9, 8), wide = mint::matrixf::Ones(10, 7);
  CHECK_THROWS_WITH_AS(c.train(a, b9, {.batch_size = 4, .steps = 1}),
                       doctest::Contains("mint::diffing::crosscoder::train: inputs[1] has 9 rows"), mint::shape_error);
  CHECK_THROWS_WITH_AS(c.train(a, wide, {.batch_size = 4, .steps = 1}),
                       doctest::Contains("mint::diffing::crosscoder::train: inputs[1] has rows of 7 values"), mint::shape_error);
  CHECK_THROWS_WITH_AS(c.train(std::vector<mint::matrixf>{a}), doctest::Contains("mint::diffing::crosscoder::train: inputs has 1"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(c.encode(std::vector<mint::matrixf>{a, wide}), doctest::Contains("mint::diffing::crosscoder::encode"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(c.decoder(2), doctest::Contains("mint::diffing::crosscoder::decoder: m is 2"), mint::argument_error);
  CHECK_THROWS_AS(c.exclusive_latents(0.6), mint::argument_error);
  CHECK_THROWS_AS(c.set_scales({1.0f}), mint::argument_error);
  diff::crosscoder three({.d_in = 8, .models = 3, .d_sae = 4}, 0);
  CHECK(three.decoder_norms().cols() == 3);
  CHECK_THROWS_WITH_AS(three.relative_norms(), doctest::Contains("needs 2"), mint::argument_error);
  // Mismatched rows are found before the trainer runs or the scales are estimated.
  CHECK_FALSE(c.scales_set());
}

TEST_CASE("paired synthetic features: unit directions where a model has the feature, zero rows elsewhere, one draw per row") {
  const dict::paired_synthetic_features g({.shared = 3, .exclusive_a = 2, .exclusive_b = 4, .dims_a = 5, .dims_b = 7, .seed = 9});
  REQUIRE(g.dictionary_a().rows() == 9);
  REQUIRE(g.dictionary_b().cols() == 7);
  for (mint::index i = 0; i < 9; ++i) {
    CHECK(g.dictionary_a().row(i).norm() == doctest::Approx(i < 5 ? 1.0 : 0.0).epsilon(1e-6));
    CHECK(g.dictionary_b().row(i).norm() == doctest::Approx(i < 3 || i >= 5 ? 1.0 : 0.0).epsilon(1e-6));
  }
  CHECK(g.exclusive_b().rows() == 4);
  CHECK(g.exclusive_b() == g.dictionary_b().bottomRows(4));
  mint::rng r(1);
  mint::matrixf xa, xb, c;
  g.sample(r, 1000, xa, xb, c);
  CHECK((xa - c * g.dictionary_a()).cwiseAbs().maxCoeff() < 1e-6f);
  CHECK((xb - c * g.dictionary_b()).cwiseAbs().maxCoeff() < 1e-6f);
  // 9 features at p = 0.05: 0.45 a row; binomial(9000, 0.05) has sd 0.7%, 5% is > 7 sd.
  CHECK(double((c.array() > 0).count()) / 1000 == doctest::Approx(g.expected_l0()).epsilon(0.05));
  CHECK_THROWS_AS(dict::paired_synthetic_features({.shared = 0, .exclusive_a = 0, .exclusive_b = 0}), mint::argument_error);
}
