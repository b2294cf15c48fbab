// A full head x position activation-patching sweep (every block's hook_z by position and head)
// on a 4-layer, 8-head toy transformer (d_model 256, d_mlp 1024, 64 positions, batch 16),
// against the naive loop of one full forward per patch (what TransformerLens's
// generic_activation_patch does), in one run. The sweep runs three ways, to show what each
// part contributes: batched only (the runtime seen as a plain runtime), batched and resumed at
// the patched block (a resumable runtime), and with prefix reuse (the toy transformer as it is:
// it also branches off the cached prefix). Each way must agree with the naive loop (1e-4 of the
// metric's span, ~1e-5 absolute: float32 rounding) or the row fails; forward_equivalents is a time over one bare
// forward of the batch. Takes a few minutes: the naive loop is 2048 forwards.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "patching_sweep.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace patching_bench;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// The toy transformer seen as resumable but not branching.
struct resumable_view : plain_view {
  mint::tensor_view<const float> forward_from(int layer, mint::tensor_view<const float> resid, const mint::token_batch& t,
                                              mint::hook_set<float>& h) {
    return m->forward_from(layer, resid, t, h);
  }
};
static_assert(mint::resumable_runtime<resumable_view> && !mint::branching_runtime<resumable_view> &&
              mint::branching_runtime<model_type>);

// The naive loop: one patched forward of the corrupt batch per (block, position, head), each
// copying that head's clean output at that position; values normalised as the sweep's.
std::vector<std::vector<double>> naive_loop(sweep_setup& s, double clean_value, double corrupt_value) {
  const auto clean_run = mint::run_with_cache(s.model, s.clean, s.sites);
  std::vector<std::vector<double>> out;
  for (const auto& site : s.sites) {
    const auto source = clean_run.cache[site];
    std::vector<double> values;
    for (mint::index p = 0; p < context; ++p)
      for (mint::index h = 0; h < heads; ++h) {
        mint::hook_set<float> hooks(s.model.sites());
        hooks.add(site, [&](mint::hook_call<float>& c) {
          for (mint::index b = 0; b < batch; ++b)
            mint::copy(source.subview(b).subview(p).subview(h), c.activation.subview(b).subview(p).subview(h));
        }, {.needs = mint::access::write});
        const double v = s.metric.value(s.model.forward(s.corrupt, hooks), s.clean);
        values.push_back((v - corrupt_value) / (clean_value - corrupt_value));
      }
    out.push_back(std::move(values));
  }
  return out;
}

// Largest |sweep - naive| over every patch, in units of the metric's span (values are normalised).
double disagreement(const mint::activation_patching_result& r, const std::vector<std::vector<double>>& naive) {
  double worst = 0;
  for (std::size_t s = 0; s < naive.size(); ++s)
    for (std::size_t i = 0; i < naive[s].size(); ++i)
      worst = std::max(worst, std::abs(r.sites[s].values.data()[i] - naive[s][i]));
  return worst;
}

void head_position_sweep(benchmark::State& state) {
  sweep_setup s;
  double naive = 0, plain = 0, resumed = 0, reuse = 0, forward = 0, worst = 0, span = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    for (int i = 0; i < 5; ++i) benchmark::DoNotOptimize(s.model.forward(s.corrupt).data());
    forward = seconds_since(t0) / 5;

    plain_view p{&s.model};
    resumable_view rv{{&s.model}};
    t0 = clock_type::now();
    const auto a = mint::activation_patching(p, s.clean, s.corrupt, s.metric, s.options());
    plain = seconds_since(t0);
    t0 = clock_type::now();
    const auto b = mint::activation_patching(rv, s.clean, s.corrupt, s.metric, s.options());
    resumed = seconds_since(t0);
    t0 = clock_type::now();
    const auto c = mint::activation_patching(s.model, s.clean, s.corrupt, s.metric, s.options());
    reuse = seconds_since(t0);
    t0 = clock_type::now();
    const auto loop = naive_loop(s, c.clean_value, c.corrupt_value);
    naive = seconds_since(t0);
    worst = std::max({disagreement(a, loop), disagreement(b, loop), disagreement(c, loop)});
    span = c.clean_value - c.corrupt_value;
  }
  state.counters["patches"] = double(layers * context * heads);
  state.counters["forward_ms"] = 1e3 * forward;
  state.counters["naive_s"] = naive;
  state.counters["batched_s"] = plain;
  state.counters["resumed_s"] = resumed;
  state.counters["prefix_reuse_s"] = reuse;
  state.counters["naive/prefix_reuse"] = naive / reuse;
  state.counters["sweep_forward_equivalents"] = reuse / forward;
  state.counters["naive_forward_equivalents"] = naive / forward;
  state.counters["max_disagreement"] = worst;
  state.counters["span"] = span;
  // float32 logits of order 1 differ by ~1e-6 between batchings; over a span of ~0.1 that is ~1e-5.
  if (!(worst < 1e-4))
    state.SkipWithError(("the sweeps disagree with the naive loop by " + std::to_string(worst) + " of the span").c_str());
}

}  // namespace

BENCHMARK(head_position_sweep)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

BENCHMARK_MAIN();
