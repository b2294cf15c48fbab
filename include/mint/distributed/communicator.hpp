// What mint asks of a group of processes: its rank and size, sums, gathers, an all-to-all,
// a broadcast and a barrier. Two implementations: single_process (here: nothing to talk to)
// and mpi_communicator (mint/distributed/mpi.hpp, the only header including mpi.h). Every
// algorithm keeps one code path: it talks to a communicator_ref, which is single_process
// unless the user hands it another. ordered_block_sum is the reduction that makes N ranks
// give the bits of one process (docs/distributed.md).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "mint/core/error.hpp"

namespace mint::distributed {

/// A collective that failed (a peer gone, a transport error) or ranks that disagree.
class communication_error : public error {
  using error::error;
};

/// A group of processes. Every call is collective: each rank makes it, in the same order.
/// all_gather: each rank gives `mine` (the same count everywhere) and gets every rank's in rank
/// order. all_to_all: `send` holds size() equal parts, part p for rank p; `received` gets part
/// rank() of every rank, in rank order. gather: the root gets every rank's bytes (others none).
template <class C>
concept communicator = requires(C& c, const C& cc, std::span<float> f, std::span<double> d, std::span<const float> cf,
                                std::span<const double> cd, std::span<std::byte> b, std::span<const std::byte> cb, int root) {
  { cc.rank() } -> std::convertible_to<int>;
  { cc.size() } -> std::convertible_to<int>;
  c.allreduce_sum(f);
  c.allreduce_sum(d);
  c.all_gather(cf, f);
  c.all_gather(cd, d);
  c.all_to_all(cf, f);
  c.all_to_all(cd, d);
  c.broadcast(b, root);
  { c.gather(cb, root) } -> std::same_as<std::vector<std::vector<std::byte>>>;
  c.barrier();
};

/// One process: rank 0 of 1. Sums and broadcasts leave buffers as they are.
class single_process {
public:
  int rank() const noexcept { return 0; }
  int size() const noexcept { return 1; }
  template <class T>
  void allreduce_sum(std::span<T>) {}
  template <class T>
  void all_gather(std::span<const T> mine, std::span<T> all) {
    copy_all(mine, all, "all_gather");
  }
  template <class T>
  void all_to_all(std::span<const T> send, std::span<T> received) {
    copy_all(send, received, "all_to_all");
  }
  void broadcast(std::span<std::byte>, int) {}
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> mine, int) {
    return {std::vector<std::byte>(mine.begin(), mine.end())};
  }
  void barrier() {}

private:
  template <class T>
  static void copy_all(std::span<const T> from, std::span<T> to, const char* what) {
    if (from.size() != to.size())
      throw argument_error(std::string("mint::distributed::single_process::") + what, "the receiving buffer",
                           detail::str("holds ", to.size(), " values"), detail::str("needs ", from.size()));
    if (!from.empty() && from.data() != to.data()) std::memmove(to.data(), from.data(), from.size() * sizeof(T));
  }
};

static_assert(communicator<single_process>);

/// A non-owning handle on any communicator (the communicator outlives it), so compiled
/// algorithms take one type. Default-constructed: a single process.
class communicator_ref {
public:
  communicator_ref() : communicator_ref(single()) {}
  template <communicator C>
    requires(!std::same_as<C, communicator_ref>)
  communicator_ref(C& c) : self_(&c), calls_(&table<C>) {}  // NOLINT: implicit, like a reference

  int rank() const { return calls_->rank(self_); }
  int size() const { return calls_->size(self_); }
  void allreduce_sum(std::span<float> x) { calls_->sum_f(self_, x); }
  void allreduce_sum(std::span<double> x) { calls_->sum_d(self_, x); }
  void all_gather(std::span<const float> mine, std::span<float> all) { calls_->gather_f(self_, mine, all); }
  void all_gather(std::span<const double> mine, std::span<double> all) { calls_->gather_d(self_, mine, all); }
  void all_to_all(std::span<const float> send, std::span<float> received) { calls_->swap_f(self_, send, received); }
  void all_to_all(std::span<const double> send, std::span<double> received) { calls_->swap_d(self_, send, received); }
  void broadcast(std::span<std::byte> bytes, int root) { calls_->broadcast(self_, bytes, root); }
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> mine, int root) { return calls_->gather(self_, mine, root); }
  void barrier() { calls_->barrier(self_); }

