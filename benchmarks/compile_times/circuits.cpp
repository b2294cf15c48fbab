// Row "circuits.hpp alone".
#include <mint/circuits.hpp>

int main() { return 0; }
