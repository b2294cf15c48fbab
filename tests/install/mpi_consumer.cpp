// An installed mint with MPI through CMake's mint::mpi and pkg-config's mint-mpi: one rank
// (MPI's singleton start, no mpirun) sums blocks in order through the MPI communicator.
#include <mint/distributed/mpi.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  mint::distributed::mpi_environment mpi(argc, argv);
  mint::distributed::mpi_communicator world;
  const std::vector<float> a{1, 2}, b{3, 4};
  const std::vector<std::span<const float>> blocks{a, b};
  std::vector<float> sum(2);
  mint::distributed::ordered_block_sum<float>(world, blocks, sum);
  std::printf("mpi consumer: rank %d of %d, block sum %g %g\n", world.rank(), world.size(), sum[0], sum[1]);
  return sum[0] == 4 && sum[1] == 6 ? 0 : 1;
}
