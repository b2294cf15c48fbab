// Row "attribution.hpp alone".
#include <mint/attribution.hpp>

int main() { return 0; }
