// Head scores: hand-computed values on a runtime with set attention patterns (with and without
// TransformerLens's exclusions), the known induction circuit's heads named by their scores, and
// bad input refused by name.
#include "mint/explain/head_scores.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "mint/core/array.hpp"
#include "mint/toy/circuits.hpp"
#include "mint/toy/lstm.hpp"

namespace {

// One block of two heads with set patterns: head 0 attends to the previous position (position 0
// to itself), head 1 uniformly to every position up to its own.
struct pattern_runtime {
  using scalar_type = float;
  mint::site_table table;
  mint::site_id id;
  mint::array<float> pattern, logits;
  bool chunked = false;  // call the site twice, for queries [0, 2) and [2, P), as a KV-cached engine would

  pattern_runtime() {
    using ax = mint::axis;
    id = table.add({"blocks.0.attn.hook_pattern", 0, mint::site_role::attn_pattern, 2, 2,
                    {ax::batch, ax::head, ax::pos, ax::key_pos}, {0, 2, 0, 0}});
  }
  const mint::site_table& sites() const { return table; }
  mint::tensor_view<const float> forward(const mint::token_batch& tokens, mint::hook_set<float>& hooks) {
    const mint::index B = tokens.batch(), P = tokens.positions();
    pattern = mint::array<float>({B, 2, P, P});
    for (mint::index b = 0; b < B; ++b)
      for (mint::index q = 0; q < P; ++q) {
        pattern(b, 0, q, q == 0 ? 0 : q - 1) = 1.0f;
        for (mint::index k = 0; k <= q; ++k) pattern(b, 1, q, k) = 1.0f / float(q + 1);
      }
    logits = mint::array<float>({B, P, 1});
    if (!chunked) {
      if (!hooks.call(id, pattern.view(), tokens.lengths())) return {};
      return logits.view();
    }
    const auto all = pattern.view();
    hooks.call(id, all.narrow(2, 0, 2).narrow(3, 0, 2), tokens.lengths(), {.first_position = 0});
    hooks.call(id, all.narrow(2, 2, P), tokens.lengths(), {.first_position = 2});
    return logits.view();
  }
};

}  // namespace

TEST_CASE("head scores: TransformerLens's measure, by hand on set patterns") {
  pattern_runtime model;
  const auto tokens = mint::token_batch::from_rows({{5, 7, 5, 7}});
  const auto s = mint::head_scores(model, tokens);
  REQUIRE(s.layers == 1);
  REQUIRE(s.heads == 2);
  using p = mint::head_pattern;
  // Head 0, attention one-hot on the previous position, four queries.
  CHECK(s[p::previous_token](0, 0) == doctest::Approx(3.0 / 4));
  CHECK(s[p::duplicate_token](0, 0) == doctest::Approx(0.0));
  CHECK(s[p::induction](0, 0) == doctest::Approx(2.0 / 4));  // (2, 1) and (3, 2): after the earlier copy
  CHECK(s[p::first_token](0, 0) == doctest::Approx(2.0 / 4));
  // Head 1, uniform: previous 1/2 + 1/3 + 1/4; duplicates (2, 0), (3, 1); induction (2, 1), (3, 2).
  CHECK(s[p::previous_token](0, 1) == doctest::Approx(13.0 / 12 / 4));
  CHECK(s[p::duplicate_token](0, 1) == doctest::Approx(7.0 / 12 / 4));
  CHECK(s[p::induction](0, 1) == doctest::Approx(7.0 / 12 / 4));
  CHECK(s[p::first_token](0, 1) == doctest::Approx(25.0 / 12 / 4));
  // Excluding BOS drops key 0 from both sums: head 1's denominator is 1/2 + 2/3 + 3/4 = 23/12.
  const auto no_bos = mint::head_scores(model, tokens, {.exclude_bos = true});
  CHECK(no_bos[p::previous_token](0, 1) == doctest::Approx(7.0 / 23));
  CHECK(no_bos[p::first_token](0, 1) == doctest::Approx(0.0));
  // Excluding the current token: head 1 keeps 1/2 + 2/3 + 3/4 of its mass, the previous token all of it.
  const auto no_self = mint::head_scores(model, tokens, {.exclude_current_token = true});
  CHECK(no_self[p::previous_token](0, 1) == doctest::Approx(13.0 / 23));
  // The same from a runtime that calls the pattern site once per chunk of queries.
  pattern_runtime chunks;
  chunks.chunked = true;
  const auto by_chunk = mint::head_scores(chunks, tokens);
  for (std::size_t i = 0; i < s.patterns.size(); ++i)
    for (mint::index h = 0; h < 2; ++h) CHECK(by_chunk.scores[i](0, h) == doctest::Approx(s.scores[i](0, h)).epsilon(1e-12));
  // Two rows, one padded: each row scored alone, then averaged; padding is never counted.
  const auto two = mint::head_scores(model, mint::token_batch::from_rows({{5, 7, 5, 7}, {5, 7}}), {.max_batch = 1});
  CHECK(two[p::previous_token](0, 0) == doctest::Approx((3.0 / 4 + 1.0 / 2) / 2));
}

