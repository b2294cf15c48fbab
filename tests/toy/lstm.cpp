// The toy LSTM: a differentiable and incremental runtime. Its backward through time
// against finite differences, chunked decoding against one forward, caching, patching
// and grad hooks per position, its errors, a generic algorithm on it, and training.
#include <doctest/doctest.h>

#include "objective.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/adapters/eigen.hpp"  // loss_recovered hands the SAE Eigen matrices
#include "mint/dictionary/loss_recovered.hpp"
#include "mint/model/cache.hpp"
#include "mint/toy/lstm.hpp"
#include "mint/toy/train.hpp"

static_assert(mint::differentiable_runtime<mint::toy::lstm<float>>);
static_assert(mint::differentiable_runtime<mint::toy::lstm<double>>);
static_assert(mint::incremental_runtime<mint::toy::lstm<float>>);
static_assert(mint::incremental_runtime<mint::toy::lstm<double>>);
// The trainer deduces the model it trains; a transformer keeps the type trainer<Task, T> it always had.
static_assert(std::is_same_v<decltype(mint::toy::trainer(std::declval<mint::toy::lstm<float>&>(),
                                                         mint::toy::delayed_copy_task{}, mint::toy::train_options{})),
                             mint::toy::trainer<mint::toy::delayed_copy_task, mint::toy::lstm<float>>>);
static_assert(std::is_same_v<decltype(mint::toy::trainer(std::declval<mint::toy::transformer<double>&>(),
                                                         mint::toy::induction_task{}, mint::toy::train_options{})),
                             mint::toy::trainer<mint::toy::induction_task, double>>);
static_assert(std::is_same_v<mint::toy::trainer<mint::toy::induction_task>::model_type, mint::toy::transformer<float>>);

namespace {

using lstm_f = mint::toy::lstm<float>;
using lstm_d = mint::toy::lstm<double>;

// Two layers, rows of lengths 6, 3 and 5: padding in the batch.
const mint::toy::lstm_config lstm_small{.vocab = 7, .d_model = 5, .d_hidden = 4, .layers = 2, .context = 8};

template <class V>
std::vector<mint::index> lstm_extents(const V& v) {
  return {v.extents().begin(), v.extents().end()};
}

std::vector<mint::index> lstm_index(mint::index b, mint::index t, mint::index k) { return {b, t, k}; }



// A prefill of 3 positions, then one token at a time; the chunks' logits side by side [B, T, V].
mint::array<float> lstm_chunked(lstm_f& model, const mint::token_batch& tokens, mint::hook_set<float>& hooks) {
  const mint::index V = model.config().vocab;
  mint::array<float> out({tokens.batch(), tokens.positions(), V});
  model.reset();
  for (mint::index t0 = 0; t0 < tokens.positions(); t0 = model.cached_positions()) {
    const mint::index t1 = t0 == 0 ? 3 : t0 + 1;
    REQUIRE(model.cached_positions() == t0);
    const auto logits = model.forward_chunk(tokens.slice(t0, t1), hooks);
    REQUIRE(logits.extent(1) == t1 - t0);
    for (mint::index b = 0; b < tokens.batch(); ++b)
      for (mint::index t = t0; t < t1; ++t)
        for (mint::index j = 0; j < V; ++j) out(b, t, j) = logits(b, t - t0, j);
  }
  return out;
}

// Largest difference over valid positions of two [B, T, ...] tensors of equal extents.
template <class A, class B>
double lstm_max_difference(const A& a, const B& b, const mint::token_batch& tokens) {
  REQUIRE(lstm_extents(a) == lstm_extents(b));
  double worst = 0;
  for (mint::index r = 0; r < tokens.batch(); ++r)
    for (mint::index t = 0; t < tokens.length(r); ++t)
      for (mint::index j = 0; j < a.extent(2); ++j) worst = std::max(worst, std::abs(double(a(r, t, j)) - double(b(r, t, j))));
  return worst;
}

lstm_f lstm_model(std::uint64_t seed) {
  lstm_f m({.vocab = 11, .d_model = 8, .d_hidden = 12, .layers = 2, .context = 16});
  m.initialize(seed);
  return m;
}

mint::token_batch lstm_tokens(bool padded) {
  std::vector<std::vector<mint::token>> rows = {{1, 4, 2, 7, 3, 5, 10, 0, 9, 6}, {6, 0, 2, 8, 8, 1, 3, 2, 5, 4}};
  if (padded) rows[1].resize(6);
  return mint::token_batch::from_rows(rows);
}

// relu(x) - relu(-x) = x: an SAE of 2d latents that reconstructs every input exactly.
mint::dictionary::basic_sae<float> lstm_identity_sae(mint::index d) {
  mint::dictionary::basic_sae<float> sae({.d_in = d, .d_sae = 2 * d, .architecture = mint::dictionary::sae_architecture::relu}, 1);
  sae.W_enc() << mint::matrixf::Identity(d, d), -mint::matrixf::Identity(d, d);
  sae.W_dec().topRows(d) = mint::matrixf::Identity(d, d);
  sae.W_dec().bottomRows(d) = -mint::matrixf::Identity(d, d);
  sae.b_enc().setZero();
  sae.b_dec().setZero();
  return sae;
}

}  // namespace

