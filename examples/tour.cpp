// A tour of mint on its reference runtime, in a few seconds:
//   1. any tensor type enters mint as a view (Eigen and xtensor here);
//   2. a toy transformer learns the induction task;
//   3. the activation cache finds the induction heads by their attention patterns;
//   4. ablating those heads with a hook breaks the task; ablating the others does not.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include <mint/mint.hpp>
#include <mint/toy.hpp>

namespace {

void describe(const char* name, const mint::tensor_view<const float>& v) {
  std::printf("  %-20s extents %-12s strides %s\n", name, mint::shape_string(v.extents()).c_str(),
              mint::shape_string(v.strides()).c_str());
}

// Mean attention from each scored position to the position after the earlier copy of its token.
double induction_score(const mint::tensor_view<const float>& pattern, int head, const mint::toy::labelled_batch& batch) {
  double sum = 0;
  for (std::size_t i = 0; i < batch.targets.size(); ++i) {
    const mint::index b = batch.rows[i], q = batch.positions[i];
    for (mint::index j = 1; j < q; ++j)
      if (batch.tokens(b, j - 1) == batch.tokens(b, q)) sum += pattern(b, head, q, j);
  }
  return sum / double(batch.targets.size());
}

}  // namespace

int main() {
  std::printf("1. Views: the same data from Eigen (column-major) and xtensor (row-major)\n");
  Eigen::MatrixXf eigen_data = Eigen::MatrixXf::Random(4, 3);
  xt::xarray<float> xt_data = xt::zeros<float>({4, 3});
  mint::copy(eigen_data, xt_data);
  describe("Eigen::MatrixXf", mint::view(std::as_const(eigen_data)));
  describe("xt::xarray<float>", mint::view(std::as_const(xt_data)));
  std::printf("  equal through mint::as_matrix: %s\n\n",
              mint::as_matrix(eigen_data) == mint::as_matrix(xt_data) ? "yes" : "no");

  std::printf("2. Training a 2-layer attention-only transformer on induction (a sequence repeated at a random distance)\n");
  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2,
                                       .heads = 4, .d_head = 16});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 400, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  const auto report = trainer.run(mint::print_progress(std::cout));
  mint::rng held_out(2026);
  const auto test = task.sample(held_out, 256);
  const auto trained = mint::toy::evaluate(model, test);
  std::printf("  held-out accuracy %.1f%% (chance %.1f%%), %.0f tokens/s\n\n", 100 * trained.accuracy,
              100.0 / (task.vocab - 1), report.tokens_per_second);

  std::printf("3. Caching layer 1's attention pattern to find the induction heads\n");
  auto run = mint::run_with_cache(model, test.tokens, {"blocks.1.attn.hook_pattern"}, /*stop_early=*/true);
  const auto pattern = run.cache["blocks.1.attn.hook_pattern"];
  std::vector<int> induction_heads, other_heads;
  for (int h = 0; h < 4; ++h) {
    const double score = induction_score(pattern, h, test);
    std::printf("  L1H%d induction score %.3f\n", h, score);
    (score > 0.5 ? induction_heads : other_heads).push_back(h);
  }

  std::printf("\n4. Zero-ablating heads' outputs with a hook\n");
  for (const auto& heads : {induction_heads, other_heads}) {
    mint::hook_set<float> ablate(model.sites());
    std::string names;
    for (int h : heads) {
      ablate.add("blocks.1.attn.hook_z", [](mint::hook_call<float>& c) { mint::fill(c.activation, 0.0f); },
                 {.needs = mint::access::write, .only = {.head_begin = h, .head_end = h + 1}});
      names += " L1H" + std::to_string(h);
    }
    const auto logits = model.forward(test.tokens, ablate);
    std::printf("  without%s: accuracy %.1f%%\n", names.empty() ? " nothing" : names.c_str(),
                100 * mint::toy::accuracy(logits, test));
  }
  return trained.accuracy > 0.95 ? 0 : 1;
}
