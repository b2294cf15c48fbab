// Minibatch CKA: unbiased HSIC averaged over batches converges to full CKA.
#include "mint/similarity/minibatch_cka.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"

using namespace similarity_test;

TEST_CASE("minibatch CKA converges to the full-data CKA as batches accumulate") {
  // 8192 examples in 64 batches of 128: Y shares half its variance with X.
  const mint::index n = 8192, batch = 128;
  mint::matrixd x = gaussian(n, 24, 31), y = gaussian(n, 16, 32);
  y.leftCols(8) += x.leftCols(8);
  const double full = mint::debiased_linear_cka(x, y);
  mint::minibatch_cka accumulator;
  double after_two = 0;
  for (mint::index begin = 0; begin < n; begin += batch) {
    accumulator.add(x.middleRows(begin, batch), y.middleRows(begin, batch));
    if (accumulator.batches() == 2) after_two = accumulator.value();
  }
  CHECK(accumulator.batches() == 64);
  // The estimate's error falls like 1/sqrt(examples): ~0.02 after 2 batches, ~0.004 after 64.
  CHECK(std::abs(accumulator.value() - full) < 0.01);
  CHECK(std::abs(accumulator.value() - full) < std::abs(after_two - full) + 0.005);
  // One batch holding everything is the full debiased CKA exactly.
  mint::minibatch_cka whole;
  whole.add(x, y);
  CHECK(whole.value() == doctest::Approx(full).epsilon(1e-12));
}

TEST_CASE("minibatch CKA over sets of layers equals the pairwise accumulators") {
  std::vector<mint::matrixd> a{gaussian(256, 10, 33), gaussian(256, 12, 34)};
  std::vector<mint::matrixd> b{gaussian(256, 8, 35), gaussian(256, 10, 36), gaussian(256, 6, 37)};
  b[1].leftCols(5) += a[0].leftCols(5);
  mint::minibatch_cka all(2, 3);
  std::vector<std::vector<mint::minibatch_cka>> pairs(2, std::vector<mint::minibatch_cka>(3));
  for (mint::index begin = 0; begin < 256; begin += 64) {
    std::vector<mint::tensor_view<const double>> a_batch, b_batch;
    for (const auto& m : a) a_batch.push_back(mint::view(m).slice(begin, begin + 64));
    for (const auto& m : b) b_batch.push_back(mint::view(m).slice(begin, begin + 64));
    all.add_layers(a_batch, b_batch);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) pairs[i][j].add(a_batch[i], b_batch[j]);
  }
  const mint::matrixd values = all.values();
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      CHECK(values(mint::index(i), mint::index(j)) == doctest::Approx(pairs[i][j].value()).epsilon(1e-12));
  CHECK(values(0, 1) > 0.3);  // the related pair stands out
}

TEST_CASE("minibatch CKA refuses mismatched batches without changing its sums") {
  mint::minibatch_cka two_by_two(2, 2);
  const std::vector<mint::matrixd> a{gaussian(32, 4, 38), gaussian(32, 4, 39)};
  const std::vector<mint::matrixd> short_b{gaussian(32, 4, 40), gaussian(31, 4, 41)};
  CHECK_THROWS_WITH_AS(two_by_two.add_layers(a, short_b),
                       "mint::minibatch_cka::add_layers: b_batches[1] has 31 examples; needs 32, the examples of "
                       "a_batches[0] (the same inputs, in the same order)",
                       mint::shape_error);
  CHECK(two_by_two.batches() == 0);
  CHECK_THROWS_AS(two_by_two.values(), mint::argument_error);
  CHECK_THROWS_AS(two_by_two.add(a[0], a[1]), mint::argument_error);
  const std::vector<mint::matrixd> three{a[0], a[1], a[0]};
  CHECK_THROWS_AS(two_by_two.add_layers(a, three), mint::shape_error);
  CHECK_THROWS_AS(mint::minibatch_cka(0, 1), mint::argument_error);
}
