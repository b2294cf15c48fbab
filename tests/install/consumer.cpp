// A program that uses an installed mint, built by scripts/check-install.
#include <mint/mint.hpp>

#include <cstdio>

int main() {
  Eigen::MatrixXf m = Eigen::MatrixXf::Identity(3, 3);
  const auto v = mint::view(m);
  std::printf("consumer: mint sees a %td x %td view, trace %.0f\n", v.extent(0), v.extent(1),
              double(mint::as_matrix(v).trace()));
  return mint::as_matrix(v).trace() == 3.0f ? 0 : 1;
}
