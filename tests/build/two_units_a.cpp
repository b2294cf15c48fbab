// Two translation units that both include mint.hpp and use it, linked into one
// program: catches a non-inline definition in a header.
#include <mint/mint.hpp>

#include <cstdio>

double sum_in_unit_b();

int main() {
  mint::matrixf m = mint::matrixf::Ones(2, 3);
  const double a = double(mint::as_matrix(mint::view(m)).sum());
  const double b = sum_in_unit_b();
  std::printf("unit a %.0f, unit b %.0f\n", a, b);
  return a == 6.0 && b == 6.0 ? 0 : 1;
}
