// The reference runtimes (opt-in, not in mint.hpp): the toy transformer, the toy
// LSTM, their trainer and tasks, and models with hand-built, known circuits.
#pragma once

#include "mint/toy/circuits.hpp"
#include "mint/toy/files.hpp"
#include "mint/toy/lstm.hpp"
#include "mint/toy/orthogonalize.hpp"
#include "mint/toy/tasks.hpp"
#include "mint/toy/train.hpp"
#include "mint/toy/transformer.hpp"
