// mint's algorithms on the libtorch transformer give what they give on the toy with the same
// weights: activation patching, integrated gradients, attribution patching, SAE loss recovered,
// steering. In float64, so any difference beyond rounding (1e-9 of the values compared, which sum
// thousands of products) is a difference in what ran.
#include <doctest/doctest.h>

#include <mint/attribution.hpp>
#include <mint/circuits.hpp>
#include <mint/dictionary.hpp>
#include <mint/explain.hpp>
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
  CHECK(std::abs(a.clean_value - a.corrupt_value) > 1e-3);  // the corruption matters: values are not 0/0
  for (const auto& site : options.sites) {
    CAPTURE(site);
    CHECK(torch_test::max_abs(a[site].values) > 0.05);
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
  const auto plain = mint::generate(toy, prompts, {.max_new_tokens = 5});
  REQUIRE(ga.tokens.positions() == gb.tokens.positions());
  bool steered_differs = false;
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < ga.tokens.positions(); ++t) {
      CHECK(ga.tokens(b, t) == gb.tokens(b, t));
      steered_differs = steered_differs || ga.tokens(b, t) != plain.tokens(b, t);
    }
  CHECK(steered_differs);  // the steering reached the generated tokens
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
  double moved = 0;
  for (std::size_t i = 0; i < pa.values.size(); ++i) {
    CHECK(relative_gap(pa.values[i], pb.values[i]) <= 1e-9);
    moved = std::max(moved, std::abs(pa.values[i] - 1.0));  // noising: 1 is a sender that carries nothing
  }
  CHECK(moved > 1e-3);
  for (const int method : {0, 1, 2}) {  // exact scores, EAP, EAP-IG
    CAPTURE(method);
    const auto scores = [&](auto& model, const mint::edge_graph& g) {
      return method == 0 ? mint::exact_edge_scores(model, g, clean, corrupt, metric)
             : method == 1 ? mint::eap_scores(model, g, clean, corrupt, metric)
                           : mint::eap_ig_scores(model, g, clean, corrupt, metric, {.steps = 4});
    };
    const auto a = scores(toy, graph);
    const auto b = scores(twin, twin_graph);
    REQUIRE(a.values.size() == b.values.size());
    double largest = 0;
    for (double v : a.values) largest = std::max(largest, std::abs(v));
    CHECK(largest > 1e-3);  // some edge matters, so the comparison is not vacuous
    for (std::size_t e = 0; e < a.values.size(); ++e) CHECK(std::abs(a.values[e] - b.values[e]) <= 1e-9 * std::max(1.0, largest));
  }
}

TEST_CASE("feature ablation, head scores and reading activations on the libtorch model equal the toy's") {
  auto toy = algorithm_model();
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 1, 4, 2, 7}, {3, 5, 6, 9, 1}});
  const mint::logit_difference metric{{2, 1}, {5, 5}, {}};
  const mint::feature_ablation_options ablate{.sites = {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"}, .per_head = true};
  const auto fa = mint::feature_ablation(toy, tokens, metric, ablate);
  const auto fb = mint::feature_ablation(twin, tokens, metric, ablate);
  REQUIRE(fa.size() == fb.size());
  CHECK(std::any_of(fa.begin(), fa.end(), [](const auto& e) { return std::abs(e.effect) > 1e-3; }));
  for (std::size_t i = 0; i < fa.size(); ++i) {
    CHECK(fa[i].name == fb[i].name);
    CHECK(relative_gap(fa[i].effect, fb[i].effect) <= 1e-9);
  }
  const auto ha = mint::head_scores(toy, tokens);
  const auto hb = mint::head_scores(twin, tokens);
  REQUIRE(ha.scores.size() == hb.scores.size());
  for (std::size_t p = 0; p < ha.scores.size(); ++p) CHECK(torch_test::max_difference(ha.scores[p], hb.scores[p]) <= 1e-9);
  const mint::reading_options read{.sites = {"blocks.0.hook_resid_post", "blocks.1.attn.hook_z"}, .positions = {-1, 2}};
  const auto ra = mint::read_activations(toy, tokens, read);
  const auto rb = mint::read_activations(twin, tokens, read);
  REQUIRE(ra.size() == rb.size());
  for (std::size_t s = 0; s < ra.size(); ++s) CHECK((ra[s] - rb[s]).cwiseAbs().maxCoeff() <= 1e-9 * std::max(1.0, ra[s].cwiseAbs().maxCoeff()));
}

TEST_CASE("the weight analyses on the libtorch model equal the toy's: DLA, the logit lens, composition scores, neurons") {
  auto toy = algorithm_model();
  auto twin = torch_test::twin_of(toy);
  static_assert(mint::decodable_runtime<decltype(twin)>);
  static_assert(mint::attention_weight_runtime<decltype(twin)>);
  static_assert(mint::mlp_weight_runtime<decltype(twin)>);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 1, 4}, {3, 5, 6, 9, 1}});
  const auto da = mint::direct_logit_attribution(toy, tokens, {.correct = {2, 1}, .wrong = {5, 5}, .removal_effects = true});
  const auto db = mint::direct_logit_attribution(twin, tokens, {.correct = {2, 1}, .wrong = {5, 5}, .removal_effects = true});
  CHECK(da.parts == db.parts);
  CHECK(torch_test::max_difference(da.values, db.values) <= 1e-9 * std::max(1.0, torch_test::max_abs(da.values)));
  CHECK(torch_test::max_difference(da.removal, db.removal) <= 1e-9 * std::max(1.0, torch_test::max_abs(da.removal)));
  const auto la = mint::logit_lens(toy, tokens, {.top_k = 3, .targets = {2}});
  const auto lb = mint::logit_lens(twin, tokens, {.top_k = 3, .targets = {2}});
  REQUIRE(la.size() == lb.size());
  for (std::size_t l = 0; l < la.size(); ++l)
    CHECK(torch_test::max_difference(la[l].target_probabilities, lb[l].target_probabilities) <= 1e-9);
  const auto ca = mint::composition_scores(toy, 2), cb = mint::composition_scores(twin, 2);
  CHECK(torch_test::max_difference(ca.k, cb.k) <= 1e-12);
  CHECK(torch_test::max_difference(ca.v, cb.v) <= 1e-12);
  const auto na = mint::neuron_logit_effects(toy, 1, 3), nb = mint::neuron_logit_effects(twin, 1, 3);
  REQUIRE(na.size() == nb.size());
  for (std::size_t i = 0; i < na.size(); ++i) {
    REQUIRE(na[i].boosted.size() == nb[i].boosted.size());
    for (std::size_t k = 0; k < na[i].boosted.size(); ++k) {
      CHECK(na[i].boosted[k].token == nb[i].boosted[k].token);
      CHECK(na[i].boosted[k].value == doctest::Approx(nb[i].boosted[k].value).epsilon(1e-12));
    }
  }
}
