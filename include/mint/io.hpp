// mint's file formats, all in one include: .npy and .npz, safetensors, GGUF, llama.cpp control
// vectors, JSON, folders of activation shards, and the atomic writes they all go through.
#pragma once

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
