// A rank that fails mid-training while the others wait in a collective: run by
// dying_rank.py, which checks the job ends (no hang) with the failed rank's message.
// argv[1]: "throw" (an error inside abort_on_error), "exit" (the process just ends) or "late" (a
// rank joins a communicator after the others' setup timeout).
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/train.hpp"
#include "mint/distributed/mpi.hpp"

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  mint::distributed::mpi_environment mpi(argc, argv);
  mint::distributed::mpi_communicator world;
  const std::string how = argc > 1 ? argv[1] : "throw";
  if (how == "late") {  // the last rank joins a second communicator 3 s late; the others wait 1 s
    if (world.rank() == world.size() - 1) std::this_thread::sleep_for(std::chrono::seconds(3));
    return mint::distributed::abort_on_error(world, [&] {
      mint::distributed::mpi_communicator late(MPI_COMM_WORLD, 1.0);
      return 0;
    });
  }
  return mint::distributed::abort_on_error(world, [&] {
    dict::sae s({.d_in = 8, .d_sae = 16, .architecture = dict::sae_architecture::topk, .k = 2}, 1);
    dict::sae_train_options o{.batch_size = 12, .steps = 1000, .gradient_blocks = 6};
    o.communicator = world;
    dict::sae_trainer<float> t(s, o);
    mint::matrixf batch = mint::matrixf::Ones(12 / world.size(), 8);
    for (int step = 0; step < 1000; ++step) {
      if (step == 5 && world.rank() == world.size() - 1) {
        if (how == "exit") std::_Exit(3);
        throw mint::argument_error("the data source", "shard 7", "is unreadable", "needs a readable file");
      }
      batch(0, step % 8) += 1.0f;
      t.step(batch);
    }
    return 0;
  });
}
