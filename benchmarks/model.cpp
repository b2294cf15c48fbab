// The runtime's costs on the toy transformer: the overhead of hooks on every
// site (measured side by side with the bare forward in one benchmark), caching
// every site, backward against forward, training tokens per second, and
// generation with the KV cache against full recomputation.
#include <benchmark/benchmark.h>

#include <chrono>

#include <mint/mint.hpp>
#include <mint/toy.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

// A GPT-2-like toy: 4 layers, 8 heads of 32, MLP 4x, vocab 1024; batch 16 x 128 tokens.
mint::toy::transformer<float> make_model() {
  mint::toy::transformer<float> m({.vocab = 1024, .context = 128, .d_model = 256, .layers = 4, .heads = 8,
                                   .d_head = 32, .d_mlp = 1024});
  m.initialize(1);
  return m;
}

mint::token_batch make_tokens(mint::index batch = 16, mint::index positions = 128) {
  mint::token_batch t(batch, positions);
  mint::rng r(2);
  for (mint::index b = 0; b < batch; ++b)
    for (mint::index p = 0; p < positions; ++p) t(b, p) = mint::token(r.below(1024));
  return t;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Each iteration runs the bare forward and the forward with a hook on every site,
// timing both, so the ratio comes from one run on one machine state.
void hook_overhead(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens();
  mint::hook_set<float> none(model.sites()), every(model.sites());
  double touched = 0;
  for (mint::site_id id = 0; id < mint::site_id(model.sites().size()); ++id)
    every.add(id, [&](mint::hook_call<float>& c) { touched += double(c.activation.data()[0]); });
  double bare = 0, hooked = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, none).data());
    bare += seconds_since(t0);
    t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, every).data());
    hooked += seconds_since(t0);
  }
  benchmark::DoNotOptimize(touched);
  state.counters["bare_ms"] = 1e3 * bare / double(state.iterations());
  state.counters["hooked_ms"] = 1e3 * hooked / double(state.iterations());
  state.counters["overhead_%"] = 100.0 * (hooked / bare - 1.0);
  state.counters["sites"] = double(model.sites().size());
}

// The same, caching every site (copies every activation into buffers sized before the run).
void cache_every_site(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens();
  std::vector<std::string> names;
  for (const auto& s : model.sites()) names.push_back(s.name);
  mint::activation_cache<float> cache(model.sites(), names);
  cache.reserve(tokens.batch(), tokens.positions());
  mint::hook_set<float> none(model.sites()), caching(model.sites());
  cache.attach(caching);
  double bare = 0, cached = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, none).data());
    bare += seconds_since(t0);
    t0 = clock_type::now();
    benchmark::DoNotOptimize(model.forward(tokens, caching).data());
    cached += seconds_since(t0);
  }
  state.counters["bare_ms"] = 1e3 * bare / double(state.iterations());
  state.counters["cached_ms"] = 1e3 * cached / double(state.iterations());
  state.counters["overhead_%"] = 100.0 * (cached / bare - 1.0);
}

// Forward, then backward to every site (no parameter gradients, as attribution needs),
// then backward with parameter gradients (as training needs), each against the forward.
void backward_vs_forward(benchmark::State& state) {
  auto model = make_model();
  const auto tokens = make_tokens();
  mint::hook_set<float> none(model.sites());
  mint::hook_set<float> grad_none(model.sites(), mint::hook_phase::backward);
  auto grads = model.parameters().zeros_like();
  mint::array<float> dlogits;
  double forward = 0, site_backward = 0, full_backward = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    const auto logits = model.forward(tokens, none);
    forward += seconds_since(t0);
    if (dlogits.size() == 0) dlogits = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens).second;
    t0 = clock_type::now();
    model.backward(dlogits.view(), grad_none);
    site_backward += seconds_since(t0);
    t0 = clock_type::now();
    model.backward(dlogits.view(), grad_none, &grads);
    full_backward += seconds_since(t0);
  }
  state.counters["forward_ms"] = 1e3 * forward / double(state.iterations());
  state.counters["backward/forward"] = site_backward / forward;
  state.counters["backward+params/forward"] = full_backward / forward;
  state.counters["tokens/s"] =
      benchmark::Counter(double(tokens.batch() * tokens.positions()), benchmark::Counter::kIsIterationInvariantRate);
}

// Greedy generation of 64 tokens after 64-token prompts, batch state.range(0): with the KV cache
// (a prefix chunk, then one position a step) and by recomputing the whole sequence every step,
// timed side by side in each iteration. The tokens are the same; only the cost differs.
void generate_cached_vs_recomputed(benchmark::State& state) {
  auto model = make_model();
  const auto prompts = make_tokens(state.range(0), 64);
  const mint::generation_options cached_options{.max_new_tokens = 64, .use_incremental = true};
  const mint::generation_options recomputed_options{.max_new_tokens = 64, .use_incremental = false};
  double cached = 0, recomputed = 0, generated = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    const auto a = mint::generate(model, prompts, cached_options);
    cached += seconds_since(t0);
    t0 = clock_type::now();
    const auto b = mint::generate(model, prompts, recomputed_options);
    recomputed += seconds_since(t0);
    for (const auto n : a.generated) generated += double(n);
    benchmark::DoNotOptimize(b.tokens.ids().data());
  }
  const double n = double(state.iterations());
  state.counters["cached_ms"] = 1e3 * cached / n;
  state.counters["recomputed_ms"] = 1e3 * recomputed / n;
  state.counters["recomputed/cached"] = recomputed / cached;
  state.counters["cached_tokens/s"] = generated / cached;
  state.counters["recomputed_tokens/s"] = generated / recomputed;
}

template <class Task>
void train_task(benchmark::State& state, const Task& task, const mint::toy::transformer_config& config, mint::index batch) {
  mint::toy::transformer<float> model(config);
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 1 << 30, .batch = batch, .optimizer = {.lr = 1e-3}, .seed = 1});
  double tokens = 0;
  for (auto _ : state) {
    trainer.step();
    tokens += double(batch * config.context);
  }
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
}

void train_induction(benchmark::State& state) {
  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  train_task(state, task, {.vocab = 16, .context = task.context(), .d_model = 64, .layers = 2, .heads = 4, .d_head = 16}, 64);
}

void train_modular_addition(benchmark::State& state) {
  const mint::toy::modular_addition_task task(113, 0.3, 1);
  train_task(state, task, {.vocab = task.vocab(), .context = 3, .d_model = 128, .layers = 1, .heads = 4, .d_head = 32,
                           .d_mlp = 512}, 512);
}

void train_ioi(benchmark::State& state) {
  const mint::toy::ioi_task task{};
  train_task(state, task, {.vocab = task.vocab(), .context = task.context(), .d_model = 64, .layers = 2, .heads = 4,
                           .d_head = 16}, 64);
}

}  // namespace

BENCHMARK(hook_overhead)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(cache_every_site)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(backward_vs_forward)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(generate_cached_vs_recomputed)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(train_induction)->Unit(benchmark::kMillisecond);
BENCHMARK(train_modular_addition)->Unit(benchmark::kMillisecond);
BENCHMARK(train_ioi)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
