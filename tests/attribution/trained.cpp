// Attribution on a trained model: the tour's induction transformer (2 layers, 4 heads,
// trained for 400 steps). Completeness of integrated gradients as the steps grow, the
// adaptive rule at 1% and 0.1%, and attribution patching's ranking of heads against real
// activation patching. Named "*learns induction*" so -Dtraining_tests=false skips it.
#include "mint/attribution.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mint/toy/tasks.hpp"
#include "mint/toy/train.hpp"
#include "mint/toy/transformer.hpp"

namespace {

// Ranks (0 = smallest) of values, for Spearman's correlation; no ties expected.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < order.size(); ++i) out[order[i]] = double(i);
  return out;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const auto ra = ranks(a), rb = ranks(b);
  double d2 = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
  const double n = double(ra.size());
  return 1 - 6 * d2 / (n * (n * n - 1));
}

}  // namespace

TEST_CASE("attribution on a model that learns induction: completeness, adaptive steps, attribution patching ranks heads as real patching") {
  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2, .heads = 4,
                                        .d_head = 16});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 400, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  trainer.run();
  mint::rng r(2026);
  const auto sample = task.sample(r, 8);
  REQUIRE(mint::toy::evaluate(model, sample).accuracy > 0.9);  // it did learn induction

  // The metric: each row's last scored target against the next token id, at that position.
  mint::logit_difference metric;
  for (mint::index b = 0; b < 8; ++b) {
    std::size_t last = 0;
    for (std::size_t i = 0; i < sample.rows.size(); ++i)
      if (sample.rows[i] == b) last = i;
    metric.correct.push_back(sample.targets[last]);
    metric.wrong.push_back(mint::token(sample.targets[last] % (task.vocab - 1) + 1));
    metric.positions.push_back(sample.positions[last]);
  }

  // Completeness: |delta| falls as Gauss-Legendre steps grow (every doubling from 8 on).
  std::vector<double> deltas;
  for (const int steps : {8, 16, 32, 64}) {
    const auto ig = mint::integrated_gradients(model, sample.tokens, metric, {.steps = steps});
    deltas.push_back(std::abs(ig.delta) / std::abs(ig.value - ig.baseline_value));
    MESSAGE("steps " << steps << ": |delta| / |change| = " << deltas.back());
  }
  for (std::size_t i = 1; i < deltas.size(); ++i) CHECK(deltas[i] < deltas[i - 1]);
  for (const double tolerance : {1e-2, 1e-3}) {
    const auto ig = mint::adaptive_integrated_gradients(model, sample.tokens, metric, {.tolerance = tolerance});
    MESSAGE("adaptive at " << tolerance << ": " << ig.steps << " steps");
    CHECK(ig.converged);
    CHECK(std::abs(ig.delta) <= tolerance * std::abs(ig.value - ig.baseline_value));
  }

  // The corrupt prompt changes one token per row: the earlier copy of the answer (the token the
  // induction head copies) becomes the wrong token, so the model now predicts that.
  auto other = sample;
  for (mint::index b = 0; b < 8; ++b) {
    const mint::index p = metric.positions[std::size_t(b)];
    for (mint::index q = p - 1; q >= 1; --q)
      if (sample.tokens(b, q) == sample.tokens(b, p) && sample.tokens(b, q + 1) == metric.correct[std::size_t(b)]) {
        other.tokens(b, q + 1) = metric.wrong[std::size_t(b)];
        break;
      }
  }
  // Attribution patching per head (summed over rows and positions) against real patching of
  // each head's z from the corrupt prompt, every position at once.
  const auto estimate = mint::attribution_patching(model, sample.tokens, other.tokens, metric,
                                                   {.sites = {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"}});
  const auto corrupt = mint::run_with_cache(model, other.tokens, {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"});
  std::vector<double> approximate, real;
  for (int layer = 0; layer < 2; ++layer)
    for (int head = 0; head < 4; ++head) {
      const std::string site = "blocks." + std::to_string(layer) + ".attn.hook_z";
      const auto& e = estimate[site];
      double sum = 0;
      mint::detail::for_each_index(e.values.extents(), [&](const auto& i) {
        if (i[2] == head) sum += mint::detail::element_at(e.values.view(), i);
      });
      approximate.push_back(sum);
      mint::hook_set<float> hooks(model.sites());
      hooks.add(site, [&](mint::hook_call<float>& c) {
        mint::detail::for_each_index(c.activation.extents(), [&](const auto& i) {
          if (i[2] == head) mint::detail::element_at(c.activation, i) = mint::detail::element_at(corrupt.cache[site], i);
        });
      });
      real.push_back(metric.value(model.forward(sample.tokens, hooks), sample.tokens) - estimate.clean_value);
      MESSAGE("L" << layer << "H" << head << ": attribution patching " << approximate.back() << ", real " << real.back());
    }
  const double rho = spearman(approximate, real);
  MESSAGE("Spearman rank correlation over the 8 heads: " << rho);
  // In each layer, the head real patching finds most important (the largest drop: the
  // previous-token head in layer 0, the induction head in layer 1) is attribution patching's too.
  // Across layers the order is not asserted: a head whose attention saturates (the previous-token
  // head) is underestimated by the linear estimate, AtP's known failure, by a factor that
  // depends on the trained weights' rounding (2 to 4 here).
  for (std::size_t layer = 0; layer < 2; ++layer) {
    const auto first = std::ptrdiff_t(4 * layer);
    CAPTURE(layer);
    CHECK(std::min_element(real.begin() + first, real.begin() + first + 4) - real.begin() ==
          std::min_element(approximate.begin() + first, approximate.begin() + first + 4) - approximate.begin());
  }
  CHECK(rho > 0.5);
}
