// Feature ablation, occlusion and the ablation type: each effect against the forward it stands
// for, run by hand with a hook.
#include "mint/attribution/feature_ablation.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<double> small_model() {
  mint::toy::transformer_config config{.vocab = 11, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8, .d_mlp = 32};
  mint::toy::transformer<double> model(config);
  model.initialize(4);
  return model;
}

// The metric with `fn` applied to the site's activation of every row (a forward hook).
template <class M>
double metric_with(mint::toy::transformer<double>& model, const mint::token_batch& t, const M& m, const std::string& site,
                   const std::function<void(mint::hook_call<double>&)>& fn) {
  mint::hook_set<double> hooks(model.sites());
  hooks.add(site, fn);
  return m.value(model.forward(t, hooks), t);
}

}  // namespace

TEST_CASE("feature ablation per site and per head equals the forward with that part replaced") {
  auto model = small_model();
  const auto t = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 4, 6, 9}});
  const mint::logit_difference m{{2, 2}, {5, 5}, {}};
  mint::hook_set<double> none;
  const double clean = m.value(model.forward(t, none), t);
  const auto heads = mint::feature_ablation(model, t, m, {.sites = {"blocks.1.attn.hook_z"}, .per_head = true});
  REQUIRE(heads.size() == 2);
  CHECK(heads[1].name == "blocks.1.attn.hook_z[1]");
  for (int h = 0; h < 2; ++h) {
    const double by_hand = metric_with(model, t, m, "blocks.1.attn.hook_z", [&](mint::hook_call<double>& c) {
      mint::detail::for_each_index(c.activation.extents(), [&](const auto& i) {
        if (i[2] == h) mint::detail::element_at(c.activation, i) = 0.0;
      });
    });
    CHECK(heads[std::size_t(h)].effect == doctest::Approx(clean - by_hand).epsilon(1e-12));
  }
  CHECK(std::abs(heads[0].effect) + std::abs(heads[1].effect) > 1e-6);  // the heads matter

  // A mean over a reference batch, several sites in one forward, and bounded batches.
  const auto reference = mint::token_batch::from_rows({{0, 1, 2, 3, 4, 5}, {6, 7, 8, 9, 10, 0}, {5, 5, 5, 5, 5, 5}});
  const auto mean = mint::ablation::mean(reference);
  const auto all = mint::feature_ablation(model, t, m, {.sites = {"blocks.0.hook_mlp_out", "blocks.1.hook_attn_out"}, .baseline = mean});
  const auto bounded = mint::feature_ablation(model, t, m, {.sites = {"blocks.0.hook_mlp_out", "blocks.1.hook_attn_out"}, .baseline = mean, .max_batch = 2});
  const auto values = mint::ablation_values(model, "blocks.0.hook_mlp_out", t, mean);
  const double by_hand = metric_with(model, t, m, "blocks.0.hook_mlp_out", [&](mint::hook_call<double>& c) { mint::copy(values, c.activation); });
  CHECK(all[0].effect == doctest::Approx(clean - by_hand).epsilon(1e-12));
  for (std::size_t i = 0; i < 2; ++i) CHECK(bounded[i].effect == doctest::Approx(all[i].effect).epsilon(1e-12));
  // The mean per position is the reference rows' average there.
  const auto ref = mint::run_with_cache(model, reference, {"blocks.0.hook_mlp_out"});
  CHECK(values(1, 2, 5) == doctest::Approx((ref.cache["blocks.0.hook_mlp_out"](0, 2, 5) + ref.cache["blocks.0.hook_mlp_out"](1, 2, 5) +
                                            ref.cache["blocks.0.hook_mlp_out"](2, 2, 5)) / 3).epsilon(1e-12));
  CHECK(values(1, 5, 0) == 0.0);  // padding of row 1

  // Resample: the effect averages the draws, each a reference row per batch row.
  const auto resample = mint::ablation::resample(reference, 3, 9);
  const auto r = mint::feature_ablation(model, t, m, {.sites = {"blocks.0.hook_mlp_out"}, .baseline = resample});
  double sum = 0;
  for (int d = 0; d < 3; ++d) {
    const auto draw = mint::ablation_values(model, "blocks.0.hook_mlp_out", t, resample, d);
    sum += clean - metric_with(model, t, m, "blocks.0.hook_mlp_out", [&](mint::hook_call<double>& c) { mint::copy(draw, c.activation); });
  }
  CHECK(r[0].effect == doctest::Approx(sum / 3).epsilon(1e-12));
}

TEST_CASE("occlusion: each window's effect and the per-position mean of the windows covering it") {
  auto model = small_model();
  const auto t = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 4, 6, 9, 2, 2}});
  const mint::logit_difference m{{2, 2}, {5, 5}, {}};
  const auto r = mint::occlusion(model, t, m, {.window = 2, .stride = 2});
  REQUIRE(r.starts == std::vector<mint::index>{0, 2, 4});
  for (std::size_t w = 0; w < 3; ++w) {
    const double by_hand = metric_with(model, t, m, "hook_embed", [&](mint::hook_call<double>& c) {
      for (mint::index b = 0; b < 2; ++b)
        for (mint::index p = r.starts[w]; p < r.starts[w] + 2; ++p)
          for (mint::index j = 0; j < 16; ++j) c.activation(b, p, j) = 0.0;
    });
    CHECK(r.windows[w] == doctest::Approx(r.value - by_hand).epsilon(1e-12));
    CHECK(r.positions[2 * w] == doctest::Approx(r.windows[w]).epsilon(1e-12));
  }
  const auto sliding = mint::occlusion(model, t, m, {.window = 3, .stride = 1, .max_batch = 4});
  CHECK(sliding.windows.size() == 4);
  // Position 2 is covered by windows starting at 0, 1 and 2.
  CHECK(sliding.positions[2] == doctest::Approx((sliding.windows[0] + sliding.windows[1] + sliding.windows[2]) / 3).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(mint::occlusion(model, t, m, {.window = 7}), doctest::Contains("window"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::feature_ablation(model, t, m, {}), doctest::Contains("sites"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::feature_ablation(model, t, m, {.sites = {"hook_embed"}, .per_head = true}), doctest::Contains("head"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::ablation_values(model, "hook_embed", t, mint::ablation::mean(mint::token_batch::from_rows({{1, 2}}))),
                       doctest::Contains("positions"), mint::shape_error);
}
