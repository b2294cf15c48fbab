// Hand-built circuits compute what they claim, and their true edges are exactly
// the edges whose patching changes the output.
#include "mint/toy/circuits.hpp"

#include <doctest/doctest.h>

#include <set>

#include "mint/core/eigen.hpp"
#include "mint/patching/edge_patching.hpp"
#include "mint/toy/tasks.hpp"

namespace {

// Largest change of any logit when `edges` are patched from corrupt into clean.
float effect(mint::toy::known_circuit& c, const mint::edge_graph& g, const mint::token_batch& clean,
             const mint::token_batch& corrupt, const std::vector<int>& edges) {
  const mint::matrixf base = mint::to_matrix(c.model.forward(clean));
  const auto patched = mint::patch_edges(c.model, g, clean, corrupt, edges);
  return (mint::to_matrix(patched) - base).cwiseAbs().maxCoeff();
}

// Predictions with the previous-token head's query input zeroed (its positional read).
float zero_ablation_effect(mint::toy::known_circuit& c, const mint::token_batch& clean) {
  const mint::matrixf base = mint::to_matrix(c.model.forward(clean));
  mint::hook_set<float> hooks(c.model.sites());
  hooks.add("blocks.0.hook_q_input", [](mint::hook_call<float>& call) { mint::fill(call.activation, 0.0f); },
            {.needs = mint::access::write, .only = {.head_begin = 0, .head_end = 1}});
  return (mint::to_matrix(c.model.forward(clean, hooks)) - base).cwiseAbs().maxCoeff();
}

void check_true_edges(mint::toy::known_circuit& c, const mint::token_batch& clean, const mint::token_batch& corrupt) {
  const auto g = c.model.graph();
  std::set<int> truth, positional;
  for (const auto& [s, r] : c.edges) truth.insert(g.edge(s, r));
  for (const auto& [s, r] : c.positional_edges) positional.insert(g.edge(s, r));
  // Positional edges: invisible to patching between inputs of one length, essential all the same.
  for (int e : positional) {
    INFO("positional edge " << g.edge_name(e));
    CHECK(effect(c, g, clean, corrupt, {e}) < 1e-4f);
  }
  CHECK(zero_ablation_effect(c, clean) > 1.0f);
  std::vector<int> others;
  for (int e = 0; e < int(g.edges().size()); ++e)
    if (!truth.count(e) && !positional.count(e)) others.push_back(e);
  // Outside the circuit nothing matters, even all together (float32 sums: 1e-4).
  CHECK(effect(c, g, clean, corrupt, others) < 1e-4f);
  // Each circuit edge alone moves the logits by order one.
  for (int e : truth) {
    INFO("edge " << g.edge_name(e));
    CHECK(effect(c, g, clean, corrupt, {e}) > 1.0f);
  }
}

}  // namespace

TEST_CASE("previous-token copy predicts the previous token, through its two edges") {
  auto c = mint::toy::previous_token_copy(8, 12);
  const auto clean = mint::token_batch::from_rows({{3, 1, 4, 1, 5, 2, 6, 5, 3, 5}});
  const auto corrupt = mint::token_batch::from_rows({{7, 6, 0, 2, 7, 7, 1, 0, 2, 6}});
  const auto logits = c.model.forward(clean);
  for (mint::index t = 1; t < 10; ++t) {
    mint::index best = 0;
    for (mint::index j = 1; j < 8; ++j)
      if (logits(0, t, j) > logits(0, t, best)) best = j;
    CHECK(best == clean(0, t - 1));
  }
  check_true_edges(c, clean, corrupt);
}

TEST_CASE("the induction circuit predicts repeated sequences, through its five edges") {
  auto c = mint::toy::induction_circuit(12, 24);
  const mint::toy::induction_task task{.vocab = 12, .length = 6, .sequence = 24};
  mint::rng r(4);
  const auto batch = task.sample(r, 8);
  const auto logits = c.model.forward(batch.tokens);
  int correct = 0;
  for (std::size_t i = 0; i < batch.targets.size(); ++i) {
    const auto row = logits.subview(batch.rows[i]).subview(batch.positions[i]);
    mint::index best = 0;
    for (mint::index j = 1; j < 12; ++j)
      if (row(j) > row(best)) best = j;
    correct += best == batch.targets[i];
  }
  CHECK(correct == int(batch.targets.size()));
  const auto corrupt = task.sample(r, 8);
  check_true_edges(c, batch.tokens, corrupt.tokens);
}

TEST_CASE("the MLP lookup, redundant copy and IOI-like circuits solve their tasks, through their edges alone") {
  for (auto make : {+[] { return mint::toy::mlp_lookup(8, 12); }, +[] { return mint::toy::redundant_copy(8, 12); },
                    +[] { return mint::toy::ioi_circuit(10); }}) {
    auto c = make();
    CAPTURE(c.description);
    mint::rng r(11);
    const auto batch = c.sample(r, 8);
    REQUIRE(!batch.targets.empty());
    const auto logits = c.model.forward(batch.tokens);
    int correct = 0;
    for (std::size_t i = 0; i < batch.targets.size(); ++i) {
      const auto row = logits.subview(batch.rows[i]).subview(batch.positions[i]);
      mint::index best = 0;
      for (mint::index j = 1; j < row.extent(0); ++j)
        if (row(j) > row(best)) best = j;
      correct += best == batch.targets[i];
    }
    CHECK(correct == int(batch.targets.size()));
    const auto corrupt = c.sample(r, 8);
    check_true_edges(c, batch.tokens, corrupt.tokens);
  }
}
