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
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

#include "mint/adapters/eigen.hpp"
#include "mint/adapters/span.hpp"
#include "mint/adapters/xtensor.hpp"

#include "mint/model.hpp"
#include "mint/patching/edge_patching.hpp"
#include "mint/dictionary/ksvd.hpp"
#include "mint/dictionary/lasso.hpp"
#include "mint/dictionary/omp.hpp"
#include "mint/dictionary/online_dictionary.hpp"
#include "mint/dictionary/superposition.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/io/activation_shards.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/control_vector.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/gguf.hpp"
#include "mint/io/json.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/ndarray.hpp"
#include "mint/io/npy.hpp"
#include "mint/io/npz.hpp"
#include "mint/io/safetensors.hpp"
