// Explaining attention heads of a model that learned induction. A 2-layer attention-only toy
// transformer is trained on the induction task; then, as TransformerLens users do: head scores
// on a repeated random sequence (previous-token, duplicate-token, induction, first-token) as a
// table and SVG heatmaps; the layer norms folded into the weights and the writing weights
// centred (logits unchanged, checked); each head's OV copying score; and the K-composition
// scores that connect a previous-token head in layer 0 to the induction head in layer 1.
//   usage: explain_heads [output directory, default "explain_out"]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <mint/explain.hpp>
#include <mint/similarity/plot.hpp>
#include <mint/toy/orthogonalize.hpp>
#include <mint/toy/train.hpp>

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "explain_out";
  std::filesystem::create_directories(out);

  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2, .heads = 4,
                                       .d_head = 16});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 400, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  trainer.run();
  mint::rng held_out(99);
  const auto test = task.sample(held_out, 256);
  std::printf("trained induction model: accuracy %.1f%% on held-out sequences\n\n", 100 * mint::toy::evaluate(model, test).accuracy);

  // Head scores on BOS + a random sequence of 10 repeated once.
  const auto tokens = mint::repeated_random_tokens(16, 10, task.vocab, 7);
  const auto scores = mint::head_scores(model, tokens);
  std::printf("head scores (fraction of attention on the pattern), 16 repeated random sequences:\n  %-6s", "head");
  for (const auto p : scores.patterns) std::printf(" %16s", mint::to_string(p));
  std::printf("\n");
  for (int l = 0; l < scores.layers; ++l)
    for (int h = 0; h < scores.heads; ++h) {
      std::printf("  L%dH%d  ", l, h);
      for (std::size_t p = 0; p < scores.patterns.size(); ++p) std::printf(" %16.3f", scores.scores[p](l, h));
      std::printf("\n");
    }
  for (const auto p : {mint::head_pattern::previous_token, mint::head_pattern::induction}) {
    const auto& s = scores[p];
    mint::matrixd m(scores.layers, scores.heads);
    for (int l = 0; l < scores.layers; ++l)
      for (int h = 0; h < scores.heads; ++h) m(l, h) = s(l, h);
    mint::write_heatmap_svg(out / (std::string(mint::to_string(p)) + "_scores.svg"), m,
                            {.title = std::string(mint::to_string(p)) + " score", .row_title = "layer", .column_title = "head",
                             .minimum = 0, .maximum = 1});
  }

  // Fold the layer norms and centre the writing weights: the analysis form, the same logits.
  mint::hook_set<float> none;
  const auto before = mint::array<float>::copy_of(model.forward(test.tokens, none));
  model.fold_layer_norm();
  mint::toy::center_writes(model);
  const auto after = model.forward(test.tokens, none);
  double worst = 0, largest = 0;
  for (mint::index b = 0; b < after.extent(0); ++b)
    for (mint::index t = 0; t < after.extent(1); ++t)
      for (mint::index j = 0; j < after.extent(2); ++j) {
        worst = std::max(worst, std::abs(double(after(b, t, j)) - double(before(b, t, j))));
        largest = std::max(largest, std::abs(double(before(b, t, j))));
      }
  std::printf("\nfolded layer norms and centred writing weights: largest logit change %.2e (largest |logit| %.1f)\n", worst,
              largest);

  // OV copying scores: does a head copy the token it attends to into the logits?
  std::printf("\nOV copying scores (sum of eigenvalues / sum of their magnitudes):\n");
  for (int l = 0; l < 2; ++l) {
    std::printf("  layer %d:", l);
    for (int h = 0; h < 4; ++h) std::printf("  H%d %6.3f", h, mint::copying_score(mint::ov_circuit(model, l, h)));
    std::printf("\n");
  }

  // Composition: which layer-0 head feeds which layer-1 head, and through what.
  const auto c = mint::composition_scores(model, 2);
  std::printf("\ncomposition scores, layer-0 sender -> layer-1 receiver (Q / K / V):\n  %-6s", "");
  for (int h2 = 0; h2 < 4; ++h2) std::printf("  %20s", ("L1H" + std::to_string(h2)).c_str());
  std::printf("\n");
  for (int h1 = 0; h1 < 4; ++h1) {
    std::printf("  L0H%d  ", h1);
    for (int h2 = 0; h2 < 4; ++h2) std::printf("  %6.3f %6.3f %6.3f", c.q(0, h1, 1, h2), c.k(0, h1, 1, h2), c.v(0, h1, 1, h2));
    std::printf("\n");
  }
  int prev = 0, ind = 0;
  for (int h = 1; h < 4; ++h) {
    if (scores[mint::head_pattern::previous_token](0, h) > scores[mint::head_pattern::previous_token](0, prev)) prev = h;
    if (scores[mint::head_pattern::induction](1, h) > scores[mint::head_pattern::induction](1, ind)) ind = h;
  }
  std::printf("\nprevious-token head L0H%d, induction head L1H%d: K-composition %.3f (the largest from L0H%d: %s)\n", prev, ind,
              c.k(0, prev, 1, ind), prev, [&] {
                for (int h2 = 0; h2 < 4; ++h2)
                  if (c.k(0, prev, 1, h2) > c.k(0, prev, 1, ind)) return "no";
                return "yes";
              }());
  std::printf("wrote %s and %s\n", (out / "previous_token_scores.svg").string().c_str(), (out / "induction_scores.svg").string().c_str());
  return 0;
}
