// Row "one crosscoder training": a user's two models' activations, a crosscoder trained on them.
#include <Eigen/Core>
#include <mint/adapters/eigen.hpp>
#include <mint/diffing/crosscoder.hpp>

int main() {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(512, 16), b = Eigen::MatrixXf::Random(512, 16);
  mint::diffing::crosscoder coder({.d_in = 16, .models = 2, .d_sae = 32});
  coder.train(a, b, {.batch_size = 128, .steps = 10});
  return int(coder.exclusive_latents().shared.size() > 1000);
}