TEST_CASE("LSTM: sites, parameters and config checks") {
  lstm_f m(lstm_small);
  CHECK(m.sites().size() == 2 + 4 * 2);
  CHECK(m.sites()[0].name == "hook_embed");
  CHECK(m.sites()[1].name == "blocks.0.hook_gates_pre");
  CHECK(m.sites()[4].name == "blocks.0.hook_h");
  CHECK(m.sites()[9].name == "hook_logits");
  CHECK(m.sites()[1].sizes == std::vector<mint::index>{0, 0, 16});
  CHECK(m.sites()[3].axes == std::vector<mint::axis>{mint::axis::batch, mint::axis::pos, mint::axis::d_model});
  CHECK(lstm_extents(m.parameters()["blocks.1.lstm.W_ih"]) == std::vector<mint::index>{4, 16});
  CHECK(lstm_extents(m.parameters()["blocks.0.lstm.W_ih"]) == std::vector<mint::index>{5, 16});
  CHECK(lstm_extents(m.parameters()["unembed.W_U"]) == std::vector<mint::index>{4, 7});
  m.initialize(1);
  const auto b = m.parameters()["blocks.0.lstm.b"];
  CHECK(b(0) == 0.0f);
  CHECK(b(4) == 1.0f);  // the forget gate's bias
  CHECK_THROWS_WITH_AS(lstm_f({.vocab = 7, .d_model = 5, .d_hidden = 0, .context = 8}),
                       "mint::toy::lstm: config.d_hidden is 0; needs > 0", mint::argument_error);
  const auto d = m.cast<double>();
  CHECK(d.parameters()["embed.W_E"](2, 3) == double(m.parameters()["embed.W_E"](2, 3)));
}