private:
  struct calls {
    int (*rank)(void*);
    int (*size)(void*);
    void (*sum_f)(void*, std::span<float>);
    void (*sum_d)(void*, std::span<double>);
    void (*gather_f)(void*, std::span<const float>, std::span<float>);
    void (*gather_d)(void*, std::span<const double>, std::span<double>);
    void (*swap_f)(void*, std::span<const float>, std::span<float>);
    void (*swap_d)(void*, std::span<const double>, std::span<double>);
    void (*broadcast)(void*, std::span<std::byte>, int);
    std::vector<std::vector<std::byte>> (*gather)(void*, std::span<const std::byte>, int);
    void (*barrier)(void*);
  };
  template <class C>
  static C& as(void* p) {
    return *static_cast<C*>(p);
  }
  template <class C>
  static constexpr calls table{
      [](void* p) { return int(as<C>(p).rank()); },
      [](void* p) { return int(as<C>(p).size()); },
      [](void* p, std::span<float> x) { as<C>(p).allreduce_sum(x); },
      [](void* p, std::span<double> x) { as<C>(p).allreduce_sum(x); },
      [](void* p, std::span<const float> a, std::span<float> b) { as<C>(p).all_gather(a, b); },
      [](void* p, std::span<const double> a, std::span<double> b) { as<C>(p).all_gather(a, b); },
      [](void* p, std::span<const float> a, std::span<float> b) { as<C>(p).all_to_all(a, b); },
      [](void* p, std::span<const double> a, std::span<double> b) { as<C>(p).all_to_all(a, b); },
      [](void* p, std::span<std::byte> b, int root) { as<C>(p).broadcast(b, root); },
      [](void* p, std::span<const std::byte> b, int root) { return as<C>(p).gather(b, root); },
      [](void* p) { as<C>(p).barrier(); },
  };
  static single_process& single() {
    static single_process one;
    return one;
  }

  void* self_;
  const calls* calls_;
};

/// sum = blocks[0] + blocks[1] + ... over the whole group's blocks, added left to right in
/// global block order (rank r holds blocks r q .. r q + q - 1, q = blocks.size(), the same on
/// every rank), so the bits depend on the blocks alone, never on how many ranks hold them.
/// Sends (q + 1) (N-1)/N P values per rank, P = sum.size(): a reduce-scatter by parameter chunk
/// (all_to_all) and an all_gather, a ring allreduce's 2 (N-1)/N P at q = 1. `sum` may be blocks[0].
template <class T>
void ordered_block_sum(communicator_ref comm, std::span<const std::span<const T>> blocks, std::span<T> sum) {
  const char* fn = "mint::distributed::ordered_block_sum";
  const std::size_t p = sum.size(), q = blocks.size(), n = std::size_t(comm.size());
  if (q == 0) throw argument_error(fn, "blocks", "is empty", "needs at least one block per rank");
  for (const auto& b : blocks)
    if (b.size() < p) throw argument_error(fn, "blocks", detail::str("holds a block of ", b.size(), " values"), detail::str("needs ", p));
  if (n == 1) {
    if (blocks[0].data() != sum.data()) std::copy(blocks[0].begin(), blocks[0].begin() + std::ptrdiff_t(p), sum.begin());
    for (std::size_t b = 1; b < q; ++b)
      for (std::size_t i = 0; i < p; ++i) sum[i] += blocks[b][i];
    return;
  }
  // Chunk c of every block goes to rank c, which adds the group's q N chunks in block order.
  const std::size_t chunk = (p + n - 1) / n;
  std::vector<T> send(n * q * chunk, T(0)), received(n * q * chunk);
  for (std::size_t c = 0; c < n; ++c)
    for (std::size_t b = 0; b < q; ++b) {
      const std::size_t first = std::min(p, c * chunk), last = std::min(p, first + chunk);
      std::copy(blocks[b].begin() + std::ptrdiff_t(first), blocks[b].begin() + std::ptrdiff_t(last),
                send.begin() + std::ptrdiff_t((c * q + b) * chunk));
    }
  comm.all_to_all(std::span<const T>(send), std::span<T>(received));
  // received: from rank s, its blocks 0..q-1: global blocks s q .. s q + q - 1, in order.
  std::vector<T> mine(received.begin(), received.begin() + std::ptrdiff_t(chunk));
  for (std::size_t g = 1; g < n * q; ++g)
    for (std::size_t i = 0; i < chunk; ++i) mine[i] += received[g * chunk + i];
  std::vector<T> all(n * chunk);
  comm.all_gather(std::span<const T>(mine), std::span<T>(all));
  std::copy(all.begin(), all.begin() + std::ptrdiff_t(p), sum.begin());
}

