// What the MPI tests share: the world communicator, and bitwise comparison.
#pragma once

#include <cstring>
#include <span>

#include "mint/distributed/mpi.hpp"

namespace mpi_test {

inline mint::distributed::mpi_communicator& world() {
  static mint::distributed::mpi_communicator w;
  return w;
}

/// The same bits (not merely equal values: -0 and 0 differ, as do NaNs' payloads).
template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace mpi_test