TEST_CASE("LSTM gradients (BPTT) at every site and parameter match finite differences") {
  lstm_d model(lstm_small);
  model.initialize(5);
  // Random biases, so their gradients are exercised away from 0 and 1.
  mint::rng r(6);
  for (const auto& e : model.parameters().entries())
    if (e.name.find(".b") != std::string::npos) r.fill_normal(model.parameters().view_of(e), 0.0, 0.5);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 6, 3, 5}, {6, 0, 2}, {3, 3, 1, 2, 5}});
  const linear_objective f(tokens, lstm_small.vocab, 7);

  const analytic_gradients analytic = gradients_of(model, tokens, f);
  const auto& grads = analytic.sites;
  const auto& param_grads = analytic.parameters;
  mint::hook_set<double> none(model.sites());

  // Central differences at eps = 1e-5 in double: truncation ~1e-10 and rounding ~1e-11 of
  // the objective's scale (order 1 to 10), so 1e-6 relative with an absolute floor of 1e-6.
  const double eps = 1e-5;
  auto check_close = [](double analytic, double numeric, const std::string& where) {
    INFO(where << ": analytic " << analytic << ", finite difference " << numeric);
    CHECK(std::abs(analytic - numeric) <= 1e-6 * std::max(1.0, std::abs(numeric)));
  };
  for (const auto& site : model.sites()) {
    const auto g = grads[site.name];
    REQUIRE(g.extent(1) == tokens.positions());
    for (int trial = 0; trial < 8; ++trial) {
      const auto at = lstm_index(mint::index(r.below(std::uint64_t(g.extent(0)))),
                                 mint::index(r.below(std::uint64_t(g.extent(1)))),
                                 mint::index(r.below(std::uint64_t(g.extent(2)))));
      // Only position at[1] is perturbed: the filter narrows each call to it.
      auto perturbed = [&](double delta) {
        mint::hook_set<double> hooks(model.sites());
        hooks.add(site.name, [&](mint::hook_call<double>& c) { c.activation(at[0], 0, at[2]) += delta; },
                  {.needs = mint::access::add, .only = {.position_begin = at[1], .position_end = at[1] + 1}});
        return f(model, tokens, hooks);
      };
      check_close(g(at[0], at[1], at[2]), (perturbed(eps) - perturbed(-eps)) / (2 * eps),
                  "site " + site.name + " at [" + std::to_string(at[0]) + ", " + std::to_string(at[1]) + ", " +
                      std::to_string(at[2]) + "]");
    }
  }
  for (const auto& e : model.parameters().entries()) {
    auto w = model.parameters().view_of(e);
    const auto dw = param_grads.view_of(param_grads.find(e.name));
    for (int trial = 0; trial < 5; ++trial) {
      const mint::index i = mint::index(r.below(std::uint64_t(w.size())));
      const double saved = w.data()[i];
      w.data()[i] = saved + eps;
      const double up = f(model, tokens, none);
      w.data()[i] = saved - eps;
      const double down = f(model, tokens, none);
      w.data()[i] = saved;
      check_close(dw.data()[i], (up - down) / (2 * eps), "parameter " + e.name);
    }
  }
}

TEST_CASE("LSTM forward_chunk: a prefill then one token at a time gives one forward's logits") {
  auto model = lstm_model(2);
  // Float32 products of other shapes (one row per step against the whole chunk) may round
  // differently; the logits here are below 1 and differ by ~4e-8 (-O2, and -O3 -march=native),
  // so 1e-6 leaves a margin of 20 while any wrong state would show at 1e-2.
  for (const bool padded : {false, true}) {
    const auto tokens = lstm_tokens(padded);
    for (const bool hooked : {false, true}) {
      INFO("padded " << padded << ", hooked " << hooked);
      mint::hook_set<float> hooks(model.sites());
      if (hooked)
        hooks.add("blocks.0.hook_h", [](mint::hook_call<float>& c) {
          for (mint::index b = 0; b < c.activation.extent(0); ++b)
            for (mint::index t = 0; t < c.activation.extent(1); ++t)
              for (mint::index k = 0; k < c.activation.extent(2); ++k) c.activation(b, t, k) += 0.3f * float(k % 3) - 0.2f;
        }, {.needs = mint::access::add, .only = {.position_begin = 4, .position_end = 7}});
      const auto whole = mint::array<float>::copy_of(model.forward(tokens, hooks));
      CHECK(model.cached_positions() == tokens.positions());
      const auto chunked = lstm_chunked(model, tokens, hooks);
      CHECK(model.cached_positions() == tokens.positions());
      CHECK(lstm_max_difference(whole.view(), chunked.view(), tokens) <= 1e-6);
      // forward() leaves the state where the sequence ends, so chunks may continue it.
      const auto head = mint::array<float>::copy_of(model.forward(tokens.slice(0, 5), hooks));
      CHECK(model.cached_positions() == 5);
      const auto rest = model.forward_chunk(tokens.slice(5, tokens.positions()), hooks);
      for (mint::index b = 0; b < tokens.batch(); ++b)
        for (mint::index t = 0; t < tokens.positions(); ++t)
          if (t < tokens.length(b))
            CHECK(std::abs((t < 5 ? head(b, t, 2) : rest(b, t - 5, 2)) - whole(b, t, 2)) <= 1e-6f);
      if (hooked) {  // the hook changed what follows position 4, and nothing before it
        mint::hook_set<float> none;
        const auto bare = mint::array<float>::copy_of(model.forward(tokens, none));
        CHECK(std::abs(bare(0, 3, 1) - whole(0, 3, 1)) == 0.0f);
        CHECK(std::abs(bare(0, 8, 1) - whole(0, 8, 1)) > 1e-4f);
      }
    }
  }
}

