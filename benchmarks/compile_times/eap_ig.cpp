// Row "one eap_ig_scores call": EAP-IG on the toy transformer's edge graph.
#include <mint/circuits.hpp>
#include <mint/toy/transformer.hpp>

int main() {
  mint::toy::transformer<float> model({.vocab = 16, .context = 8, .d_model = 32, .layers = 2, .heads = 4, .d_head = 8,
                                       .d_mlp = 64, .split_qkv_input = true});
  model.initialize(1);
  const auto clean = mint::token_batch::from_rows({{1, 5, 9, 2}}), corrupt = mint::token_batch::from_rows({{1, 6, 9, 3}});
  const auto scores = mint::eap_ig_scores(model, model.graph(), clean, corrupt, mint::logit_difference{{3}, {4}});
  return scores.values.size() > 0 ? 0 : 1;
}
