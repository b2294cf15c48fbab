// A TopK SAE on the residual stream of a toy transformer, end to end:
//  1. train a 2-layer attention-only transformer on the induction task (mint/toy);
//  2. cache blocks.1.hook_resid_pre on fresh sequences (the stream the induction head reads);
//  3. train a TopK SAE on those rows and measure L0, FVU and the task loss recovered when the
//     SAE's reconstruction is spliced back in;
//  4. write it as a SAELens folder, and write the feature-analysis JSON (top examples with their
//     context, densities, the tokens each latent's decoder direction raises and lowers).
// Usage: sae_on_toy_model [output folder]   (default: sae_on_toy_model_out)
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <mint/mint.hpp>
#include <mint/toy.hpp>

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "sae_on_toy_model_out";
  const std::string site = "blocks.1.hook_resid_pre";

  // 1. The model.
  const mint::toy::induction_task task{.vocab = 16, .length = 8};
  mint::toy::transformer<float> model(
      {.vocab = task.vocab, .context = task.context(), .d_model = 32, .layers = 2, .heads = 2, .d_head = 16});
  model.initialize(1);
  mint::toy::trainer train(model, task, {.steps = 400, .batch = 32, .optimizer = {.lr = 3e-3, .warmup = 30}, .seed = 2});
  for (int s = 0; s < 400; ++s) train.step();
  mint::rng held_out_rng(99);
  const auto held_out = task.sample(held_out_rng, 256);
  std::printf("toy transformer: 2 attention-only layers, d_model 32, induction accuracy %.1f%%\n",
              100 * mint::toy::evaluate(model, held_out).accuracy);

  // 2. Activations: every position of 1024 fresh sequences (24 positions each).
  mint::rng data_rng(7);
  const auto data = task.sample(data_rng, 1024);
  const mint::matrixf rows = mint::run_with_cache(model, data.tokens, {site}, /*stop_early=*/true).cache.rows(site);
  std::printf("cached %s: %td rows of %td values\n", site.c_str(), rows.rows(), rows.cols());

  // 3. A TopK SAE, 8x wider than the stream, k = 4.
  dict::basic_sae<float> sae({.d_in = 32, .d_sae = 256, .architecture = dict::sae_architecture::topk, .k = 4}, 3);
  auto source = dict::matrix_batches(rows, /*seed=*/4);
  dict::sae_trainer trainer(sae, {.batch_size = 1024, .steps = 1500, .adam = {.lr = 2e-3, .warmup = 50},
                                  .dead_after_tokens = 200'000, .seed = 5, .progress = mint::print_progress(std::cerr),
                                  .progress_interval = 2.0});
  trainer.train(source);
  const dict::sae_metrics m = dict::evaluate(sae, rows);
  // The task's own loss (cross-entropy at the positions the induction head must predict).
  const mint::target_cross_entropy task_loss{held_out.rows, held_out.positions, held_out.targets};
  const auto recovered = dict::loss_recovered(model, sae, site, held_out.tokens, task_loss);
  std::printf("TopK SAE (256 latents, k = 4): L0 %.2f, FVU %.4f, dead %.1f%%, dense %.1f%%\n", m.l0,
              m.reconstruction.fvu, 100 * m.dead_fraction, 100 * m.dense_fraction);
  std::printf("task loss: clean %.4f, SAE spliced in %.4f, site zeroed %.4f -> loss recovered %.3f\n", recovered.clean,
              recovered.spliced, recovered.zero_ablation, recovered.recovered());

  // 4. Files: SAELens's layout, and the feature analysis.
  dict::write_saelens(out / "sae", sae,
                      {{"metadata", {{"model_name", "mint-toy-induction"}, {"hook_name", site}, {"context_size", task.sequence}}}});
  dict::feature_collector features(sae.d_sae(), {.top_n = 10});
  const auto refs = dict::sequence_refs(0, data.tokens.batch(), data.tokens.positions());
  features.add(sae, rows, refs);
  const mint::matrixf W_U = mint::to_matrix<float>(model.parameters()["unembed.W_U"]);
  const auto effects = dict::logit_effects(sae.W_dec(), W_U, 5);
  std::vector<std::string> vocab;
  for (int t = 0; t < task.vocab; ++t) vocab.push_back(t == 0 ? "<bos>" : "t" + std::to_string(t));
  dict::write_feature_report((out / "features.json").string(), features,
                             {.tokens = dict::tokens_from(data.tokens.ids()), .vocab = vocab, .logit_effects = effects,
                              .metadata = {{"model", "mint-toy-induction"}, {"hook_name", site}},
                              .sae = dict::describe(sae), .skip_dead = true},
                             2);
  const auto loaded = dict::read_saelens<float>(out / "sae");
  std::printf("wrote %s (SAELens layout; reads back as %s, hook %s) and %s\n", (out / "sae").string().c_str(),
              std::string(dict::to_string(loaded.sae.architecture())).c_str(), loaded.hook_name().c_str(),
              (out / "features.json").string().c_str());
}
