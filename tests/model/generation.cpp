// generate: the KV cache and full recomputation give the same tokens (greedy and sampled, ragged
// prompts, stop tokens, steering hooks); sampling follows softmax(logits / temperature) with the
// top-k and top-p cuts; bad input is refused.
#include "mint/model/generation.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <algorithm>
#include <vector>

#include "mint/toy/transformer.hpp"

namespace {

// Two layers with MLP and layer norm, vocab 16: small enough for long recomputed generations.
mint::toy::transformer<float> gen_test_model(std::uint64_t seed = 3) {
  mint::toy::transformer<float> m({.vocab = 16, .context = 64, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                   .d_mlp = 32});
  m.initialize(seed);
  return m;
}

mint::token_batch gen_ragged_prompts() { return mint::token_batch::from_rows({{1, 2, 3, 4, 5, 6}, {7, 8, 9}, {3, 1, 4, 1}}); }

// One row of tokens as a vector, to compare rows across results.
std::vector<mint::token> gen_row(const mint::generation_result& r, mint::index b) {
  std::vector<mint::token> out;
  for (mint::index t = 0; t < r.tokens.length(b); ++t) out.push_back(r.tokens(b, t));
  return out;
}

void gen_check_same_tokens(const mint::generation_result& a, const mint::generation_result& b) {
  REQUIRE(a.tokens.batch() == b.tokens.batch());
  for (mint::index r = 0; r < a.tokens.batch(); ++r) {
    CAPTURE(r);
    CHECK(gen_row(a, r) == gen_row(b, r));
    CHECK(a.generated[std::size_t(r)] == b.generated[std::size_t(r)]);
    CHECK(a.stopped[std::size_t(r)] == b.stopped[std::size_t(r)]);
  }
}

mint::generation_options gen_with_mode(mint::generation_options o, bool incremental) {
  o.use_incremental = incremental;
  return o;
}

// A runtime with fixed logits at every position (no sites, so the vocabulary comes from the
// first call): what generate samples from is exactly softmax(logits / temperature).
struct gen_constant_runtime {
  using scalar_type = double;
  std::vector<double> logits;
  mint::site_table table{};
  std::vector<double> buffer{};

  const mint::site_table& sites() const { return table; }
  mint::tensor_view<const double> forward(const mint::token_batch& tokens, mint::hook_set<double>&) {
    const auto V = mint::index(logits.size());
    buffer.resize(std::size_t(tokens.batch() * tokens.positions() * V));
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = logits[i % logits.size()];
    return mint::tensor_view<const double>(buffer.data(), {tokens.batch(), tokens.positions(), V});
  }
};
static_assert(mint::runtime<gen_constant_runtime>);
static_assert(!mint::incremental_runtime<gen_constant_runtime>);
static_assert(mint::incremental_runtime<mint::toy::transformer<float>>);

// Frequencies of the generated tokens of many rows of one prompt token, each drawing `per_row`.
std::vector<double> gen_frequencies(gen_constant_runtime& m, const mint::generation_options& o, mint::index rows,
                                    mint::index& draws) {
  mint::token_batch prompts(rows, 1);
  const auto r = mint::generate(m, prompts, o);
  std::vector<double> count(m.logits.size(), 0.0);
  draws = 0;
  for (mint::index b = 0; b < rows; ++b)
    for (mint::index t = 1; t < r.tokens.length(b); ++t, ++draws) count[std::size_t(r.tokens(b, t))] += 1;
  for (auto& c : count) c /= double(draws);
  return count;
}

std::vector<double> gen_softmax(const std::vector<double>& logits, double temperature) {
  std::vector<double> p(logits.size());
  double sum = 0;
  for (std::size_t j = 0; j < p.size(); ++j) sum += p[j] = std::exp(logits[j] / temperature);
  for (auto& x : p) x /= sum;
  return p;
}

}  // namespace

