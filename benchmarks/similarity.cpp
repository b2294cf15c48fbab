// Every similarity measure at n = 10,000 examples and d = 768 features (RSA's Kendall tau at
// n = 3,000), on activation-like data: a decaying spectrum, a non-zero mean, and Y a noisy
// nonlinear map of X. Each benchmark reports the value it computed (counter "value"), so the
// NumPy peers (benchmarks/peers/similarity_numpy.py) can check they agree.
//   bench_similarity --write_inputs=DIR   writes the inputs as raw float32 (x.f32, y.f32) and exits.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include <mint/mint.hpp>

namespace {

constexpr mint::index examples = 10000, features = 768;

struct inputs {
  mint::matrixf x, y;
  mint::matrixd x64, y64;
};

// X = Z diag(1/sqrt(k+1)) + 0.5 (features of falling variance around a mean), Y = tanh(X W) + noise.
const inputs& data() {
  static const inputs d = [] {
    inputs out;
    mint::rng rng(2024);
    mint::matrixf z(examples, features), w(features, features), noise(examples, features);
    rng.fill_normal(z);
    rng.fill_normal(w, 0.0, 3.0 / std::sqrt(double(features)));
    rng.fill_normal(noise, 0.0, 0.1);
    const Eigen::VectorXf scale = Eigen::VectorXf::LinSpaced(features, 1.0f, float(features)).cwiseSqrt().cwiseInverse();
    out.x = (z * scale.asDiagonal()).array() + 0.5f;
    out.y = (out.x * w).array().tanh().matrix() + noise;
    out.x64 = out.x.cast<double>();
    out.y64 = out.y.cast<double>();
    return out;
  }();
  return d;
}

template <class F>
void run(benchmark::State& state, F&& measure) {
  double value = 0.0;
  for (auto _ : state) {
    value = measure();
    benchmark::DoNotOptimize(value);
  }
  state.counters["value"] = value;
}

// The first `rows` examples of a layer, as a view (RSA's Kendall tau and minibatch slices).
template <class T>
mint::tensor_view<const T> first_rows(const mint::matrix<T>& m, mint::index rows) {
  return mint::view(m).slice(0, rows);
}

void linear_cka_f32(benchmark::State& s) { run(s, [] { return mint::linear_cka(data().x, data().y); }); }
void linear_cka_f64(benchmark::State& s) { run(s, [] { return mint::linear_cka(data().x64, data().y64); }); }
void linear_cka_f32_exact(benchmark::State& s) {
  run(s, [] { return mint::linear_cka(data().x, data().y, {.precision = mint::product_precision::float64}); });
}
void debiased_cka_f32(benchmark::State& s) { run(s, [] { return mint::debiased_linear_cka(data().x, data().y); }); }
void debiased_cka_f64(benchmark::State& s) { run(s, [] { return mint::debiased_linear_cka(data().x64, data().y64); }); }
void rbf_cka_f32(benchmark::State& s) { run(s, [] { return mint::kernel_cka(data().x, data().y); }); }
void rbf_cka_f64(benchmark::State& s) { run(s, [] { return mint::kernel_cka(data().x64, data().y64); }); }
template <class T>
double minibatch_cka_of(const mint::matrix<T>& x, const mint::matrix<T>& y) {
  mint::minibatch_cka accumulator;
  for (mint::index begin = 0; begin < examples; begin += 1000)
    accumulator.add(mint::view(x).slice(begin, begin + 1000), mint::view(y).slice(begin, begin + 1000));
  return accumulator.value();
}
void minibatch_cka_f32(benchmark::State& s) { run(s, [] { return minibatch_cka_of(data().x, data().y); }); }
void minibatch_cka_f64(benchmark::State& s) { run(s, [] { return minibatch_cka_of(data().x64, data().y64); }); }
void mean_cca_f32(benchmark::State& s) { run(s, [] { return mint::mean_cca(data().x, data().y); }); }
void mean_cca_f64(benchmark::State& s) { run(s, [] { return mint::mean_cca(data().x64, data().y64); }); }
void svcca_f32(benchmark::State& s) { run(s, [] { return mint::svcca(data().x, data().y); }); }
void svcca_f64(benchmark::State& s) { run(s, [] { return mint::svcca(data().x64, data().y64); }); }
void pwcca_f32(benchmark::State& s) { run(s, [] { return mint::pwcca(data().x, data().y); }); }
void pwcca_f64(benchmark::State& s) { run(s, [] { return mint::pwcca(data().x64, data().y64); }); }
void procrustes_f32(benchmark::State& s) { run(s, [] { return mint::procrustes_distance(data().x, data().y); }); }
void procrustes_f64(benchmark::State& s) { run(s, [] { return mint::procrustes_distance(data().x64, data().y64); }); }
void shape_metric_f32(benchmark::State& s) { run(s, [] { return mint::shape_distance(data().x, data().y, {.alpha = 0.5}); }); }
void shape_metric_f64(benchmark::State& s) {
  run(s, [] { return mint::shape_distance(data().x64, data().y64, {.alpha = 0.5}); });
}
void regression_f32(benchmark::State& s) { run(s, [] { return mint::linear_regression_r2(data().x, data().y); }); }
void regression_f64(benchmark::State& s) { run(s, [] { return mint::linear_regression_r2(data().x64, data().y64); }); }
void rsa_spearman_f32(benchmark::State& s) { run(s, [] { return mint::rsa(data().x, data().y); }); }
void rsa_spearman_f64(benchmark::State& s) { run(s, [] { return mint::rsa(data().x64, data().y64); }); }
void rsa_pearson_f32(benchmark::State& s) {
  run(s, [] { return mint::rsa(data().x, data().y, {.comparison = mint::rsa_comparison::pearson}); });
}
void rsa_pearson_f64(benchmark::State& s) {
  run(s, [] { return mint::rsa(data().x64, data().y64, {.comparison = mint::rsa_comparison::pearson}); });
}
void rsa_kendall_f32(benchmark::State& s) {
  run(s, [] {
    return mint::rsa(first_rows(data().x, 3000), first_rows(data().y, 3000), {.comparison = mint::rsa_comparison::kendall});
  });
}
void rsa_kendall_f64(benchmark::State& s) {
  run(s, [] {
    return mint::rsa(first_rows(data().x64, 3000), first_rows(data().y64, 3000), {.comparison = mint::rsa_comparison::kendall});
  });
}
void mutual_knn_f32(benchmark::State& s) { run(s, [] { return mint::mutual_knn_alignment(data().x, data().y); }); }
void mutual_knn_f64(benchmark::State& s) { run(s, [] { return mint::mutual_knn_alignment(data().x64, data().y64); }); }

// The layer x layer driver (6 layers of 128 features against the same 6, linear CKA), and the
// same 36 values from separate calls, which redo each layer's Gram every time.
const std::vector<mint::matrixf>& six_layers() {
  static const std::vector<mint::matrixf> layers = [] {
    std::vector<mint::matrixf> out;
    for (int l = 0; l < 6; ++l) out.push_back(data().x.middleCols(128 * l, 128));
    return out;
  }();
  return layers;
}

void similarity_matrix_6x6(benchmark::State& s) {
  run(s, [] { return mint::similarity_matrix(six_layers(), six_layers(), mint::linear_cka_options{}).sum(); });
}

void similarity_matrix_6x6_pairwise(benchmark::State& s) {
  run(s, [] {
    double sum = 0;
    for (const auto& a : six_layers())
      for (const auto& b : six_layers()) sum += mint::linear_cka(a, b);
    return sum;
  });
}

bool write_inputs(const char* folder) {
  const std::filesystem::path dir(folder);
  std::filesystem::create_directories(dir);
  for (const auto& [name, m] : std::map<std::string, const mint::matrixf*>{{"x.f32", &data().x}, {"y.f32", &data().y}}) {
    std::ofstream out(dir / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(m->data()), std::streamsize(m->size() * sizeof(float)));
    if (!out) return false;
  }
  std::cout << "wrote " << examples << " x " << features << " float32 row-major x.f32 and y.f32 to " << folder << "\n";
  return true;
}

}  // namespace

