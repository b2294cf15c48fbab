// Comparing the layers of two toy transformers trained from different seeds, and diffing one of
// them across its own training.
//
// 1. Train two 3-layer attention-only transformers (different initial weights, different batches)
//    on the induction task, saving model A's activations on a fixed probe set as it learns.
// 2. For each measure, compare every layer of A with every layer of B on the probe set and count
//    how often a layer's most similar layer is its counterpart (Kornblith et al.'s sanity check).
//    Print linear CKA's layer x layer matrix; write it as CSV and an SVG heatmap.
// 3. Stage-wise diffing: the similarity of each layer of A at each checkpoint to the same layer of
//    the final A, as a table and an SVG line plot.
//
// Usage: layer_similarity [output folder]   (default: ./layer_similarity_out)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <mint/mint.hpp>
#include <mint/toy.hpp>

namespace {

const mint::toy::induction_task task{.vocab = 16, .length = 8};

constexpr int layers = 3;

mint::toy::transformer<float> make_model(std::uint64_t seed) {
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 32, .layers = layers,
                                       .heads = 2, .d_head = 16});
  model.initialize(seed);
  return model;
}

// The only runtime-specific part: per-layer activations on the probe set, one [examples, d_model]
// matrix per layer (the embeddings, then each block's residual stream), every valid position an example.
std::vector<mint::matrixf> layer_activations(mint::toy::transformer<float>& model, const mint::token_batch& probe) {
  std::vector<std::string> sites{"blocks.0.hook_resid_pre"};
  for (int l = 0; l < layers; ++l) sites.push_back("blocks." + std::to_string(l) + ".hook_resid_post");
  const auto run = mint::run_with_cache(model, probe, sites, /*stop_early=*/true);
  std::vector<mint::matrixf> layers;
  for (const auto& site : sites) layers.push_back(run.cache.rows(site));
  return layers;
}

const std::vector<std::string> layer_names{"embed", "block 0", "block 1", "block 2"};

void print_matrix(const char* title, const mint::matrixd& m) {
  std::printf("\n%s\n%-9s", title, "");
  for (const auto& name : layer_names) std::printf("%9s", name.c_str());
  std::printf("\n");
  for (mint::index i = 0; i < m.rows(); ++i) {
    std::printf("%-9s", layer_names[std::size_t(i)].c_str());
    for (mint::index j = 0; j < m.cols(); ++j) std::printf("%9.3f", m(i, j));
    std::printf("\n");
  }
}