TEST_CASE("LSTM: a cache over chunks holds what run_with_cache holds for one forward") {
  auto model = lstm_model(3);
  const auto tokens = lstm_tokens(true);
  const std::vector<std::string> names = {"blocks.0.hook_h", "blocks.1.hook_c", "blocks.0.hook_gates",
                                          "blocks.1.hook_gates_pre", "hook_embed", "hook_logits"};
  const auto full = mint::run_with_cache(model, tokens, names);
  mint::activation_cache<float> cache(model.sites(), names);
  cache.reserve(tokens.batch(), tokens.positions());
  mint::hook_set<float> hooks(model.sites());
  cache.attach(hooks);
  (void)lstm_chunked(model, tokens, hooks);
  // As above: float32 rounding of products of other shapes, values of order 1.
  for (const auto& name : names) {
    INFO(name);
    CHECK(cache.positions(name) == tokens.positions());
    CHECK(lstm_extents(cache[name]) == lstm_extents(full.cache[name]));
    CHECK(lstm_max_difference(cache[name], full.cache[name], tokens) <= 1e-6);
    CHECK(cache[name](1, 7, 0) == 0.0f);  // padding is stored as zeros
  }
}

TEST_CASE("LSTM patching: the clean h at every position of layer 0 gives the clean logits exactly") {
  auto model = lstm_model(4);
  const auto clean = lstm_tokens(false);
  auto corrupt = clean;
  corrupt(0, 2) = 3;
  corrupt(1, 5) = 9;
  corrupt(1, 0) = 1;
  const auto run = mint::run_with_cache(model, clean, {"blocks.0.hook_h"});
  const auto clean_h = run.cache["blocks.0.hook_h"];
  mint::hook_set<float> patch(model.sites());
  int calls = 0;
  patch.add("blocks.0.hook_h", [&](mint::hook_call<float>& c) {
    ++calls;
    for (mint::index b = 0; b < c.activation.extent(0); ++b)
      for (mint::index k = 0; k < c.activation.extent(2); ++k) c.activation(b, 0, k) = clean_h(b, c.first_position, k);
  }, {.needs = mint::access::write});
  const auto patched = mint::array<float>::copy_of(model.forward(corrupt, patch));
  CHECK(calls == clean.positions());  // once per position
  // Layer 1 and the unembedding then see exactly the clean inputs, in products of the same
  // shapes; layer 0's own cell state stays corrupt but reaches nothing past the patched h.
  CHECK(std::equal(patched.view().data(), patched.view().data() + patched.view().size(), run.logits.view().data()));
  mint::hook_set<float> none;
  const auto corrupt_logits = mint::array<float>::copy_of(model.forward(corrupt, none));
  CHECK(std::abs(corrupt_logits(1, 6, 0) - run.logits(1, 6, 0)) > 1e-5f);
}

