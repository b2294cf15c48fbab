// The activation cache: equal to what the forward pass computes, padded positions zero, no effect on the run.
#include "mint/model/cache.hpp"

#include <doctest/doctest.h>

#include "mint/core/eigen.hpp"
#include "mint/toy/transformer.hpp"

TEST_CASE("caching every site leaves the logits unchanged and stores what hooks saw") {
  mint::toy::transformer<float> m({.vocab = 9, .context = 8, .d_model = 12, .layers = 2, .heads = 3, .d_head = 4,
                                   .d_mlp = 16, .split_qkv_input = true});
  m.initialize(7);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {5, 4, 3}});
  std::vector<std::string> all;
  for (const auto& s : m.sites()) all.push_back(s.name);
  const mint::matrixf plain = mint::to_matrix(m.forward(tokens));
  auto run = mint::run_with_cache(m, tokens, all);
  CHECK(mint::to_matrix(run.logits) == plain);

  // The cached residual is what a read hook sees at the same site.
  mint::hook_set<float> hooks(m.sites());
  mint::array<float> seen;
  hooks.add("blocks.1.hook_resid_mid", [&](mint::hook_call<float>& c) { seen = mint::array<float>::copy_of(c.activation); });
  m.forward(tokens, hooks);
  const auto cached = run.cache["blocks.1.hook_resid_mid"];
  for (mint::index t = 0; t < 5; ++t)
    for (mint::index j = 0; j < 12; ++j) CHECK(cached(0, t, j) == seen(0, t, j));
  // Row 1 has length 3: positions 3 and 4 are padding, stored as zeros.
  CHECK(cached(1, 2, 0) == seen(1, 2, 0));
  CHECK(cached(1, 3, 0) == 0.0f);
  CHECK(cached(1, 4, 11) == 0.0f);
  // The cached logits site equals the returned logits at valid positions.
  CHECK(run.cache["hook_logits"](0, 4, 8) == plain(4, 8));

  // rows() gathers the 8 valid positions.
  const mint::matrixf rows = run.cache.rows("blocks.1.hook_resid_mid");
  CHECK(rows.rows() == 8);
  CHECK(rows(5, 3) == seen(1, 0, 3));
  CHECK_THROWS_AS(run.cache.rows("blocks.0.attn.hook_pattern"), mint::argument_error);
}

TEST_CASE("a cache refuses names it does not hold, and a run larger than reserved") {
  mint::toy::transformer<float> m({.vocab = 5, .context = 6, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4});
  m.initialize(1);
  CHECK_THROWS_WITH_AS(mint::activation_cache<float>(m.sites(), {"hook_embedd"}), doctest::Contains("nearest: 'hook_embed'"),
                       mint::argument_error);
  mint::activation_cache<float> cache(m.sites(), {"hook_embed"});
  CHECK_THROWS_WITH_AS(cache["hook_pos_embed"], doctest::Contains("was not cached"), mint::argument_error);
  CHECK_THROWS_WITH_AS(cache.reserve(-1, 2), doctest::Contains("needs batch >= 0"), mint::shape_error);
  cache.reserve(1, 2);
  mint::hook_set<float> hooks(m.sites());
  cache.attach(hooks);
  CHECK_FALSE(cache.filled("hook_embed"));
  CHECK_THROWS_WITH_AS(cache["hook_embed"], doctest::Contains("was not reached"), mint::argument_error);
  // More positions than reserved: the buffer grows and keeps the whole run.
  const auto three = mint::token_batch::from_rows({{1, 2, 3}});
  m.forward(three, hooks);
  CHECK(cache["hook_embed"].extent(1) == 3);
  CHECK(cache["hook_embed"](0, 2, 0) == m.parameters()["embed.W_E"](3, 0));
  // Another batch than reserved is an error naming reserve().
  CHECK_THROWS_WITH_AS(m.forward(mint::token_batch::from_rows({{1, 2}, {3, 4}}), hooks),
                       doctest::Contains("call reserve()"), mint::shape_error);
}