TEST_CASE("greedy generation: KV cache and recomputation agree, and match a hand-rolled forward + argmax loop") {
  auto m = gen_test_model();
  const auto prompts = gen_ragged_prompts();
  const mint::generation_options o{.max_new_tokens = 20};
  const auto cached = mint::generate(m, prompts, gen_with_mode(o, true));
  const auto recomputed = mint::generate(m, prompts, gen_with_mode(o, false));
  // Greedy tokens are exact: the two modes' logits differ by float rounding only (~1e-6), far
  // below the gaps between a random model's top logits, so the argmax is the same.
  gen_check_same_tokens(cached, recomputed);
  for (mint::index b = 0; b < 3; ++b) {
    CHECK(cached.prompt_lengths[std::size_t(b)] == prompts.length(b));
    CHECK(cached.generated[std::size_t(b)] == 20);
    CHECK(cached.tokens.length(b) == prompts.length(b) + 20);
    CHECK_FALSE(cached.stopped[std::size_t(b)]);
  }
  // Lockstep from the shortest prompt (3): one prefix chunk, then positions 3 .. 24 (row 0's
  // last token, at 6 + 20 - 1 = 25, is never fed): 1 + 22 calls in either mode.
  CHECK(cached.forward_calls == 23);
  CHECK(recomputed.forward_calls == 23);

  // Row 1 by hand: forward over the whole sequence, append the argmax at the last position.
  std::vector<mint::token> seq{7, 8, 9};
  for (int step = 0; step < 20; ++step) {
    const auto logits = m.forward(mint::token_batch::from_rows({seq}));
    const auto last = logits.subview(0).subview(mint::index(seq.size()) - 1);
    mint::index best = 0;
    for (mint::index j = 1; j < last.extent(0); ++j)
      if (last(j) > last(best)) best = j;
    seq.push_back(mint::token(best));
  }
  const auto alone = mint::generate(m, mint::token_batch::from_rows({{7, 8, 9}}), o);
  CHECK(gen_row(alone, 0) == seq);
  // The same row decoded beside longer prompts (padding it never attends to) gives the same tokens.
  CHECK(gen_row(cached, 1) == seq);
}

TEST_CASE("sampling is the same in both modes and for the same seed, and changes with the seed") {
  auto m = gen_test_model();
  const auto prompts = gen_ragged_prompts();
  const mint::generation_options o{.max_new_tokens = 40, .temperature = 0.8, .top_k = 5, .top_p = 0.9, .seed = 11};
  const auto cached = mint::generate(m, prompts, gen_with_mode(o, true));
  const auto recomputed = mint::generate(m, prompts, gen_with_mode(o, false));
  const auto again = mint::generate(m, prompts, o);
  // Exact: both modes draw the same uniforms in the same order, and a float-rounding change in
  // the logits (~1e-6) moves a CDF boundary by far less than the chance of landing on it.
  gen_check_same_tokens(cached, recomputed);
  gen_check_same_tokens(cached, again);

  auto other = o;
  other.seed = 12;
  const auto reseeded = mint::generate(m, prompts, other);
  // 120 sampled tokens with at least two candidates each: another stream gives the same ones
  // with vanishing probability.
  int differ = 0;
  for (mint::index b = 0; b < 3; ++b)
    for (mint::index t = prompts.length(b); t < cached.tokens.length(b); ++t) differ += cached.tokens(b, t) != reseeded.tokens(b, t);
  CHECK(differ > 0);
}

TEST_CASE("top_k = 1 and a tiny top_p sample the argmax") {
  auto m = gen_test_model(5);
  const auto prompts = gen_ragged_prompts();
  const auto greedy = mint::generate(m, prompts, {.max_new_tokens = 15});
  gen_check_same_tokens(greedy, mint::generate(m, prompts, {.max_new_tokens = 15, .temperature = 1.5, .top_k = 1, .seed = 4}));
  gen_check_same_tokens(greedy, mint::generate(m, prompts, {.max_new_tokens = 15, .temperature = 1.5, .top_p = 1e-9, .seed = 4}));
  gen_check_same_tokens(greedy, mint::generate(m, prompts, {.max_new_tokens = 15, .temperature = 1.5, .top_p = 1e-9,
                                                            .seed = 4, .use_incremental = false}));
}

TEST_CASE("stop tokens end rows, max_new_tokens and max_positions bound them") {
  auto m = gen_test_model();
  const auto prompts = gen_ragged_prompts();
  const auto free_run = mint::generate(m, prompts, {.max_new_tokens = 12});
  // Stop on row 1's third generated token (and whatever it is elsewhere).
  const mint::token stop = free_run.tokens(1, 3 + 2);
  for (bool incremental : {true, false}) {
    CAPTURE(incremental);
    const auto r = mint::generate(m, prompts, {.max_new_tokens = 12, .stop_tokens = {stop}, .use_incremental = incremental});
    for (mint::index b = 0; b < 3; ++b) {
      CAPTURE(b);
      // Where the free run first generates the stop token, if it does within 12.
      mint::index first_stop = -1;
      for (mint::index t = prompts.length(b); t < free_run.tokens.length(b) && first_stop < 0; ++t)
        if (free_run.tokens(b, t) == stop) first_stop = t;
      const mint::index expected = first_stop < 0 ? 12 : first_stop - prompts.length(b) + 1;
      CHECK(r.generated[std::size_t(b)] == expected);
      CHECK(r.stopped[std::size_t(b)] == (first_stop >= 0));
      CHECK(r.tokens.length(b) == prompts.length(b) + expected);
      for (mint::index t = 0; t < r.tokens.length(b); ++t) CHECK(r.tokens(b, t) == free_run.tokens(b, t));
    }
    CHECK(r.stopped[1]);
    CHECK(r.generated[1] <= 3);
  }

  // max_positions: the longest row (6) may grow to 8, the others to 8 too.
  const auto bounded = mint::generate(m, prompts, {.max_new_tokens = 12, .max_positions = 8});
  CHECK(bounded.generated == std::vector<mint::index>{2, 5, 4});
  for (mint::index b = 0; b < 3; ++b) CHECK(bounded.tokens.length(b) == 8);
  // Nothing to generate: the prompts back, no pass.
  const auto none = mint::generate(m, prompts, {.max_new_tokens = 0});
  CHECK(none.forward_calls == 0);
  CHECK(gen_row(none, 0) == std::vector<mint::token>{1, 2, 3, 4, 5, 6});
  CHECK(none.generated == std::vector<mint::index>{0, 0, 0});
}