TEST_CASE("head scores name the known induction circuit's previous-token and induction heads") {
  auto circuit = mint::toy::induction_circuit();
  const auto tokens = mint::repeated_random_tokens(8, 10, 12, 3);
  REQUIRE(tokens.positions() == 21);
  CHECK(tokens(0, 4) == tokens(0, 14));
  const auto s = mint::head_scores(circuit.model, tokens);
  using p = mint::head_pattern;
  CHECK(s[p::previous_token](0, 0) > 0.9);
  CHECK(s[p::induction](1, 0) > 0.4);  // half the sequence has an earlier copy to attend after
  for (mint::index l = 0; l < 2; ++l)
    for (mint::index h = 0; h < 2; ++h) {
      if (l != 0 || h != 0) CHECK(s[p::previous_token](l, h) < s[p::previous_token](0, 0));
      if (l != 1 || h != 0) CHECK(s[p::induction](l, h) < s[p::induction](1, 0));
    }
}

TEST_CASE("head scores refuse bad input by name") {
  pattern_runtime model;
  const auto tokens = mint::token_batch::from_rows({{1, 2}});
  CHECK_THROWS_AS(mint::head_scores(model, tokens, {.patterns = {}}), mint::argument_error);
  CHECK_THROWS_AS(mint::head_scores(model, mint::token_batch(0, 0)), mint::shape_error);
  mint::toy::lstm<float> recurrent({.vocab = 4, .d_model = 4, .d_hidden = 4, .layers = 1, .context = 8});
  recurrent.initialize(1);
  CHECK_THROWS_AS(mint::head_scores(recurrent, tokens), mint::argument_error);  // no attention patterns
  CHECK_THROWS_AS(mint::repeated_random_tokens(1, 4, 1, 0), mint::argument_error);
  CHECK_THROWS_AS(mint::repeated_random_tokens(1, 4, 12, 0, /*bos=*/3), mint::argument_error);  // a drawn token
  // A pattern site that does not say how many heads it has.
  pattern_runtime headless;
  headless.table = mint::site_table();
  headless.id = headless.table.add({"blocks.0.attn.hook_pattern", 0, mint::site_role::attn_pattern, 0, 0,
                                    {mint::axis::batch, mint::axis::head, mint::axis::pos, mint::axis::key_pos}, {0, 2, 0, 0}});
  CHECK_THROWS_AS(mint::head_scores(headless, tokens), mint::argument_error);
  const mint::head_scores_result r = mint::head_scores(model, tokens, {.patterns = {mint::head_pattern::induction}});
  CHECK_THROWS_AS(r[mint::head_pattern::previous_token], mint::argument_error);
}
