// How much the verdict on a known circuit depends on the ablation chosen. On the hand-set
// induction circuit (mint/toy/circuits.hpp: L0H0 previous-token head, L1H0 induction head,
// L0H1 and L1H1 distractors), each head's output is replaced in turn by zero, by its mean over
// reference prompts, by a resample from a reference prompt (averaged over draws), and by the
// corrupted prompt's value, and the drop of the metric is printed per head and ablation.
#include <cstdio>
#include <string>
#include <vector>

#include <mint/attribution.hpp>
#include <mint/toy/circuits.hpp>

int main() {
  auto circuit = mint::toy::induction_circuit(/*vocab=*/12, /*context=*/24);
  auto& model = circuit.model;
  std::printf("%s\n\n", circuit.description.c_str());

  // Four prompts: BOS, a sequence, its repeat cut before the last token (answers 6, 2, 9, 4).
  const auto prompts = mint::token_batch::from_rows({{0, 3, 8, 5, 1, 6, 2, 3, 8, 5, 1},
                                                     {0, 7, 4, 9, 5, 2, 10, 7, 4, 9, 5},
                                                     {0, 1, 2, 3, 4, 9, 8, 1, 2, 3, 4},
                                                     {0, 10, 11, 6, 8, 4, 5, 10, 11, 6, 8}});
  const mint::logit_difference metric{{6, 2, 9, 4}, {9, 5, 2, 6}, {}};
  // The corrupt prompts: the first half replaced, so there is nothing to copy.
  auto corrupt = prompts;
  for (mint::index b = 0; b < 4; ++b)
    for (mint::index t = 1; t <= 5; ++t) corrupt(b, t) = mint::token((t * 5 + 3 * b + 4) % 11 + 1);
  // Reference prompts for the mean and the resample: random tokens, no repeats to exploit.
  mint::rng r(1);
  mint::token_batch reference(16, 11);
  for (mint::index b = 0; b < 16; ++b)
    for (mint::index t = 0; t < 11; ++t) reference(b, t) = t == 0 ? 0 : mint::token(1 + r.below(11));

  const std::vector<std::pair<std::string, mint::ablation>> ablations{
      {"zero", mint::ablation::zero()},
      {"mean", mint::ablation::mean(reference)},
      {"resample (8 draws)", mint::ablation::resample(reference, 8, 7)},
      {"corrupt run", mint::ablation::run(corrupt)}};
  std::printf("drop of logit(answer) - logit(other) when a head's output (hook_z) is replaced; clean metric %.2f\n\n",
              metric.value(model.forward(prompts), prompts));
  std::printf("  %-20s %8s %8s %8s %8s\n", "ablation", "L0H0", "L0H1", "L1H0", "L1H1");
  for (const auto& [name, ablation] : ablations) {
    std::vector<double> drops;
    for (const char* site : {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"})
      for (const auto& e : mint::feature_ablation(model, prompts, metric, {.sites = {site}, .per_head = true, .baseline = ablation}))
        drops.push_back(e.effect);
    std::printf("  %-20s %8.2f %8.2f %8.2f %8.2f\n", name.c_str(), drops[0], drops[1], drops[2], drops[3]);
  }
  return 0;
}
