#include "instantiations.hpp"

template class mint::toy::transformer<float>;
