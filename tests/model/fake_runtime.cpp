// The fake runtime of tests/model/fake_runtime.hpp: its backward against central differences (double).
#include <doctest/doctest.h>
#include "fake_runtime.hpp"
#include <mint/model/metrics.hpp>
TEST_CASE("fake runtime backward matches central differences at the embeddings") {
  for (bool linear : {true, false}) {
    mint_test::fake_runtime<double> model(11, 5, 7, linear, 3);
    const auto tokens = mint::token_batch::from_rows({{1, 4, 2}, {3, 9}});
    const mint::logit_difference metric{{2, 5}, {7, 1}};
    mint::hook_set<double> none(model.sites());
    auto [value, dlogits] = mint::value_and_gradient(metric, model.forward(tokens, none), tokens);
    mint::array<double> grad;
    mint::hook_set<double> grads(model.sites(), mint::hook_phase::backward);
    grads.add("hook_embed", [&](mint::hook_call<double>& c) { grad = mint::array<double>::copy_of(c.activation); });
    model.backward(dlogits.view(), grads);
    for (mint::index b = 0; b < 2; ++b)
      for (mint::index t = 0; t < 3; ++t)
        for (mint::index j = 0; j < 5; ++j) {
          auto at = [&](double eps) {
            mint::hook_set<double> nudge(model.sites());
            nudge.add("hook_embed", [&](mint::hook_call<double>& c) { c.activation(b, t, j) += eps; });
            return metric.value(model.forward(tokens, nudge), tokens);
          };
          const double fd = (at(1e-6) - at(-1e-6)) / 2e-6;
          CHECK(grad.view()(b, t, j) == doctest::Approx(fd).epsilon(1e-6));
        }
  }
}
