// Row "dictionary.hpp": the dictionary area alone.
#include <mint/dictionary.hpp>

int main() { return 0; }
