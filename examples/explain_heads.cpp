// Explaining attention heads of a model that learned induction. A 2-layer attention-only toy
// transformer is trained on the induction task; then, as TransformerLens users do: head scores
// on a repeated random sequence (previous-token, duplicate-token, induction, first-token) as a
// table and SVG heatmaps; the layer norms folded into the weights and the writing weights
// centred (logits unchanged, checked); each head's OV copying score; and the K-composition
// scores that connect a previous-token head in layer 0 to the induction head in layer 1; what
// freezing the final norm's scale costs direct logit attribution, per layer; and, on a second
// model with MLPs trained on the same task, the neurons' top examples, histograms and logit
// effects in the feature report's JSON and the feature browser.
//   usage: explain_heads [output directory, default "explain_out"]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <mint/dictionary/feature_browser.hpp>
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

  // Direct logit attribution freezes the final norm's scale; how far is each layer's share from
  // its exact direct effect? The direction: each row's first labelled target against the mean logit.
  std::vector<mint::token> correct(std::size_t(test.tokens.batch()), -1);
  for (std::size_t i = 0; i < test.rows.size(); ++i)
    if (correct[std::size_t(test.rows[i])] < 0) correct[std::size_t(test.rows[i])] = test.targets[i];
  const auto frozen = mint::frozen_scale_error(model, test.tokens, {.correct = correct});
  std::printf("\nfreezing the final norm's scale (DLA) against exact direct effects, %lld positions:\n",
              static_cast<long long>(frozen.positions));
  std::printf("  %-22s %12s %12s %12s %9s\n", "", "mean |share|", "mean |exact|", "mean |error|", "relative");
  for (const auto& row : frozen.layers)
    std::printf("  %-22s %12.4f %12.4f %12.4f %8.1f%%\n", row.name.c_str(), row.mean_abs_share, row.mean_abs_effect,
                row.mean_abs_error, 100 * row.relative_error);

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

  // Neurons: a model with MLPs, trained on the same task; its last layer's neurons read as SAE
  // latents are, through the feature collector, into the same JSON report.
  mint::toy::transformer<float> mlp_model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2,
                                           .heads = 4, .d_head = 16, .d_mlp = 128});
  mlp_model.initialize(2);
  mint::toy::trainer mlp_trainer(mlp_model, task, {.steps = 400, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 4});
  mlp_trainer.run();
  std::printf("\nmodel with MLPs: accuracy %.1f%% on held-out sequences\n", 100 * mint::toy::evaluate(mlp_model, test).accuracy);
  const int layer = 1;
  mint::dictionary::feature_collector neurons(mint::neuron_count(mlp_model, layer), {.top_n = 5, .histogram_bins = 16});
  mint::collect_neurons(mlp_model, test.tokens, layer, neurons);
  const auto effects = mint::neuron_logit_effects(mlp_model, layer, 3);
  std::vector<mint::index> order(std::size_t(neurons.latents()));
  for (mint::index i = 0; i < neurons.latents(); ++i) order[std::size_t(i)] = i;
  std::sort(order.begin(), order.end(), [&](mint::index a, mint::index b) {
    const auto ta = neurons.top(a), tb = neurons.top(b);
    return (ta.empty() ? 0.0 : ta[0].value) > (tb.empty() ? 0.0 : tb[0].value);
  });
  std::printf("layer %d neurons with the largest activations (top example: context, >activating token<):\n", layer);
  for (std::size_t k = 0; k < 3; ++k) {
    const mint::index i = order[k];
    const auto top = neurons.top(i);
    std::printf("  neuron %3lld  density %.3f  max %.2f  at", static_cast<long long>(i), neurons.density(i), top[0].value);
    const auto b = mint::index(top[0].where.example), t = mint::index(top[0].where.position);
    for (mint::index u = std::max<mint::index>(0, t - 4); u <= t; ++u)
      std::printf(u == t ? " >%d<" : " %d", int(test.tokens(b, u)));
    std::printf("  boosts");
    for (const auto& e : effects[std::size_t(i)].boosted) std::printf(" %lld", static_cast<long long>(e.token));
    std::printf("\n");
  }
  const mint::dictionary::feature_report_options report{
      .tokens = mint::batch_tokens(test.tokens), .logit_effects = effects,
      .metadata = {{"model", "toy induction, d_mlp 128"}, {"hook_name", "blocks.1.mlp.hook_post"}}};
  mint::dictionary::write_feature_report((out / "neurons.json").string(), neurons, report);
  // The same page SAE latents get, for neurons.
  mint::dictionary::write_feature_browser(mint::dictionary::feature_report(neurons, report), (out / "neurons.html").string(),
                                          {.unit_name = "neuron"});
  std::printf("wrote %s, %s, %s and %s\n", (out / "previous_token_scores.svg").string().c_str(),
              (out / "induction_scores.svg").string().c_str(), (out / "neurons.json").string().c_str(),
              (out / "neurons.html").string().c_str());
  return 0;
}
