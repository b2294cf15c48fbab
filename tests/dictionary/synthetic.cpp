// Synthetic features in superposition and the MMCS score.
#include "mint/dictionary/synthetic.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/adapters/eigen.hpp"

namespace dict = mint::dictionary;

TEST_CASE("synthetic dictionary rows are unit vectors and samples are their sparse non-negative mixtures") {
  const dict::synthetic_features gen({.features = 64, .dims = 16, .firing_probability = 0.05, .seed = 3});
  const mint::matrixf& d = gen.dictionary();
  REQUIRE(d.rows() == 64);
  REQUIRE(d.cols() == 16);
  for (mint::index i = 0; i < d.rows(); ++i) CHECK(d.row(i).norm() == doctest::Approx(1.0).epsilon(1e-6));
  mint::rng r(1);
  mint::matrixf x, c;
  gen.sample(r, 4000, x, c);
  CHECK(x.rows() == 4000);
  CHECK(c.cols() == 64);
  CHECK(c.minCoeff() >= 0.0f);
  // x is exactly c times the dictionary (float rounding of a 64-term sum: 1e-5).
  CHECK((x - c * d).cwiseAbs().maxCoeff() < 1e-5f);
  // Mean L0 near m p = 3.2: binomial(4000 * 64, 0.05) has relative sd 0.4%, 3% is > 7 sd.
  const double l0 = double((c.array() > 0).count()) / 4000.0;
  CHECK(l0 == doctest::Approx(gen.expected_l0()).epsilon(0.03));
  // Same seed, same stream: same data.
  mint::rng r2(1);
  mint::matrixf x2;
  gen.sample(r2, 4000, x2);
  CHECK(x2 == x);
}

TEST_CASE("decaying probabilities keep their mean; correlation keeps marginals and couples group members") {
  const dict::synthetic_features decay(
      {.features = 200, .dims = 8, .firing_probability = 0.02, .seed = 1, .probability_decay = 0.99});
  CHECK(decay.expected_l0() == doctest::Approx(4.0));
  CHECK(decay.firing_probabilities()[0] > decay.firing_probabilities()[199] * 5);

  const dict::synthetic_features corr(
      {.features = 8, .dims = 8, .firing_probability = 0.1, .correlation = 0.8, .seed = 2, .groups = 2});
  mint::rng r(5);
  mint::matrixf x, c;
  const mint::index n = 20000;
  corr.sample(r, n, x, c);
  const Eigen::ArrayXXd on = (c.array() > 0).cast<double>();
  // Marginal p = 0.1 per feature: sd over 20000 draws is 0.002, tolerance 0.01.
  for (mint::index i = 0; i < 8; ++i) CHECK(on.col(i).mean() == doctest::Approx(0.1).epsilon(0.1));
  // Features 0 and 2 share a group (i % 2), 0 and 1 do not: joint firing far above 0.01 vs near it.
  const double same = (on.col(0) * on.col(2)).mean(), other = (on.col(0) * on.col(1)).mean();
  CHECK(same > 0.04);
  CHECK(other == doctest::Approx(0.01).epsilon(0.3));
}

TEST_CASE("mmcs is 1 for the truth up to order, sign and scale, and low for random directions") {
  const dict::synthetic_features gen({.features = 32, .dims = 64, .seed = 7});
  mint::matrixf learned = gen.dictionary().rowwise().reverse();  // coordinates reversed: not a match
  CHECK(dict::mmcs(learned, gen.dictionary()) < 0.7);
  learned = gen.dictionary().colwise().reverse();  // rows in reverse order
  learned.row(3) *= -2.5f;
  learned.row(0).swap(learned.row(5));
  CHECK(dict::mmcs(learned, gen.dictionary()) == doctest::Approx(1.0).epsilon(1e-6));
  // A wider learned dictionary that contains the truth still scores 1; a narrower one less.
  mint::matrixf wide(40, 64);
  wide.topRows(32) = gen.dictionary();
  wide.bottomRows(8).setZero();
  CHECK(dict::mmcs(wide, gen.dictionary()) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(dict::mmcs(gen.dictionary().topRows(16).eval(), gen.dictionary()) < 0.8);
  CHECK_THROWS_AS(dict::mmcs(mint::matrixf(4, 3), gen.dictionary()), mint::shape_error);
  CHECK_THROWS_AS(dict::synthetic_features({.features = 4, .dims = 2, .firing_probability = 0}), mint::argument_error);
}
