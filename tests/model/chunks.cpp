// Runtimes that evaluate in chunks: absolute positions in hook calls and filters,
// caches that append chunks, and the toy transformer's KV cache against one full forward.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/toy/transformer.hpp"

namespace {

// Largest |a - b| over two views of the same extents.
double chunk_max_difference(mint::tensor_view<const float> a, mint::tensor_view<const float> b) {
  REQUIRE(mint::same_shape(a, b));
  if (a.rank() == 1) {
    double worst = 0;
    for (mint::index i = 0; i < a.extent(0); ++i) worst = std::max(worst, std::abs(double(a(i)) - double(b(i))));
    return worst;
  }
  double worst = 0;
  for (mint::index i = 0; i < a.extent(0); ++i) worst = std::max(worst, chunk_max_difference(a.subview(i), b.subview(i)));
  return worst;
}

mint::toy::transformer<float> chunk_model(bool split, int kv_heads = 0) {
  mint::toy::transformer<float> m({.vocab = 13, .context = 12, .d_model = 16, .layers = 2, .heads = 4,
                                   .kv_heads = kv_heads, .d_head = 4, .d_mlp = 24, .split_qkv_input = split});
  m.initialize(21);
  return m;
}

// Runs `tokens` through forward_chunk in chunks of the given widths; returns the logits [B, T, vocab].
mint::array<float> run_in_chunks(mint::toy::transformer<float>& m, const mint::token_batch& tokens,
                                 const std::vector<mint::index>& widths, mint::hook_set<float>& hooks) {
  m.reset();
  mint::array<float> logits({tokens.batch(), tokens.positions(), mint::index(m.config().vocab)});
  mint::index t0 = 0;
  for (const mint::index w : widths) {
    REQUIRE(m.cached_positions() == t0);
    const auto part = m.forward_chunk(tokens.slice(t0, t0 + w), hooks);
    REQUIRE(part.extent(1) == w);
    mint::copy(part, logits.view().narrow(1, t0, t0 + w));
    t0 += w;
  }
  REQUIRE(t0 == tokens.positions());
  return logits;
}

// |a - b| over valid positions only (padding logits are not defined to agree).
double valid_logit_difference(const mint::array<float>& a, mint::tensor_view<const float> b, const mint::token_batch& t) {
  double worst = 0;
  for (mint::index r = 0; r < t.batch(); ++r)
    worst = std::max(worst, chunk_max_difference(a.view().subview(r).narrow(0, 0, t.length(r)),
                                                 b.subview(r).narrow(0, 0, t.length(r))));
  return worst;
}

}  // namespace

TEST_CASE("a position filter narrows chunks in absolute positions") {
  mint::site_table sites;
  sites.add({"resid", 0, mint::site_role::resid_pre, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model},
             {0, 0, 2}});
  mint::hook_set<float> hooks(sites);
  std::vector<std::vector<mint::index>> seen;  // {first_position, extent, chunk_begin, chunk_end} per call
  hooks.add("resid", [&](mint::hook_call<float>& c) {
    seen.push_back({c.first_position, c.activation.extent(1), c.chunk_begin, c.chunk_end});
    for (mint::index i = 0; i < c.activation.extent(1); ++i) c.activation(0, i, 0) = float(c.position(i));
  }, {.needs = mint::access::write, .only = {.position_begin = 5, .position_end = 8}});
  std::vector<float> data(10 * 2, -1.0f);
  const std::vector<mint::index> lengths = {10};
  for (const auto& [begin, end] : std::vector<std::pair<mint::index, mint::index>>{{0, 4}, {4, 6}, {6, 10}}) {
    const mint::tensor_view<float> chunk(data.data() + begin * 2, {1, end - begin, 2});
    CHECK(hooks.call(0, chunk, lengths, {.first_position = begin}));
  }
  // Chunk [0, 4) holds none of 5..7 and never reaches the hook.
  CHECK(seen == std::vector<std::vector<mint::index>>{{5, 1, 4, 6}, {6, 2, 6, 10}});
  for (mint::index t = 0; t < 10; ++t) CHECK(data[std::size_t(t * 2)] == (t >= 5 && t < 8 ? float(t) : -1.0f));
}