// Runs one measure over both models' layers: the matrix and the sanity-check accuracy.
template <mint::similarity_measure M>
mint::matrixd compare_models(const std::vector<mint::matrixf>& a, const std::vector<mint::matrixf>& b, const M& measure) {
  const auto start = std::chrono::steady_clock::now();
  const mint::matrixd s = mint::similarity_matrix(a, b, measure);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  %-34s %5.0f%%   diagonal mean %6.3f   %6.0f ms\n", measure.name().c_str(),
              100.0 * mint::matching_accuracy(s, M::is_distance), s.diagonal().mean(), seconds * 1e3);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "layer_similarity_out";
  std::filesystem::create_directories(out);
  // Every product here is small (a 32-wide model, 1632 examples): one thread beats several, whose
  // hand-offs cost more than they save, and far more on a busy machine.
  Eigen::setNbThreads(1);

  // A fixed probe set: 96 sequences of 17 tokens = 1632 examples per layer.
  mint::rng probe_rng(99);
  const mint::token_batch probe = task.sample(probe_rng, 96).tokens;

  // Train A, saving its activations at these steps, and B.
  const std::vector<std::int64_t> saved{0, 25, 50, 75, 100, 150, 200, 300, 400};
  auto model_a = make_model(1), model_b = make_model(2);
  const mint::toy::train_options options{.steps = saved.back(), .batch = 32, .optimizer = {.lr = 3e-3, .warmup = 30}, .seed = 10};
  mint::toy::train_options options_b = options;
  options_b.seed = 20;
  mint::toy::trainer train_a(model_a, task, options), train_b(model_b, task, options_b);

  std::vector<std::vector<mint::matrixf>> checkpoints;
  std::vector<double> checkpoint_steps, checkpoint_accuracy;
  mint::rng held_out_rng(12345);
  const auto held_out = task.sample(held_out_rng, 256);
  std::printf("Training two %d-layer attention-only transformers on induction (vocab %d, length %d), %lld steps each\n",
              layers, task.vocab, task.length, static_cast<long long>(saved.back()));
  for (std::int64_t step = 0; step <= saved.back(); ++step) {
    if (std::find(saved.begin(), saved.end(), step) != saved.end()) {
      checkpoints.push_back(layer_activations(model_a, probe));
      checkpoint_steps.push_back(double(step));
      checkpoint_accuracy.push_back(mint::toy::evaluate(model_a, held_out).accuracy);
    }
    if (step < saved.back()) {
      train_a.step();
      train_b.step();
    }
  }
  std::printf("  held-out accuracy: A %.1f%%, B %.1f%% (chance %.1f%%)\n", 100 * checkpoint_accuracy.back(),
              100 * mint::toy::evaluate(model_b, held_out).accuracy, 100.0 / (task.vocab - 1));

  const std::vector<mint::matrixf>& a = checkpoints.back();
  const std::vector<mint::matrixf> b = layer_activations(model_b, probe);
  std::printf("\n%td examples per layer (every position of the probe set), d_model 32\n", a[0].rows());

  std::printf("\nA against B: how often a layer of A is most similar to its own counterpart in B\n");
  std::printf("  %-34s %6s   %-20s %9s\n", "measure", "match", "", "time");
  const mint::matrixd cka = compare_models(a, b, mint::linear_cka_options{});
  compare_models(a, b, mint::linear_cka_options{.estimator = mint::hsic_estimator::unbiased});
  compare_models(a, b, mint::kernel_cka_options{.bandwidth = 0.8});
  compare_models(a, b, mint::cca_options{.epsilon = 1e-4});
  compare_models(a, b, mint::svcca_options{});
  compare_models(a, b, mint::pwcca_options{.epsilon = 1e-4});
  compare_models(a, b, mint::linear_regression_options{});
  compare_models(a, b, mint::procrustes_options{});
  compare_models(a, b, mint::shape_metric_options{.alpha = 0.5});
  compare_models(a, b, mint::rsa_options{});
  compare_models(a, b, mint::mutual_knn_options{.k = 10});

  print_matrix("Linear CKA, model A (rows) against model B (columns)", cka);
  // Why the blocks are hard to tell apart: within one model, each residual-stream layer is the
  // previous one plus a small write, so neighbours are nearly the same representation.
  print_matrix("Linear CKA, model A against itself", mint::similarity_matrix(a, mint::linear_cka_options{}));
  mint::write_csv(out / "cka_a_vs_b.csv", cka, layer_names, layer_names);
  mint::write_heatmap_svg(out / "cka_a_vs_b.svg", cka,
                          {.title = "Linear CKA: model A vs model B (different seeds)", .row_title = "layer of model A",
                           .column_title = "layer of model B", .row_labels = layer_names, .column_labels = layer_names,
                           .minimum = 0.0, .maximum = 1.0});

  // Stage-wise diffing of A against its final self.
  const mint::matrixd diff = mint::stagewise_similarity(checkpoints, a, mint::linear_cka_options{});
  std::printf("\nStage-wise diffing: linear CKA of each layer of A at each checkpoint with the final A\n%-6s %9s", "step", "accuracy");
  for (const auto& name : layer_names) std::printf("%9s", name.c_str());
  std::printf("\n");
  for (mint::index c = 0; c < diff.rows(); ++c) {
    std::printf("%-6.0f %8.1f%%", checkpoint_steps[std::size_t(c)], 100 * checkpoint_accuracy[std::size_t(c)]);
    for (mint::index l = 0; l < diff.cols(); ++l) std::printf("%9.3f", diff(c, l));
    std::printf("\n");
  }
  std::vector<std::string> checkpoint_labels;
  for (const double s : checkpoint_steps) checkpoint_labels.push_back("step " + std::to_string(int(s)));
  mint::write_csv(out / "stagewise_cka.csv", diff, checkpoint_labels, layer_names);
  mint::write_line_plot_svg(out / "stagewise_cka.svg", diff,
                            {.title = "Model A during training: linear CKA with its final self",
                             .x_title = "training step", .y_title = "linear CKA with the final model",
                             .x = checkpoint_steps, .series_labels = layer_names, .minimum = 0.0, .maximum = 1.0});
  std::printf("\nWrote %s: cka_a_vs_b.csv/.svg, stagewise_cka.csv/.svg\n", out.string().c_str());
}
