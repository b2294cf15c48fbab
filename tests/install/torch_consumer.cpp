// An installed mint with libtorch through CMake's mint::torch: a torch tensor as a mint tensor.
#include <mint/adapters/torch.hpp>
#include <mint/similarity.hpp>

#include <cstdio>

int main() {
  const at::Tensor x = at::arange(12, at::kFloat).reshape({4, 3}) + at::eye(4, 3);
  const double cka = mint::linear_cka(x, x);
  std::printf("torch consumer: linear CKA of a torch tensor with itself %.3f\n", cka);
  return cka > 0.999 ? 0 : 1;
}