TEST_CASE("hook sets and site tables reject ids outside the table") {
  auto m = chunk_model(false);
  mint::hook_set<float> hooks(m.sites());
  const auto n = mint::site_id(m.sites().size());
  CHECK_THROWS_WITH_AS(hooks.add(n, [](mint::hook_call<float>&) {}), doctest::Contains("needs an id in [0, "),
                       mint::argument_error);
  CHECK_THROWS_AS(hooks.add(-1, [](mint::hook_call<float>&) {}), mint::argument_error);
  CHECK_THROWS_AS(m.sites()[n], mint::argument_error);
  CHECK_THROWS_WITH_AS(hooks.add("hook_embed", mint::hook_set<float>::callback{}), doctest::Contains("is empty"),
                       mint::argument_error);
  // Rows, receivers and edges out of range: mint errors too, never std::out_of_range.
  CHECK_THROWS_WITH_AS(mint::token_batch(2, 3).length(2), doctest::Contains("needs a row in [0, 2)"),
                       mint::argument_error);
  CHECK_THROWS_AS(mint::token_batch(2, 3).set_length(-1, 1), mint::argument_error);
  const auto graph = chunk_model(true).graph();
  CHECK_THROWS_AS(graph.incoming(int(graph.receivers().size())), mint::argument_error);
  CHECK_THROWS_AS(graph.edge_name(-1), mint::argument_error);
}

TEST_CASE("token_batch::slice gives each row its valid positions within the range") {
  const auto t = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {6, 7}});
  const auto s = t.slice(1, 4);
  CHECK(s.positions() == 3);
  CHECK(s(0, 0) == 2);
  CHECK(s.length(0) == 3);
  CHECK(s.length(1) == 1);
  CHECK(t.slice(3, 5).length(1) == 0);
  CHECK_THROWS_AS(t.slice(2, 6), mint::shape_error);
}

TEST_CASE("the KV cache gives the full forward's logits, chunk by chunk, with padding, GQA and split inputs") {
  static_assert(mint::differentiable_runtime<mint::toy::transformer<float>>);
  static_assert(mint::differentiable_runtime<mint::toy::transformer<double>>);
  static_assert(mint::incremental_runtime<mint::toy::transformer<float>>);
  static_assert(mint::incremental_runtime<mint::toy::transformer<double>>);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0, 11, 3}, {3, 3, 12, 0, 7, 7}, {6, 2, 1}});
  const std::vector<std::vector<mint::index>> schedules = {{10}, {4, 1, 1, 1, 1, 1, 1}, {3, 3, 4}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
  for (bool split : {false, true})
    for (int kv_heads : {0, 2}) {
      auto m = chunk_model(split, kv_heads);
      mint::hook_set<float> none(m.sites());
      const auto full = mint::array<float>::copy_of(m.forward(tokens, none));
      for (const auto& widths : schedules) {
        const auto chunked = run_in_chunks(m, tokens, widths, none);
        INFO("split " << split << ", kv_heads " << kv_heads << ", " << widths.size() << " chunks");
        // Products over fewer rows may sum in another order: float32 agreement to 1e-5.
        CHECK(valid_logit_difference(chunked, full.view(), tokens) < 1e-5);
      }
    }
}