#define MINT_SIMILARITY_BENCHMARK(name) BENCHMARK(name)->Unit(benchmark::kMillisecond)->UseRealTime()

MINT_SIMILARITY_BENCHMARK(linear_cka_f32);
MINT_SIMILARITY_BENCHMARK(linear_cka_f64);
MINT_SIMILARITY_BENCHMARK(linear_cka_f32_exact);
MINT_SIMILARITY_BENCHMARK(debiased_cka_f32);
MINT_SIMILARITY_BENCHMARK(debiased_cka_f64);
MINT_SIMILARITY_BENCHMARK(rbf_cka_f32);
MINT_SIMILARITY_BENCHMARK(rbf_cka_f64);
MINT_SIMILARITY_BENCHMARK(minibatch_cka_f32);
MINT_SIMILARITY_BENCHMARK(minibatch_cka_f64);
MINT_SIMILARITY_BENCHMARK(mean_cca_f32);
MINT_SIMILARITY_BENCHMARK(mean_cca_f64);
MINT_SIMILARITY_BENCHMARK(svcca_f32);
MINT_SIMILARITY_BENCHMARK(svcca_f64);
MINT_SIMILARITY_BENCHMARK(pwcca_f32);
MINT_SIMILARITY_BENCHMARK(pwcca_f64);
MINT_SIMILARITY_BENCHMARK(procrustes_f32);
MINT_SIMILARITY_BENCHMARK(procrustes_f64);
MINT_SIMILARITY_BENCHMARK(shape_metric_f32);
MINT_SIMILARITY_BENCHMARK(shape_metric_f64);
MINT_SIMILARITY_BENCHMARK(regression_f32);
MINT_SIMILARITY_BENCHMARK(regression_f64);
MINT_SIMILARITY_BENCHMARK(rsa_spearman_f32);
MINT_SIMILARITY_BENCHMARK(rsa_spearman_f64);
MINT_SIMILARITY_BENCHMARK(rsa_pearson_f32);
MINT_SIMILARITY_BENCHMARK(rsa_pearson_f64);
MINT_SIMILARITY_BENCHMARK(rsa_kendall_f32);
MINT_SIMILARITY_BENCHMARK(rsa_kendall_f64);
MINT_SIMILARITY_BENCHMARK(mutual_knn_f32);
MINT_SIMILARITY_BENCHMARK(mutual_knn_f64);
MINT_SIMILARITY_BENCHMARK(similarity_matrix_6x6);
MINT_SIMILARITY_BENCHMARK(similarity_matrix_6x6_pairwise);

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--write_inputs=", 15) == 0) return write_inputs(argv[i] + 15) ? 0 : 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
