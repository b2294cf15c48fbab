// Stage-wise diffing: each checkpoint's layers against the reference's.
#include "mint/similarity/stagewise.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "common.hpp"
#include "mint/similarity/linear_cka.hpp"
#include "mint/similarity/regression.hpp"

using namespace similarity_test;

TEST_CASE("stage-wise similarity compares every checkpoint's layer with the same reference layer") {
  // Three checkpoints drifting towards the final model: checkpoint c is final + noise / (c + 1).
  std::vector<mint::matrixd> final_layers{gaussian(100, 8, 161), gaussian(100, 6, 162), gaussian(100, 4, 163)};
  std::vector<std::vector<mint::matrixd>> checkpoints;
  for (int c = 0; c < 3; ++c) {
    std::vector<mint::matrixd> layers;
    for (std::size_t l = 0; l < 3; ++l)
      layers.push_back(final_layers[l] + gaussian(100, final_layers[l].cols(), 170 + 10 * c + l) * (2.0 / (c + 1)));
    checkpoints.push_back(layers);
  }
  const mint::matrixd s = mint::stagewise_similarity(checkpoints, final_layers, mint::linear_cka_options{});
  REQUIRE(s.rows() == 3);
  REQUIRE(s.cols() == 3);
  for (int c = 0; c < 3; ++c)
    for (int l = 0; l < 3; ++l)
      CHECK(s(c, l) == doctest::Approx(mint::linear_cka(checkpoints[std::size_t(c)][std::size_t(l)], final_layers[std::size_t(l)])).epsilon(1e-12));
  for (int l = 0; l < 3; ++l) CHECK(s(0, l) < s(2, l));  // closer to the end, closer to the final model
  // Asymmetric measures take the checkpoint as the first argument.
  const mint::matrixd r = mint::stagewise_similarity(checkpoints, final_layers, mint::linear_regression_options{});
  CHECK(r(1, 2) == doctest::Approx(mint::linear_regression_r2(checkpoints[1][2], final_layers[2])).epsilon(1e-12));
  checkpoints[1].pop_back();
  CHECK_THROWS_WITH_AS(mint::stagewise_similarity(checkpoints, final_layers, mint::linear_cka_options{}),
                       "mint::stagewise_similarity: checkpoints[1] holds 2 layers; needs 3, as the reference has",
                       mint::shape_error);
}
