// Edge sets, exact edge scores, EAP and EAP-IG against edge patching and attribution patching
// on a random transformer (layer norm, MLPs), where nothing is linear.
#include "mint/circuits/eap.hpp"
#include "mint/circuits/edge_sets.hpp"
#include "mint/circuits/exact_scores.hpp"

#include <doctest/doctest.h>

#include "mint/attribution/attribution_patching.hpp"
#include "mint/model/metrics.hpp"
#include "mint/patching/edge_patching.hpp"
#include "mint/toy/transformer.hpp"

namespace {

struct scores_fixture {
  mint::toy::transformer<float> model{{.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                       .d_mlp = 24, .split_qkv_input = true}};
  mint::edge_graph graph;
  mint::token_batch clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 9, 2}});
  mint::token_batch corrupt = clean;
  mint::logit_difference metric{{2, 8}, {5, 1}, {}};
  scores_fixture() {
    model.initialize(12);
    graph = model.graph();
    corrupt(0, 1) = 11, corrupt(1, 2) = 12, corrupt(1, 4) = 0;
  }
  double patched(const std::vector<int>& edges) {
    return metric.value(mint::patch_edges(model, graph, clean, corrupt, edges), clean);
  }
};

}  // namespace

TEST_CASE("edge_set_metrics: each set as patch_edges gives it, sets batched and resumed at their earliest receiver") {
  scores_fixture f;
  const int edges = int(f.graph.edges().size());
  // Sets within one block, across blocks (senders downstream of a patched receiver), the
  // final residual alone, everything, and nothing.
  std::vector<std::vector<int>> sets{{f.graph.edge("embed", "L1H0.k")},
                                     {f.graph.edge("embed", "L0H1.q"), f.graph.edge("L0H1", "L1H0.v"), f.graph.edge("mlp1", "resid_final")},
                                     {f.graph.edge("L1H1", "resid_final"), f.graph.edge("mlp0", "resid_final")},
                                     {}};
  std::vector<int> all(std::size_t(edges), 0);
  for (int e = 0; e < edges; ++e) all[std::size_t(e)] = e;
  sets.push_back(all);
  for (mint::index max_batch : {mint::index(0), mint::index(2), mint::index(4)}) {
    CAPTURE(max_batch);
    const auto r = mint::edge_set_metrics(f.model, f.graph, f.clean, f.corrupt, f.metric, std::span<const std::vector<int>>(sets),
                                          {.max_batch = max_batch});
    REQUIRE(r.values.size() == sets.size());
    for (std::size_t k = 0; k < sets.size(); ++k) {
      CAPTURE(k);
      // float32, other batch sizes and a resumed start: 1e-5 of the logit difference's scale (~1).
      CHECK(r.values[k] == doctest::Approx(f.patched(sets[k])).epsilon(1e-5).scale(1.0));
    }
    CHECK(r.cost.forwards >= 3);
  }
  // Everything patched is the corrupt run.
  const auto corrupt_value = f.metric.value(f.model.forward(f.corrupt), f.clean);
  const auto r = mint::edge_set_metrics(f.model, f.graph, f.clean, f.corrupt, f.metric, std::span<const std::vector<int>>(sets));
  CHECK(r.values.back() == doctest::Approx(corrupt_value).epsilon(1e-5).scale(1.0));
  const std::vector<std::vector<int>> bad{{edges}};
  CHECK_THROWS_WITH_AS(mint::edge_set_metrics(f.model, f.graph, f.clean, f.corrupt, f.metric, std::span<const std::vector<int>>(bad)),
                       doctest::Contains("edges"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::edge_set_metrics(f.model, f.graph, f.clean, f.corrupt, f.metric, std::span<const std::vector<int>>(sets),
                                              {.max_batch = 1}),
                       doctest::Contains("max_batch"), mint::argument_error);
  auto shorter = mint::token_batch::from_rows({{1, 4, 2}});
  CHECK_THROWS_AS(mint::edge_set_metrics(f.model, f.graph, f.clean, shorter, f.metric, std::span<const std::vector<int>>(sets)),
                  mint::shape_error);
}

TEST_CASE("exact edge scores: each edge patched alone, in fewer forward-equivalents than one forward per edge") {
  scores_fixture f;
  const double clean_value = f.metric.value(f.model.forward(f.clean), f.clean);
  const auto exact = mint::exact_edge_scores(f.model, f.graph, f.clean, f.corrupt, f.metric, {.max_batch = 16});
  REQUIRE(exact.values.size() == f.graph.edges().size());
  CHECK(exact.clean_value == doctest::Approx(clean_value).epsilon(1e-6));
  for (int e = 0; e < int(f.graph.edges().size()); ++e) {
    CAPTURE(f.graph.edge_name(e));
    CHECK(exact.values[std::size_t(e)] == doctest::Approx(f.patched({e}) - clean_value).epsilon(1e-5).scale(1.0));  // as above
  }
  // 2 layers: edges into block 1 and the final residual start at block 1, so they cost half a
  // forward each; 36 edges in all, 12 of them into block 0.
  const double edges = double(f.graph.edges().size());
  CHECK(exact.cost.forward_equivalents - 2 < 0.75 * edges);
}

TEST_CASE("EAP: a receiver's edge scores sum to attribution patching's estimate at its input") {
  scores_fixture f;
  const auto eap = mint::eap_scores(f.model, f.graph, f.clean, f.corrupt, f.metric);
  CHECK(eap.cost.forwards == 2);
  CHECK(eap.cost.backwards == 1);
  const auto atp = mint::attribution_patching(f.model, f.clean, f.corrupt, f.metric,
                                              {.sites = {"blocks.1.hook_k_input", "blocks.1.hook_mlp_in", "blocks.1.hook_resid_post"}});
  CHECK(eap.clean_value == doctest::Approx(atp.clean_value).epsilon(1e-6));
  CHECK(eap.corrupt_value == doctest::Approx(atp.corrupt_value).epsilon(1e-6));
  auto incoming_sum = [&](const std::string& receiver) {
    double sum = 0;
    for (int e : f.graph.incoming(f.graph.receiver(receiver))) sum += eap.values[std::size_t(e)];
    return sum;
  };
  auto summed = [](const mint::patch_estimate& p, int head) {  // over batch and positions
    double sum = 0;
    for (mint::index b = 0; b < p.values.extent(0); ++b)
      for (mint::index t = 0; t < p.values.extent(1); ++t) sum += head < 0 ? p.values(b, t) : p.values(b, t, head);
    return sum;
  };
  // The receivers' inputs are the sums of their senders' outputs (plus what is the same in both
  // runs), so the edges' linear estimates add up to the input's. float32 products: 1e-4.
  CHECK(incoming_sum("L1H1.k") == doctest::Approx(summed(atp.sites[0], 1)).epsilon(1e-4).scale(1e-2));
  CHECK(incoming_sum("mlp1.in") == doctest::Approx(summed(atp.sites[1], -1)).epsilon(1e-4).scale(1e-2));
  CHECK(incoming_sum("resid_final") == doctest::Approx(summed(atp.sites[2], -1)).epsilon(1e-4).scale(1e-2));
  // Not all zero: the check above could fail.
  CHECK(std::abs(incoming_sum("resid_final")) > 1e-3);
}

TEST_CASE("EAP-IG: one point at the clean end is EAP; the input's edges complete to corrupt minus clean") {
  scores_fixture f;
  const auto eap = mint::eap_scores(f.model, f.graph, f.clean, f.corrupt, f.metric);
  const auto one = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric,
                                       {.steps = 1, .rule = mint::step_rule::riemann_right});
  // The same passes in another batch layout: float32 sums of 192 products, whose rounding
  // depends on the BLAS and the rows a product holds; 1e-5 of the largest score.
  double largest = 0;
  for (double v : eap.values) largest = std::max(largest, std::abs(v));
  REQUIRE(largest > 1e-3);
  for (std::size_t e = 0; e < eap.values.size(); ++e) {
    CAPTURE(f.graph.edge_name(int(e)));
    CHECK(std::abs(one.values[e] - eap.values[e]) <= 1e-5 * largest);
  }
  // Batched in passes of 2 steps or all at once: the same scores (as above).
  const auto all = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric);
  const auto paired = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric, {.max_batch = 4});
  CHECK(all.cost.backwards == 1);
  CHECK(paired.cost.backwards == 3);
  for (std::size_t e = 0; e < eap.values.size(); ++e) CHECK(std::abs(all.values[e] - paired.values[e]) <= 1e-5 * largest);
  // Completeness: the embedding reaches every receiver and nothing else, so its edges' scores
  // sum to the integrated gradient at the input, which is corrupt minus clean once the path
  // integral is exact (32 Gauss-Legendre points on a smooth path: 1e-4 of the span).
  const auto fine = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric,
                                        {.steps = 32, .rule = mint::step_rule::gauss_legendre});
  double sum = 0;
  for (std::size_t e = 0; e < f.graph.edges().size(); ++e)
    if (f.graph.edges()[e].sender == f.graph.sender("embed")) sum += fine.values[e];
  const double span = fine.corrupt_value - fine.clean_value;
  CHECK(std::abs(span) > 0.05);
  CHECK(sum == doctest::Approx(span).epsilon(1e-4).scale(std::abs(span)));
  CHECK_THROWS_WITH_AS(mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric, {.steps = 0}),
                       doctest::Contains("steps"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric, {.max_batch = 1}),
                       doctest::Contains("max_batch"), mint::argument_error);
}

