// One algorithm header alone takes mint's own result types (mint::matrixf): the
// Eigen adapter lives where matrixf is defined, so no further include is needed.
#include <mint/similarity/linear_cka.hpp>

int main() {
  const mint::matrixf a = mint::matrixf::Random(20, 3), b = a * 2.0f;
  return mint::linear_cka(a, b) > 0.99 ? 0 : 1;
}