TEST_CASE("a steering hook at generated positions gives the same tokens in both modes, and filters see absolute positions") {
  auto m = gen_test_model();
  const auto prompts = gen_ragged_prompts();
  const mint::generation_options o{.max_new_tokens = 16};
  // A large vector (norm ~ 30, the residual's is ~ 4) at positions each row generated.
  std::vector<float> direction(16);
  for (std::size_t j = 0; j < direction.size(); ++j) direction[j] = (j % 3 == 0 ? 8.0f : -4.0f);
  const auto steer = [&](mint::hook_call<float>& c) {
    for (mint::index b = 0; b < c.activation.extent(0); ++b)
      for (mint::index i = 0; i < c.activation.extent(1); ++i)
        if (c.valid(b, i) && c.position(i) >= prompts.length(b))
          for (mint::index j = 0; j < c.activation.extent(2); ++j) c.activation(b, i, j) += direction[std::size_t(j)];
  };
  mint::hook_set<float> hooks(m.sites());
  hooks.add("blocks.0.hook_resid_post", steer);
  const auto cached = mint::generate(m, prompts, gen_with_mode(o, true), hooks);
  const auto recomputed = mint::generate(m, prompts, gen_with_mode(o, false), hooks);
  gen_check_same_tokens(cached, recomputed);  // exact, as for greedy without hooks
  const auto plain = mint::generate(m, prompts, o);
  int differ = 0;
  for (mint::index b = 0; b < 3; ++b)
    for (mint::index t = prompts.length(b); t < plain.tokens.length(b); ++t) differ += plain.tokens(b, t) != cached.tokens(b, t);
  CHECK(differ > 0);
  // Prompt tokens are untouched and the first generated token comes from unsteered positions.
  for (mint::index b = 0; b < 3; ++b) CHECK(cached.tokens(b, prompts.length(b)) == plain.tokens(b, prompts.length(b)));

  // A filter from P = 3 (the shortest prompt) never sees the prefix chunk.
  for (bool incremental : {true, false}) {
    CAPTURE(incremental);
    std::vector<mint::index> seen;
    mint::hook_set<float> watch(m.sites());
    watch.add("blocks.1.hook_resid_pre", [&](mint::hook_call<float>& c) {
      for (mint::index i = 0; i < c.activation.extent(1); ++i) seen.push_back(c.position(i));
    }, {.only = {.position_begin = 3}});
    const auto r = mint::generate(m, prompts, gen_with_mode({.max_new_tokens = 4}, incremental), watch);
    REQUIRE_FALSE(seen.empty());
    CHECK(*std::min_element(seen.begin(), seen.end()) == 3);
    // Positions fed: 3 .. 8 (row 0's 6 prompt tokens + 4 new, its last never fed).
    CHECK(*std::max_element(seen.begin(), seen.end()) == 8);
    if (incremental) CHECK(seen == std::vector<mint::index>{3, 4, 5, 6, 7, 8});
    CHECK(r.forward_calls == 7);
  }
}

