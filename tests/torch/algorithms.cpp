// mint's algorithms on the libtorch transformer give what they give on the toy with the same
// weights: activation patching, integrated gradients, attribution patching, SAE loss recovered,
// steering. In float64, so any difference beyond rounding (1e-9 of the values compared, which sum
// thousands of products) is a difference in what ran.
#include <doctest/doctest.h>

#include <mint/attribution.hpp>
#include <mint/circuits.hpp>
#include <mint/dictionary.hpp>
#include <mint/model/generation.hpp>
#include <mint/patching.hpp>
#include <mint/steering.hpp>

#include "common.hpp"

namespace {

mint::toy::transformer<double> algorithm_model() {
  mint::toy::transformer<double> toy({.vocab = 11, .context = 8, .d_model = 12, .layers = 2, .heads = 3, .d_head = 4, .d_mlp = 16});
  toy.initialize(29);
  return toy;
}

double relative_gap(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(a)); }

}  // namespace

TEST_CASE("activation patching and attribution patching on the libtorch model equal the toy's") {
  auto toy = algorithm_model();
  auto twin = torch_test::twin_of(toy);
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 1}});
  auto corrupt = clean;
  corrupt(0, 1) = 8, corrupt(1, 1) = 8;
  const mint::logit_difference metric{{3, 1}, {8, 8}, {}};
  const mint::activation_patching_options options{
      .sites = {"blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.1.hook_mlp_out"},
      .by = {mint::axis::pos, mint::axis::head}};
  const auto a = mint::activation_patching(toy, clean, corrupt, metric, options);
  const auto b = mint::activation_patching(twin, clean, corrupt, metric, options);
  CHECK(relative_gap(a.clean_value, b.clean_value) <= 1e-9);
  for (const auto& site : options.sites) {
    CAPTURE(site);
    CHECK(torch_test::max_difference(a[site].values, b[site].values) <= 1e-9 * std::max(1.0, torch_test::max_abs(a[site].values)));
  }
  const auto ea = mint::attribution_patching(toy, clean, corrupt, metric);
  const auto eb = mint::attribution_patching(twin, clean, corrupt, metric);
  REQUIRE(ea.sites.size() == eb.sites.size());
  for (std::size_t s = 0; s < ea.sites.size(); ++s) {
    CAPTURE(ea.sites[s].site);
    CHECK(ea.sites[s].site == eb.sites[s].site);
    CHECK(torch_test::max_difference(ea.sites[s].values, eb.sites[s].values) <=
          1e-9 * std::max(1.0, torch_test::max_abs(ea.sites[s].values)));
  }
}

TEST_CASE("integrated gradients on the libtorch model equal the toy's, at the embeddings and at a layer") {
  auto toy = algorithm_model();
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6}});
  const mint::logit_difference metric{{2, 2}, {5, 5}, {}};
  for (const std::string site : {"", "blocks.1.hook_resid_pre"}) {
    CAPTURE(site);
    mint::ig_options options;
    options.site = site;
    options.steps = 16;
    const auto a = mint::integrated_gradients(toy, tokens, metric, options);
    const auto b = mint::integrated_gradients(twin, tokens, metric, options);
    CHECK(a.site == b.site);
    CHECK(relative_gap(a.delta, b.delta) <= 1e-9);
    CHECK(torch_test::max_difference(a.values, b.values) <= 1e-9 * std::max(1.0, torch_test::max_abs(a.values)));
  }
}

