// Row "steering.hpp alone".
#include <mint/steering.hpp>

int main() { return 0; }
