// The toy transformer's backward against central finite differences, in double,
// at every site and at entries of every parameter, for several shapes.
#include <doctest/doctest.h>

#include "objective.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "mint/model/cache.hpp"
#include "mint/toy/transformer.hpp"

using model_t = mint::toy::transformer<double>;

namespace {


std::vector<mint::index> random_element(const mint::tensor_view<const double>& v, mint::rng& r) {
  std::vector<mint::index> at(std::size_t(v.rank()));
  for (int a = 0; a < v.rank(); ++a) at[std::size_t(a)] = mint::index(r.below(std::uint64_t(v.extent(a))));
  return at;
}

template <class V>
auto& element(const V& v, const std::vector<mint::index>& at) {
  mint::index offset = 0;
  for (int a = 0; a < v.rank(); ++a) offset += at[std::size_t(a)] * v.stride(a);
  return v.data()[offset];
}

// Relative agreement with an absolute floor: central differences at eps = 1e-5 in
// double carry truncation error ~1e-10 and rounding ~1e-11 of the objective's scale.
void check_close(double analytic, double numeric, const std::string& where) {
  const double tolerance = 1e-6 * std::max(1.0, std::abs(numeric));
  INFO(where << ": analytic " << analytic << ", finite difference " << numeric);
  CHECK(std::abs(analytic - numeric) <= tolerance);
}

void check_model(const mint::toy::transformer_config& config, std::uint64_t seed) {
  model_t model(config);
  model.initialize(seed);
  // Random layer-norm gains and biases, so their gradients are exercised away from 1 and 0.
  mint::rng r(seed + 1);
  for (const auto& e : model.parameters().entries())
    if (e.name.find("ln") != std::string::npos) r.fill_normal(model.parameters().view_of(e), 0.5, 0.3);

  std::vector<std::vector<mint::token>> rows = {{1, 4, 2, 7, 3, 5}, {6, 0, 2}, {3, 3, 1, 2, 5}};
  const auto tokens = mint::token_batch::from_rows(rows);
  const linear_objective f(tokens, config.vocab, seed + 2);

  // Analytic: one backward, every site's gradient cached, parameter gradients accumulated.
  const analytic_gradients analytic = gradients_of(model, tokens, f);
  const auto& grads = analytic.sites;
  const auto& param_grads = analytic.parameters;
  mint::hook_set<double> none(model.sites());

  const double eps = 1e-5;
  for (const auto& site : model.sites()) {
    const auto g = grads[site.name];
    for (int trial = 0; trial < 4; ++trial) {
      const auto at = random_element(g, r);
      auto perturbed = [&](double delta) {
        mint::hook_set<double> hooks(model.sites());
        hooks.add(site.name, [&](mint::hook_call<double>& c) { element(c.activation, at) += delta; },
                  {.needs = mint::access::add});
        return f(model, tokens, hooks);
      };
      const double numeric = (perturbed(eps) - perturbed(-eps)) / (2 * eps);
      check_close(element(g, at), numeric, "site " + site.name);
    }
  }
  for (const auto& e : model.parameters().entries()) {
    auto w = model.parameters().view_of(e);
    const auto dw = param_grads.view_of(param_grads.find(e.name));
    for (int trial = 0; trial < 3; ++trial) {
      const mint::index i = mint::index(r.below(std::uint64_t(w.size())));
      const double saved = w.data()[i];
      w.data()[i] = saved + eps;
      const double up = f(model, tokens, none);
      w.data()[i] = saved - eps;
      const double down = f(model, tokens, none);
      w.data()[i] = saved;
      check_close(dw.data()[i], (up - down) / (2 * eps), "parameter " + e.name);
    }
  }
}

}  // namespace

TEST_CASE("gradients at every site and parameter: layer norm, GELU MLP, two layers") {
  check_model({.vocab = 9, .context = 8, .d_model = 12, .layers = 2, .heads = 3, .d_head = 4, .d_mlp = 20}, 10);
}

TEST_CASE("gradients with split q/k/v inputs and grouped-query attention") {
  check_model({.vocab = 9, .context = 8, .d_model = 10, .layers = 2, .heads = 4, .kv_heads = 2, .d_head = 3,
               .d_mlp = 16, .activation = mint::toy::activation_fn::gelu_tanh, .split_qkv_input = true},
              20);
}

TEST_CASE("gradients without layer norm, attention only, and with ReLU") {
  check_model({.vocab = 9, .context = 8, .d_model = 8, .layers = 2, .heads = 2, .d_head = 4, .layer_norm = false}, 30);
  check_model({.vocab = 9, .context = 8, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4, .d_mlp = 12,
               .activation = mint::toy::activation_fn::relu, .split_qkv_input = true},
              40);
}

// With split q/k/v inputs the model normalizes the residual once for all heads unless a forward
// hook touches a head's input, and adds the heads' gradients before one layer-norm backward
// unless a backward hook reads them. Every combination must give the same numbers: the paths
// differ only in summation order (double: 1e-12 of the largest entry).
TEST_CASE("split q/k/v inputs: shared and per-head layer norms agree, forward and backward") {
  const mint::toy::transformer_config config{.vocab = 9, .context = 8, .d_model = 10, .layers = 2, .heads = 4,
                                             .kv_heads = 2, .d_head = 3, .d_mlp = 16, .split_qkv_input = true};
  model_t model(config);
  model.initialize(50);
  mint::rng r(51);
  for (const auto& e : model.parameters().entries())
    if (e.name.find("ln") != std::string::npos) r.fill_normal(model.parameters().view_of(e), 0.5, 0.3);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 3, 5}, {6, 0, 2}});
  const linear_objective f(tokens, config.vocab, 52);
  auto close = [](const auto& a, const auto& b) {
    const auto x = mint::as_vector(a);
    const auto y = mint::as_vector(b);
    REQUIRE(x.size() == y.size());
    return (x - y).cwiseAbs().maxCoeff() <= 1e-12 * std::max(1.0, y.cwiseAbs().maxCoeff());
  };

  // Forward: a read-only hook at one head's input forces the per-head path.
  mint::hook_set<double> none(model.sites()), reading(model.sites());
  reading.add("blocks.1.hook_k_input", [](mint::hook_call<double>&) {});
  const auto shared = mint::array<double>::copy_of(model.forward(tokens, none));
  const auto per_head = mint::array<double>::copy_of(model.forward(tokens, reading));
  CHECK(close(shared.view(), per_head.view()));

  // Backward: parameter and embedding gradients with nothing reading the heads' inputs (summed
  // before the layer norm), against every site read (per head), after either forward.
  const analytic_gradients all = gradients_of(model, tokens, f);
  for (mint::hook_set<double>* forward_hooks : {&none, &reading}) {
    mint::activation_cache<double> embed(model.sites(), {"hook_embed"});
    embed.reserve(tokens.batch(), tokens.positions());
    mint::hook_set<double> grad_hooks(model.sites(), mint::hook_phase::backward);
    embed.attach(grad_hooks);
    auto grads = model.parameters().zeros_like();
    (void)f(model, tokens, *forward_hooks);
    model.backward(f.weights.view(), grad_hooks, &grads);
    CHECK(close(embed["hook_embed"], all.sites["hook_embed"]));
    for (const auto& e : grads.entries()) {
      INFO("parameter " << e.name << (forward_hooks == &none ? " (shared forward)" : " (per-head forward)"));
      CHECK(close(grads.view_of(e), all.parameters.view_of(all.parameters.find(e.name))));
    }
  }
}
