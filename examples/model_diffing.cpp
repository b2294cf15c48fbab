// Model diffing with crosscoders.
// 1. Two synthetic "models" that share 24 features and each have 12 of their own: a crosscoder
//    trained on both finds the three sets (MMCS against the truth) and its relative decoder norms
//    sort its latents into A-only, B-only and shared.
// 2. A 2-layer attention-only transformer trained on the induction task, its last residual
//    stream cached at checkpoints: linear CKA with the final model and with the checkpoint
//    before, and a crosscoder per pair of neighbouring checkpoints counting the latents that are
//    new (exclusive to the later one). The stretch where induction appears shows in all three.
//   usage: model_diffing [output directory, default "model_diffing_out"]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <mint/diffing.hpp>
#include <mint/model.hpp>
#include <mint/dictionary/synthetic.hpp>
#include <mint/similarity.hpp>
#include <mint/toy/train.hpp>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void planted_features() {
  namespace dict = mint::dictionary;
  const dict::paired_synthetic_features truth({.shared = 24, .exclusive_a = 12, .exclusive_b = 12, .dims_a = 32, .dims_b = 32,
                                               .firing_probability = 0.05, .seed = 1});
  mint::matrixf xa, xb;
  mint::rng r(2);
  truth.sample(r, 20000, xa, xb);
  const auto start = std::chrono::steady_clock::now();
  mint::diffing::crosscoder coder({.d_in = 32, .models = 2, .d_sae = 96}, 3);
  coder.train(xa, xb, {.batch_size = 256, .steps = 3000, .adam = {.lr = 3e-3}, .loss = {.l1_coefficient = 1.0}, .seed = 4});
  std::printf("1. Planted features: 24 shared, 12 only in A, 12 only in B (32 dimensions each), 20000 rows\n");
  std::printf("   crosscoder of 96 latents trained in %.1f s\n", seconds_since(start));
  std::printf("   MMCS against the truth: shared %.4f (A) %.4f (B), only A %.4f, only B %.4f\n",
              dict::mmcs(coder.decoder(0), truth.shared_a()), dict::mmcs(coder.decoder(1), truth.shared_b()),
              dict::mmcs(coder.decoder(0), truth.exclusive_a()), dict::mmcs(coder.decoder(1), truth.exclusive_b()));
  const auto kinds = coder.exclusive_latents(0.1);
  std::printf("   latents by relative decoder norm r = |d_B| / (|d_A| + |d_B|): %zu A-only (r < 0.1), %zu B-only (r > 0.9), "
              "%zu shared, %zu dead\n   histogram of r over [0, 1] in 10 bins:",
              kinds.only_a.size(), kinds.only_b.size(), kinds.shared.size(), kinds.dead.size());
  for (auto n : coder.relative_norm_histogram(10).counts) std::printf(" %lld", static_cast<long long>(n));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "model_diffing_out";
  std::filesystem::create_directories(out);
  planted_features();

  // 2. Checkpoints of a training run.
  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2, .heads = 4,
                                       .d_head = 16});
  model.initialize(1);
  const std::int64_t steps = 400, every = 25;
  mint::toy::trainer trainer(model, task, {.steps = steps, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  mint::rng probe_rng(99), held_out_rng(12345);
  const mint::token_batch probe = task.sample(probe_rng, 64).tokens;  // 64 x 24 = 1536 rows
  const auto held_out = task.sample(held_out_rng, 256);
  const std::string site = "blocks.1.hook_resid_post";
  std::vector<mint::matrixf> residual;  // one [rows, d_model] per checkpoint
  std::vector<double> step_of, accuracy;
  for (std::int64_t step = 0;; ++step) {
    if (step % every == 0) {
      residual.push_back(mint::run_with_cache(model, probe, {site}, /*stop_early=*/true).cache.rows(site));
      step_of.push_back(double(step));
      accuracy.push_back(mint::toy::evaluate(model, held_out).accuracy);
    }
    if (step == steps) break;
    trainer.step();
  }
  std::printf("\n2. Training a 2-layer attention-only transformer on induction, %lld steps; %s cached every %lld steps\n",
              static_cast<long long>(steps), site.c_str(), static_cast<long long>(every));

  // Linear CKA with the final model (stagewise_similarity) and with the checkpoint before.
  std::vector<std::vector<mint::matrixf>> stages;
  for (const auto& x : residual) stages.push_back({x});
  const mint::matrixd to_final = mint::stagewise_similarity(stages, std::vector<mint::matrixf>{residual.back()}, mint::linear_cka_options{});

  // A crosscoder per pair of neighbouring checkpoints.
  mint::diffing::checkpoint_diff_options options;
  options.crosscoder = {.d_sae = 256};
  options.train = {.batch_size = 256, .steps = 600, .adam = {.lr = 3e-3}, .loss = {.l1_coefficient = 2.0}, .seed = 5};
  const auto start = std::chrono::steady_clock::now();
  const auto diffs = mint::diffing::checkpoint_crosscoders(residual, options);
  const double crosscoder_seconds = seconds_since(start);

  std::printf("   %-6s %9s %12s %12s %14s %14s\n", "step", "accuracy", "CKA(final)", "CKA(before)", "new latents", "lost latents");
  std::size_t sharpest = 1, least_similar = 1, most_new = 1;
  for (std::size_t c = 0; c < residual.size(); ++c) {
    std::printf("   %-6.0f %8.1f%% %12.3f", step_of[c], 100 * accuracy[c], to_final(mint::index(c), 0));
    if (c == 0) {
      std::printf("\n");
      continue;
    }
    const double before = mint::linear_cka(residual[c - 1], residual[c]);
    const auto& d = diffs[c - 1];
    std::printf(" %12.3f %14lld %14lld\n", before, static_cast<long long>(d.only_to), static_cast<long long>(d.only_from));
    if (accuracy[c] - accuracy[c - 1] > accuracy[sharpest] - accuracy[sharpest - 1]) sharpest = c;
    if (before < mint::linear_cka(residual[least_similar - 1], residual[least_similar])) least_similar = c;
    if (d.only_to > diffs[most_new - 1].only_to) most_new = c;
  }
  std::printf("   (crosscoders: %zu pairs, 256 latents each, %.1f s; new = exclusive to the later checkpoint, r > 0.9)\n",
              diffs.size(), crosscoder_seconds);
  std::printf("\n   largest accuracy gain: steps %.0f-%.0f; lowest CKA with the checkpoint before: %.0f-%.0f; most new latents: %.0f-%.0f\n",
              step_of[sharpest - 1], step_of[sharpest], step_of[least_similar - 1], step_of[least_similar],
              step_of[most_new - 1], step_of[most_new]);

  std::vector<std::string> labels;
  for (double s : step_of) labels.push_back("step " + std::to_string(int(s)));
  mint::write_csv(out / "checkpoint_cka.csv", to_final, labels, {"CKA with the final model"});
  std::printf("   wrote %s\n", (out / "checkpoint_cka.csv").string().c_str());
  return 0;
}
