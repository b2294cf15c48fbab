// Data-parallel SAE training over MPI: the step time, the time spent in collectives and the
// bytes each rank sends per step, for the ranks mpirun starts (docs/distributed.md):
//   OMP_NUM_THREADS=2 mpirun -np 1 build/benchmarks/bench_distributed
//   OMP_NUM_THREADS=1 mpirun -np 2 build/benchmarks/bench_distributed
// Every rank runs the same fixed number of steps (collectives need every rank); rank 0 reports.
// Shapes: d_in 512, d_sae 8192 (8.4M parameters, 33.6 MB of float gradient), a global batch of
// 4096 rows in as many gradient blocks as ranks (the cheapest: one ring allreduce's bytes).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/core/random.hpp"
#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/train.hpp"
#include "mint/distributed/mpi.hpp"

namespace {

namespace dict = mint::dictionary;
namespace dist = mint::distributed;

// A communicator that times every collective and counts the bytes this rank sends in it (ring
// algorithms: an allreduce sends 2 (N-1)/N of the buffer, an all_gather N-1 parts, an all_to_all
// N-1 of its N parts).
class metered {
public:
  explicit metered(dist::mpi_communicator& c) : c_(c) {}
  int rank() const { return c_.rank(); }
  int size() const { return c_.size(); }
  template <class T>
  void allreduce_sum(std::span<T> x) {
    timed([&] { c_.allreduce_sum(x); }, 2.0 * (n() - 1) / n() * double(x.size_bytes()));
  }
  template <class T>
  void all_gather(std::span<const T> mine, std::span<T> all) {
    timed([&] { c_.all_gather(mine, all); }, (n() - 1) * double(mine.size_bytes()));
  }
  template <class T>
  void all_to_all(std::span<const T> send, std::span<T> received) {
    timed([&] { c_.all_to_all(send, received); }, (n() - 1) / n() * double(send.size_bytes()));
  }
  void broadcast(std::span<std::byte> b, int root) {
    timed([&] { c_.broadcast(b, root); }, rank() == root ? double(b.size()) : 0.0);
  }
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> mine, int root) {
    std::vector<std::vector<std::byte>> out;
    timed([&] { out = c_.gather(mine, root); }, double(mine.size()));
    return out;
  }
  void barrier() { timed([&] { c_.barrier(); }, 0.0); }

  double seconds = 0, bytes = 0;

private:
  double n() const { return double(c_.size()); }
  template <class F>
  void timed(F&& f, double sent) {
    const auto start = std::chrono::steady_clock::now();
    f();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bytes += sent;
  }
  dist::mpi_communicator& c_;
};

dist::mpi_communicator* world = nullptr;

const mint::matrixf& data() {
  static const mint::matrixf x = [] {
    mint::matrixf out(32768, 512);
    mint::rng r(3);
    r.fill_normal(out);
    return out;
  }();
  return x;
}

void sae_step(benchmark::State& state, dict::sae_architecture arch) {
  metered comm(*world);
  const mint::index ranks = world->size();
  dict::sae s({.d_in = 512, .d_sae = 8192, .architecture = arch, .k = 32}, 1);
  dict::sae_train_options o{.batch_size = 4096, .steps = 1'000'000, .gradient_blocks = ranks};
  o.communicator = comm;
  dict::sae_trainer<float> trainer(s, o);
  auto source = dict::block_batches([](mint::index b) { return dict::matrix_batches(data(), std::uint64_t(b)); }, ranks, comm);
  mint::matrixf batch(4096 / ranks, 512);
  source.next(mint::view(batch));
  trainer.step(batch);  // the first step initializes (geometric median); not timed
  comm.seconds = comm.bytes = 0;
  for (auto _ : state) {
    source.next(mint::view(batch));
    trainer.step(batch);
  }
  const double steps = double(state.iterations());
  state.counters["ranks"] = double(ranks);
  state.counters["comm_ms"] = 1e3 * comm.seconds / steps;
  state.counters["MB_sent"] = comm.bytes / steps / 1e6;
  state.counters["gradient_MB"] = double(s.parameters().size()) * 4 / 1e6;
  state.counters["rows/s"] = benchmark::Counter(4096 * steps, benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(sae_step, topk, dict::sae_architecture::topk)->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(sae_step, relu, dict::sae_architecture::relu)->Iterations(10)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  dist::mpi_environment mpi(argc, argv);
  dist::mpi_communicator comm;
  world = &comm;
  benchmark::Initialize(&argc, argv);
  // Every rank runs the benchmarks (their collectives need each other); rank 0 reports.
  if (comm.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    benchmark::BenchmarkReporter* quiet = nullptr;
    struct silent : benchmark::BenchmarkReporter {
      bool ReportContext(const Context&) override { return true; }
      void ReportRuns(const std::vector<Run>&) override {}
    } none;
    quiet = &none;
    benchmark::RunSpecifiedBenchmarks(quiet);
  }
  benchmark::Shutdown();
  return 0;
}
