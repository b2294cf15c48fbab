// ACDC, EAP, EAP-IG and exact scores on the hand-set models whose circuits are known edge by
// edge, and the measures that judge them.
#include "mint/circuits.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "mint/model/metrics.hpp"
#include "mint/toy/circuits.hpp"
#include "mint/toy/tasks.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

// A known circuit with a clean and a corrupt batch (two draws of its task) and the task's loss.
struct discovery_case {
  mint::toy::known_circuit circuit;
  mint::edge_graph graph;
  mint::token_batch clean, corrupt;
  mint::target_cross_entropy loss;
  std::vector<int> truth, positional;
};

discovery_case make_case(mint::toy::known_circuit circuit, mint::index rows = 6) {
  discovery_case c{std::move(circuit), {}, {}, {}, {}, {}, {}};
  c.graph = c.circuit.model.graph();
  mint::rng r(4);
  const auto clean = c.circuit.sample(r, rows);
  c.clean = clean.tokens;
  c.corrupt = c.circuit.sample(r, rows).tokens;
  c.loss = {clean.rows, clean.positions, clean.targets};
  c.truth = mint::edge_indices(c.graph, c.circuit.edges);
  c.positional = mint::edge_indices(c.graph, c.circuit.positional_edges);
  return c;
}

discovery_case previous_token_case() { return make_case(mint::toy::previous_token_copy(8, 12)); }

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("the measures: ROC AUC, precision and recall, rank correlation, top-k overlap") {
  const std::vector<double> scores{0.9, -0.8, 0.1, 0.0, 0.3};
  const std::vector<int> truth{0, 1};
  CHECK(mint::roc_auc(scores, truth) == doctest::Approx(1.0));                    // |score| ranks both first
  CHECK(mint::roc_auc(scores, std::vector<int>{2, 3}) == doctest::Approx(0.0));   // both last
  CHECK(mint::roc_auc(scores, std::vector<int>{0, 3}) == doctest::Approx(0.5));   // one first, one last
  CHECK(mint::roc_auc(std::vector<double>{1, 1, 1}, std::vector<int>{0}) == doctest::Approx(0.5));  // ties count half
  CHECK(mint::roc_auc(scores, std::vector<int>{0, 3}, std::vector<int>{3}) == doctest::Approx(1.0));  // excluded: neither
  CHECK_THROWS_AS(mint::roc_auc(scores, std::vector<int>{}), mint::argument_error);
  CHECK_THROWS_AS(mint::roc_auc(scores, std::vector<int>{7}), mint::argument_error);
  const std::vector<double> with_nan{0.9, NAN, 0.1, 0.0, 0.3};
  CHECK_THROWS_WITH_AS(mint::roc_auc(with_nan, truth), doctest::Contains("NaN"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::rank_correlation(with_nan, scores), doctest::Contains("NaN"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::top_k_overlap(scores, with_nan, 2), doctest::Contains("NaN"), mint::argument_error);

  const auto pr = mint::circuit_precision_recall(std::vector<int>{0, 2}, 5, truth);
  CHECK(pr.precision == doctest::Approx(0.5));
  CHECK(pr.recall == doctest::Approx(0.5));
  CHECK(pr.false_positive_rate == doctest::Approx(1.0 / 3));
  // An ACDC-style sweep: the empty circuit, the truth, everything.
  const std::vector<std::vector<int>> sweep{{}, {0, 1}, {0, 1, 2, 3, 4}};
  CHECK(mint::circuits_roc_auc(sweep, 5, truth) == doctest::Approx(1.0));
  const std::vector<std::vector<int>> wrong{{2}};
  CHECK(mint::circuits_roc_auc(wrong, 5, truth) == doctest::Approx((1.0 / 3) * 0 + (2.0 / 3) * 0.5));

  const std::vector<double> a{1, 2, 3, 4, 5}, b{2, 4, 6, 8, 100}, c{5, 4, 3, 2, 1};
  CHECK(mint::rank_correlation(a, b) == doctest::Approx(1.0));
  CHECK(mint::rank_correlation(a, c) == doctest::Approx(-1.0));
  CHECK(mint::rank_correlation(a, b, 3) == doctest::Approx(1.0));
  CHECK(mint::top_k_overlap(a, b, 2) == doctest::Approx(1.0));
  CHECK(mint::top_k_overlap(a, c, 2) == doctest::Approx(0.0));
  CHECK_THROWS_AS(mint::top_k_overlap(a, c, 0), mint::argument_error);
}

TEST_CASE("known circuits: exact scores, EAP and EAP-IG rank the circuit's edges first; ACDC keeps exactly them") {
  for (auto make : {+[] { return mint::toy::previous_token_copy(8, 12); }, +[] { return mint::toy::induction_circuit(12, 24); },
                    +[] { return mint::toy::mlp_lookup(8, 12); }, +[] { return mint::toy::ioi_circuit(10, 0); },
                    +[] { return mint::toy::redundant_copy(8, 12); }}) {
    auto c = make_case(make(), 8);
    const bool redundant = c.circuit.description.starts_with("redundant");
    CAPTURE(c.circuit.description);
    auto& model = c.circuit.model;
    const auto exact = mint::exact_edge_scores(model, c.graph, c.clean, c.corrupt, c.loss);
    const auto eap = mint::eap_scores(model, c.graph, c.clean, c.corrupt, c.loss);
    const auto eap_ig = mint::eap_ig_scores(model, c.graph, c.clean, c.corrupt, c.loss);
    // Positional edges are invisible to patching between inputs of one length: excluded.
    CHECK(mint::roc_auc(exact.values, c.truth, c.positional) == doctest::Approx(1.0));
    CHECK(mint::roc_auc(eap_ig.values, c.truth, c.positional) >= 0.95);
    CHECK(mint::roc_auc(eap.values, c.truth, c.positional) >= 0.9);
    // Every edge outside the circuit changes nothing (float32: 1e-4 of a loss of order 1).
    for (std::size_t e = 0; e < exact.values.size(); ++e)
      if (std::find(c.truth.begin(), c.truth.end(), int(e)) == c.truth.end()) {
        CAPTURE(c.graph.edge_name(int(e)));
        CHECK(std::abs(exact.values[e]) < 1e-4);
      }

    const auto found = mint::acdc(model, c.graph, c.clean, c.corrupt, mint::kl_divergence(model.forward(c.clean), c.clean, true),
                                  {.threshold = 0.01});
    if (!redundant) {
      CHECK(found.edges == sorted(c.truth));
    } else {
      // Two votes of three still carry the prediction, so the KL barely moves when the first
      // path visited goes: greedy pruning keeps two of the three paths (4 of the 6 edges).
      CHECK(found.edges.size() == 4);
      for (int e : found.edges) CHECK(std::find(c.truth.begin(), c.truth.end(), e) != c.truth.end());
    }
    CHECK(found.cost.forwards == mint::index(c.graph.edges().size()) + 2);  // 2 cached runs, then one per edge
    // A sweep's ROC AUC.
    const auto sweep = mint::acdc_sweep(model, c.graph, c.clean, c.corrupt,
                                        mint::kl_divergence(model.forward(c.clean), c.clean, true), mint::log_thresholds(9, -4, 0));
    std::vector<std::vector<int>> circuits;
    for (const auto& s : sweep) circuits.push_back(s.edges);
    const double acdc_auc = mint::circuits_roc_auc(circuits, c.graph.edges().size(), c.truth, c.positional);
    CHECK(acdc_auc >= (redundant ? 0.7 : 0.95));

    // The truth alone recovers the clean behaviour; nothing recovers none of it.
    const auto curve = mint::faithfulness_curve(model, c.graph, c.clean, c.corrupt, c.loss, exact.values);
    REQUIRE(curve.sizes.size() == curve.recovered.size());
    CHECK(curve.recovered.front() == doctest::Approx(0.0).scale(1.0));
    CHECK(curve.recovered.back() == doctest::Approx(1.0));
    CHECK(curve.smallest_recovering >= 1);
    CHECK(curve.smallest_recovering <= mint::index(c.truth.size()));
    const auto at_truth = mint::faithfulness_curve(model, c.graph, c.clean, c.corrupt, c.loss, exact.values,
                                                   {.sizes = {mint::index(c.truth.size())}});
    CHECK(at_truth.recovered[0] == doctest::Approx(1.0).epsilon(1e-4));
    // Recovering all from the truth's size on: at least the share of sizes past it.
    CHECK(curve.area >= 1.0 - double(c.truth.size()) / double(c.graph.edges().size()) - 1e-6);
  }
}

TEST_CASE("ACDC with the default KL metric at the last position, and the same circuit on 1 and 2 threads") {
  auto c = previous_token_case();
  auto run = [&](int threads) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    (void)threads;
    return mint::acdc(c.circuit.model, c.graph, c.clean, c.corrupt, {.threshold = 0.01});
  };
  const auto one = run(1), two = run(2);
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
  CHECK(one.edges == sorted(c.truth));
  CHECK(one.edges == two.edges);
  // The same circuit; its metric agrees to float rounding (products block by thread count).
  CHECK(one.value == doctest::Approx(two.value).epsilon(1e-5).scale(1e-3));
  CHECK_THROWS_WITH_AS(mint::acdc(c.circuit.model, c.graph, c.clean, c.corrupt, {.threshold = -1}),
                       doctest::Contains("threshold"), mint::argument_error);
}

TEST_CASE("a circuit as Graphviz: each edge once, into its receiver's node, labelled with its input and score") {
  auto c = make_case(mint::toy::induction_circuit(12, 24));
  std::vector<double> scores(c.graph.edges().size(), 0.0);
  scores[std::size_t(c.graph.edge("L0H0", "L1H0.k"))] = 2.5;
  const std::vector<int> circuit{c.graph.edge("L0H0", "L1H0.k"), c.graph.edge("L1H0", "resid_final")};
  const std::string dot = mint::circuit_dot(c.graph, circuit, scores, "induction");
  CHECK(dot.starts_with("digraph \"induction\" {"));
  CHECK(dot.find("\"L0H0\" -> \"L1H0\" [penwidth=5.00, label=\"k 2.5\"];") != std::string::npos);
  CHECK(dot.find("\"L1H0\" -> \"resid_final\"") != std::string::npos);
  CHECK(std::count(dot.begin(), dot.end(), '\n') == 6);  // header, rankdir, node style, 2 edges, closing brace
  const std::vector<int> bad{int(c.graph.edges().size())};
  CHECK_THROWS_AS(mint::circuit_dot(c.graph, bad), mint::argument_error);
  CHECK_THROWS_AS(mint::circuit_dot(c.graph, circuit, std::vector<double>{1.0}), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::faithfulness_curve(c.circuit.model, c.graph, c.clean, c.corrupt, c.loss, scores,
                                                {.sizes = {mint::index(scores.size()) + 1}}),
                       doctest::Contains("sizes"), mint::argument_error);
}

TEST_CASE("edges removed by an ablation: zero ablation sees the positional edges that patching cannot") {
  auto c = make_case(mint::toy::induction_circuit(12, 24));
  auto& model = c.circuit.model;
  // The corrupt input as a token batch or as ablation::run: the same scores.
  const auto by_tokens = mint::exact_edge_scores(model, c.graph, c.clean, c.corrupt, c.loss);
  const auto by_run = mint::exact_edge_scores(model, c.graph, c.clean, mint::ablation::run(c.corrupt), c.loss);
  CHECK(by_run.values == by_tokens.values);
  CHECK(by_run.corrupt_value == by_tokens.corrupt_value);
  // Zero ablation: ACDC keeps the circuit and its positional edges, and nothing else.
  const mint::kl_divergence kl(model.forward(c.clean), c.clean, true);
  const auto found = mint::acdc(model, c.graph, c.clean, mint::ablation::zero(), kl, {.threshold = 0.01});
  std::vector<int> both = c.truth;
  both.insert(both.end(), c.positional.begin(), c.positional.end());
  CHECK(found.edges == sorted(both));
  CHECK(found.cost.forwards == mint::index(c.graph.edges().size()) + 1);  // the clean run, then one per edge
  // Exact scores under zero ablation rank both kinds first; the all-removed value is one more forward.
  const auto zero = mint::exact_edge_scores(model, c.graph, c.clean, mint::ablation::zero(), c.loss);
  CHECK(mint::roc_auc(zero.values, both) == doctest::Approx(1.0));
  CHECK(zero.corrupt_value > zero.clean_value + 1.0);  // the task's loss with every edge gone
  // EAP against an ablation: the receivers' sums are still attribution patching's at the input.
  const auto eap = mint::eap_scores(model, c.graph, c.clean, mint::ablation::zero(), c.loss);
  CHECK(std::isnan(eap.corrupt_value));
  CHECK(eap.cost.forwards == 1);
  CHECK(mint::roc_auc(eap.values, both) > 0.9);
  CHECK_THROWS_WITH_AS(mint::acdc(model, c.graph, c.clean, mint::ablation::resample(c.corrupt, 2), {.threshold = 0.01}),
                       doctest::Contains("draw"), mint::argument_error);
}
