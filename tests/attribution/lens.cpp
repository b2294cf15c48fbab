// Direct logit attribution and the logit lens on the toy transformer: the parts sum to the
// run's logit difference, the biases part is what the biases write, and the lens's last layer
// is the model's own output.
#include "mint/attribution.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> model_with_biases(bool layer_norm) {
  mint::toy::transformer_config config{.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 3, .d_head = 4,
                                       .d_mlp = 24, .layer_norm = layer_norm};
  mint::toy::transformer<float> model(config);
  model.initialize(7);
  // Non-zero biases everywhere DLA gathers them, so the biases part is not trivially zero.
  mint::rng r(3);
  for (const char* name : {"blocks.0.attn.b_O", "blocks.1.mlp.b_out", "unembed.b_U"}) r.fill_normal(model.parameters()[name], 0.0, 0.3);
  if (layer_norm) {
    r.fill_normal(model.parameters()["ln_final.b"], 0.0, 0.3);
    r.fill_normal(model.parameters()["ln_final.w"], 1.0, 0.2);
  }
  return model;
}

}  // namespace

TEST_CASE("direct logit attribution: the parts sum to the logit difference with the final scale frozen") {
  for (const bool layer_norm : {true, false})
    for (const bool centred : {false, true}) {
      CAPTURE(layer_norm);
      CAPTURE(centred);
      auto model = model_with_biases(layer_norm);
      const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
      const mint::dla_options options{{2, 8}, centred ? std::vector<mint::token>{} : std::vector<mint::token>{5, 1}};
      const auto r = mint::direct_logit_attribution(model, tokens, options);
      REQUIRE(r.parts.size() == 2 + 2 * 3 + 2 + 1);  // embed, pos_embed, 6 heads, 2 MLPs, biases
      CHECK(r.parts[2] == "L0H0");
      CHECK(r.parts.back() == "biases");
      double largest = 0;
      for (mint::index b = 0; b < 2; ++b)
        for (mint::index t = 0; t < tokens.length(b); ++t) {
          double sum = 0;
          for (mint::index i = 0; i < mint::index(r.parts.size()); ++i) sum += r.values(i, b, t), largest = std::max(largest, std::abs(r.values(i, b, t)));
          // float32 activations, the sum taken in double: 1e-5 relative to the largest part.
          CHECK(sum == doctest::Approx(r.logit_difference(b, t)).epsilon(1e-5).scale(largest));
        }
      CHECK(r.values(0, 1, 5) == 0.0);  // padding
      // Without a final norm the biases part is the same at every token of a row (nothing rescales
      // it; rows differ by their direction): the writers account for everything else.
      const mint::index last = mint::index(r.parts.size()) - 1;
      if (!layer_norm)
        for (mint::index t = 1; t < 6; ++t) CHECK(r.values(last, 0, t) == doctest::Approx(r.values(last, 0, 0)).epsilon(1e-5));
    }
}

TEST_CASE("the logit lens's last layer is the model's output, and ranks agree with probabilities") {
  auto model = model_with_biases(true);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
  const auto layers = mint::logit_lens(model, tokens, {.top_k = 3, .targets = {2, 5}});
  REQUIRE(layers.size() == 3);  // resid_pre of layer 0 and two resid_post
  CHECK(layers[0].site == "blocks.0.hook_resid_pre");
  CHECK(layers[2].site == "blocks.1.hook_resid_post");
  mint::hook_set<float> none;
  const auto logits = mint::array<float>::copy_of(model.forward(tokens, none));
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < tokens.length(b); ++t) {
      double top = -INFINITY, sum = 0;
      mint::index best = 0;
      for (mint::index j = 0; j < 13; ++j)
        if (logits(b, t, j) > top) top = logits(b, t, j), best = j;
      for (mint::index j = 0; j < 13; ++j) sum += std::exp(double(logits(b, t, j)) - top);
      CHECK(layers[2].top_tokens(b, t, 0) == best);
      CHECK(layers[2].top_probabilities(b, t, 0) == doctest::Approx(1.0 / sum).epsilon(1e-5));
      for (const auto& layer : layers) {
        CHECK(layer.top_probabilities(b, t, 0) >= layer.top_probabilities(b, t, 1));
        for (int i = 0; i < 2; ++i) {
          const auto rank = layer.target_ranks(b, t, i);
          if (rank < 3) CHECK(layer.top_tokens(b, t, rank) == (i == 0 ? 2 : 5));
          else CHECK(layer.target_probabilities(b, t, i) <= layer.top_probabilities(b, t, 2));
        }
      }
    }
  CHECK(layers[0].top_tokens(1, 5, 0) == -1);  // padding
  CHECK_THROWS_WITH_AS(mint::logit_lens(model, tokens, {.targets = {13}}), doctest::Contains("targets"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::logit_lens(model, tokens, {.sites = {"blocks.0.attn.hook_z"}}), doctest::Contains("residual"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::direct_logit_attribution(model, tokens, {{2}, {}}), doctest::Contains("one per batch row"),
                       mint::argument_error);
}
