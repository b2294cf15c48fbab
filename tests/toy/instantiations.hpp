// The toy transformer is instantiated once for the whole test executable (in
// instantiations*.cpp) instead of in every file that uses it: compile time.
#pragma once

#include "mint/toy/transformer.hpp"

extern template class mint::toy::transformer<float>;
extern template class mint::toy::transformer<double>;
