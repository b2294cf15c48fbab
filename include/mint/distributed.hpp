// mint across processes: the communicator concept, the single-process communicator and the
// deterministic reductions every distributed algorithm uses (docs/distributed.md). The MPI
// communicator is mint/distributed/mpi.hpp, which includes mpi.h and is not included here.
#pragma once

#include "mint/distributed/communicator.hpp"
