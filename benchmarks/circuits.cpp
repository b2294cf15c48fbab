// What circuit discovery costs, in forward-equivalents: wall time over one bare forward of the
// batch, measured in the same run. For each model: exact edge scores against the naive loop of
// one patched forward per edge (the senders of both runs cached once; on the large model timed
// on every 16th edge, and checked against the exact scores on each edge it runs), EAP (2 forwards and a backward), EAP-IG (5 points)
// and ACDC (tau 0.01 on the KL divergence). Models: the hand-set known circuits, a 2-layer
// 4-head attention-only model (81 edges) and a 4-layer 8-head model with MLPs and layer norm
// (d_model 256, 64 positions; 1,612 edges). Batch 16 throughout.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <mint/circuits.hpp>
#include <mint/toy.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

template <class F>
double seconds_of(F&& f) {
  const auto start = clock_type::now();
  f();
  return seconds_since(start);
}

struct bench_case {
  std::string name;
  mint::toy::transformer<float> model;
  mint::token_batch clean, corrupt;
  mint::index naive_stride = 1;  // the naive loop runs every naive_stride-th edge
};

bench_case random_model(const std::string& name, mint::toy::transformer_config config, mint::index positions,
                        mint::index stride) {
  bench_case c{name, mint::toy::transformer<float>(config), {16, positions}, {16, positions}, stride};
  c.model.initialize(1);
  mint::rng r(2);
  for (mint::index b = 0; b < 16; ++b)
    for (mint::index p = 0; p < positions; ++p) {
      c.clean(b, p) = mint::token(r.below(std::uint64_t(config.vocab)));
      c.corrupt(b, p) = mint::token(r.below(std::uint64_t(config.vocab)));
    }
  return c;
}

