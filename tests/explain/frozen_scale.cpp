// The error of freezing the final norm's scale: each part's exact direct effect checked against
// the logits of the final residual without it (decode_residual, another path), none without a
// final norm, and the per-layer pooling.
#include "mint/explain/frozen_scale.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <utility>

#include "mint/model/cache.hpp"
#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> frozen_scale_model(bool layer_norm) {
  mint::toy::transformer_config config{.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 3, .d_head = 4,
                                       .d_mlp = 24, .layer_norm = layer_norm};
  mint::toy::transformer<float> model(config);
  model.initialize(11);
  return model;
}

}  // namespace

TEST_CASE("frozen scale: each part's exact effect is the logit difference lost without it, norm recomputed") {
  auto model = frozen_scale_model(true);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
  const mint::dla_options options{{2, 8}, {5, 1}, /*removal_effects=*/true};
  const auto dla = mint::direct_logit_attribution(model, tokens, options);
  REQUIRE(dla.removal.rank() == 3);
  REQUIRE(dla.removal.size() == dla.values.size());
  REQUIRE(dla.layers.size() == dla.parts.size());
  CHECK(dla.layers[0] == -1);                  // embed
  CHECK(dla.layers[2] == 0);                   // L0H0
  CHECK(dla.layers[dla.parts.size() - 2] == 1);  // mlp1
  CHECK(dla.layers.back() == -1);              // biases

  // mlp0 (after embed, pos_embed and L0's three heads: part 5) removed from the final residual and decoded through the real norm.
  REQUIRE(dla.parts[5] == "mlp0");
  const auto run = mint::run_with_cache(model, tokens, {"blocks.1.hook_resid_post", "blocks.0.hook_mlp_out"});
  mint::array<float> without = mint::array<float>::copy_of(run.cache["blocks.1.hook_resid_post"]);
  const auto mlp = run.cache["blocks.0.hook_mlp_out"];
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < 6; ++t)
      for (mint::index j = 0; j < 16; ++j) without(b, t, j) -= mlp(b, t, j);
  const auto logits = mint::decode_residual(model.unembedding(), std::as_const(without).view());
  double largest_error = 0;
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < tokens.length(b); ++t) {
      const mint::token c = b == 0 ? 2 : 8, w = b == 0 ? 5 : 1;
      const double lost = dla.logit_difference(b, t) - (double(logits(b, t, c)) - double(logits(b, t, w)));
      // float32 logits on both sides, of order 1: 1e-4 absolute.
      CHECK(std::abs(dla.removal(5, b, t) - lost) < 1e-4);
      largest_error = std::max(largest_error, std::abs(dla.removal(5, b, t) - dla.values(5, b, t)));
    }
  // Freezing the scale is an approximation: on a random model it is off somewhere.
  CHECK(largest_error > 1e-3);
  CHECK(dla.removal(5, 1, 5) == 0.0);  // padding
}

TEST_CASE("frozen scale: without a final norm the frozen share is exact") {
  auto model = frozen_scale_model(false);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6}});
  const auto report = mint::frozen_scale_error(model, tokens, mint::dla_options{{2, 8}, {}});
  CHECK(report.positions == 7);
  REQUIRE(report.parts.size() == 2 + 6 + 2 + 1);
  for (const auto& part : report.parts) {
    CAPTURE(part.name);
    CHECK(part.mean_abs_effect > 0);
    // Both are v . direction in double from float32 activations.
    CHECK(part.relative_error < 1e-12);
  }
}

TEST_CASE("frozen scale: layers pool their parts") {
  auto model = frozen_scale_model(true);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}, {7, 7, 1}});
  const auto report = mint::frozen_scale_error(model, tokens, mint::dla_options{{2, 8, 4}, {}});
  CHECK(report.positions == 13);
  REQUIRE(report.layers.size() == 3);
  CHECK(report.layers[0].name == "embeddings and biases");
  CHECK(report.layers[2].name == "layer 1");
  // Layer 1: L1H0..L1H2 and mlp1, parts 6 to 9, each averaged over the same positions.
  double share = 0, effect = 0, error = 0;
  for (int p : {6, 7, 8, 9}) {
    CHECK(report.parts[std::size_t(p)].layer == 1);
    share += report.parts[std::size_t(p)].mean_abs_share;
    effect += report.parts[std::size_t(p)].mean_abs_effect;
    error += report.parts[std::size_t(p)].mean_abs_error;
  }
  CHECK(report.layers[2].mean_abs_share == doctest::Approx(share / 4));
  CHECK(report.layers[2].mean_abs_error == doctest::Approx(error / 4));
  CHECK(report.layers[2].relative_error == doctest::Approx(error / effect));
  CHECK(report.layers[2].relative_error > 0);
}

TEST_CASE("frozen scale: refuses an attribution without removal effects or of another batch") {
  auto model = frozen_scale_model(true);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2}});
  const auto dla = mint::direct_logit_attribution(model, tokens, mint::dla_options{{2}, {}});
  CHECK_THROWS_WITH_AS(mint::frozen_scale_error(dla, tokens), doctest::Contains("mint::frozen_scale_error"), mint::argument_error);
  mint::dla_options options{{2}, {}};
  options.removal_effects = true;
  const auto with = mint::direct_logit_attribution(model, tokens, options);
  CHECK_THROWS_WITH_AS(mint::frozen_scale_error(with, mint::token_batch::from_rows({{1, 4}})),
                       doctest::Contains("the batch the attribution ran on"), mint::shape_error);
}
