// Trains each SAE architecture on synthetic data with known features in superposition
// (64 unit features in 32 dimensions, each firing with probability 0.04) and prints,
// per architecture, L0, FVU, the dead fraction and MMCS on held-out data, and training
// speed. Usage: sae_superposition [steps multiplier, default 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/metrics.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/dictionary/train.hpp"

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  const dict::synthetic_features truth({.features = 64, .dims = 32, .firing_probability = 0.04, .seed = 1});
  mint::rng r(2);
  mint::matrixf train, test;
  truth.sample(r, 20000, train);
  truth.sample(r, 10000, test);
  std::printf("64 true features in 32 dimensions, expected L0 %.2f; SAEs with k = 3\n\n", truth.expected_l0());
  std::printf("%-10s %6s %7s %6s %7s %9s %10s\n", "arch", "width", "L0", "FVU", "dead", "MMCS", "tokens/s");

  // Settings per architecture (the test in tests/dictionary/train.cpp uses the same).
  struct setting {
    dict::sae_architecture arch;
    mint::index width, batch;
    std::int64_t steps, resample;
    double lr, penalty;
  };
  for (const setting& c : {setting{dict::sae_architecture::relu, 128, 128, 1200, 250, 3e-3, 0.3},
                           setting{dict::sae_architecture::topk, 128, 128, 1200, 250, 3e-3, 0},
                           setting{dict::sae_architecture::batchtopk, 192, 256, 800, 0, 1e-2, 0},
                           setting{dict::sae_architecture::jumprelu, 128, 256, 1000, 250, 3e-3, 0.05},
                           setting{dict::sae_architecture::gated, 128, 256, 1000, 0, 1e-2, 1.0}}) {
    dict::sae sae({.d_in = 32, .d_sae = c.width, .architecture = c.arch, .k = 3, .initial_threshold = 0.01}, 3);
    dict::sae_train_options o{.batch_size = c.batch,
                              .steps = std::max<std::int64_t>(1, std::int64_t(double(c.steps) * scale)),
                              .adam = {.lr = c.lr, .warmup = 20}};
    o.loss.l1_coefficient = o.loss.l0_coefficient = c.penalty;
    o.loss.bandwidth = 0.02;
    o.dead_after_tokens = 5000;
    o.resample_every = c.resample;
    dict::sae_trainer<float> trainer(sae, o);
    auto source = dict::matrix_batches(train, 4);
    const auto start = std::chrono::steady_clock::now();
    trainer.train(source);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto m = dict::evaluate(sae, test);
    std::printf("%-10s %6td %7.2f %6.3f %7.3f %9.4f %10.3g\n", std::string(dict::to_string(c.arch)).c_str(), c.width, m.l0,
                m.reconstruction.fvu, m.dead_fraction, dict::mmcs(sae.W_dec(), truth.dictionary()),
                double(o.steps * c.batch) / seconds);
  }
}
