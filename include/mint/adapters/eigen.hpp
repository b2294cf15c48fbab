// Eigen dense types as mint tensors: Matrix, Array, Map, Ref, Block and
// Transpose of those; row- or column-major; any strides. The adapter lives in
// mint/core/eigen.hpp (mint's own results are Eigen matrices, so every header
// that takes tensors has it); this header names it for users who look here.
#pragma once

#include "mint/core/eigen.hpp"
