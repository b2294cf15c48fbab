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

namespace {

using clock_type = std::chrono::steady_clock;

template <class F>
double seconds_per_call(long n, F&& f) {
  const auto start = clock_type::now();
  for (long i = 0; i < n; ++i) f();
  return std::chrono::duration<double>(clock_type::now() - start).count() / double(n);
}

void write_tokens(const std::string& path, const mint::token_batch& t) {
  std::vector<mint::token> ids;
  for (mint::index b = 0; b < t.batch(); ++b)
    for (mint::index p = 0; p < t.positions(); ++p) ids.push_back(t(b, p));
  mint::write_npy(path, mint::array_ref(mint::dtype::int32, {t.batch(), t.positions()}, ids.data()));
}

void write_ids(const std::string& path, const std::vector<mint::token>& ids) {
  mint::write_npy(path, mint::array_ref(mint::dtype::int32, {mint::index(ids.size())}, ids.data()));
}

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

    std::string command;
    long n = 0;
    double sink = 0;
    while (std::cin >> command) {
      if (command == "quit") break;
      if (!(std::cin >> n) || n < 1) throw std::runtime_error("attribution_mint: a command needs a count >= 1");
      double seconds = 0;
      if (command == "ig")
        seconds = seconds_per_call(n, [&] { sink += mint::integrated_gradients(model, clean, metric, options).delta; });
      else if (command == "patch")
        seconds = seconds_per_call(n, [&] { sink += mint::attribution_patching(model, clean, corrupt, metric).clean_value; });
      else if (command == "forward")
        seconds = seconds_per_call(n, [&] { sink += double(model.forward(clean).data()[0]); });
      else
        throw std::runtime_error("attribution_mint: unknown command '" + command + "'");
      std::printf("%.9g\n", seconds);
      std::fflush(stdout);
    }
    if (sink == 12345.678) std::printf("\n");  // keeps the timed calls alive
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
