// Reading a large float32 array: .npy and safetensors, copied into an owned
// array (read_npy, safetensors_file::read) against memory-mapped without a copy
// (map_npy, safetensors_file::map). Each iteration opens the file and sums every
// element, so both ways touch all the data. The files (MINT_IO_BENCH_MIB MiB,
// 1024 by default) are made in MINT_IO_BENCH_DIR, or in a temporary folder that
// is removed afterwards; the page cache is warm (they were just written).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include <mint/io/npy.hpp>
#include <mint/io/safetensors.hpp>

namespace {

struct bench_files {
  std::filesystem::path folder;
  bool owned = false;
  std::string npy, safetensors;

  bench_files() {
    const char* given = std::getenv("MINT_IO_BENCH_DIR");
    if (given) {
      folder = given;
    } else {
      folder = std::filesystem::temp_directory_path() / ("mint-io-bench-" + std::to_string(::getpid()));
      owned = true;
    }
    std::filesystem::create_directories(folder);
    npy = (folder / "big.npy").string();
    safetensors = (folder / "big.safetensors").string();
    if (std::filesystem::exists(npy) && std::filesystem::exists(safetensors)) return;
    const char* mib = std::getenv("MINT_IO_BENCH_MIB");
    const mint::index rows = mint::index(mib ? std::atoll(mib) : 1024) * 256;  // rows of 1024 floats: 4 KiB each
    auto a = mint::ndarray<float>::uninitialized({rows, 1024});
    for (mint::index k = 0; k < a.size(); ++k) a.data()[k] = float(k % 1000) * 0.001f;
    mint::write_npy(npy, a);
    mint::write_safetensors(safetensors, {{"x", a}});
  }
  ~bench_files() {
    if (owned) std::filesystem::remove_all(folder);
  }
};

const bench_files& files() {
  static const bench_files f;
  return f;
}

template <class Array>
double sum(const Array& a) {
  double s = 0;
  const float* p = a.data();
  for (mint::index k = 0; k < a.size(); ++k) s += p[k];
  return s;
}

template <class Load>
void run(benchmark::State& state, Load&& load) {
  double s = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    const auto a = load();
    s = sum(a);
    bytes = std::int64_t(a.size()) * 4;
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["sum"] = s;  // the peer script checks NumPy gets the same
}

void npy_read(benchmark::State& state) { run(state, [] { return mint::read_npy<float>(files().npy); }); }
void npy_map(benchmark::State& state) { run(state, [] { return mint::map_npy<float>(files().npy); }); }
void safetensors_read(benchmark::State& state) {
  run(state, [] { return mint::safetensors_file(files().safetensors).read<float>("x"); });
}
void safetensors_map(benchmark::State& state) {
  run(state, [] { return mint::safetensors_file(files().safetensors).map<float>("x"); });
}

}  // namespace

BENCHMARK(npy_read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(npy_map)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(safetensors_read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(safetensors_map)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