TEST_CASE("the KV cache gives the full forward's logits with hooks that read and write anywhere") {
  auto m = chunk_model(true, 2);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0, 11, 3}, {3, 3, 12, 0, 7, 7, 1}});
  // Hooks whose effect depends on absolute position only, so both ways of running agree.
  mint::hook_set<float> hooks(m.sites());
  hooks.add("blocks.0.attn.hook_z", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.0f); },
            {.needs = mint::access::write, .only = {.position_begin = 3, .position_end = 7, .head_begin = 1, .head_end = 3}});
  hooks.add("blocks.0.hook_resid_post", [](mint::hook_call<float>& c) {
    for (mint::index b = 0; b < c.activation.extent(0); ++b)
      for (mint::index i = 0; i < c.activation.extent(1); ++i) c.activation(b, i, 2) += 0.5f * float(c.position(i));
  }, {.needs = mint::access::add, .only = {.position_begin = 5}});
  hooks.add("blocks.1.attn.hook_k", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.25f); },
            {.needs = mint::access::write, .only = {.position_begin = 1, .position_end = 2}});
  hooks.add("blocks.1.hook_q_input", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.0f); },
            {.needs = mint::access::write, .only = {.position_begin = 8, .head_begin = 0, .head_end = 1}});
  mint::index reads = 0;
  hooks.add("blocks.1.attn.hook_pattern", [&](mint::hook_call<float>& c) {
    // Each query's pattern sums to one over the keys the row has at its absolute position.
    for (mint::index i = 0; i < c.activation.extent(2); ++i) {
      double sum = 0;
      for (mint::index k = 0; k < c.activation.extent(3); ++k) sum += c.activation(0, 0, i, k);
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
      CHECK(c.activation.extent(3) == c.chunk_end);
    }
    ++reads;
  });
  const auto full = mint::array<float>::copy_of(m.forward(tokens, hooks));
  mint::hook_set<float> none(m.sites());
  const auto plain = mint::array<float>::copy_of(m.forward(tokens, none));
  CHECK(chunk_max_difference(full.view(), plain.view()) > 1e-3);  // the hooks do change the run
  for (const std::vector<mint::index>& widths : {std::vector<mint::index>{4, 1, 1, 1, 1, 1, 1}, {2, 5, 3}}) {
    reads = 0;
    const auto chunked = run_in_chunks(m, tokens, widths, hooks);
    CHECK(reads == mint::index(widths.size()));
    CHECK(valid_logit_difference(chunked, full.view(), tokens) < 1e-5);  // float32 rounding, as above
  }
}

TEST_CASE("caching prefill plus single-token steps gives the full forward's tensors") {
  auto m = chunk_model(true, 2);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0}, {3, 3, 12, 0, 7}});
  std::vector<std::string> all;
  for (const auto& s : m.sites()) all.push_back(s.name);
  const auto full = mint::run_with_cache(m, tokens, all);
  mint::activation_cache<float> cache(m.sites(), all);
  cache.reserve(tokens.batch(), 3);  // fewer than the run: the buffers grow as chunks arrive
  mint::hook_set<float> hooks(m.sites());
  cache.attach(hooks);
  run_in_chunks(m, tokens, {3, 1, 1, 1, 1, 1}, hooks);
  for (const auto& name : all) {
    INFO(name);
    CHECK(cache.positions(name) == 8);
    const auto a = cache[name], b = full.cache[name];
    CHECK(std::vector<mint::index>(a.extents().begin(), a.extents().end()) ==
          std::vector<mint::index>(b.extents().begin(), b.extents().end()));
    CHECK(a.is_contiguous());
    // Products over fewer rows may sum in another order: float32 agreement to 1e-6 at unit-scale values.
    CHECK(chunk_max_difference(a, b) < 1e-6 * std::max(1.0, chunk_max_difference(b, mint::array<float>(b.extents()).view())));
  }
  CHECK(std::vector<mint::index>(cache.lengths().begin(), cache.lengths().end()) == std::vector<mint::index>{8, 5});
  CHECK(cache.rows("blocks.1.hook_resid_post").rows() == 13);
}

