// The head x position activation-patching sweep both patching benchmarks time
// (benchmarks/patching.cpp and peers/patching_mint.cpp): a 4-layer, 8-head toy transformer
// (d_model 256, d_mlp 1024, layer norm), 16 clean prompts of 64 random tokens, the corrupt
// ones with positions 5, 30 and 50 changed, a logit difference per row at the last position,
// and every block's hook_z patched by position and head (2048 patches).
#pragma once

#include <string>
#include <vector>

#include <mint/patching.hpp>
#include <mint/toy.hpp>

namespace patching_bench {

using model_type = mint::toy::transformer<float>;

constexpr int vocab = 64, context = 64, layers = 4, heads = 8;
constexpr mint::index batch = 16;

struct sweep_setup {
  model_type model{{.vocab = vocab, .context = context, .d_model = 256, .layers = layers, .heads = heads, .d_head = 32,
                    .d_mlp = 1024}};
  mint::token_batch clean{batch, context}, corrupt{batch, context};
  mint::logit_difference metric;
  std::vector<std::string> sites;

  sweep_setup() {
    model.initialize(1);
    mint::rng r(2);
    for (mint::index b = 0; b < batch; ++b) {
      for (mint::index p = 0; p < context; ++p) clean(b, p) = mint::token(r.below(vocab));
      metric.correct.push_back(mint::token(r.below(vocab)));
      metric.wrong.push_back(mint::token(r.below(vocab)));
    }
    corrupt = clean;
    for (mint::index b = 0; b < batch; ++b)
      for (mint::index p : {5, 30, 50}) corrupt(b, p) = mint::token((clean(b, p) + 1) % vocab);
    for (int l = 0; l < layers; ++l) sites.push_back("blocks." + std::to_string(l) + ".attn.hook_z");
  }

  /// The sweep's options, `patches_per_forward` copies of the batch a forward.
  mint::activation_patching_options options(mint::index patches_per_forward = 8) const {
    return {.sites = sites, .by = {mint::axis::pos, mint::axis::head}, .max_batch = patches_per_forward * batch};
  }
};

/// The toy transformer seen as a plain runtime: no resuming, no branching (whole forwards).
struct plain_view {
  using scalar_type = float;
  model_type* m;
  const mint::site_table& sites() const { return m->sites(); }
  mint::tensor_view<const float> forward(const mint::token_batch& t, mint::hook_set<float>& h) { return m->forward(t, h); }
};
static_assert(mint::runtime<plain_view> && !mint::resumable_runtime<plain_view>);

}  // namespace patching_bench
