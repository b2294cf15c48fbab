// Row "read, extract and steer": contrastive pairs read from the toy transformer, a PCA vector,
// and a steered forward.
#include <mint/steering.hpp>
#include <mint/toy/transformer.hpp>

int main() {
  mint::toy::transformer<float> model({.vocab = 16, .context = 8, .d_model = 32, .layers = 2, .heads = 4, .d_head = 8,
                                       .d_mlp = 64});
  model.initialize(1);
  const auto positive = mint::token_batch::from_rows({{1, 5, 9, 2}, {3, 5, 9, 2}});
  const auto negative = mint::token_batch::from_rows({{1, 6, 9, 3}, {3, 6, 9, 3}});
  const auto pairs = mint::read_contrastive(model, positive, negative, {.sites = {"blocks.0.hook_resid_post"}});
  const auto vector = mint::extract_vector(pairs, mint::extraction_method::pca_center);
  mint::hook_set<float> hooks(model.sites());
  mint::add_steering(hooks, vector, 4.0);
  return model.forward(positive, hooks).empty() ? 1 : 0;
}
