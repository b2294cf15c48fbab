// Row "one SAE training step": a TopK SAE and one trainer step on Eigen matrices.
#include <mint/dictionary.hpp>

int main() {
  namespace dict = mint::dictionary;
  dict::sae sae({.d_in = 16, .d_sae = 64, .architecture = dict::sae_architecture::topk, .k = 4});
  dict::sae_trainer<float> trainer(sae, {.batch_size = 32, .steps = 1});
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(32, 16);
  return trainer.step(x).loss >= 0 ? 0 : 1;
}