TEST_CASE("a chunked sequence refuses what would break it") {
  auto m = chunk_model(false);
  mint::hook_set<float> hooks(m.sites());
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}, {5, 6, 7, 8}});
  m.forward_chunk(tokens.slice(0, 2));
  CHECK_THROWS_WITH_AS(m.forward_chunk(mint::token_batch::from_rows({{1}})), doctest::Contains("needs the sequence's 2 rows"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(m.forward_chunk(mint::token_batch(2, 11)), doctest::Contains("at most the context, 12"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(m.forward_chunk(mint::token_batch::from_rows({{1, 99}, {1, 2}})), doctest::Contains("hold id 99"),
                       mint::argument_error);
  // No backward after a chunk: it keeps no full activations.
  const mint::array<float> dlogits({2, 2, 13});
  mint::hook_set<float> grads(m.sites(), mint::hook_phase::backward);
  CHECK_THROWS_WITH_AS(m.backward(dlogits.view(), grads), doctest::Contains("needs forward()"), mint::argument_error);
  // A hook that stops a chunk leaves the KV cache incomplete: the next chunk needs reset().
  hooks.add("blocks.0.hook_resid_post", [](mint::hook_call<float>& c) { c.stop(); });
  CHECK(m.forward_chunk(tokens.slice(2, 3), hooks).empty());
  CHECK_THROWS_WITH_AS(m.forward_chunk(tokens.slice(3, 4)), doctest::Contains("needs reset()"), mint::argument_error);
  m.reset();
  CHECK(m.cached_positions() == 0);
  auto first = mint::token_batch::from_rows({{1, 2}, {3}});
  first.set_length(1, 0);
  CHECK_THROWS_WITH_AS(m.forward_chunk(first), doctest::Contains("row 1 has length 0 in the first chunk"),
                       mint::argument_error);
  // forward() forgets the chunked sequence.
  m.forward_chunk(tokens.slice(0, 2));
  m.forward(tokens);
  CHECK(m.cached_positions() == 0);
}

TEST_CASE("forward_from resumes at a block: the logits of the forward whose resid_pre there was given") {
  static_assert(mint::branching_runtime<mint::toy::transformer<float>>);
  auto m = chunk_model(true, 2);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0}, {3, 3, 12, 0, 7}});
  const auto run = mint::run_with_cache(m, tokens, {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"});
  mint::hook_set<float> none(m.sites());
  for (int layer : {0, 1}) {
    const auto resid = run.cache["blocks." + std::to_string(layer) + ".hook_resid_pre"];
    const auto resumed = mint::array<float>::copy_of(m.forward_from(layer, resid, tokens, none));
    // The same products on the same inputs: the same bits.
    CHECK(valid_logit_difference(resumed, run.logits.view(), tokens) == 0.0);
  }
  CHECK(valid_logit_difference(mint::array<float>::copy_of(m.forward_from(-1, {}, tokens, none)), run.logits.view(), tokens) == 0.0);
  // A changed residual at block 1 gives what a hook writing it there gives, and hooks at the
  // resumed block's resid_pre still see (and may change) it; earlier sites are never called.
  auto changed = mint::array<float>::copy_of(run.cache["blocks.1.hook_resid_pre"]);
  changed.view()(0, 3, 1) += 2.0f;
  mint::hook_set<float> writer(m.sites());
  writer.add("blocks.1.hook_resid_pre", [](mint::hook_call<float>& c) { c.activation(0, 3, 1) += 2.0f; },
             {.needs = mint::access::add});
  const auto hooked = mint::array<float>::copy_of(m.forward(tokens, writer));
  mint::index early_calls = 0, resid_calls = 0;
  mint::hook_set<float> counter(m.sites());
  counter.add("blocks.0.hook_resid_post", [&](mint::hook_call<float>&) { ++early_calls; });
  counter.add("blocks.1.hook_resid_pre", [&](mint::hook_call<float>&) { ++resid_calls; });
  const auto resumed = mint::array<float>::copy_of(m.forward_from(1, changed.view(), tokens, counter));
  CHECK(valid_logit_difference(resumed, hooked.view(), tokens) == 0.0);
  CHECK(valid_logit_difference(resumed, run.logits.view(), tokens) > 1e-3);
  CHECK(early_calls == 0);
  CHECK(resid_calls == 1);
  CHECK_THROWS_WITH_AS(m.forward_from(2, changed.view(), tokens, none), doctest::Contains("needs a block in [0, 2) or -1"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(m.forward_from(1, run.cache["blocks.1.hook_resid_pre"].narrow(1, 0, 4), tokens, none),
                       doctest::Contains("needs [2, 8, 16]"), mint::shape_error);
  mint::array<float> dlogits({2, 8, 13});
  mint::hook_set<float> grads(m.sites(), mint::hook_phase::backward);
  CHECK_THROWS_WITH_AS(m.backward(dlogits.view(), grads), doctest::Contains("needs forward()"), mint::argument_error);
}

TEST_CASE("forward_branch continues the cached prefix in k copies, resumed at a block, and keeps nothing") {
  for (bool split : {false, true}) {
    auto m = chunk_model(split, 2);
    INFO("split " << split);
    const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0, 11, 3}, {3, 3, 12, 0, 7}, {6, 2, 1}});
    mint::hook_set<float> none(m.sites());
    const auto run = mint::run_with_cache(m, tokens, {"blocks.1.hook_resid_pre"});
    // The second copy zeroes head 1's output of block 1 from position 4 on; the full forward
    // with that hook on every row is its reference.
    mint::hook_set<float> zero_head(m.sites());
    auto zero_rows = [](mint::index first_row) {
      return [first_row](mint::hook_call<float>& c) {
        for (mint::index b = first_row; b < c.activation.extent(0); ++b)
          for (mint::index i = 0; i < c.activation.extent(1); ++i)
            if (c.position(i) >= 4) mint::fill(c.activation.subview(b).subview(i).subview(1), 0.0f);
      };
    };
    zero_head.add("blocks.1.attn.hook_z", zero_rows(0), {.needs = mint::access::write});
    const auto zeroed = mint::array<float>::copy_of(m.forward(tokens, zero_head));
    const mint::index p = 4, P = tokens.positions(), B = tokens.batch();
    const auto rows = mint::detail::repeat_rows(tokens, 2);
    mint::array<float> resid({2 * B, P - p, 16});
    for (mint::index k = 0; k < 2; ++k)
      mint::copy(run.cache["blocks.1.hook_resid_pre"].narrow(1, p, P), resid.view().narrow(0, k * B, (k + 1) * B));
    mint::hook_set<float> second_copy(m.sites());
    second_copy.add("blocks.1.attn.hook_z", zero_rows(B), {.needs = mint::access::write});
    m.reset();
    m.forward_chunk(tokens.slice(0, p));
    for (int layer : {-1, 1}) {
      INFO("layer " << layer);
      const auto branch = mint::array<float>::copy_of(
          m.forward_branch(layer, layer < 0 ? mint::tensor_view<const float>{} : resid.view(), rows.slice(p, P), second_copy));
      CHECK(m.cached_positions() == p);
      REQUIRE(branch.extent(0) == 2 * B);
      REQUIRE(branch.extent(1) == P - p);
      for (mint::index r = 0; r < 2 * B; ++r) {
        const mint::index valid = std::max<mint::index>(tokens.length(r % B) - p, 0);
        const auto& reference = r < B ? run.logits : zeroed;
        // Products over fewer rows may sum in another order: float32 agreement to 1e-5, as above.
        CHECK(chunk_max_difference(branch.view().subview(r).narrow(0, 0, valid),
                                   reference.view().subview(r % B).narrow(0, p, p + valid)) < 1e-5);
      }
    }
    // The cache kept only the prefix: the sequence continues as if no branch had run.
    mint::array<float> rest = mint::array<float>::copy_of(m.forward_chunk(tokens.slice(p, P), none));
    for (mint::index r = 0; r < B; ++r) {
      const mint::index valid = std::max<mint::index>(tokens.length(r) - p, 0);
      CHECK(chunk_max_difference(rest.view().subview(r).narrow(0, 0, valid), run.logits.view().subview(r).narrow(0, p, p + valid)) < 1e-5);
    }
  }
}

TEST_CASE("forward_branch with outputs: the last positions' logits, the last block after its keys and values there alone") {
  static_assert(mint::output_trimming_runtime<mint::toy::transformer<float>>);
  for (bool split : {false, true}) {
    auto m = chunk_model(split, 2);
    INFO("split " << split);
    const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4, 4, 8, 0, 11, 3}, {3, 3, 12, 0, 7, 1, 2, 9}});
    const mint::index p = 3, P = tokens.positions(), B = tokens.batch();
    const auto run = mint::run_with_cache(m, tokens, {"blocks.1.hook_resid_pre"});
    const auto rows = mint::detail::repeat_rows(tokens, 2);
    mint::array<float> resid({2 * B, P - p, 16});
    for (mint::index k = 0; k < 2; ++k)
      mint::copy(run.cache["blocks.1.hook_resid_pre"].narrow(1, p, P), resid.view().narrow(0, k * B, (k + 1) * B));
    m.reset();
    m.forward_chunk(tokens.slice(0, p));
    for (int layer : {-1, 1})
      for (mint::index outputs : {mint::index(1), mint::index(4), P - p}) {
        INFO("layer " << layer << ", outputs " << outputs);
        // Sites before the last block's pattern see the whole chunk; from it on, the last positions.
        std::vector<std::pair<mint::index, mint::index>> keys, outs, pattern;  // (first_position, positions)
        mint::hook_set<float> hooks(m.sites());
        hooks.add("blocks.1.attn.hook_k", [&](mint::hook_call<float>& c) { keys.emplace_back(c.first_position, c.activation.extent(1)); });
        hooks.add("blocks.1.attn.hook_pattern", [&](mint::hook_call<float>& c) { pattern.emplace_back(c.first_position, c.activation.extent(2)); });
        hooks.add("blocks.1.hook_resid_post", [&](mint::hook_call<float>& c) { outs.emplace_back(c.first_position, c.activation.extent(1)); });
        const auto branch = mint::array<float>::copy_of(
            m.forward_branch(layer, layer < 0 ? mint::tensor_view<const float>{} : resid.view(), rows.slice(p, P), hooks, outputs));
        CHECK(m.cached_positions() == p);
        REQUIRE(branch.extent(0) == 2 * B);
        REQUIRE(branch.extent(1) == outputs);
        CHECK(keys == std::vector<std::pair<mint::index, mint::index>>{{p, P - p}});
        CHECK(pattern == std::vector<std::pair<mint::index, mint::index>>{{P - outputs, outputs}});
        CHECK(outs == pattern);
        for (mint::index r = 0; r < 2 * B; ++r) {
          const mint::index valid = std::clamp<mint::index>(tokens.length(r % B) - (P - outputs), 0, outputs);
          // Products over fewer rows may sum in another order: float32 agreement to 1e-5, as above.
          CHECK(chunk_max_difference(branch.view().subview(r).narrow(0, 0, valid),
                                     run.logits.view().subview(r % B).narrow(0, P - outputs, P - outputs + valid)) < 1e-5);
        }
      }
    mint::hook_set<float> none(m.sites());
    CHECK_THROWS_WITH_AS(m.forward_branch(-1, {}, tokens.slice(p, P), none, 0), doctest::Contains("needs 1 to the chunk's positions, 7"),
                         mint::argument_error);
    CHECK_THROWS_WITH_AS(m.forward_branch(-1, {}, tokens.slice(p, P), none, 8), doctest::Contains("outputs"),
                         mint::argument_error);
  }
}

