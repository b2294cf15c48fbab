// mint: mechanistic-interpretability algorithms over any tensor type and any
// model runtime. This umbrella includes every public header except the toy
// runtime (mint/toy/...), which is opt-in.
#pragma once

#include "mint/core/adam.hpp"
#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/random.hpp"
#include "mint/core/symmetric_eigen.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

#include "mint/adapters/eigen.hpp"
#include "mint/adapters/span.hpp"
#include "mint/adapters/xtensor.hpp"

#include "mint/model.hpp"
#include "mint/patching.hpp"
#include "mint/attribution.hpp"
#include "mint/circuits.hpp"
#include "mint/explain.hpp"
#include "mint/dictionary.hpp"
#include "mint/diffing.hpp"
#include "mint/distributed.hpp"
#include "mint/io.hpp"
#include "mint/similarity.hpp"
#include "mint/steering.hpp"
