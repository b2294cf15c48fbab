// mint's side of benchmarks/peers/attribution_torch.py. Builds a toy transformer, saves it
// (mint::toy::save: safetensors with TransformerLens names) with a clean and a corrupt token
// batch and the logit-difference targets as .npy, runs integrated gradients at hook_embed
// (Gauss-Legendre, zero baseline) and writes its values, then prints one JSON line and serves
// timing requests on stdin, one a line, so the peer script can interleave mint's repetitions
// with PyTorch's:
//   ig N | patch N | forward N   ->  seconds per call over N calls, on one line
//   quit
// Usage: attribution_mint FOLDER VOCAB CONTEXT D_MODEL LAYERS HEADS D_HEAD D_MLP BATCH STEPS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <mint/io/npy.hpp>
#include <mint/mint.hpp>
#include <mint/toy.hpp>

#include "driver.hpp"

namespace {

using namespace peer_driver;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 11) {
    std::fprintf(stderr, "usage: %s FOLDER VOCAB CONTEXT D_MODEL LAYERS HEADS D_HEAD D_MLP BATCH STEPS\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    auto arg = [&](int i) { return std::atoi(argv[i]); };
    const mint::toy::transformer_config config{.vocab = arg(2), .context = arg(3), .d_model = arg(4), .layers = arg(5),
                                               .heads = arg(6), .d_head = arg(7), .d_mlp = arg(8)};
    const mint::index batch = arg(9), positions = config.context;
    const int steps = arg(10);

    mint::toy::transformer<float> model(config);
    model.initialize(1);
    mint::toy::save(model, (dir / "model.safetensors").string());

    mint::rng r(2);
    mint::token_batch clean(batch, positions), corrupt(batch, positions);
    mint::logit_difference metric;
    for (mint::index b = 0; b < batch; ++b) {
      for (mint::index p = 0; p < positions; ++p) {
        clean(b, p) = mint::token(r.below(std::uint64_t(config.vocab)));
        corrupt(b, p) = mint::token(r.below(std::uint64_t(config.vocab)));
      }
      const auto correct = mint::token(r.below(std::uint64_t(config.vocab)));
      const auto wrong = mint::token((correct + 1 + r.below(std::uint64_t(config.vocab - 1))) % config.vocab);
      metric.correct.push_back(correct);
      metric.wrong.push_back(wrong);
    }
    write_tokens((dir / "tokens.npy").string(), clean);
    write_tokens((dir / "corrupt.npy").string(), corrupt);
    write_ids((dir / "correct.npy").string(), metric.correct);
    write_ids((dir / "wrong.npy").string(), metric.wrong);

    const mint::ig_options options{.steps = steps};
    const auto ig = mint::integrated_gradients(model, clean, metric, options);
    mint::write_npy((dir / "ig.npy").string(), mint::array_ref(mint::dtype::float32,
                                                               {ig.values.extent(0), ig.values.extent(1), ig.values.extent(2)},
                                                               ig.values.data()));
    const auto patch = mint::attribution_patching(model, clean, corrupt, metric);
    std::printf("{\"site\": \"%s\", \"value\": %.17g, \"baseline_value\": %.17g, \"delta\": %.17g, \"steps\": %d, "
                "\"threads\": %d, \"patched_sites\": %zu, \"clean_value\": %.17g, \"corrupt_value\": %.17g}\n",
                ig.site.c_str(), ig.value, ig.baseline_value, ig.delta, ig.steps, mint::thread_count(),
                patch.sites.size(), patch.clean_value, patch.corrupt_value);
    std::fflush(stdout);

    serve("attribution_mint",
          {{"ig", [&] { return mint::integrated_gradients(model, clean, metric, options).delta; }},
           {"patch", [&] { return mint::attribution_patching(model, clean, corrupt, metric).clean_value; }},
           {"forward", [&] { return double(model.forward(clean).data()[0]); }}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
