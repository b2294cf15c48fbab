// The reference runtime (opt-in, not in mint.hpp): the toy transformer, its
// trainer and tasks, and models with hand-built, known circuits.
#pragma once

#include "mint/toy/circuits.hpp"
#include "mint/toy/tasks.hpp"
#include "mint/toy/train.hpp"
#include "mint/toy/transformer.hpp"
