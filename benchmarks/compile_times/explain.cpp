// Row "explain.hpp alone".
#include <mint/explain.hpp>

int main() { return 0; }