TEST_CASE("LSTM grad hooks: per position in reverse, and what they leave flows upstream") {
  auto model = lstm_model(5);
  const auto tokens = lstm_tokens(true);
  const auto logits = mint::array<float>::copy_of(model.forward(tokens));
  auto [value, dlogits] = mint::value_and_gradient(mint::cross_entropy{}, logits.view(), tokens);
  (void)value;

  // A read-only grad cache at blocks.0.hook_h: T calls of one position each, from T - 1 down to 0,
  // holding what a copy taken in the hook holds.
  mint::activation_cache<float> grads(model.sites(), {"blocks.0.hook_h", "hook_embed"});
  grads.reserve(tokens.batch(), tokens.positions());
  mint::hook_set<float> read(model.sites(), mint::hook_phase::backward);
  grads.attach(read);
  std::vector<mint::index> order;
  mint::array<float> copied({tokens.batch(), tokens.positions(), 12});
  read.add("blocks.0.hook_h", [&](mint::hook_call<float>& c) {
    order.push_back(c.first_position);
    CHECK(c.activation.extent(1) == 1);
    for (mint::index b = 0; b < c.activation.extent(0); ++b)
      for (mint::index k = 0; k < 12; ++k) copied(b, c.first_position, k) = c.activation(b, 0, k);
  });
  model.backward(dlogits.view(), read);
  std::vector<mint::index> expected;
  for (mint::index t = tokens.positions() - 1; t >= 0; --t) expected.push_back(t);
  CHECK(order == expected);
  CHECK(grads.positions("blocks.0.hook_h") == tokens.positions());
  CHECK(lstm_max_difference(grads["blocks.0.hook_h"], copied.view(), tokens) == 0.0);
  // Padding (row 1 ends at 6) gets zero gradient from the metric, and nothing there is NaN.
  for (const char* name : {"blocks.0.hook_h", "hook_embed"}) {
    const auto g = grads[name];
    CHECK(std::all_of(g.data(), g.data() + g.size(), [](float v) { return std::isfinite(v); }));
  }
  CHECK(copied(1, 8, 3) == 0.0f);
  double embed_norm = 0;
  for (mint::index i = 0; i < grads["hook_embed"].size(); ++i) embed_norm += std::abs(grads["hook_embed"].data()[i]);
  CHECK(embed_norm > 0);

  // Zeroing d/d(h) of layer 0 at every position cuts every path to the embedding.
  mint::hook_set<float> cut(model.sites(), mint::hook_phase::backward);
  cut.add("blocks.0.hook_h", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.0f); }, {.needs = mint::access::write});
  grads.reserve(tokens.batch(), tokens.positions());
  grads.attach(cut);
  auto param_grads = model.parameters().zeros_like();
  model.backward(dlogits.view(), cut, &param_grads);
  const auto embed_grad = grads["hook_embed"];
  CHECK(std::all_of(embed_grad.data(), embed_grad.data() + embed_grad.size(), [](float v) { return v == 0.0f; }));
  const auto dWE = param_grads["embed.W_E"], dWih1 = param_grads["blocks.1.lstm.W_ih"];
  CHECK(std::all_of(dWE.data(), dWE.data() + dWE.size(), [](float v) { return v == 0.0f; }));
  CHECK(std::any_of(dWih1.data(), dWih1.data() + dWih1.size(), [](float v) { return v != 0.0f; }));

  // One layer, a metric on the last position only: its one path runs through h at T - 1, so
  // zeroing d/d(h) there (a position filter) leaves nothing for any earlier step.
  lstm_f one({.vocab = 11, .d_model = 8, .d_hidden = 12, .layers = 1, .context = 16});
  one.initialize(6);
  const auto full = lstm_tokens(false);
  const mint::index last = full.positions() - 1;
  const auto out = mint::array<float>::copy_of(one.forward(full));
  auto [v2, d2] = mint::value_and_gradient(mint::logit_difference{{1, 1}, {2, 2}}, out.view(), full);
  (void)v2;
  mint::activation_cache<float> one_grads(one.sites(), {"blocks.0.hook_c", "hook_embed"});
  one_grads.reserve(full.batch(), full.positions());
  mint::hook_set<float> stop_last(one.sites(), mint::hook_phase::backward);
  stop_last.add("blocks.0.hook_h", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.0f); },
                {.needs = mint::access::write, .only = {.position_begin = last, .position_end = last + 1}});
  one_grads.attach(stop_last);
  one.backward(d2.view(), stop_last);
  for (const char* name : {"blocks.0.hook_c", "hook_embed"}) {
    const auto g = one_grads[name];
    CHECK(std::all_of(g.data(), g.data() + g.size(), [](float v) { return v == 0.0f; }));
  }
}

