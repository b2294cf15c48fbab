// Activation patching sweeps against the naive loop of one patched forward per index, on the
// toy transformer with MLPs, layer norm, grouped-query attention and a padded row.
#include "mint/patching/activation_patching.hpp"

#include <doctest/doctest.h>

#include "mint/model/metrics.hpp"
#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> gqa_model() {
  mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 4, .kv_heads = 2,
                                       .d_head = 4, .d_mlp = 24});
  model.initialize(9);
  return model;
}

// The metric after one naive patched forward: `from`'s activation copied into `into`'s run at
// the site, where the index (pos, head; -1: all) matches.
double naive(mint::toy::transformer<float>& model, const mint::token_batch& into, const mint::token_batch& from,
             const mint::token_batch& metric_tokens, const mint::logit_difference& m, const std::string& site, mint::index pos,
             int head) {
  const auto source = mint::run_with_cache(model, from, {site});
  const auto& info = model.sites()[model.sites().at(site)];
  const int p = info.axis_of(mint::axis::pos);
  int h = info.axis_of(mint::axis::head);
  if (h < 0) h = info.axis_of(mint::axis::kv_head);
  mint::hook_set<float> hooks(model.sites());
  hooks.add(site, [&](mint::hook_call<float>& c) {
    mint::detail::for_each_index(c.activation.extents(), [&](const auto& i) {
      if (pos >= 0 && i[std::size_t(p)] != pos) return;
      if (head >= 0 && i[std::size_t(h)] != head) return;
      mint::detail::element_at(c.activation, i) = mint::detail::element_at(source.cache[site], i);
    });
  });
  return m.value(model.forward(into, hooks), metric_tokens);
}

}  // namespace

TEST_CASE("activation patching sweeps equal the naive loop of patched forwards, both directions") {
  auto model = gqa_model();
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 2) = 12, corrupt(0, 4) = 8;
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  for (const auto direction : {mint::patch_direction::denoising, mint::patch_direction::noising}) {
    const bool denoising = direction == mint::patch_direction::denoising;
    CAPTURE(denoising);
    const auto r = mint::activation_patching(
        model, clean, corrupt, m,
        {.sites = {"blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.1.attn.hook_k", "blocks.1.attn.hook_pattern"},
         .by = {mint::axis::pos, mint::axis::head, mint::axis::kv_head}, .direction = direction, .max_batch = 6});
    const auto& into = denoising ? corrupt : clean;
    const auto& from = denoising ? clean : corrupt;
    const double span = r.clean_value - r.corrupt_value;
    CHECK(std::abs(span) > 0.01);
    for (const std::string site : {"blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.1.attn.hook_k", "blocks.1.attn.hook_pattern"}) {
      CAPTURE(site);
      const auto& s = r[site];
      const bool heads = s.axes.size() == 2;
      CHECK(s.axes.size() == (site == "blocks.0.hook_resid_pre" ? 1u : 2u));
      // The pattern's axes are [batch, head, pos, key]: head before pos.
      const bool head_first = heads && s.axes[0] != mint::axis::pos;
      const mint::index heads_n = heads ? s.values.extent(head_first ? 0 : 1) : 1;
      for (mint::index p = 0; p < 6; ++p)
        for (int h = 0; h < int(heads_n); ++h) {
          const double patched = naive(model, into, from, clean, m, site, p, heads ? h : -1);
          const double got = !heads ? s.values(p) : head_first ? s.values(h, p) : s.values(p, h);
          // float32 runs batched differently (6 rows a forward against 2): rounding of the
          // products, 1e-6 of the metric's span.
          CHECK(got == doctest::Approx((patched - r.corrupt_value) / span).epsilon(1e-6).scale(1.0));
        }
    }
  }
}

TEST_CASE("patching a whole residual site reproduces the other run; raw values; named errors") {
  auto model = gqa_model();
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 2) = 12;
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  const auto denoise = mint::activation_patching(model, clean, corrupt, m, {.sites = {"blocks.1.hook_resid_pre"}, .by = {}});
  CHECK(denoise["blocks.1.hook_resid_pre"].values(0) == doctest::Approx(1.0).epsilon(1e-6));
  const auto noise = mint::activation_patching(model, clean, corrupt, m,
                                               {.sites = {"blocks.1.hook_resid_pre"}, .by = {}, .direction = mint::patch_direction::noising, .normalize = false});
  CHECK(noise["blocks.1.hook_resid_pre"].values(0) == doctest::Approx(noise.corrupt_value).epsilon(1e-6));
  // A position nothing differs before leaves the corrupt run as it is: patching position 0 (same token in both).
  const auto by_pos = mint::activation_patching(model, clean, corrupt, m, {.sites = {"blocks.0.hook_resid_pre"}});
  CHECK(std::abs(by_pos["blocks.0.hook_resid_pre"].values(0)) < 1e-6);

  CHECK_THROWS_WITH_AS(mint::activation_patching(model, clean, mint::token_batch(2, 5), m, {.sites = {"hook_embed"}}),
                       doctest::Contains("corrupt"), mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::activation_patching(model, clean, corrupt, m, {.sites = {"blocks.0.hook_resid_pr"}}),
                       doctest::Contains("blocks.0.hook_resid_pre"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::activation_patching(model, clean, corrupt, m, {}), doctest::Contains("sites"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::activation_patching(model, clean, clean, m, {.sites = {"hook_embed"}}), doctest::Contains("normalize"),
                       mint::argument_error);
}