/// Every rank's values, equally many on each, in rank order (all_gather into a new vector).
template <class T>
std::vector<T> gathered(communicator_ref comm, std::span<const T> mine) {
  std::vector<T> all(mine.size() * std::size_t(comm.size()));
  comm.all_gather(mine, std::span<T>(all));
  return all;
}

}  // namespace mint::distributed

namespace mint::detail {

// Rank 0's text, on every rank.
inline std::string broadcast_text(distributed::communicator_ref comm, std::string text) {
  std::uint64_t length = text.size();
  comm.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(&length, 1)), 0);
  text.resize(std::size_t(length));
  comm.broadcast(std::as_writable_bytes(std::span<char>(text.data(), text.size())), 0);
  return text;
}

// Every rank's text, on rank 0 (empty elsewhere).
inline std::vector<std::string> gather_text(distributed::communicator_ref comm, const std::string& text) {
  std::vector<std::string> out;
  for (const auto& bytes : comm.gather(std::as_bytes(std::span<const char>(text.data(), text.size())), 0))
    out.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return out;
}

}  // namespace mint::detail

namespace mint::distributed {

/// A collective check: every rank says whether its part is well (`problem` empty) and every rank
/// throws the same communication_error, naming each rank's problem, when any rank has one, so a
/// mismatch stops the whole group instead of leaving some ranks waiting in a collective.
inline void agree(communicator_ref comm, const char* function, const char* argument, const std::string& problem) {
  std::string joined = problem.empty() ? "" : "on rank 0 " + problem;
  if (comm.size() > 1) {
    const auto all = detail::gather_text(comm, problem);
    joined.clear();
    for (std::size_t r = 0; r < all.size(); ++r)
      if (!all[r].empty()) joined += detail::str(joined.empty() ? "" : "; ", "on rank ", r, " ", all[r]);
    joined = detail::broadcast_text(comm, joined);
  }
  if (!joined.empty()) throw communication_error(function, argument, joined, "needs every rank to succeed");
}

/// A collective check that every rank holds rank 0's `value` (options, a shard folder's files):
/// every rank throws the same communication_error, naming the ranks that differ, when one does.
inline void check_same(communicator_ref comm, const char* function, const char* argument, const std::string& value) {
  if (comm.size() == 1) return;
  const auto all = detail::gather_text(comm, value);
  std::string problem;
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) problem += detail::str(problem.empty() ? "" : "; ", "is '", all[r], "' on rank ", r);
  if (!problem.empty()) problem += " and '" + all[0] + "' on rank 0";
  problem = detail::broadcast_text(comm, problem);
  if (!problem.empty()) throw communication_error(function, argument, problem, "needs the same on every rank");
}

}  // namespace mint::distributed
