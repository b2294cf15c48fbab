// Classical sparse coding and dictionary learning (mint/dictionary): OMP from the
// Gram matrix and from the signals, lasso codes by coordinate descent and by LARS, one epoch
// of online dictionary learning, and K-SVD iterations, on float32 data.
// The data comes from MINT_SPARSE_BENCH_DIR when set (x.npy [n, d], dictionary.npy
// [K, d], dict_init.npy [K, d] and settings.json, written by
// benchmarks/peers/sparse_coding_sklearn.py, which also reads back the mint_*.npy
// results written there before timing); otherwise from a planted dictionary made
// here: n = 2048 signals, d = 64, K = 256 atoms, 8 atoms a signal plus noise.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <mint/adapters/eigen.hpp>
#include <mint/dictionary/ksvd.hpp>
#include <mint/dictionary/lars.hpp>
#include <mint/dictionary/lasso.hpp>
#include <mint/dictionary/omp.hpp>
#include <mint/dictionary/online_dictionary.hpp>
#include <mint/io/json.hpp>
#include <mint/io/npy.hpp>

namespace md = mint::dictionary;

namespace {

struct bench_data {
  std::string folder;  // empty: made here, nothing written back
  mint::matrixf x, dictionary, dict_init;
  mint::index nonzeros = 8, batch_size = 256;
  double alpha = 0.1;

  bench_data() {
    const char* given = std::getenv("MINT_SPARSE_BENCH_DIR");
    if (given) {
      folder = given;
      x = load(folder + "/x.npy");
      dictionary = load(folder + "/dictionary.npy");
      dict_init = load(folder + "/dict_init.npy");
      const auto settings = mint::read_json(folder + "/settings.json");
      nonzeros = settings.at("nonzeros").get<mint::index>();
      alpha = settings.at("alpha").get<double>();
      batch_size = settings.at("batch_size").get<mint::index>();
      return;
    }
    const mint::index n = 2048, d = 64, atoms = 256;
    mint::rng r(1);
    dictionary.resize(atoms, d);
    r.fill_normal(dictionary);
    dictionary.rowwise().normalize();
    mint::matrixf codes = mint::matrixf::Zero(n, atoms);
    for (mint::index i = 0; i < n; ++i)
      for (mint::index j = 0; j < nonzeros; ++j) codes(i, mint::index(r.below(atoms))) = float(r.normal());
    mint::matrixf noise(n, d);
    r.fill_normal(noise, 0.0, 0.01);
    x = codes * dictionary + noise;
    dict_init = x.topRows(atoms).rowwise().normalized();
  }

  static mint::matrixf load(const std::string& path) {
    const auto a = mint::read_npy<float>(path);
    return mint::to_matrix<float>(a);
  }

  // The result a peer compares, written once (before timing) when the data came from a folder.
  void save(const std::string& name, const mint::matrixf& result) const {
    if (!folder.empty()) mint::write_npy(folder + "/mint_" + name + ".npy", result);
  }
};

const bench_data& data() {
  static const bench_data d;
  return d;
}

void omp_gram(benchmark::State& state) {
  const auto& d = data();
  const mint::matrixf gram = d.dictionary * d.dictionary.transpose();
  const mint::matrixf correlations = d.x * d.dictionary.transpose();
  const md::omp_options options{.nonzeros = d.nonzeros};
  d.save("omp", md::omp_gram(gram, correlations, options));
  for (auto _ : state) benchmark::DoNotOptimize(md::omp_gram(gram, correlations, options).data());
  state.counters["signals/s"] = benchmark::Counter(double(d.x.rows()), benchmark::Counter::kIsIterationInvariantRate);
}

void omp(benchmark::State& state) {
  const auto& d = data();
  mint::matrixf codes(d.x.rows(), d.dictionary.rows());
  for (auto _ : state) {
    md::omp(d.x, d.dictionary, codes, {.nonzeros = d.nonzeros});
    benchmark::DoNotOptimize(codes.data());
  }
  state.counters["signals/s"] = benchmark::Counter(double(d.x.rows()), benchmark::Counter::kIsIterationInvariantRate);
}

void lasso(benchmark::State& state) {
  const auto& d = data();
  const md::lasso_options options{.alpha = d.alpha};
  d.save("lasso", md::lasso(d.x, d.dictionary, options));
  mint::matrixf codes(d.x.rows(), d.dictionary.rows());
  for (auto _ : state) {
    codes.setZero();
    md::lasso(d.x, d.dictionary, codes, options);
    benchmark::DoNotOptimize(codes.data());
  }
  state.counters["signals/s"] = benchmark::Counter(double(d.x.rows()), benchmark::Counter::kIsIterationInvariantRate);
}

// The same lasso codes by LARS (exact: the solution scikit-learn's default lasso_lars gives).
void lars(benchmark::State& state) {
  const auto& d = data();
  const md::lars_options options{.alpha = d.alpha};
  d.save("lars", md::lars(d.x, d.dictionary, options));
  mint::matrixf codes(d.x.rows(), d.dictionary.rows());
  for (auto _ : state) {
    md::lars(d.x, d.dictionary, codes, options);
    benchmark::DoNotOptimize(codes.data());
  }
  state.counters["signals/s"] = benchmark::Counter(double(d.x.rows()), benchmark::Counter::kIsIterationInvariantRate);
}

md::online_dictionary<float> online_learner(const bench_data& d) {
  md::online_dictionary<float> learner({.atoms = d.dict_init.rows(), .alpha = d.alpha, .batch_size = d.batch_size,
                                        .epochs = 1, .shuffle = false});
  learner.set_dictionary(d.dict_init);
  return learner;
}

// One epoch from the given start, in order (shuffle off), as the peer runs it.
void online_dictionary(benchmark::State& state) {
  const auto& d = data();
  {
    auto learner = online_learner(d);
    learner.fit(d.x);
    d.save("online_dictionary", learner.dictionary());
  }
  for (auto _ : state) {
    auto learner = online_learner(d);
    learner.fit(d.x);
    benchmark::DoNotOptimize(learner.dictionary().data());
  }
  state.counters["signals/s"] = benchmark::Counter(double(d.x.rows()), benchmark::Counter::kIsIterationInvariantRate);
}

// Ten K-SVD iterations (exact and approximate updates); scikit-learn has no K-SVD to compare with.
void ksvd(benchmark::State& state) {
  const auto& d = data();
  const auto update = state.range(0) ? md::ksvd_update::approximate : md::ksvd_update::exact;
  for (auto _ : state) {
    auto result = md::ksvd(d.x, d.dict_init,
                           {.atoms = d.dict_init.rows(), .nonzeros = d.nonzeros, .iterations = 10, .update = update});
    benchmark::DoNotOptimize(result.dictionary.data());
  }
}

}  // namespace

BENCHMARK(omp_gram)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(omp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(lasso)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(lars)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(online_dictionary)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(ksvd)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
