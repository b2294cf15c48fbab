// Attribution on a model whose circuit is known: the hand-set induction circuit
// (mint/toy/circuits.hpp), where L0H0 is a previous-token head and L1H0 the induction
// head that copies the token after an earlier copy of the current one. On a repeated
// sequence it predicts the repeat; every method below should point at that mechanism:
// integrated gradients per token, direct logit attribution per head, the logit lens per
// layer, and attribution patching per head beside real activation patching.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <mint/attribution.hpp>
#include <mint/toy/circuits.hpp>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main() {
  auto circuit = mint::toy::induction_circuit(/*vocab=*/12, /*context=*/24);
  auto& model = circuit.model;
  std::printf("%s\n\n", circuit.description.c_str());

  // BOS, a random-looking sequence, then its repeat cut before the last token: the answer is 6.
  const std::vector<mint::token> prompt{0, 3, 8, 5, 1, 6, 2, 3, 8, 5, 1};
  const auto tokens = mint::token_batch::from_rows({prompt});
  // A corrupt prompt: the same second half after a different first half, so no repeat to copy.
  auto corrupt = tokens;
  for (mint::index t = 1; t <= 6; ++t) corrupt(0, t) = mint::token((t * 5 + 4) % 11 + 1);
  const mint::logit_difference metric{{6}, {9}};  // the answer against another token

  // Integrated gradients at the token embeddings, per position.
  auto start = std::chrono::steady_clock::now();
  const auto ig = mint::integrated_gradients(model, tokens, metric);
  const double ig_time = seconds_since(start);
  const auto per_token = mint::attribution_totals(ig);
  std::printf("integrated gradients (hook_embed, 50 Gauss-Legendre steps, %.1f ms): metric %.3f, baseline %.3f, delta %.2e\n",
              1e3 * ig_time, ig.value, ig.baseline_value, ig.delta);
  for (mint::index t = 0; t < tokens.positions(); ++t) std::printf("  %6d", tokens(0, t));
  std::printf("\n");
  for (mint::index t = 0; t < tokens.positions(); ++t) std::printf("  %6.2f", per_token(0, t));
  std::printf("\n\n");

  // Direct logit attribution per head at the last position.
  start = std::chrono::steady_clock::now();
  const auto dla = mint::direct_logit_attribution(model, tokens, {.correct = {6}, .wrong = {9}});
  const double dla_time = seconds_since(start);
  const mint::index last = tokens.positions() - 1;
  std::printf("direct logit attribution at the last position (%.2f ms), logit difference %.3f:\n", 1e3 * dla_time,
              dla.logit_difference(0, last));
  for (std::size_t i = 0; i < dla.parts.size(); ++i) std::printf("  %-10s %8.3f\n", dla.parts[i].c_str(), dla.values(mint::index(i), 0, last));
  std::printf("\n");

  // The logit lens: what each layer's residual would predict, and the answer's rank.
  start = std::chrono::steady_clock::now();
  const auto lens = mint::logit_lens(model, tokens, {.top_k = 1, .targets = {6}});
  const double lens_time = seconds_since(start);
  std::printf("logit lens at the last position (%.2f ms):\n", 1e3 * lens_time);
  for (const auto& layer : lens)
    std::printf("  %-26s top token %2d (p %.2f)   token 6: p %.3f, rank %ld\n", layer.site.c_str(), layer.top_tokens(0, last, 0),
                layer.top_probabilities(0, last, 0), layer.target_probabilities(0, last, 0), long(layer.target_ranks(0, last, 0)));
  std::printf("\n");

  // Attribution patching per head (all positions), beside real patching of each head's z.
  start = std::chrono::steady_clock::now();
  const auto estimate = mint::attribution_patching(model, tokens, corrupt, metric);
  const double ap_time = seconds_since(start);
  const auto corrupt_run = mint::run_with_cache(model, corrupt, {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"});
  start = std::chrono::steady_clock::now();
  std::vector<double> real;
  for (int layer = 0; layer < 2; ++layer)
    for (int head = 0; head < 2; ++head) {
      const std::string site = "blocks." + std::to_string(layer) + ".attn.hook_z";
      mint::hook_set<float> hooks(model.sites());
      hooks.add(site, [&](mint::hook_call<float>& c) {
        const auto from = corrupt_run.cache[site];
        for (mint::index t = 0; t < c.activation.extent(1); ++t)
          for (mint::index j = 0; j < c.activation.extent(3); ++j) c.activation(0, t, head, j) = from(0, t, head, j);
      }, {.needs = mint::access::write});
      real.push_back(metric.value(model.forward(tokens, hooks), tokens) - estimate.clean_value);
    }
  const double real_time = seconds_since(start);
  std::printf("patching each head's z from the corrupt prompt (metric: clean %.3f, corrupt %.3f)\n", estimate.clean_value,
              estimate.corrupt_value);
  std::printf("  head    attribution patching (%.2f ms, every site)   real patching (%.2f ms, 4 forwards)\n", 1e3 * ap_time,
              1e3 * real_time);
  for (int layer = 0, i = 0; layer < 2; ++layer)
    for (int head = 0; head < 2; ++head, ++i) {
      const auto& e = estimate["blocks." + std::to_string(layer) + ".attn.hook_z"];
      double sum = 0;
      for (mint::index t = 0; t < tokens.positions(); ++t) sum += e.values(0, t, head);
      std::printf("  L%dH%d   %10.3f %46.3f\n", layer, head, sum, real[std::size_t(i)]);
    }
  return 0;
}
