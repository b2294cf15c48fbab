// Adam: each step against the textbook update written out here, clipping, schedules, and the
// same bits on one thread and two (the update runs in chunks across threads).
#include "mint/core/adam.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mint/core/random.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

// Kingma and Ba's Algorithm 1 with decoupled weight decay and global-norm clipping, one
// element at a time in double.
struct textbook_adam {
  mint::adam_options o;
  std::vector<double> m, v;
  long t = 0;

  void step(std::vector<double>& p, const std::vector<double>& g, double lr) {
    double norm2 = 0;
    for (const double x : g) norm2 += x * x;
    const double scale = o.clip_norm > 0 && std::sqrt(norm2) > o.clip_norm ? o.clip_norm / std::sqrt(norm2) : 1.0;
    ++t;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] * scale;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const double mhat = m[i] / (1 - std::pow(o.beta1, double(t))), vhat = v[i] / (1 - std::pow(o.beta2, double(t)));
      p[i] -= lr * mhat / (std::sqrt(vhat) + o.epsilon) + lr * o.weight_decay * p[i];
    }
  }
};

// Sizes that are not a multiple of the chunk size, so the last, short chunk is exercised.
constexpr std::size_t adam_size = 3 * (std::size_t(1) << 14) + 517;

std::vector<double> adam_gradients(std::uint64_t seed, std::size_t size = adam_size) {
  mint::rng rng(seed);
  std::vector<double> g(size);
  for (double& x : g) x = rng.normal() * (1 + rng.uniform());
  return g;
}

}  // namespace

TEST_CASE("adam matches the textbook update, with clipping, weight decay and warm-up") {
  const mint::adam_options options{.lr = 1e-2, .weight_decay = 0.1, .clip_norm = 50.0, .warmup = 3};
  mint::adam<double> adam(adam_size, options);
  textbook_adam reference{options, std::vector<double>(adam_size, 0.0), std::vector<double>(adam_size, 0.0)};
  std::vector<double> p = adam_gradients(1), q = p;
  for (int step = 1; step <= 6; ++step) {
    const std::vector<double> g = adam_gradients(100 + std::uint64_t(step));
    double norm2 = 0;
    for (const double x : g) norm2 += x * x;
    // The norm sums in another order than the reference: 1e-12 relative covers it.
    CHECK(std::abs(adam.step(p, g) - std::sqrt(norm2)) <= 1e-12 * std::sqrt(norm2));
    reference.step(q, g, adam.learning_rate(step));
    double worst = 0;
    for (std::size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::abs(p[i] - q[i]));
    // Same formula in double, up to operation order and fused multiply-adds: a few ulps of
    // parameters of size up to ~8 over 6 steps (an ulp there is 1.8e-15); a wrong term is >= 1e-5.
    CHECK(worst <= 1e-13);
  }
  CHECK(adam.steps() == 6);
  CHECK(adam.learning_rate(1) == doctest::Approx(1e-2 / 3));
}

TEST_CASE("adam gives the same bits on one thread and two") {
#if defined(_OPENMP)
  const int before = omp_get_max_threads();
  // Large enough that both the norm and the update open a parallel region (2e6 "flops" each).
  constexpr std::size_t size = (std::size_t(1) << 20) + 517;
  auto run = [](int threads) {
    omp_set_num_threads(threads);
    mint::adam<float> adam(size, {.lr = 1e-3, .clip_norm = 10.0});
    std::vector<float> p(size, 0.5f), g(size);
    double norm = 0;
    for (int step = 0; step < 3; ++step) {
      const std::vector<double> source = adam_gradients(7 + std::uint64_t(step), size);
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = float(source[i]);
      norm = adam.step(p, g);
    }
    return std::pair{p, norm};
  };
  const auto one = run(1), two = run(2);
  omp_set_num_threads(before);
  CHECK(one.second == two.second);
  CHECK(one.first == two.first);
#else
  MESSAGE("built without OpenMP: one thread only, nothing to compare");
#endif
}

TEST_CASE("adam refuses bad options, mismatched buffers and non-finite gradients") {
  CHECK_THROWS_AS(mint::adam<float>(4, {.lr = 0}), mint::argument_error);
  CHECK_THROWS_AS(mint::adam<float>(4, {.beta1 = 1.0}), mint::argument_error);
  CHECK_THROWS_AS(mint::adam<float>(4, {.warmup = 10, .decay = mint::lr_decay::cosine, .total_steps = 5}),
                  mint::argument_error);
  mint::adam<float> adam(4, {});
  std::vector<float> p(4, 1.0f), g(3, 1.0f), bad(4, 1.0f);
  CHECK_THROWS_AS(adam.step(p, g), mint::shape_error);
  bad[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(adam.step(p, bad), mint::numeric_error);
  CHECK(p == std::vector<float>(4, 1.0f));  // nothing changed by the refused steps
  CHECK(adam.steps() == 0);
}