TEST_CASE("LSTM errors name the function, the argument, what it got and what it needs") {
  auto model = lstm_model(1);
  CHECK_THROWS_WITH_AS(model.forward(mint::token_batch::from_rows({{1, 11}})),
                       "mint::toy::lstm::forward: tokens hold id 11 at [0, 1]; needs ids in [0, 11)",
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(model.forward(mint::token_batch(1, 17)), doctest::Contains("needs at most the context, 16"),
                       mint::shape_error);
  mint::array<float> d({2, 10, 11});
  mint::hook_set<float> none;
  lstm_f fresh = lstm_model(1);
  CHECK_THROWS_WITH_AS(fresh.backward(d.view(), none), doctest::Contains("needs forward() to run to the end first"),
                       mint::argument_error);
  const auto tokens = lstm_tokens(false);
  model.forward(tokens);
  mint::array<float> wrong({2, 9, 11});
  CHECK_THROWS_WITH_AS(model.backward(wrong.view(), none), doctest::Contains("mint::toy::lstm::backward: dlogits"),
                       mint::shape_error);
  CHECK_NOTHROW(model.backward(d.view(), none));
  model.reset();
  model.forward_chunk(tokens.slice(0, 3));
  CHECK_THROWS_WITH_AS(model.backward(mint::array<float>({2, 3, 11}).view(), none),
                       doctest::Contains("needs forward() to run to the end first"), mint::argument_error);
  CHECK_THROWS_WITH_AS(model.forward_chunk(mint::token_batch(3, 1)),
                       "mint::toy::lstm::forward_chunk: chunk has 3 rows; needs the sequence's 2 rows (reset() to start another)",
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(model.forward_chunk(mint::token_batch(2, 14)), doctest::Contains("needs at most the context, 16, in all"),
                       mint::shape_error);
  mint::hook_set<float> stop(model.sites());
  stop.add("blocks.1.hook_h", [](mint::hook_call<float>& c) { c.stop(); });
  CHECK(model.forward_chunk(tokens.slice(3, 4), stop).empty());
  CHECK_THROWS_WITH_AS(model.forward_chunk(tokens.slice(3, 4)), doctest::Contains("needs reset() before the next chunk"),
                       mint::argument_error);
  model.reset();
  CHECK(model.forward_chunk(tokens.slice(0, 1)).extent(1) == 1);
  mint::hook_set<float> grads(model.sites(), mint::hook_phase::backward);
  CHECK_THROWS_WITH_AS(model.forward(tokens, grads), doctest::Contains("are gradient hooks"), mint::argument_error);
  // A pass stopped at a recurrent site returns no logits, and backward refuses.
  CHECK(model.forward(tokens, stop).empty());
  CHECK_THROWS_AS(model.backward(d.view(), none), mint::argument_error);
}

TEST_CASE("LSTM: loss_recovered runs unchanged at a recurrent site") {
  lstm_f model({.vocab = 11, .d_model = 8, .d_hidden = 12, .layers = 1, .context = 16});
  model.initialize(8);
  const auto tokens = lstm_tokens(true);
  const auto r = mint::dictionary::loss_recovered(model, lstm_identity_sae(12), "blocks.0.hook_h", tokens);
  // The identity SAE rebuilds h exactly (x - 0 up to float32 rounding), so splicing costs nothing.
  CHECK(std::isfinite(r.clean));
  CHECK(r.spliced == doctest::Approx(r.clean).epsilon(1e-6));
  // h = 0 at every position of the one layer leaves logits = b_U = 0: uniform, log(vocab).
  CHECK(r.zero_ablation == doctest::Approx(std::log(11.0)).epsilon(1e-6));
}

TEST_CASE("an LSTM learns delayed copy: >= 95% held-out accuracy") {
  const mint::toy::delayed_copy_task task{.vocab = 8, .length = 16, .delay = 2};
  lstm_f model({.vocab = 8, .d_model = 16, .d_hidden = 32, .layers = 1, .context = task.context()});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 400, .batch = 32, .optimizer = {.lr = 1e-2, .warmup = 20}, .seed = 4});
  const auto report = trainer.run();
  mint::rng held_out(777);
  const auto eval = mint::toy::evaluate(model, task.sample(held_out, 256));
  MESSAGE("delayed copy: accuracy " << eval.accuracy << ", loss " << eval.loss << ", " << report.seconds << " s");
  // Chance is 1/8: the model must hold the last two tokens in h and c.
  CHECK(eval.accuracy >= 0.95);
}
