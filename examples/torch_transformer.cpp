// A libtorch model as a mint runtime. torch_transformer.hpp writes a GPT-2-style transformer with
// libtorch's C++ modules and TransformerLens-style hook points; here it loads the weights of a toy
// transformer (from a file mint::toy::save wrote, or a fresh random one), runs next to the toy,
// and mint's algorithms run on both: the same logits, the same patching sweep, the same
// integrated gradients, and generation through its KV cache.
//
//   torch_transformer [model.safetensors]
#include <cstdio>
#include <filesystem>
#include <string>

#include "torch_transformer.hpp"

#include <mint/attribution.hpp>
#include <mint/model.hpp>
#include <mint/patching.hpp>
#include <mint/toy.hpp>

int main(int argc, char** argv) try {
  std::string path = argc > 1 ? argv[1] : "";
  if (path.empty()) {  // a random toy transformer, saved as a user's checkpoint would be
    mint::toy::transformer<float> fresh({.vocab = 16, .context = 12, .d_model = 32, .layers = 2, .heads = 4,
                                         .d_head = 8, .d_mlp = 64});
    fresh.initialize(1);
    path = (std::filesystem::temp_directory_path() / "torch_transformer_example.safetensors").string();
    mint::toy::save(fresh, path);
  }
  auto toy = mint::toy::load_transformer(path);
  torch_example::Transformer module(toy.config());
  module->load(path);
  // The module as a mint runtime: differentiable, and incremental through its KV cache.
  mint::torch_runtime<torch_example::TransformerImpl> model(module.ptr(),
                                                            {.vocab = toy.config().vocab, .context = toy.config().context});
  std::printf("libtorch model: %zu sites, the toy's names (%s ... %s)\n", model.sites().size(),
              model.sites()[0].name.c_str(), model.sites()[mint::site_id(model.sites().size() - 1)].name.c_str());

  const auto clean = mint::token_batch::from_rows({{1, 5, 9, 2, 7, 5, 9}, {3, 4, 2, 8, 6}});
  auto corrupt = clean;
  corrupt(0, 2) = 11, corrupt(1, 2) = 11;
  const auto a = mint::to_matrix(toy.forward(clean));
  const auto b = mint::to_matrix(model.forward(clean));
  std::printf("logits: largest difference from the toy %.2e (float32)\n", (a - b).cwiseAbs().maxCoeff());

  const mint::logit_difference metric{{9, 6}, {11, 11}, {}};
  const mint::activation_patching_options sweep{.sites = {"blocks.1.attn.hook_z"}, .by = {mint::axis::head}};
  const auto pt = mint::activation_patching(toy, clean, corrupt, metric, sweep);
  const auto pm = mint::activation_patching(model, clean, corrupt, metric, sweep);
  std::printf("patching blocks.1.attn.hook_z by head (toy | libtorch):");
  for (mint::index h = 0; h < 4; ++h)
    std::printf("  %.4f | %.4f", pt["blocks.1.attn.hook_z"].values(h), pm["blocks.1.attn.hook_z"].values(h));
  std::printf("\n");

  const auto it = mint::integrated_gradients(toy, clean, metric);
  const auto im = mint::integrated_gradients(model, clean, metric);
  std::printf("integrated gradients at hook_embed: completeness gap %.2e (toy) %.2e (libtorch); sum %.5f | %.5f\n",
              it.delta, im.delta, it.value - it.baseline_value + it.delta, im.value - im.baseline_value + im.delta);

  const auto prompts = mint::token_batch::from_rows({{1, 5, 9}});
  const auto generated = mint::generate(model, prompts, {.max_new_tokens = 6});
  const auto on_toy = mint::generate(toy, prompts, {.max_new_tokens = 6});
  std::printf("greedy generation through the libtorch KV cache:");
  bool same = true;
  for (mint::index t = 0; t < generated.tokens.positions(); ++t) {
    std::printf(" %d", generated.tokens(0, t));
    same = same && generated.tokens(0, t) == on_toy.tokens(0, t);
  }
  std::printf(" (%s the toy's)\n", same ? "the same as" : "NOT");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "torch_transformer: %s\n", e.what());
  return 1;
}
