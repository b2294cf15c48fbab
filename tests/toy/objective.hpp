// A linear function of a runtime's logits for gradient checks, shared by the toy runtimes' tests:
// f(logits) = sum of R * logits, with R random at valid positions and zero at padding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/random.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"

struct linear_objective {
  mint::array<double> weights;

  linear_objective(const mint::token_batch& tokens, int vocab, std::uint64_t seed)
      : weights({tokens.batch(), tokens.positions(), mint::index(vocab)}) {
    mint::rng r(seed);
    for (mint::index b = 0; b < tokens.batch(); ++b)
      for (mint::index t = 0; t < tokens.length(b); ++t)
        for (mint::index j = 0; j < vocab; ++j) weights(b, t, j) = r.normal();
  }

  template <class Model>
  double operator()(Model& model, const mint::token_batch& tokens, mint::hook_set<double>& hooks) const {
    const auto logits = model.forward(tokens, hooks);
    double f = 0;
    for (mint::index b = 0; b < logits.extent(0); ++b)
      for (mint::index t = 0; t < logits.extent(1); ++t)
        for (mint::index j = 0; j < logits.extent(2); ++j) f += weights(b, t, j) * logits(b, t, j);
    return f;
  }
};

/// d f / d(every site) and d f / d(every parameter) from one forward and one backward.
struct analytic_gradients {
  mint::activation_cache<double> sites;
  mint::parameter_store<double> parameters;
};

template <class Model>
analytic_gradients gradients_of(Model& model, const mint::token_batch& tokens, const linear_objective& f) {
  std::vector<std::string> all;
  for (const auto& s : model.sites()) all.push_back(s.name);
  analytic_gradients out{mint::activation_cache<double>(model.sites(), all), model.parameters().zeros_like()};
  out.sites.reserve(tokens.batch(), tokens.positions());
  mint::hook_set<double> grad_hooks(model.sites(), mint::hook_phase::backward);
  out.sites.attach(grad_hooks);
  mint::hook_set<double> none(model.sites());
  (void)f(model, tokens, none);
  model.backward(f.weights.view(), grad_hooks, &out.parameters);
  return out;
}
