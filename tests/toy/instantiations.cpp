#include "instantiations.hpp"

template class mint::toy::transformer<float>;
template class mint::toy::lstm<float>;