TEST_CASE("forward_branch refuses what it cannot continue") {
  auto m = chunk_model(false);
  mint::hook_set<float> none(m.sites());
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}, {5, 6, 7, 8}});
  m.reset();
  CHECK_THROWS_WITH_AS(m.forward_branch(-1, {}, tokens.slice(0, 2), none), doctest::Contains("needs a chunk evaluated first"),
                       mint::argument_error);
  m.forward_chunk(tokens.slice(0, 2));
  CHECK_THROWS_WITH_AS(m.forward_branch(-1, {}, mint::token_batch(3, 2), none),
                       doctest::Contains("needs a multiple of the sequence's 2 rows"), mint::shape_error);
  CHECK_THROWS_WITH_AS(m.forward_branch(-1, {}, mint::token_batch(2, 11), none), doctest::Contains("at most the context, 12"),
                       mint::shape_error);
  const mint::array<float> wrong({2, 1, 16});
  CHECK_THROWS_WITH_AS(m.forward_branch(0, wrong.view(), tokens.slice(2, 4), none), doctest::Contains("needs [2, 2, 16]"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(m.forward_branch(-1, wrong.view(), tokens.slice(2, 4), none), doctest::Contains("needs an empty view"),
                       mint::argument_error);
  CHECK(m.cached_positions() == 2);
}

TEST_CASE("grad hooks run in reverse layer order, and what they leave flows upstream") {
  auto m = chunk_model(true, 2);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 9, 4}, {3, 3, 12}});
  const auto logits = m.forward(tokens);
  // (No structured binding: clang 14 cannot capture one in the lambda below.)
  const auto dlogits = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens).second;
  const auto embed_gradient = [&](float scale, bool record, std::vector<int>* layers) {
    mint::hook_set<float> grads(m.sites(), mint::hook_phase::backward);
    if (record)
      for (const auto& s : m.sites())
        grads.add(s.name, [layers](mint::hook_call<float>& c) {
          CHECK(c.first_position == 0);  // the toy calls each site once, with the whole sequence
          layers->push_back(c.site.layer);
        });
    grads.add("blocks.1.hook_resid_pre", [scale](mint::hook_call<float>& c) {
      mint::as_matrix(c.activation.reshape({c.activation.size() / 16, 16})) *= scale;
    }, {.needs = mint::access::write});
    mint::activation_cache<float> cache(m.sites(), {"hook_embed"});
    cache.reserve(tokens.batch(), tokens.positions());
    cache.attach(grads);
    m.backward(dlogits.view(), grads);
    return mint::to_matrix(cache["hook_embed"].reshape({10, 16}));
  };
  std::vector<int> layers;
  const mint::matrixf once = embed_gradient(1.0f, true, &layers);
  // Each site once: hook_logits and the final norm (layer -1), then layer 1's sites, then
  // layer 0's, then the embeddings (layer -1 again).
  REQUIRE(layers.size() == m.sites().size());
  CHECK(m.sites()[m.sites().at("hook_logits")].layer == layers.front());
  auto middle_begin = std::find_if(layers.begin(), layers.end(), [](int l) { return l >= 0; });
  auto middle_end = std::find_if(middle_begin, layers.end(), [](int l) { return l < 0; });
  CHECK(std::is_sorted(middle_begin, middle_end, std::greater<>()));
  CHECK(*middle_begin == 1);
  CHECK(std::all_of(middle_end, layers.end(), [](int l) { return l == -1; }));
  CHECK(layers.end() - middle_end == 2);  // hook_pos_embed, hook_embed
  // Every path from the logits to the embeddings crosses blocks.1.hook_resid_pre: scaling its
  // gradient by 2 doubles the embeddings' gradient, zeroing it zeroes them (float32: 1e-6 relative).
  CHECK(once.norm() > 0);
  CHECK((embed_gradient(2.0f, false, nullptr) - 2.0f * once).norm() <= 1e-6f * once.norm());
  CHECK(embed_gradient(0.0f, false, nullptr).norm() == 0.0f);
}
