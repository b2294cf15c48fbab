// Apart from the float instantiation, so the two compile in parallel.
#include "instantiations.hpp"

template class mint::toy::transformer<double>;
template class mint::toy::lstm<double>;
