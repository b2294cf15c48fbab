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
#include <mint/patching.hpp>
#include <mint/toy.hpp>

namespace {

using clock_type = std::chrono::steady_clock;
using model_type = mint::toy::transformer<float>;

constexpr int vocab = 64, context = 64, layers = 4, heads = 8;
constexpr mint::index batch = 16;

template <class F>
double seconds_per_call(long n, F&& f) {
  const auto start = clock_type::now();
  for (long i = 0; i < n; ++i) f();
  return std::chrono::duration<double>(clock_type::now() - start).count() / double(n);
}

// The toy transformer seen as a plain runtime: no resuming, no branching (benchmarks/patching.cpp's plain_view).
struct plain_view {
  using scalar_type = float;
  model_type* m;
  const mint::site_table& sites() const { return m->sites(); }
  mint::tensor_view<const float> forward(const mint::token_batch& t, mint::hook_set<float>& h) { return m->forward(t, h); }
};
static_assert(mint::runtime<plain_view> && !mint::resumable_runtime<plain_view>);

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
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FOLDER PATCHES_PER_FORWARD\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    const mint::index per_forward = std::atoi(argv[2]);
    if (per_forward < 1) throw std::runtime_error("patching_mint: PATCHES_PER_FORWARD needs >= 1");

    // benchmarks/patching.cpp's setup, unchanged.
    model_type model{{.vocab = vocab, .context = context, .d_model = 256, .layers = layers, .heads = heads, .d_head = 32,
                      .d_mlp = 1024}};
    mint::token_batch clean{batch, context}, corrupt{batch, context};
    mint::logit_difference metric;
    std::vector<std::string> sites;
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
    const mint::activation_patching_options options{
        .sites = sites, .by = {mint::axis::pos, mint::axis::head}, .max_batch = per_forward * batch};

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
    std::string command;
    long n = 0;
    double sink = 0;
    while (std::cin >> command) {
      if (command == "quit") break;
      if (!(std::cin >> n) || n < 1) throw std::runtime_error("patching_mint: a command needs a count >= 1");
      double seconds = 0;
      if (command == "sweep")
        seconds = seconds_per_call(n, [&] { sink += mint::activation_patching(model, clean, corrupt, metric, options).clean_value; });
      else if (command == "plain")
        seconds = seconds_per_call(n, [&] { sink += mint::activation_patching(plain, clean, corrupt, metric, options).clean_value; });
      else if (command == "forward")
        seconds = seconds_per_call(n, [&] { sink += double(model.forward(corrupt).data()[0]); });
      else
        throw std::runtime_error("patching_mint: unknown command '" + command + "'");
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
