// MLP neurons through the feature collector: the top examples and histograms are what the cached
// activations hold (padding left out), the logit effects are W_out through the gain and W_U,
// and bad input is refused by name.
#include "mint/explain/neurons.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> neuron_model(int d_mlp) {
  mint::toy::transformer_config config{.vocab = 11, .context = 8, .d_model = 12, .layers = 2, .heads = 2, .d_head = 6,
                                       .d_mlp = d_mlp};
  mint::toy::transformer<float> model(config);
  model.initialize(5);
  mint::rng r(9);
  if (d_mlp > 0) r.fill_normal(model.parameters()["ln_final.w"], 1.0, 0.3);  // a gain that is not all ones
  return model;
}

}  // namespace

TEST_CASE("neurons: the collector keeps what the cached MLP activations hold, without padding") {
  auto model = neuron_model(20);
  REQUIRE(mint::neuron_count(model, 1) == 20);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6}, {9, 9, 1, 2}});
  mint::dictionary::feature_collector collector(20, {.top_n = 3, .histogram_bins = 8});
  mint::collect_neurons(model, tokens, 1, collector, /*first_example=*/100);
  CHECK(collector.rows() == 13);
  const auto run = mint::run_with_cache(model, tokens, {"blocks.1.mlp.hook_post"});
  const auto post = run.cache["blocks.1.mlp.hook_post"];
  for (mint::index i = 0; i < 20; ++i) {
    CAPTURE(i);
    double best = 0;
    mint::dictionary::example_ref where{};
    std::int64_t fires = 0;
    for (mint::index b = 0; b < 3; ++b)
      for (mint::index t = 0; t < tokens.length(b); ++t) {
        const double v = post(b, t, i);
        fires += v > 0;
        if (v > best) best = v, where = {100 + b, t};
      }
    CHECK(collector.fires(i) == fires);
    const auto top = collector.top(i);
    if (fires == 0) continue;
    REQUIRE(!top.empty());
    CHECK(top[0].value == best);
    CHECK(top[0].where == where);
    std::int64_t counted = 0;
    for (auto c : collector.histogram(i).counts) counted += c;
    CHECK(counted == fires);
  }
  // The report reads the windows through the batch.
  const auto report = mint::dictionary::feature_report(collector, {.tokens = mint::batch_tokens(tokens, 100)});
  for (const auto& f : report["features"])
    for (const auto& e : f["top_examples"]) {
      const auto b = e["example"].get<mint::index>() - 100, t = e["position"].get<mint::index>();
      CHECK(e["tokens"][e["token_index"].get<std::size_t>()].get<mint::token>() == tokens(b, t));
    }
}

TEST_CASE("neurons: logit effects are W_out times the final gain times W_U") {
  auto model = neuron_model(20);
  const auto effects = mint::neuron_logit_effects(model, 0, 3);
  REQUIRE(effects.size() == 20);
  const auto w = model.mlp_weights(0);
  const auto u = model.unembedding();
  for (mint::index i = 0; i < 20; ++i) {
    std::vector<double> logits(11, 0.0);
    for (mint::index v = 0; v < 11; ++v)
      for (mint::index j = 0; j < 12; ++j) logits[std::size_t(v)] += double(w.W_out(i, j)) * double(u.gain(j)) * double(u.weight(j, v));
    const auto top = std::max_element(logits.begin(), logits.end()) - logits.begin();
    const auto bottom = std::min_element(logits.begin(), logits.end()) - logits.begin();
    CHECK(effects[std::size_t(i)].boosted[0].token == top);
    CHECK(effects[std::size_t(i)].suppressed[0].token == bottom);
    // Float32 products against double: 1e-5 relative.
    CHECK(effects[std::size_t(i)].boosted[0].value == doctest::Approx(logits[std::size_t(top)]).epsilon(1e-5));
  }
}

TEST_CASE("neurons: a layer without an MLP, a collector of the wrong size and a bad layer are refused") {
  auto attention_only = neuron_model(0);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3}});
  mint::dictionary::feature_collector collector(20);
  CHECK_THROWS_WITH_AS(mint::collect_neurons(attention_only, tokens, 0, collector), doctest::Contains("mint::collect_neurons"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(attention_only.mlp_weights(0), doctest::Contains("has no MLPs"), mint::argument_error);
  auto model = neuron_model(20);
  mint::dictionary::feature_collector wrong(7);
  CHECK_THROWS_WITH_AS(mint::collect_neurons(model, tokens, 0, wrong), doctest::Contains("needs one per neuron"), mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::collect_neurons(model, tokens, 2, collector), doctest::Contains("mlp_post"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::neuron_logit_effects(model, 5), doctest::Contains("layer"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::batch_tokens(tokens, 4)(3), doctest::Contains("mint::batch_tokens"), mint::argument_error);
}