TEST_CASE("EAP-IG along the senders' activations: the clean end is EAP; each site's edges complete to its own patch") {
  scores_fixture f;
  const auto eap = mint::eap_scores(f.model, f.graph, f.clean, f.corrupt, f.metric);
  double largest = 0;
  for (double v : eap.values) largest = std::max(largest, std::abs(v));
  REQUIRE(largest > 1e-3);
  // One point at a = 1 leaves every site clean: EAP's gradients, one pass per sender site
  // (embed, 2 attention layers, 2 MLPs). Tolerance as the inputs path's, above.
  const auto one = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric,
                                       {.steps = 1, .rule = mint::step_rule::riemann_right,
                                        .path = mint::eap_ig_path::activations});
  CHECK(one.cost.backwards == 5);
  for (std::size_t e = 0; e < eap.values.size(); ++e) {
    CAPTURE(f.graph.edge_name(int(e)));
    CHECK(std::abs(one.values[e] - eap.values[e]) <= 1e-5 * largest);
  }
  // Completeness per site: a sender's output reaches the metric only through the receivers
  // downstream of it, so the edges leaving one site sum to the integrated gradient of that site,
  // the metric with the site's outputs patched from the corrupt run minus the clean metric
  // (32 Gauss-Legendre points: 1e-4 of the span, as the inputs path's).
  const auto fine = mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric,
                                        {.steps = 32, .rule = mint::step_rule::gauss_legendre, .max_batch = 16,
                                         .path = mint::eap_ig_path::activations});
  const auto corrupt_run = mint::run_with_cache(f.model, f.corrupt, {"blocks.0.attn.hook_result", "blocks.1.hook_mlp_out"});
  for (const std::string site : {"blocks.0.attn.hook_result", "blocks.1.hook_mlp_out"}) {
    CAPTURE(site);
    mint::hook_set<float> hooks(f.model.sites());
    hooks.add(site, [&](mint::hook_call<float>& c) { mint::copy(corrupt_run.cache[site], c.activation); },
              {.needs = mint::access::write});
    const double span = f.metric.value(f.model.forward(f.clean, hooks), f.clean) - fine.clean_value;
    double sum = 0;
    for (std::size_t e = 0; e < f.graph.edges().size(); ++e)
      if (f.model.sites()[f.graph.senders()[std::size_t(f.graph.edges()[e].sender)].site].name == site) sum += fine.values[e];
    CHECK(std::abs(span) > 0.01);
    CHECK(sum == doctest::Approx(span).epsilon(1e-4).scale(std::abs(span)));
  }
  CHECK_THROWS_WITH_AS(mint::eap_ig_scores(f.model, f.graph, f.clean, f.corrupt, f.metric,
                                           {.site = "hook_embed", .path = mint::eap_ig_path::activations}),
                       doctest::Contains("options.site"), mint::argument_error);
}