TEST_CASE("sampled frequencies follow softmax(logits / temperature), and top-k and top-p cut the right tokens") {
  // Token ids out of probability order, so the cuts must sort.
  gen_constant_runtime m{.logits = {0.0, 2.0, -1.0, 1.0, 0.5}};
  const mint::index rows = 4000;
  mint::index draws = 0;
  // Each frequency is a mean of `draws` Bernoulli(p) draws: within 4 standard errors
  // (sqrt(p (1 - p) / draws)) with probability above 0.9999 each.
  const auto check_close = [&](const std::vector<double>& got, const std::vector<double>& want) {
    for (std::size_t j = 0; j < want.size(); ++j) {
      CAPTURE(j);
      if (want[j] == 0) {
        CHECK(got[j] == 0.0);  // excluded tokens never appear
      } else {
        CHECK(std::abs(got[j] - want[j]) <= 4 * std::sqrt(want[j] * (1 - want[j]) / double(draws)));
      }
    }
  };

  const auto plain = gen_frequencies(m, {.max_new_tokens = 5, .temperature = 0.7, .seed = 1}, rows, draws);
  CHECK(draws == 5 * rows);
  check_close(plain, gen_softmax(m.logits, 0.7));

  // top_k = 2 keeps tokens 1 and 3 (logits 2 and 1), renormalised.
  const auto k2 = gen_frequencies(m, {.max_new_tokens = 5, .temperature = 1.0, .top_k = 2, .seed = 2}, rows, draws);
  {
    const double e2 = std::exp(2.0), e1 = std::exp(1.0);
    check_close(k2, {0, e2 / (e2 + e1), 0, e1 / (e2 + e1), 0});
  }
  // top_p = 0.8 at temperature 1: probabilities .563 (1), .207 (3), .126 (4), .076 (0), .028 (2);
  // the prefix reaches 0.8 at the third, so tokens 1, 3, 4 remain.
  const auto p8 = gen_frequencies(m, {.max_new_tokens = 5, .temperature = 1.0, .top_p = 0.8, .seed = 3}, rows, draws);
  {
    const double e2 = std::exp(2.0), e1 = std::exp(1.0), eh = std::exp(0.5), s = e2 + e1 + eh;
    check_close(p8, {0, e2 / s, 0, e1 / s, eh / s});
  }
  // Both: top_k = 3 then top_p = 0.7 of the renormalised three (.628, .231, .140): tokens 1 and 3.
  const auto both = gen_frequencies(m, {.max_new_tokens = 5, .temperature = 1.0, .top_k = 3, .top_p = 0.7, .seed = 4},
                                    rows, draws);
  {
    const double e2 = std::exp(2.0), e1 = std::exp(1.0);
    check_close(both, {0, e2 / (e2 + e1), 0, e1 / (e2 + e1), 0});
  }
  // Ties: top_k = 2 among three equal logits keeps the two lower ids.
  gen_constant_runtime tied{.logits = {1.0, 0.0, 1.0, 1.0}};
  const auto tie = gen_frequencies(tied, {.max_new_tokens = 5, .temperature = 1.0, .top_k = 2, .seed = 5}, 1000, draws);
  CHECK(tie[1] == 0.0);
  CHECK(tie[3] == 0.0);
  CHECK(tie[0] > 0.4);
  CHECK(tie[2] > 0.4);
  // Greedy ties go to the lower id.
  const auto g = mint::generate(tied, mint::token_batch(1, 1), {.max_new_tokens = 3});
  CHECK(gen_row(g, 0) == std::vector<mint::token>{0, 0, 0, 0});
}

TEST_CASE("generate refuses bad options, prompts and stopping hooks") {
  auto m = gen_test_model();
  const auto prompts = gen_ragged_prompts();
  const auto refuses = [&](const mint::generation_options& o, const char* what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(mint::generate(m, prompts, o), doctest::Contains(what), mint::argument_error);
  };
  refuses({.temperature = -1}, "mint::generate: options.temperature is -1; needs");
  refuses({.top_k = -2}, "options.top_k is -2");
  refuses({.top_p = 0}, "options.top_p is 0; needs 0 < top_p <= 1");
  refuses({.top_p = 1.5}, "options.top_p is 1.5");
  refuses({.max_new_tokens = -1}, "options.max_new_tokens is -1");
  refuses({.stop_tokens = {16}}, "options.stop_tokens hold id 16; needs ids in [0, 16)");
  refuses({.max_positions = 5}, "prompts row 0 has 6 tokens; needs at most options.max_positions, 5");
  CHECK_THROWS_WITH_AS(mint::generate(m, mint::token_batch::from_rows({{1, 2}, {}})), doctest::Contains("row 1 has length 0"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::generate(m, mint::token_batch::from_rows({{1, 2}, {3, 20, 1}})),
                       doctest::Contains("prompts hold id 20 at [1, 1]"), mint::argument_error);
  CHECK_THROWS_AS(mint::generate(m, mint::token_batch(0, 0)), mint::shape_error);
  // Without declared sites the vocabulary comes from the first logits.
  gen_constant_runtime c{.logits = {0.0, 1.0}};
  CHECK_THROWS_WITH_AS(mint::generate(c, mint::token_batch::from_rows({{0, 2}})), doctest::Contains("hold id 2"),
                       mint::argument_error);
  for (bool incremental : {true, false}) {
    mint::hook_set<float> stopping(m.sites());
    stopping.add("blocks.0.hook_resid_post", [](mint::hook_call<float>& call) { call.stop(); });
    CHECK_THROWS_WITH_AS(mint::generate(m, prompts, gen_with_mode({}, incremental), stopping),
                         doctest::Contains("mint::generate: hooks stopped the pass over positions [0, 3)"),
                         mint::argument_error);
  }
}
