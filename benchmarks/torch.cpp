// What hook points cost a libtorch model (examples/torch_transformer.hpp, the GPT-2-like shape
// of bench_model: 4 layers, d 256, 8 heads, batch 8 x 128): the module's own forward, the same
// through mint::torch_runtime with no hooks, with an empty read hook at every site, and caching
// every site; each without a graph (torch::NoGradGuard) and with one (grad mode, every point a
// node for backward). The aim: empty hooks at every site under 10% over no hooks.
// Run with interleaved repetitions so the rows share the machine's state:
//   bench_torch --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "torch_transformer.hpp"

#include <mint/model/cache.hpp>
#include <mint/core/random.hpp>

namespace {

const mint::toy::transformer_config shape{.vocab = 1024, .context = 256, .d_model = 256, .layers = 4, .heads = 8,
                                          .d_head = 32, .d_mlp = 1024};

struct fixture {
  torch_example::Transformer module{shape};
  mint::torch_runtime<torch_example::TransformerImpl> model{module.ptr()};
  mint::token_batch tokens{8, 128};
  at::Tensor ids, lengths;
  fixture() {
    torch::manual_seed(1);
    torch::NoGradGuard no_grad;
    for (auto& p : module->parameters()) p.normal_(0, 0.05);
    mint::rng r(2);
    for (mint::index b = 0; b < tokens.batch(); ++b)
      for (mint::index t = 0; t < tokens.positions(); ++t) tokens(b, t) = mint::token(r.below(1024));
    ids = torch::empty({8, 128}, torch::kLong);
    for (mint::index b = 0; b < 8; ++b)
      for (mint::index t = 0; t < 128; ++t) ids[b][t] = tokens(b, t);
    lengths = torch::full({8}, 128, torch::kLong);
  }
};

fixture& shared() {
  static fixture f;
  return f;
}

enum class hooks_kind { module_only, none, empty_everywhere, cache_everywhere };

void run(benchmark::State& state, hooks_kind kind, bool graph) {
  torch::set_num_threads(int(state.range(0)));
  auto& f = shared();
  torch::autograd::AutoGradMode mode(graph);
  mint::hook_set<float> hooks(f.model.sites());
  std::vector<std::string> all;
  for (const auto& s : f.model.sites()) all.push_back(s.name);
  mint::activation_cache<float> cache(f.model.sites(), kind == hooks_kind::cache_everywhere ? all : std::vector<std::string>{});
  if (kind == hooks_kind::empty_everywhere)
    for (const auto& s : f.model.sites()) hooks.add(s.name, [](mint::hook_call<float>&) {});
  if (kind == hooks_kind::cache_everywhere) {
    cache.reserve(8, 128);
    cache.attach(hooks);
  }
  for (auto _ : state) {
    if (kind == hooks_kind::module_only) benchmark::DoNotOptimize(f.module->forward(f.ids, f.lengths));
    else benchmark::DoNotOptimize(f.model.forward(f.tokens, hooks).data());
  }
}

}  // namespace

#define TORCH_ROW(name, kind, graph) \
  BENCHMARK_CAPTURE(run, name, kind, graph)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()

TORCH_ROW(module_no_graph, hooks_kind::module_only, false);
TORCH_ROW(runtime_no_hooks_no_graph, hooks_kind::none, false);
TORCH_ROW(runtime_empty_hooks_everywhere_no_graph, hooks_kind::empty_everywhere, false);
TORCH_ROW(runtime_cache_everywhere_no_graph, hooks_kind::cache_everywhere, false);
TORCH_ROW(module_graph, hooks_kind::module_only, true);
TORCH_ROW(runtime_no_hooks_graph, hooks_kind::none, true);
TORCH_ROW(runtime_empty_hooks_everywhere_graph, hooks_kind::empty_everywhere, true);
TORCH_ROW(runtime_cache_everywhere_graph, hooks_kind::cache_everywhere, true);

BENCHMARK_MAIN();
