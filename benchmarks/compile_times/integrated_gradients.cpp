// Row "one integrated_gradients call": IG at the embeddings of the toy transformer.
#include <mint/attribution.hpp>
#include <mint/toy/transformer.hpp>

int main() {
  mint::toy::transformer<float> model({.vocab = 16, .context = 8, .d_model = 32, .layers = 2, .heads = 4, .d_head = 8, .d_mlp = 64});
  model.initialize(1);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 9, 2}});
  const auto ig = mint::integrated_gradients(model, tokens, mint::logit_difference{{3}, {4}}, {.steps = 8});
  return ig.values.size() > 0 ? 0 : 1;
}
