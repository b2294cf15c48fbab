// Row "mint.hpp": the umbrella header and an empty main.
#include <mint/mint.hpp>

int main() { return 0; }
