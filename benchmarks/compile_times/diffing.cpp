// Row "diffing.hpp alone".
#include <mint/diffing.hpp>

int main() { return 0; }