TEST_CASE("SAE loss recovered and steering on the libtorch model equal the toy's") {
  auto toy = algorithm_model();
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 1}});
  const mint::dictionary::basic_sae<double> sae({.d_in = 12, .d_sae = 24}, 3);
  const auto la = mint::dictionary::loss_recovered(toy, sae, "blocks.1.hook_resid_pre", tokens);
  const auto lb = mint::dictionary::loss_recovered(twin, sae, "blocks.1.hook_resid_pre", tokens);
  CHECK(relative_gap(la.spliced, lb.spliced) <= 1e-9);
  CHECK(relative_gap(la.zero_ablation, lb.zero_ablation) <= 1e-9);
  CHECK(relative_gap(la.recovered(), lb.recovered()) <= 1e-9);

  std::vector<double> direction(12);
  for (std::size_t j = 0; j < direction.size(); ++j) direction[j] = std::sin(double(j) + 1.0);
  const mint::steering_vector<double> v{{{"blocks.0.hook_resid_post", direction}}};
  const auto steered = [&](auto& model) {
    mint::hook_set<double> hooks(model.sites());
    mint::add_steering(hooks, v, 3.0, mint::generated_positions(std::vector<mint::index>{2, 2}));
    return mint::array<double>::copy_of(model.forward(tokens, hooks));
  };
  const auto sa = steered(toy), sb = steered(twin);
  CHECK(torch_test::max_difference(sa, sb) <= 1e-9 * torch_test::max_abs(sa));
  CHECK(torch_test::max_difference(sa, mint::array<double>::copy_of(toy.forward(tokens))) > 1e-3);  // steering changed them
  // Generation with the steering hook at generated positions: the same tokens from both.
  mint::hook_set<double> ht(toy.sites()), hw(twin.sites());
  mint::add_steering(ht, v, 3.0, mint::generated_positions(std::vector<mint::index>{2, 1}));
  mint::add_steering(hw, v, 3.0, mint::generated_positions(std::vector<mint::index>{2, 1}));
  const auto prompts = mint::token_batch::from_rows({{1, 4}, {3}});
  const auto ga = mint::generate(toy, prompts, {.max_new_tokens = 5}, ht);
  const auto gb = mint::generate(twin, prompts, {.max_new_tokens = 5}, hw);
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < ga.tokens.positions(); ++t) CHECK(ga.tokens(b, t) == gb.tokens(b, t));
}

TEST_CASE("path patching and circuit discovery on the libtorch model's edge graph equal the toy's") {
  mint::toy::transformer<double> toy(
      {.vocab = 11, .context = 8, .d_model = 12, .layers = 2, .heads = 2, .d_head = 4, .d_mlp = 16, .split_qkv_input = true});
  toy.initialize(31);
  auto twin = torch_test::twin_of(toy);
  const auto graph = toy.graph();
  const auto twin_graph = mint::transformer_graph(twin.sites(), {2, 2, 2, true});
  REQUIRE(twin_graph.edges().size() == graph.edges().size());
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 1}});
  auto corrupt = clean;
  corrupt(0, 1) = 8, corrupt(1, 1) = 8;
  const mint::logit_difference metric{{3, 1}, {8, 8}, {}};
  const auto pa = mint::path_patching(toy, graph, clean, corrupt, metric, {.receivers = {"L1H0.k", "L1H1.v", "resid_final"}});
  const auto pb = mint::path_patching(twin, twin_graph, clean, corrupt, metric, {.receivers = {"L1H0.k", "L1H1.v", "resid_final"}});
  REQUIRE(pa.values.size() == pb.values.size());
  for (std::size_t i = 0; i < pa.values.size(); ++i) CHECK(relative_gap(pa.values[i], pb.values[i]) <= 1e-9);
  for (const bool exact : {true, false}) {
    CAPTURE(exact);
    const auto a = exact ? mint::exact_edge_scores(toy, graph, clean, corrupt, metric)
                         : mint::eap_scores(toy, graph, clean, corrupt, metric);
    const auto b = exact ? mint::exact_edge_scores(twin, twin_graph, clean, corrupt, metric)
                         : mint::eap_scores(twin, twin_graph, clean, corrupt, metric);
    REQUIRE(a.values.size() == b.values.size());
    double largest = 0;
    for (double v : a.values) largest = std::max(largest, std::abs(v));
    CHECK(largest > 1e-3);  // some edge matters, so the comparison is not vacuous
    for (std::size_t e = 0; e < a.values.size(); ++e) CHECK(std::abs(a.values[e] - b.values[e]) <= 1e-9 * std::max(1.0, largest));
  }
}
