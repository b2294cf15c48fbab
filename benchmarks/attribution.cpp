// Attribution on the toy transformer of the tour (examples/tour.cpp: vocab 16, 24 positions,
// d_model 64, 2 attention-only layers of 4 heads of 16): integrated gradients per step (each
// step is a copy of the batch through forward and activation-only backward, so a step should
// cost about a forward and a backward of the batch), direct logit attribution per prompt, and
// attribution patching over every site against the bare forward of the same batch (its goal:
// at most 3.5 forward-equivalents). benchmarks/peers/attribution_torch.py times integrated
// gradients against PyTorch.
#include <benchmark/benchmark.h>

#include <chrono>

#include <mint/mint.hpp>
#include <mint/toy.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int vocab = 16, context = 24;

mint::toy::transformer<float> make_model() {
  mint::toy::transformer<float> m({.vocab = vocab, .context = context, .d_model = 64, .layers = 2, .heads = 4,
                                   .d_head = 16});
  m.initialize(1);
  return m;
}

mint::token_batch make_tokens(mint::index batch, std::uint64_t seed) {
  mint::token_batch t(batch, context);
  mint::rng r(seed);
  for (mint::index b = 0; b < batch; ++b)
    for (mint::index p = 0; p < context; ++p) t(b, p) = mint::token(r.below(vocab));
  return t;
}

mint::logit_difference make_metric(mint::index batch) {
  mint::logit_difference m;
  for (mint::index b = 0; b < batch; ++b) {
    m.correct.push_back(mint::token(b % vocab));
    m.wrong.push_back(mint::token((b + 1) % vocab));
  }
  return m;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Integrated gradients at hook_embed (Gauss-Legendre, zero baseline) with state.range(0) steps on
// 8 prompts, and the bare forward of those 8 prompts, each iteration: per_step_ms is the IG time
// over the steps (the two endpoint forwards included), step/forward its ratio to that forward.
void integrated_gradients_per_step(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens(8, 2);
  const auto metric = make_metric(8);
  const int steps = int(state.range(0));
  const mint::ig_options options{.steps = steps};
  double ig = 0, forward = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(mint::integrated_gradients(model, tokens, metric, options).delta);
    ig += seconds_since(t0);
    t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens).data());
    forward += seconds_since(t0);
  }
  const double n = double(state.iterations());
  state.counters["ig_ms"] = 1e3 * ig / n;
  state.counters["per_step_ms"] = 1e3 * ig / (n * steps);
  state.counters["forward_ms"] = 1e3 * forward / n;
  state.counters["step/forward"] = ig / (forward * steps);
}

// Direct logit attribution of state.range(0) prompts (one forward caching the writers, then the
// projections): the time per prompt.
void direct_logit_attribution_per_prompt(benchmark::State& state) {
  auto model = make_model();
  const mint::index batch = state.range(0);
  const auto tokens = make_tokens(batch, 2);
  const auto metric = make_metric(batch);
  const mint::dla_options options{.correct = metric.correct, .wrong = metric.wrong};
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    benchmark::DoNotOptimize(mint::direct_logit_attribution(model, tokens, options).values.data());
    seconds += seconds_since(t0);
  }
  state.counters["per_prompt_us"] = 1e6 * seconds / (double(state.iterations()) * double(batch));
}

// Attribution patching of a corrupt batch into a clean one over every site, and the bare forward
// of the clean batch, each iteration: forward_equivalents is their ratio (goal <= 3.5).
void attribution_patching_vs_forward(benchmark::State& state) {
  auto model = make_model();
  const mint::index batch = state.range(0);
  const auto clean = make_tokens(batch, 2), corrupt = make_tokens(batch, 3);
  const auto metric = make_metric(batch);
  double patching = 0, forward = 0, sites = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    const auto r = mint::attribution_patching(model, clean, corrupt, metric);
    patching += seconds_since(t0);
    sites = double(r.sites.size());
    t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(clean).data());
    forward += seconds_since(t0);
  }
  const double n = double(state.iterations());
  state.counters["patching_ms"] = 1e3 * patching / n;
  state.counters["forward_ms"] = 1e3 * forward / n;
  state.counters["forward_equivalents"] = patching / forward;
  state.counters["sites"] = sites;
}

}  // namespace

BENCHMARK(integrated_gradients_per_step)->Arg(8)->Arg(16)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(direct_logit_attribution_per_prompt)->Arg(1)->Arg(8)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(attribution_patching_vs_forward)->Arg(8)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

BENCHMARK_MAIN();
