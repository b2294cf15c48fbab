// Row "similarity.hpp": the similarity area alone.
#include <mint/similarity.hpp>

int main() { return 0; }
