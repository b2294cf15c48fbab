// The toy transformer and LSTM are instantiated once for the whole test executable (in
// instantiations*.cpp) instead of in every file that uses them: compile time.
#pragma once

#include "mint/toy/lstm.hpp"
#include "mint/toy/transformer.hpp"

extern template class mint::toy::transformer<float>;
extern template class mint::toy::transformer<double>;
extern template class mint::toy::lstm<float>;
extern template class mint::toy::lstm<double>;
