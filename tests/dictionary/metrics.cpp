// SAE metrics: FVU about the mean, cosine, L0, dead/dense fractions, firing histogram.
#include "mint/dictionary/metrics.hpp"

#include <doctest/doctest.h>

#include "mint/adapters/eigen.hpp"

namespace dict = mint::dictionary;

TEST_CASE("FVU is taken about the mean of x, not about zero") {
  mint::matrixd x(4, 2);
  x << 10, 1, 10, -1, 12, 1, 8, -1;
  // Predicting the column means leaves all the variance unexplained: FVU 1. About zero it would be ~0.02.
  mint::matrixd mean_rows = x.colwise().mean().replicate(4, 1);
  const auto m = dict::reconstruction_quality(x, mean_rows);
  CHECK(m.fvu == doctest::Approx(1.0));
  CHECK(m.explained_variance == doctest::Approx(0.0));
  CHECK(m.mse == doctest::Approx(12.0 / 8));  // rows miss by (0, ±1), (0, ±1), (2, 1), (-2, -1)
  const auto perfect = dict::reconstruction_quality(x, x);
  CHECK(perfect.fvu == 0.0);
  CHECK(perfect.cosine == doctest::Approx(1.0));
  mint::matrixd flipped = -x;
  CHECK(dict::reconstruction_quality(x, flipped).cosine == doctest::Approx(-1.0));
  CHECK_THROWS_AS(dict::reconstruction_quality(x, mint::matrixd(3, 2)), mint::shape_error);
}

TEST_CASE("evaluate counts L0, dead and dense latents of an SAE pass, in batches") {
  // Identity SAE on 3 inputs with 4 latents: latent 3 has no encoder column (dead); latent 0 always fires.
  dict::basic_sae<double> s({.d_in = 3, .d_sae = 4}, 0);
  s.W_enc().setZero();
  s.W_dec().setZero();
  for (int j = 0; j < 3; ++j) s.W_enc()(j, j) = s.W_dec()(j, j) = 1;
  mint::matrixd x(10, 3);
  x.setZero();
  x.col(0).setConstant(1.0);
  x(2, 1) = 0.5;  // latent 1 fires once in 10 rows
  x(3, 2) = 2.0;
  x(4, 2) = 3.0;
  const auto m = dict::evaluate(s, x, {.batch_size = 3, .dense_threshold = 0.15});
  CHECK(m.rows == 10);
  CHECK(m.l0 == doctest::Approx(13.0 / 10));
  CHECK(m.dead_fraction == doctest::Approx(0.25));
  CHECK(m.dense_fraction == doctest::Approx(0.5));  // latents 0 (1.0) and 2 (0.2)
  CHECK(m.firing_frequency[1] == doctest::Approx(0.1));
  CHECK(m.reconstruction.fvu == doctest::Approx(0.0));
  const auto h = dict::histogram_of_firing(m.firing_frequency, 8, -4, 0);
  CHECK(h.never == 1);
  CHECK(h.edges.size() == 9);
  CHECK(h.counts[7] == 1);  // frequency 1: log10 = 0, the top edge
  CHECK(h.counts[6] == 2);  // 0.1 and 0.2: log10 in [-1, -0.5)
  CHECK_THROWS_AS(dict::evaluate(s, mint::matrixd(2, 4)), mint::shape_error);
  // No rows would read as FVU 0, L0 0: a perfect SAE. It is an error instead.
  CHECK_THROWS_WITH_AS(dict::evaluate(s, mint::matrixd(0, 3)), doctest::Contains("has 0 rows"), mint::shape_error);
}
