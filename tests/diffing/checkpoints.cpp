// Stage-wise diffing with crosscoders: a checkpoint that gains features shows latents exclusive
// to it and none exclusive to the one before; pairs run in the order asked; bad input refused.
#include "mint/diffing/checkpoints.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/synthetic.hpp"

namespace {

// "Before": 24 features; "after": the same 24 (other directions) and 12 new ones.
struct learned_features {
  mint::dictionary::paired_synthetic_features truth{{.shared = 24, .exclusive_a = 0, .exclusive_b = 12, .dims_a = 32,
                                                     .dims_b = 32, .firing_probability = 0.05, .seed = 5}};
  mint::matrixf before, after;
  learned_features() {
    mint::rng r(6);
    truth.sample(r, 20000, before, after);
  }
};

}  // namespace

TEST_CASE("checkpoint crosscoders: the later checkpoint's new features are latents exclusive to it") {
  const learned_features data;
  mint::diffing::checkpoint_diff_options options;
  options.crosscoder = {.d_sae = 96};
  options.train = {.batch_size = 256, .steps = 3000, .adam = {.lr = 3e-3}, .loss = {.l1_coefficient = 1.0}, .seed = 4};
  const auto diffs = mint::diffing::checkpoint_crosscoders(std::vector<mint::matrixf>{data.before, data.after}, options);
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0].from == 0);
  CHECK(diffs[0].to == 1);
  // Every one of the 12 new features needs a latent of its own in "after" (the crosscoder test
  // recovers such sets with MMCS above 0.999); "before" has nothing of its own, and spare latents
  // that split a shared feature stay well inside the 0.1 threshold. Measured: 0 and 19 (77 shared,
  // mean r 0.58, unexplained variance 0.009 and 0.013).
  CHECK(diffs[0].only_to >= 12);
  CHECK(diffs[0].only_from <= 2);
  CHECK(diffs[0].shared >= 24);
  CHECK(diffs[0].only_from + diffs[0].only_to + diffs[0].shared + diffs[0].dead == 96);
  CHECK(diffs[0].mean_relative_norm > 0.5);  // the balance leans to the model with more features
  // Both models reconstructed: the data are exact sparse mixtures, so little variance is left.
  CHECK(diffs[0].unexplained_from < 0.05);
  CHECK(diffs[0].unexplained_to < 0.05);
}

TEST_CASE("checkpoint crosscoders: consecutive and to-last pairs, and bad input") {
  const learned_features data;
  const std::vector<mint::matrixf> three{data.before, data.after, data.before};
  mint::diffing::checkpoint_diff_options options;
  options.crosscoder = {.d_sae = 16};
  options.train = {.batch_size = 128, .steps = 20};
  const auto consecutive = mint::diffing::checkpoint_crosscoders(three, options);
  REQUIRE(consecutive.size() == 2);
  CHECK(consecutive[1].from == 1);
  CHECK(consecutive[1].to == 2);
  options.pairs = mint::diffing::checkpoint_pairs::to_last;
  const auto to_last = mint::diffing::checkpoint_crosscoders(three, options);
  REQUIRE(to_last.size() == 2);
  CHECK(to_last[0].from == 0);
  CHECK(to_last[0].to == 2);
  CHECK(to_last[1].from == 1);
  CHECK(to_last[1].to == 2);

  CHECK_THROWS_WITH_AS(mint::diffing::checkpoint_crosscoders(std::vector<mint::matrixf>{data.before}, options),
                       doctest::Contains("mint::diffing::checkpoint_crosscoders"), mint::argument_error);
  const mint::matrixf fewer = data.after.topRows(100);
  CHECK_THROWS_WITH_AS(mint::diffing::checkpoint_crosscoders(std::vector<mint::matrixf>{data.before, fewer}, options),
                       doctest::Contains("checkpoints[1]"), mint::shape_error);
  options.threshold = 0.5;
  CHECK_THROWS_WITH_AS(mint::diffing::checkpoint_crosscoders(three, options), doctest::Contains("options.threshold"),
                       mint::argument_error);
}
