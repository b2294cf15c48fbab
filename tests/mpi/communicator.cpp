// The MPI communicator's collectives against what one process computes, and the checks that
// stop every rank together.
#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "mint/core/random.hpp"

namespace dist = mint::distributed;
using mpi_test::world;

TEST_CASE("collectives: sums, gathers, all-to-all, broadcast and gather in rank order") {
  dist::communicator_ref c(world());
  const int n = c.size(), me = c.rank();
  std::vector<double> x{double(me), 1.0};
  c.allreduce_sum(std::span<double>(x));
  CHECK(x[0] == double(n * (n - 1) / 2));  // whole numbers: exact in any order
  CHECK(x[1] == double(n));
  const std::vector<float> mine{float(me), float(10 * me)};
  std::vector<float> all(2 * std::size_t(n));
  c.all_gather(std::span<const float>(mine), std::span<float>(all));
  for (int r = 0; r < n; ++r) CHECK((all[2 * std::size_t(r)] == float(r) && all[2 * std::size_t(r) + 1] == float(10 * r)));
  std::vector<double> send(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n));
  for (int p = 0; p < n; ++p) send[std::size_t(p)] = 100.0 * me + p;  // part p for rank p
  c.all_to_all(std::span<const double>(send), std::span<double>(got));
  for (int s = 0; s < n; ++s) CHECK(got[std::size_t(s)] == 100.0 * s + me);
  std::uint64_t value = me == n - 1 ? 42 : 0;
  c.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(&value, 1)), n - 1);
  CHECK(value == 42);
  const std::string text(std::size_t(me + 1), char('a' + me));  // sizes differ by rank
  const auto gathered = c.gather(std::as_bytes(std::span<const char>(text.data(), text.size())), 0);
  if (me == 0) {
    REQUIRE(gathered.size() == std::size_t(n));
    for (int r = 0; r < n; ++r) CHECK(gathered[std::size_t(r)].size() == std::size_t(r + 1));
  } else {
    CHECK(gathered.empty());
  }
  c.barrier();
}

TEST_CASE("ordered_block_sum gives the bits of one process adding the blocks in order") {
  // 6 blocks of 1001 values (not a multiple of 2 or 3 ranks) spanning magnitudes 1e-8 .. 1e8,
  // where a different order of addition changes the last bits.
  dist::communicator_ref c(world());
  const std::size_t blocks = 6, p = 1001, q = blocks / std::size_t(c.size());
  std::vector<std::vector<float>> all(blocks, std::vector<float>(p));
  mint::rng r(7);
  for (auto& b : all)
    for (auto& v : b) v = float(r.normal() * std::pow(10.0, r.uniform() * 16 - 8));
  std::vector<float> expected = all[0];
  for (std::size_t b = 1; b < blocks; ++b)
    for (std::size_t i = 0; i < p; ++i) expected[i] += all[b][i];
  std::vector<std::span<const float>> mine;
  for (std::size_t b = 0; b < q; ++b) mine.emplace_back(all[std::size_t(c.rank()) * q + b]);
  std::vector<float> sum(p);
  dist::ordered_block_sum<float>(c, mine, sum);
  CHECK(mpi_test::same_bits<float>(sum, expected));
  // A reversed order gives other bits: the check above could fail.
  std::vector<float> reversed = all[blocks - 1];
  for (std::size_t b = blocks - 1; b-- > 0;)
    for (std::size_t i = 0; i < p; ++i) reversed[i] += all[b][i];
  CHECK_FALSE(mpi_test::same_bits<float>(reversed, expected));
}

TEST_CASE("agree and check_same stop every rank with the same message") {
  dist::communicator_ref c(world());
  const int last = c.size() - 1;
  try {
    dist::agree(c, "f", "part", c.rank() == last ? "is missing" : "");
    FAIL("agree did not throw");
  } catch (const dist::communication_error& e) {
    CHECK(std::string(e.what()) == "f: part on rank " + std::to_string(last) + " is missing; needs every rank to succeed");
  }
  if (c.size() > 1) {
    CHECK_THROWS_WITH_AS(dist::check_same(c, "g", "options", c.rank() == last ? "b" : "a"),
                         ("g: options is 'b' on rank " + std::to_string(last) + " and 'a' on rank 0; needs the same on every rank").c_str(),
                         dist::communication_error);
  }
  CHECK_NOTHROW(dist::check_same(c, "g", "options", "a"));
  CHECK_NOTHROW(dist::agree(c, "f", "part", ""));
}
