// Row "one OMP call": sparse codes of Eigen matrices.
#include <mint/dictionary.hpp>

int main() {
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(20, 8), d = Eigen::MatrixXf::Random(12, 8);
  return mint::dictionary::omp(x, d, {.nonzeros = 3}).rows() == 20 ? 0 : 1;
}
