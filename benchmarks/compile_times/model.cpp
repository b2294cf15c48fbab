// Row "model.hpp": the model area alone.
#include <mint/model.hpp>

int main() { return 0; }
