// mint's side of benchmarks/peers/patching_torch.py: benchmarks/patching.cpp's sweep (every
// block's hook_z by position and head, denoising, on the 4-layer toy transformer, batch 16).
// Builds the model and the clean and corrupt batches exactly as benchmarks/patching.cpp does,
// saves the model (mint::toy::save: safetensors with TransformerLens names), both token batches
// and the logit-difference targets as .npy, runs the sweep once and writes its values
// ([layer, pos, head], float64, normalised), then prints one JSON line and serves timing
// requests on stdin, one a line, so the peer script can interleave mint's repetitions with
// PyTorch's:
//   sweep N    the sweep as it runs on the toy transformer (batched, with prefix reuse)
//   plain N    the same sweep on the model seen as a plain runtime (batched only, whole forwards)
//   forward N  one bare forward of the corrupt batch
//   -> seconds per call over N calls, on one line
//   quit
// Usage: patching_mint FOLDER PATCHES_PER_FORWARD  (max_batch = PATCHES_PER_FORWARD x 16 rows)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <mint/io/npy.hpp>

#include "driver.hpp"

#include "../patching_sweep.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace patching_bench;

using namespace peer_driver;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FOLDER PATCHES_PER_FORWARD\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    const mint::index per_forward = std::atoi(argv[2]);
    if (per_forward < 1) throw std::runtime_error("patching_mint: PATCHES_PER_FORWARD needs >= 1");

    sweep_setup setup;  // benchmarks/patching.cpp's sweep
    auto& model = setup.model;
    const auto &clean = setup.clean, &corrupt = setup.corrupt;
    const auto& metric = setup.metric;
    const auto options = setup.options(per_forward);

    mint::toy::save(model, (dir / "model.safetensors").string());
    write_tokens((dir / "clean.npy").string(), clean);
    write_tokens((dir / "corrupt.npy").string(), corrupt);
    write_ids((dir / "correct.npy").string(), metric.correct);
    write_ids((dir / "wrong.npy").string(), metric.wrong);

    const auto start = clock_type::now();
    const auto sweep = mint::activation_patching(model, clean, corrupt, metric, options);
    const double first = std::chrono::duration<double>(clock_type::now() - start).count();
    std::vector<double> values;
    for (const auto& s : sweep.sites) {
      if (s.axes != std::vector<mint::axis>{mint::axis::pos, mint::axis::head} || s.values.size() != context * heads)
        throw std::runtime_error("patching_mint: " + s.site + " did not give [pos, head] values");
      values.insert(values.end(), s.values.data(), s.values.data() + s.values.size());
    }
    mint::write_npy((dir / "values.npy").string(),
                    mint::array_ref(mint::dtype::float64, {layers, context, heads}, values.data()));
    std::printf("{\"threads\": %d, \"clean_value\": %.17g, \"corrupt_value\": %.17g, \"patches\": %zu, "
                "\"max_batch\": %lld, \"first_seconds\": %.9g}\n",
                mint::thread_count(), sweep.clean_value, sweep.corrupt_value, values.size(),
                static_cast<long long>(options.max_batch), first);
    std::fflush(stdout);

    plain_view plain{&model};
    serve("patching_mint",
          {{"sweep", [&] { return mint::activation_patching(model, clean, corrupt, metric, options).clean_value; }},
           {"plain", [&] { return mint::activation_patching(plain, clean, corrupt, metric, options).clean_value; }},
           {"forward", [&] { return double(model.forward(corrupt).data()[0]); }}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
