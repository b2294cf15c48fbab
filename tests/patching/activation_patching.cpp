// Activation patching sweeps against the naive loop of one patched forward per index, on the
// toy transformer with MLPs, layer norm, grouped-query attention and a padded row.
#include "mint/patching/activation_patching.hpp"

#include <doctest/doctest.h>

#include "mint/attribution/feature_ablation.hpp"
#include "mint/model/ablation.hpp"
#include "mint/model/metrics.hpp"
#include "../model/fake_runtime.hpp"
#include "mint/toy/lstm.hpp"
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
template <class Model>
double naive(Model& model, const mint::token_batch& into, const mint::token_batch& from,
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
      auto at = i;  // in the whole run: a recurrent runtime calls once per position
      at[std::size_t(p)] = c.position(i[std::size_t(p)]);
      if (pos >= 0 && at[std::size_t(p)] != pos) return;
      if (head >= 0 && i[std::size_t(h)] != head) return;
      mint::detail::element_at(c.activation, i) = mint::detail::element_at(source.cache[site], at);
    });
  });
  return m.value(model.forward(into, hooks), metric_tokens);
}

// The toy transformer with only some of its capabilities, counting the work it is asked for
// (rows x positions x blocks run), so the three ways of running a sweep can be compared.
struct counted {
  mint::toy::transformer<float>& model;
  double work = 0;
  void add(const mint::token_batch& t, int from_layer) {
    work += double(t.batch() * t.positions() * (model.config().layers - std::max(from_layer, 0)));
  }
};

struct forward_only {
  using scalar_type = float;
  counted* c;
  const mint::site_table& sites() const { return c->model.sites(); }
  mint::tensor_view<const float> forward(const mint::token_batch& t, mint::hook_set<float>& h) {
    c->add(t, -1);
    return c->model.forward(t, h);
  }
};

struct resumable_only : forward_only {
  mint::tensor_view<const float> forward_from(int layer, mint::tensor_view<const float> resid, const mint::token_batch& t,
                                              mint::hook_set<float>& h) {
    c->add(t, layer);
    return c->model.forward_from(layer, resid, t, h);
  }
};

struct branching : resumable_only {
  void reset() { c->model.reset(); }
  mint::index cached_positions() const { return c->model.cached_positions(); }
  mint::tensor_view<const float> forward_chunk(const mint::token_batch& t, mint::hook_set<float>& h) {
    c->add(t, -1);
    return c->model.forward_chunk(t, h);
  }
  mint::tensor_view<const float> forward_branch(int layer, mint::tensor_view<const float> resid, const mint::token_batch& t,
                                                mint::hook_set<float>& h) {
    c->add(t, layer);
    return c->model.forward_branch(layer, resid, t, h);
  }
};
// Also trims a branch's outputs: the last block runs after its keys and values at `outputs`
// positions only (counted as that many positions).
struct trimming : branching {
  using branching::forward_branch;
  mint::tensor_view<const float> forward_branch(int layer, mint::tensor_view<const float> resid, const mint::token_batch& t,
                                                mint::hook_set<float>& h, mint::index outputs) {
    c->add(t, layer);
    c->work -= double(t.batch() * (t.positions() - outputs));
    return c->model.forward_branch(layer, resid, t, h, outputs);
  }
};
static_assert(mint::runtime<forward_only> && !mint::resumable_runtime<forward_only>);
static_assert(mint::output_trimming_runtime<trimming> && !mint::output_trimming_runtime<branching>);
static_assert(mint::resumable_runtime<resumable_only> && !mint::branching_runtime<resumable_only>);
static_assert(mint::branching_runtime<branching>);

}  // namespace

