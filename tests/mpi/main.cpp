// The MPI tests' main: MPI up before doctest runs, down after. Run under
// `mpirun -np N` (meson test runs N = 1, 2 and 3); every rank runs every case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "mint/distributed/mpi.hpp"

int main(int argc, char** argv) {
  mint::distributed::mpi_environment mpi(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
