// The MPI communicator (docs/distributed.md): MPI_COMM_WORLD, or any communicator, duplicated
// so mint's messages never meet the program's, with errors returned (MPI_ERRORS_RETURN) and
// thrown as mint::distributed::communication_error naming the call. The only mint header that
// includes mpi.h; link MPI (Meson: dependency('mpi', language: 'cpp'); CMake: mint::mpi).
#pragma once

// The C API only: MPI's deprecated C++ bindings add nothing and warn under -Wextra.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include "mint/distributed/communicator.hpp"

namespace mint::distributed {

/// MPI_Init_thread on construction (unless MPI is already initialized) and MPI_Finalize on
/// destruction (when it initialized). One per program, in main, before any mpi_communicator.
class mpi_environment {
public:
  mpi_environment(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw communication_error("mint::distributed::mpi_environment", "MPI_Init_thread", "failed",
                                "needs a working MPI (run under mpirun)");
    owner_ = true;
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  ~mpi_environment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }

private:
  bool owner_ = false;
};

/// A mint communicator over an MPI communicator (MPI_COMM_WORLD by default).
class mpi_communicator {
public:
  /// Every rank of `comm` must construct one within `setup_timeout_seconds` (0: wait forever):
  /// a rank that never arrives (gone, stuck, or running another program) is a communication_error
  /// on the ranks that did, where a blocking setup would wait forever.
  explicit mpi_communicator(MPI_Comm comm = MPI_COMM_WORLD, double setup_timeout_seconds = 60) {
    MPI_Comm_rank(comm, &rank_);
    if (setup_timeout_seconds > 0) {
      MPI_Request arrived = MPI_REQUEST_NULL;
      check(MPI_Ibarrier(comm, &arrived), "MPI_Ibarrier");
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(setup_timeout_seconds);
      for (int done = 0;;) {
        check(MPI_Test(&arrived, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) break;
        if (std::chrono::steady_clock::now() > deadline)
          throw communication_error("mint::distributed::mpi_communicator", "comm",
                                    detail::str("was not joined by every rank within ", setup_timeout_seconds, " s (rank ", rank_, " waited)"),
                                    "needs every rank to construct its mpi_communicator (a rank is gone, stuck or elsewhere)");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;
  ~mpi_communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// The duplicated communicator mint talks over.
  MPI_Comm native() const noexcept { return comm_; }

  void allreduce_sum(std::span<float> x) { check(MPI_Allreduce(MPI_IN_PLACE, x.data(), count(x.size()), MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce"); }
  void allreduce_sum(std::span<double> x) { check(MPI_Allreduce(MPI_IN_PLACE, x.data(), count(x.size()), MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce"); }
  void all_gather(std::span<const float> mine, std::span<float> all) { gather_all(mine, all, MPI_FLOAT); }
  void all_gather(std::span<const double> mine, std::span<double> all) { gather_all(mine, all, MPI_DOUBLE); }
  void all_to_all(std::span<const float> send, std::span<float> received) { exchange(send, received, MPI_FLOAT); }
  void all_to_all(std::span<const double> send, std::span<double> received) { exchange(send, received, MPI_DOUBLE); }
  void broadcast(std::span<std::byte> bytes, int root) {
    check(MPI_Bcast(bytes.data(), count(bytes.size()), MPI_BYTE, root, comm_), "MPI_Bcast");
  }
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> mine, int root) {
    // Every rank learns every size, so a total beyond MPI's int counts stops all of them alike.
    int mine_size = count(mine.size());
    std::vector<int> sizes(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&mine_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    std::vector<int> offsets(sizes.size());
    std::size_t total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) offsets[r] = int(std::min<std::size_t>(total, 2147483647)), total += std::size_t(sizes[r]);
    count(total);
    std::vector<std::byte> joined(rank_ == root ? total : 0);
    if (rank_ != root) sizes.clear(), offsets.clear();
    check(MPI_Gatherv(mine.data(), mine_size, MPI_BYTE, joined.data(), sizes.data(), offsets.data(), MPI_BYTE, root, comm_),
          "MPI_Gatherv");
    std::vector<std::vector<std::byte>> out;
    for (std::size_t r = 0; r < sizes.size(); ++r)
      out.emplace_back(joined.begin() + offsets[r], joined.begin() + offsets[r] + sizes[r]);
    return out;
  }
  void barrier() { check(MPI_Barrier(comm_), "MPI_Barrier"); }

private:
  template <class T>
  void gather_all(std::span<const T> mine, std::span<T> all, MPI_Datatype type) {
    need(all.size(), mine.size() * std::size_t(size_), "all_gather");
    check(MPI_Allgather(mine.data(), count(mine.size()), type, all.data(), count(mine.size()), type, comm_), "MPI_Allgather");
  }
  template <class T>
  void exchange(std::span<const T> send, std::span<T> received, MPI_Datatype type) {
    if (send.size() % std::size_t(size_) != 0)
      throw argument_error("mint::distributed::mpi_communicator::all_to_all", "send", detail::str("holds ", send.size(), " values"),
                           detail::str("needs a multiple of the ", size_, " ranks"));
    need(received.size(), send.size(), "all_to_all");
    const int part = count(send.size() / std::size_t(size_));
    check(MPI_Alltoall(send.data(), part, type, received.data(), part, type, comm_), "MPI_Alltoall");
  }
  static void need(std::size_t got, std::size_t want, const char* what) {
    if (got != want)
      throw argument_error(std::string("mint::distributed::mpi_communicator::") + what, "the receiving buffer",
                           detail::str("holds ", got, " values"), detail::str("needs ", want));
  }
  static int count(std::size_t n) {
    if (n > std::size_t(2147483647))
      throw argument_error("mint::distributed::mpi_communicator", "a buffer", detail::str("holds ", n, " values"),
                           "needs at most 2^31 - 1 per call (MPI's int counts)");
    return int(n);
  }
  void check(int code, const char* call) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw communication_error("mint::distributed::mpi_communicator", call, detail::str("failed on rank ", rank_, ": ", std::string(text, std::size_t(length))),
                              "needs every rank alive and making the same calls");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

static_assert(communicator<mpi_communicator>);

/// Runs f() and returns what it returns. An exception out of it prints "mint: rank r of N stops
/// every rank: <what>" on this rank's stderr and ends the whole job (MPI_Abort), where the other
/// ranks would otherwise wait forever in their next collective. Wrap each rank's work in main.
template <class F>
decltype(auto) abort_on_error(mpi_communicator& comm, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mint: rank %d of %d stops every rank: %s\n", comm.rank(), comm.size(), e.what());
    std::fflush(stderr);
    MPI_Abort(comm.native(), 1);
    std::abort();  // MPI_Abort does not return; if it did, still never go on
  }
}

}  // namespace mint::distributed
