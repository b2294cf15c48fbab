// Row "one linear_cka call": as a new user writes it, on Eigen matrices.
#include <mint/similarity.hpp>

int main() {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(100, 8), b = Eigen::MatrixXf::Random(100, 6);
  return mint::linear_cka(a, b) >= 0 ? 0 : 1;
}