void run(bench_case& c) {
  auto& model = c.model;
  const auto graph = model.graph();
  const auto clean_logits = mint::array<float>::copy_of(model.forward(c.clean));
  // A logit difference at the last position: linear, so EAP has a gradient to follow.
  mint::logit_difference metric;
  for (mint::index b = 0; b < c.clean.batch(); ++b) {
    mint::index best = 0, second = 1;
    const auto row = clean_logits.view().subview(b).subview(c.clean.positions() - 1);
    for (mint::index j = 0; j < row.extent(0); ++j)
      if (row(j) > row(best)) second = best, best = j;
      else if (j != best && row(j) > row(second)) second = j;
    metric.correct.push_back(mint::token(best));
    metric.wrong.push_back(mint::token(second));
  }

  // One bare forward of the batch: the median of 15, interleaved with nothing else.
  std::vector<double> forwards;
  for (int i = 0; i < 15; ++i) forwards.push_back(seconds_of([&] { benchmark::DoNotOptimize(model.forward(c.clean).data()); }));
  std::sort(forwards.begin(), forwards.end());
  const double forward = forwards[forwards.size() / 2];

  mint::edge_scores exact, eap, ig;
  const double t_exact = seconds_of([&] { exact = mint::exact_edge_scores(model, graph, c.clean, c.corrupt, metric, {.max_batch = 256}); });
  const double t_eap = seconds_of([&] { eap = mint::eap_scores(model, graph, c.clean, c.corrupt, metric); });
  const double t_ig = seconds_of([&] { ig = mint::eap_ig_scores(model, graph, c.clean, c.corrupt, metric); });
  mint::acdc_result found;
  const double t_acdc = seconds_of([&] { found = mint::acdc(model, graph, c.clean, c.corrupt, {.threshold = 0.01}); });

  // The naive loop on every stride-th edge: the clean and corrupt senders cached once, then one
  // forward per edge adding out_s corrupt - out_s clean at its receiver. Each must agree with the
  // exact score.
  const mint::index edges = mint::index(graph.edges().size());
  double worst = 0, span = 1e-12;
  mint::index naive_edges = 0;
  const double t_naive = seconds_of([&] {
    std::vector<std::string> names;
    for (const auto& n : graph.senders()) names.push_back(model.sites()[n.site].name);
    const auto clean_run = mint::run_with_cache(model, c.clean, names), corrupt_run = mint::run_with_cache(model, c.corrupt, names);
    for (mint::index e = 0; e < edges; e += c.naive_stride) {
      const auto& edge = graph.edges()[std::size_t(e)];
      const auto& sender = graph.senders()[std::size_t(edge.sender)];
      const auto& receiver = graph.receivers()[std::size_t(edge.receiver)];
      const auto& from = model.sites()[sender.site];
      auto slice = [](auto v, const mint::site_info& info, int head) {
        return head < 0 ? v : v.select(info.axis_of(mint::axis::head) >= 0 ? info.axis_of(mint::axis::head)
                                                                            : info.axis_of(mint::axis::kv_head), head);
      };
      const auto delta = (mint::as_matrix(slice(corrupt_run.cache[from.name], from, sender.head)) -
                          mint::as_matrix(slice(clean_run.cache[from.name], from, sender.head))).eval();
      mint::hook_set<float> hooks(model.sites());
      hooks.add(receiver.site, [&](mint::hook_call<float>& call) {
        mint::as_matrix(slice(call.activation, call.site, receiver.head)) += delta;
      }, {.needs = mint::access::add});
      const double v = metric.value(model.forward(c.clean, hooks), c.clean) - exact.clean_value;
      worst = std::max(worst, std::abs(v - exact.values[std::size_t(e)]));
      ++naive_edges;
    }
  });
  for (double v : exact.values) span = std::max(span, std::abs(v));
  const double naive_per_edge = t_naive / double(naive_edges) / forward;
  const double exact_per_edge = t_exact / double(edges) / forward;
  std::printf("| %-18s | %5td | %6.2f ms | exact: %4td fwd, %7.1f fwd-eq, %.3f/edge | naive: %.2f/edge (%td edges) | %5.2fx | "
              "EAP %.2f | EAP-IG %.2f | ACDC %5td fwd, %.2f/edge | agree %.1e |\n",
              c.name.c_str(), edges, 1e3 * forward, exact.cost.forwards, t_exact / forward, exact_per_edge, naive_per_edge,
              naive_edges, naive_per_edge / exact_per_edge, t_eap / forward, t_ig / forward, found.cost.forwards,
              t_acdc / forward / double(edges), worst / span);
  if (worst > 1e-3 * span) std::printf("  ^ the exact scores disagree with the naive loop\n");
}

}  // namespace

int main() {
  std::printf("| model              | edges | forward   | exact scores (wall / forward)                    | naive loop            "
              "     | speed-up | EAP fwd-eq | EAP-IG fwd-eq | ACDC | agreement (of max |score|) |\n");
  std::vector<bench_case> cases;
  for (auto make : {+[] { return mint::toy::previous_token_copy(); }, +[] { return mint::toy::induction_circuit(); },
                    +[] { return mint::toy::mlp_lookup(); }, +[] { return mint::toy::ioi_circuit(); },
                    +[] { return mint::toy::redundant_copy(); }}) {
    auto k = make();
    mint::rng r(4);
    auto clean = k.sample(r, 16).tokens, corrupt = k.sample(r, 16).tokens;
    cases.push_back({k.description.substr(0, k.description.find(':')), std::move(k.model), clean, corrupt, 1});
  }
  cases.push_back(random_model("2L x 4H, d 64", {.vocab = 16, .context = 24, .d_model = 64, .layers = 2, .heads = 4, .d_head = 16,
                                                 .split_qkv_input = true},
                               24, 1));
  cases.push_back(random_model("4L x 8H, d 256, MLP", {.vocab = 64, .context = 64, .d_model = 256, .layers = 4, .heads = 8,
                                                       .d_head = 32, .d_mlp = 1024, .split_qkv_input = true},
                               64, 16));
  for (auto& c : cases) run(c);
}
