// What going through a mint view costs: an Eigen product on plain matrices
// against the same product on maps made from views (contiguous, column-major,
// strided), and a strided reduction through element access.
#include <benchmark/benchmark.h>

#include <mint/mint.hpp>

namespace {

mint::matrixf random_matrix(mint::index rows, mint::index cols, std::uint64_t seed) {
  mint::matrixf m(rows, cols);
  mint::rng(seed).fill_normal(m);
  return m;
}

void product_eigen(benchmark::State& state) {
  const auto n = state.range(0);
  const mint::matrixf a = random_matrix(n, n, 1), b = random_matrix(n, n, 2);
  mint::matrixf c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n * n * n), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// as_matrix gives a fully strided Map: Eigen copies it before its GEMM kernel.
void product_as_matrix(benchmark::State& state) {
  const auto n = state.range(0);
  const mint::matrixf a = random_matrix(n, n, 1), b = random_matrix(n, n, 2);
  mint::matrixf c(n, n);
  const auto va = mint::view(a), vb = mint::view(b);
  for (auto _ : state) {
    c.noalias() = mint::as_matrix(va) * mint::as_matrix(vb);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n * n * n), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// visit_matrix hands Eigen a unit-stride Map, which its kernels use in place.
void product_visit_matrix(benchmark::State& state) {
  const auto n = state.range(0);
  const mint::matrixf a = random_matrix(n, n, 1), b = random_matrix(n, n, 2);
  mint::matrixf c(n, n);
  const auto va = mint::view(a), vb = mint::view(b);
  for (auto _ : state) {
    mint::visit_matrix(va, [&](const auto& ma) { mint::visit_matrix(vb, [&](const auto& mb) { c.noalias() = ma * mb; }); });
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n * n * n), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// Column sums of a column-major matrix: Eigen's own reduction against a loop over view(i, j).
void column_sum_eigen(benchmark::State& state) {
  const auto n = state.range(0);
  const Eigen::MatrixXf a = random_matrix(n, n, 3);
  Eigen::RowVectorXf sums(n);
  for (auto _ : state) {
    sums.noalias() = a.colwise().sum();
    benchmark::DoNotOptimize(sums.data());
  }
  state.SetBytesProcessed(state.iterations() * n * n * mint::index(sizeof(float)));
}

void column_sum_view(benchmark::State& state) {
  const auto n = state.range(0);
  const Eigen::MatrixXf a = random_matrix(n, n, 3);
  std::vector<float> sums(static_cast<std::size_t>(n));
  const auto v = mint::view(a);
  for (auto _ : state) {
    for (mint::index j = 0; j < n; ++j) {
      float s = 0;
      for (mint::index i = 0; i < n; ++i) s += v(i, j);
      sums[std::size_t(j)] = s;
    }
    benchmark::DoNotOptimize(sums.data());
  }
  state.SetBytesProcessed(state.iterations() * n * n * mint::index(sizeof(float)));
}

}  // namespace

BENCHMARK(product_eigen)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(product_as_matrix)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(product_visit_matrix)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(column_sum_eigen)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(column_sum_view)->Arg(1024)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
