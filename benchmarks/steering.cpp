// What steering costs on top of the forward it steers, on the GPT-2-like toy of
// bench_model (4 layers, d 256, batch 16 x 128): adding a vector at every block's output,
// directional ablation at every residual site, and KV-cached generation steered at every
// block. Each iteration runs the bare and the steered pass back to back, so the overhead is a
// ratio from one run (the aim: under 2% for a steered forward).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include <mint/model/generation.hpp>
#include <mint/steering/application.hpp>
#include <mint/toy/transformer.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

mint::toy::transformer<float> make_model() {
  mint::toy::transformer<float> m({.vocab = 1024, .context = 256, .d_model = 256, .layers = 4, .heads = 8,
                                   .d_head = 32, .d_mlp = 1024});
  m.initialize(1);
  return m;
}

mint::token_batch make_tokens(mint::index batch, mint::index positions) {
  mint::token_batch t(batch, positions);
  mint::rng r(2);
  for (mint::index b = 0; b < batch; ++b)
    for (mint::index p = 0; p < positions; ++p) t(b, p) = mint::token(r.below(1024));
  return t;
}

std::vector<float> direction(std::uint64_t seed) {
  mint::rng r(seed);
  std::vector<float> v(256);
  for (auto& x : v) x = float(r.normal());
  return v;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Bare forward against the forward with `hooks`, interleaved.
void compare(benchmark::State& state, mint::toy::transformer<float>& model, const mint::token_batch& tokens,
             mint::hook_set<float>& hooks) {
  mint::hook_set<float> none(model.sites());
  double bare = 0, steered = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, none).data());
    bare += seconds_since(t0);
    t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, hooks).data());
    steered += seconds_since(t0);
  }
  state.counters["bare_ms"] = 1e3 * bare / double(state.iterations());
  state.counters["steered_ms"] = 1e3 * steered / double(state.iterations());
  state.counters["overhead_%"] = 100.0 * (steered / bare - 1.0);
}

void add_at_every_block(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens(16, 128);
  mint::steering_vector<float> v;
  for (int l = 0; l < 4; ++l) v.directions["blocks." + std::to_string(l) + ".hook_resid_post"] = direction(l);
  mint::hook_set<float> hooks(model.sites());
  mint::add_steering(hooks, v, 4.0);
  compare(state, model, tokens, hooks);
}

void ablate_at_every_residual_site(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens(16, 128);
  mint::hook_set<float> hooks(model.sites());
  mint::add_directional_ablation(hooks, mint::at_sites(direction(9), mint::residual_stream_sites(model.sites())));
  compare(state, model, tokens, hooks);
}

// 16 prompts of 32 tokens, 64 new tokens each, KV cache, greedy: per-step passes of one position.
void generate_steered(benchmark::State& state) {
  auto model = make_model();
  const auto prompts = make_tokens(16, 32);
  mint::steering_vector<float> v;
  for (int l = 0; l < 4; ++l) v.directions["blocks." + std::to_string(l) + ".hook_resid_post"] = direction(l);
  mint::hook_set<float> none(model.sites()), hooks(model.sites());
  mint::add_steering(hooks, v, 4.0, {.positions = mint::steer_positions::generated, .prompt_lengths = {32}});
  const mint::generation_options o{.max_new_tokens = 64};
  double bare = 0, steered = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(mint::generate(model, prompts, o, none).tokens.ids().data());
    bare += seconds_since(t0);
    t0 = clock_type::now();
    benchmark::DoNotOptimize(mint::generate(model, prompts, o, hooks).tokens.ids().data());
    steered += seconds_since(t0);
  }
  state.counters["bare_ms"] = 1e3 * bare / double(state.iterations());
  state.counters["steered_ms"] = 1e3 * steered / double(state.iterations());
  state.counters["overhead_%"] = 100.0 * (steered / bare - 1.0);
}

}  // namespace

BENCHMARK(add_at_every_block)->Unit(benchmark::kMillisecond)->MinTime(3);
BENCHMARK(ablate_at_every_residual_site)->Unit(benchmark::kMillisecond)->MinTime(3);
BENCHMARK(generate_steered)->Unit(benchmark::kMillisecond)->MinTime(3);
BENCHMARK_MAIN();