TEST_CASE("prefix reuse and resuming at a block give the sweeps full forwards give, for less work") {
  for (bool split : {false, true}) {
    CAPTURE(split);
    mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 3, .heads = 4, .kv_heads = 2,
                                         .d_head = 4, .d_mlp = 24, .split_qkv_input = split});
    model.initialize(5);
    // A padded row: patches past its end leave it as it is.
    const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3, 9}, {3, 5, 6, 9}, {8, 2, 2, 1, 0, 6, 5}});
    auto corrupt = clean;
    corrupt(0, 1) = 11, corrupt(1, 2) = 12, corrupt(0, 4) = 8, corrupt(2, 0) = 3;
    const mint::logit_difference m{{2, 8, 4}, {5, 1, 7}, {}};
    std::vector<std::string> sites = {"hook_embed", "blocks.0.attn.hook_q", "blocks.1.hook_resid_pre", "blocks.1.attn.hook_pattern",
                                      "blocks.2.hook_mlp_out", "blocks.2.attn.hook_v", "ln_final.hook_normalized"};
    if (split) sites.push_back("blocks.1.hook_k_input");
    for (const auto direction : {mint::patch_direction::denoising, mint::patch_direction::noising})
      for (const mint::index max_batch : {mint::index(0), mint::index(9)}) {
        CAPTURE(max_batch);
        const mint::activation_patching_options options{.sites = sites, .by = {mint::axis::pos, mint::axis::head, mint::axis::kv_head},
                                                        .direction = direction, .max_batch = max_batch};
        counted full_count{model}, resume_count{model}, branch_count{model};
        forward_only full{&full_count};
        resumable_only resume{{&resume_count}};
        branching branch{{{&branch_count}}};
        const auto a = mint::activation_patching(full, clean, corrupt, m, options);
        const auto b = mint::activation_patching(resume, clean, corrupt, m, options);
        const auto c = mint::activation_patching(branch, clean, corrupt, m, options);
        for (const auto& site : sites) {
          CAPTURE(site);
          const auto &x = a[site].values, &y = b[site].values, &z = c[site].values;
          REQUIRE(x.size() == y.size());
          REQUIRE(x.size() == z.size());
          for (mint::index i = 0; i < x.size(); ++i) {
            // float32 runs over other rows and positions: rounding of the products, 1e-6 of the span.
            CHECK(y.data()[i] == doctest::Approx(x.data()[i]).epsilon(1e-6).scale(1.0));
            CHECK(z.data()[i] == doctest::Approx(x.data()[i]).epsilon(1e-6).scale(1.0));
          }
        }
        // Resuming skips the blocks before each site; branching also the positions before each patch.
        CHECK(resume_count.work < 0.8 * full_count.work);
        CHECK(branch_count.work < 0.8 * resume_count.work);  // 7 positions: the suffixes average 4.5 of them
      }
  }
  // Feature ablation and occlusion run the same way.
  mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 4, .d_head = 4, .d_mlp = 24});
  model.initialize(3);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3, 9}, {3, 5, 6, 9}});
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  counted full_count{model}, branch_count{model};
  forward_only full{&full_count};
  branching branch{{{&branch_count}}};
  const mint::occlusion_options occlude{.site = "blocks.1.hook_resid_pre", .window = 2, .stride = 1};
  const auto a = mint::occlusion(full, tokens, m, occlude), c = mint::occlusion(branch, tokens, m, occlude);
  REQUIRE(a.windows.size() == c.windows.size());
  for (std::size_t i = 0; i < a.windows.size(); ++i) CHECK(c.windows[i] == doctest::Approx(a.windows[i]).epsilon(1e-6).scale(1.0));
  CHECK(branch_count.work < 0.75 * full_count.work);
}

TEST_CASE("a metric that reads late positions only: trimmed branches give the same sweep for less work") {
  mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 3, .heads = 4, .kv_heads = 2,
                                       .d_head = 4, .d_mlp = 24});
  model.initialize(5);
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3, 9}, {3, 5, 6, 9, 1, 0}, {8, 2, 2, 1, 0, 6, 5}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 2) = 12, corrupt(0, 4) = 8, corrupt(2, 0) = 3;
  // Each row's last position (the padded row's is 5), and given positions 4, 5, 6.
  const mint::logit_difference last{{2, 8, 4}, {5, 1, 7}, {}}, given{{2, 8, 4}, {5, 1, 7}, {4, 5, 6}};
  CHECK(mint::first_position_read(last, clean) == 5);
  CHECK(mint::first_position_read(given, clean) == 4);
  CHECK(mint::first_position_read(mint::cross_entropy{}, clean) == 0);
  const std::vector<std::string> sites = {"blocks.0.attn.hook_z", "blocks.1.hook_resid_pre", "blocks.2.attn.hook_pattern",
                                          "blocks.2.hook_mlp_out", "blocks.2.attn.hook_z", "blocks.2.attn.hook_v"};
  for (const auto* m : {&last, &given}) {
    const mint::activation_patching_options options{.sites = sites, .by = {mint::axis::pos, mint::axis::head, mint::axis::kv_head}};
    counted full_count{model}, branch_count{model}, trim_count{model};
    forward_only full{&full_count};
    branching branch{{{&branch_count}}};
    trimming trim{{{{&trim_count}}}};
    const auto a = mint::activation_patching(full, clean, corrupt, *m, options);
    const auto b = mint::activation_patching(branch, clean, corrupt, *m, options);
    const auto c = mint::activation_patching(trim, clean, corrupt, *m, options);
    for (const auto& site : sites) {
      CAPTURE(site);
      for (mint::index i = 0; i < a[site].values.size(); ++i) {
        // float32 runs over other rows and positions: rounding of the products, 1e-6 of the span.
        CHECK(b[site].values.data()[i] == doctest::Approx(a[site].values.data()[i]).epsilon(1e-6).scale(1.0));
        CHECK(c[site].values.data()[i] == doctest::Approx(a[site].values.data()[i]).epsilon(1e-6).scale(1.0));
      }
    }
    CHECK(trim_count.work < 0.95 * branch_count.work);  // the last of 3 blocks skips 4 or 5 of 7 positions, where it runs
  }
}

