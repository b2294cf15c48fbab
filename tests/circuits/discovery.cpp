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

// A known circuit with a clean and a corrupt batch (resampled inputs) and a task loss.
struct discovery_case {
  mint::toy::known_circuit circuit;
  mint::edge_graph graph;
  mint::token_batch clean, corrupt;
  mint::target_cross_entropy loss;
  std::vector<int> truth, positional;
};

discovery_case previous_token_case() {
  discovery_case c{mint::toy::previous_token_copy(8, 12), {}, {}, {}, {}, {}, {}};
  c.graph = c.circuit.model.graph();
  mint::rng r(7);
  c.clean = mint::token_batch(6, 10);
  c.corrupt = mint::token_batch(6, 10);
  for (mint::index b = 0; b < 6; ++b)
    for (mint::index t = 0; t < 10; ++t) {
      c.clean(b, t) = mint::token(r.below(8));
      c.corrupt(b, t) = mint::token(r.below(8));
    }
  for (mint::index b = 0; b < 6; ++b)
    for (mint::index t = 1; t < 10; ++t) {
      c.loss.rows.push_back(b), c.loss.positions.push_back(t), c.loss.targets.push_back(c.clean(b, t - 1));
    }
  c.truth = mint::edge_indices(c.graph, c.circuit.edges);
  c.positional = mint::edge_indices(c.graph, c.circuit.positional_edges);
  return c;
}

discovery_case induction_case() {
  discovery_case c{mint::toy::induction_circuit(12, 24), {}, {}, {}, {}, {}, {}};
  c.graph = c.circuit.model.graph();
  const mint::toy::induction_task task{.vocab = 12, .length = 6, .sequence = 24};
  mint::rng r(4);
  const auto clean = task.sample(r, 6);
  c.clean = clean.tokens;
  c.corrupt = task.sample(r, 6).tokens;
  c.loss = {clean.rows, clean.positions, clean.targets};
  c.truth = mint::edge_indices(c.graph, c.circuit.edges);
  c.positional = mint::edge_indices(c.graph, c.circuit.positional_edges);
  return c;
}

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
  for (auto make : {&previous_token_case, &induction_case}) {
    auto c = make();
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
    CHECK(found.edges == sorted(c.truth));
    CHECK(found.cost.forwards == mint::index(c.graph.edges().size()) + 2);  // 2 cached runs, then one per edge
    // A sweep's ROC AUC.
    const auto sweep = mint::acdc_sweep(model, c.graph, c.clean, c.corrupt,
                                        mint::kl_divergence(model.forward(c.clean), c.clean, true), mint::log_thresholds(9, -4, 0));
    std::vector<std::vector<int>> circuits;
    for (const auto& s : sweep) circuits.push_back(s.edges);
    CHECK(mint::circuits_roc_auc(circuits, c.graph.edges().size(), c.truth, c.positional) >= 0.95);

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
  CHECK(one.value == two.value);
  CHECK_THROWS_WITH_AS(mint::acdc(c.circuit.model, c.graph, c.clean, c.corrupt, {.threshold = -1}),
                       doctest::Contains("threshold"), mint::argument_error);
}
