// SAE training speed at the size (d = 512, 8192 latents, k = 32, batch 4096):
// one full training step (loss, gradient, Adam, decoder renormalization) per
// architecture, the encoder product alone (the floor of a TopK step), and an sgemm of
// the same size in Eigen's preferred layout (the machine's peak).
// With MINT_SAE_BENCH_DIR set, the data and initial weights come from x.npy, W_enc.npy,
// b_enc.npy, W_dec.npy, b_dec.npy there (benchmarks/peers/sae_torch.py writes them),
// and each step benchmark reports the first step's loss as the counter "loss".
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include <mint/mint.hpp>

namespace {

namespace dict = mint::dictionary;

constexpr mint::index d_in = 512, d_sae = 8192, k = 32, batch = 4096;

const char* folder() { return std::getenv("MINT_SAE_BENCH_DIR"); }

template <class Dst>
void load(const std::string& name, Dst&& dst) {
  const auto a = mint::read_npy<float>(std::string(folder()) + "/" + name + ".npy");
  if (a.size() != mint::index(dst.size())) throw std::runtime_error(name + ".npy has the wrong size");
  std::copy(a.values().begin(), a.values().end(), dst.data());
}

const mint::matrixf& data() {
  static const mint::matrixf x = [] {
    mint::matrixf m(batch, d_in);
    if (folder()) load("x", m);
    else mint::rng(1).fill_normal(m);
    return m;
  }();
  return x;
}

dict::sae make_sae(dict::sae_architecture arch) {
  dict::sae s({.d_in = d_in, .d_sae = d_sae, .architecture = arch, .k = k, .initial_threshold = 0.05}, 2);
  if (folder()) {
    load("W_enc", s.W_enc());
    load("W_dec", s.W_dec());
    load("b_dec", s.b_dec());
    if (arch != dict::sae_architecture::gated) load("b_enc", s.b_enc());
  }
  return s;
}

// The recipes the peer script writes in PyTorch: ReLU with the decoder-norm L1 and a free
// decoder (Anthropic, April 2024); TopK/BatchTopK/JumpReLU with unit-norm decoder rows.
dict::sae_train_options recipe(dict::sae_architecture arch) {
  dict::sae_train_options o{.batch_size = batch, .steps = 1 << 30, .adam = {.lr = 1e-4}};
  o.init_b_dec_geometric_median = false;
  o.unit_norm_decoder = arch != dict::sae_architecture::relu && arch != dict::sae_architecture::gated;
  o.loss.l1_coefficient = 5.0;
  o.loss.l0_coefficient = 1e-3;
  o.loss.bandwidth = 0.05;
  return o;
}

// sparse_bias != 0 sets every b_enc to it: -2.42 leaves about 64 of 8192 latents active per row
// (pre-activations are about N(0, 1) here), the L0 of a trained ReLU or JumpReLU SAE.
void sae_step(benchmark::State& state, dict::sae_architecture arch, float sparse_bias = 0) {
  dict::sae s = make_sae(arch);
  if (sparse_bias != 0) s.b_enc().setConstant(sparse_bias);
  dict::sae_trainer<float> trainer(s, recipe(arch));
  const auto& x = data();
  const auto first = trainer.step(x);  // also sizes every buffer
  for (auto _ : state) {
    const auto stats = trainer.step(x);
    benchmark::DoNotOptimize(stats.loss);
  }
  state.counters["tokens/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["loss"] = first.loss;
  state.counters["l0"] = first.l0;
}

void encoder_product(benchmark::State& state) {
  const dict::sae s = make_sae(dict::sae_architecture::topk);
  const mint::matrixf xc = data().rowwise() - s.b_dec().transpose();
  mint::matrixf pre(batch, d_sae);
  for (auto _ : state) {
    pre.noalias() = xc * s.W_enc();
    pre.rowwise() += s.b_enc().transpose();
    benchmark::DoNotOptimize(pre.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(batch) * double(d_in) * double(d_sae),
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void sgemm_peak(benchmark::State& state) {
  Eigen::MatrixXf a(batch, d_in), b(d_in, d_sae), c(batch, d_sae);
  mint::rng r(3);
  r.fill_normal(a);
  r.fill_normal(b);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(batch) * double(d_in) * double(d_sae),
                                                 benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

}  // namespace

BENCHMARK_CAPTURE(sae_step, relu, dict::sae_architecture::relu)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, topk, dict::sae_architecture::topk)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, batchtopk, dict::sae_architecture::batchtopk)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, relu_sparse, dict::sae_architecture::relu, -2.42f)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, jumprelu_sparse, dict::sae_architecture::jumprelu, -2.42f)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, jumprelu, dict::sae_architecture::jumprelu)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK_CAPTURE(sae_step, gated, dict::sae_architecture::gated)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(encoder_product)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(sgemm_peak)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

BENCHMARK_MAIN();