TEST_CASE("on the recurrent toy runtime, sweeps branch off the carried state and equal the naive loop") {
  static_assert(mint::branching_runtime<mint::toy::lstm<float>> && !mint::resumable_runtime<mint::toy::lstm<float>>);
  mint::toy::lstm<float> model({.vocab = 13, .d_model = 8, .d_hidden = 12, .layers = 2, .context = 8});
  model.initialize(4);
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 0) = 12, corrupt(0, 3) = 8;
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  const std::vector<std::string> sites = {"hook_embed", "blocks.0.hook_c", "blocks.1.hook_h", "blocks.1.hook_gates"};
  const auto r = mint::activation_patching(model, clean, corrupt, m, {.sites = sites, .max_batch = 4});
  for (const auto& site : sites)
    for (mint::index p = 0; p < 6; ++p) {
      CAPTURE(site);
      CAPTURE(p);
      const double patched = naive(model, corrupt, clean, clean, m, site, p, -1);
      // float32 runs over other rows and positions: rounding, 1e-6 of the metric's span.
      CHECK(r[site].values(p) == doctest::Approx((patched - r.corrupt_value) / (r.clean_value - r.corrupt_value)).epsilon(1e-6).scale(1.0));
    }
  mint::hook_set<float> none(model.sites());
  CHECK_THROWS_WITH_AS(model.forward_branch(0, {}, clean, none),
                       doctest::Contains("no residual stream"), mint::argument_error);
}

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

TEST_CASE("an ablation in place of the other run: zero, resample over draws, the other run itself") {
  auto model = gqa_model();
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 0, 2}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 2) = 12;
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  const auto reference = mint::token_batch::from_rows({{7, 7, 1, 2, 3, 4}, {0, 1, 2, 3, 4, 5}, {9, 8, 7, 6, 5, 4}});
  // The other run as an ablation is the default patch.
  const mint::activation_patching_options by_pos{.sites = {"blocks.1.attn.hook_z"}, .by = {mint::axis::pos, mint::axis::head}};
  auto as_run = by_pos;
  as_run.replacement = mint::ablation::run(clean);
  const auto a = mint::activation_patching(model, clean, corrupt, m, by_pos), b = mint::activation_patching(model, clean, corrupt, m, as_run);
  for (mint::index i = 0; i < a["blocks.1.attn.hook_z"].values.size(); ++i)
    CHECK(b["blocks.1.attn.hook_z"].values.data()[i] == a["blocks.1.attn.hook_z"].values.data()[i]);
  // Zero and resample on the clean run, per head over all positions, against feature ablation:
  // patched metric = metric(clean) - the ablation's effect.
  for (const auto& ablate : {mint::ablation::zero(), mint::ablation::resample(reference, 3, 7)}) {
    CAPTURE(to_string(ablate.what));
    const auto r = mint::activation_patching(model, clean, corrupt, m,
        {.sites = {"blocks.0.attn.hook_z"}, .by = {mint::axis::head}, .direction = mint::patch_direction::noising,
         .normalize = false, .replacement = ablate});
    const auto effects = mint::feature_ablation(model, clean, m, {.sites = {"blocks.0.attn.hook_z"}, .per_head = true, .baseline = ablate});
    REQUIRE(effects.size() == 4);
    for (int h = 0; h < 4; ++h)  // the same runs batched differently: float32 rounding
      CHECK(r["blocks.0.attn.hook_z"].values(h) == doctest::Approx(r.clean_value - effects[std::size_t(h)].effect).epsilon(1e-6).scale(1.0));
  }
  CHECK_THROWS_WITH_AS(mint::activation_patching(model, clean, corrupt, m,
                           {.sites = {"blocks.0.attn.hook_z"}, .replacement = mint::ablation::run(mint::token_batch(2, 5))}),
                       doctest::Contains("mint::ablation_values"), mint::shape_error);
}

TEST_CASE("a site the runtime cannot write is refused by name") {
  mint_test::fake_runtime<float> engine(7, 4, 5, false, 1, mint::access::read);  // its hidden site is read-only
  const auto clean = mint::token_batch::from_rows({{1, 2, 3}}), corrupt = mint::token_batch::from_rows({{4, 2, 3}});
  const mint::logit_difference m{{1}, {2}, {}};
  CHECK_THROWS_WITH_AS(mint::activation_patching(engine, clean, corrupt, m, {.sites = {"blocks.0.mlp.hook_post"}}),
                       doctest::Contains("'blocks.0.mlp.hook_post' allows read"), mint::argument_error);
  // The writable embedding site of the same engine patches (a plain runtime: whole forwards).
  const auto r = mint::activation_patching(engine, clean, corrupt, m, {.sites = {"hook_embed"}, .normalize = false});
  CHECK(r["hook_embed"].values(0) == doctest::Approx(r.clean_value).epsilon(1e-6));  // position 0 restored: the clean input
}
