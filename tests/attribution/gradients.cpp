// Saliency, gradient x activation and integrated gradients on the fake runtime (tests/model):
// exact on a model linear in its embeddings, against central differences in double on a tanh
// model, completeness as the steps grow, and the errors bad input gets.
#include "mint/attribution.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/toy/transformer.hpp"

#include "../model/fake_runtime.hpp"

namespace {

using mint_test::fake_runtime;

mint::token_batch two_prompts() {
  auto t = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6}});
  return t;
}

// The logit difference of tokens 2 and 5 at each row's last position.
mint::logit_difference metric_of(const mint::token_batch& t) { return {std::vector<mint::token>(std::size_t(t.batch()), 2), std::vector<mint::token>(std::size_t(t.batch()), 5), {}}; }

// The metric with `delta` added to one element of the site's activation (a forward hook).
template <class R, class M>
double metric_with(R& model, const mint::token_batch& t, const M& m, const std::string& site, std::array<mint::index, 4> at,
                   double delta) {
  mint::hook_set<typename R::scalar_type> hooks(model.sites());
  hooks.add(site, [&](mint::hook_call<typename R::scalar_type>& c) { mint::detail::element_at(c.activation, at) += delta; });
  const auto logits = model.forward(t, hooks);
  return m.value(logits, t);
}

}  // namespace

TEST_CASE("saliency and gradient x activation agree with central differences in double") {
  fake_runtime<double> model(9, 6, 5, /*linear=*/false, 11);
  const auto t = two_prompts();
  const auto m = metric_of(t);
  for (const std::string site : {"hook_embed", "blocks.0.mlp.hook_post"}) {
    CAPTURE(site);
    const auto signed_grad = mint::saliency(model, t, m, {.site = site == "hook_embed" ? "" : site, .absolute = false});
    const auto absolute = mint::saliency(model, t, m, {.site = site});
    const auto gxa = mint::gradient_x_activation(model, t, m, {.site = site});
    CHECK(signed_grad.site == site);
    const auto acts = mint::run_with_cache(model, t, {site});
    // Entries at valid positions of both rows, and one padded position (row 1, position 3) that must be 0.
    for (const std::array<mint::index, 4> at : {std::array<mint::index, 4>{0, 3, 1, 0}, {0, 1, 4, 0}, {1, 2, 0, 0}, {1, 0, 3, 0}}) {
      const double h = 1e-5;
      const double fd = (metric_with(model, t, m, site, at, h) - metric_with(model, t, m, site, at, -h)) / (2 * h);
      const double g = mint::detail::element_at(signed_grad.values.view(), at);
      // Central differences in double: error O(h^2) ~ 1e-10 against values of order 0.1.
      CHECK(g == doctest::Approx(fd).epsilon(1e-7));
      CHECK(mint::detail::element_at(absolute.values.view(), at) == doctest::Approx(std::abs(fd)).epsilon(1e-7));
      CHECK(mint::detail::element_at(gxa.values.view(), at) ==
            doctest::Approx(fd * mint::detail::element_at(acts.cache[site], at)).epsilon(1e-7));
    }
    CHECK(mint::detail::element_at(signed_grad.values.view(), {1, 3, 0, 0}) == 0.0);
    CHECK(signed_grad.value == doctest::Approx(m.value(model.forward(t, *std::make_unique<mint::hook_set<double>>()), t)));
  }
}

TEST_CASE("integrated gradients on a model linear in its embeddings is (x - baseline) * gradient for every rule") {
  fake_runtime<double> model(9, 6, 5, /*linear=*/true, 3);
  const auto t = two_prompts();
  const auto m = metric_of(t);
  const auto grad = mint::saliency(model, t, m, {.absolute = false});
  const auto x = mint::run_with_cache(model, t, {"hook_embed"});
  for (const auto rule : {mint::step_rule::riemann_left, mint::step_rule::riemann_right, mint::step_rule::riemann_middle,
                          mint::step_rule::riemann_trapezoid, mint::step_rule::gauss_legendre})
    for (const int steps : {2, 7}) {
      CAPTURE(mint::to_string(rule));
      CAPTURE(steps);
      // Baseline: zero, and a given tensor (one row shared by both prompts).
      mint::array<double> row({4, 6});
      for (mint::index i = 0; i < 4; ++i)
        for (mint::index j = 0; j < 6; ++j) row(i, j) = 0.1 * double(i) - 0.05 * double(j);
      for (const bool zero : {true, false}) {
        const auto r = mint::integrated_gradients(
            model, t, m, {.baseline = zero ? mint::ablation::zero() : mint::ablation::tensor(row), .rule = rule, .steps = steps});
        CHECK(r.steps == steps);
        mint::detail::for_each_index(r.values.extents(), [&](const auto& i) {
          const double base = zero ? 0.0 : row(i[1], i[2]);
          const double valid = i[1] < t.length(i[0]) ? 1.0 : 0.0;
          // Exact up to rounding of sums of a few dozen terms of order 1.
          CHECK(mint::detail::element_at(r.values.view(), i) ==
                doctest::Approx(valid * (mint::detail::element_at(x.cache["hook_embed"], i) - base) *
                                mint::detail::element_at(grad.values.view(), i)).epsilon(1e-12).scale(1e-12));
        });
        CHECK(std::abs(r.delta) < 1e-12);
      }
    }
}

TEST_CASE("integrated gradients: completeness improves with the steps, bounded batches change nothing, adaptive meets its tolerance") {
  fake_runtime<double> model(9, 6, 5, /*linear=*/false, 5);
  const auto t = two_prompts();
  const auto m = metric_of(t);
  double previous = INFINITY;
  for (const int steps : {2, 4, 8, 16}) {
    const auto r = mint::integrated_gradients(model, t, m, {.steps = steps});
    CAPTURE(steps);
    CHECK(std::abs(r.delta) < previous);
    previous = std::abs(r.delta);
    CHECK(std::abs(r.value - r.baseline_value) > 0.01);  // the check is not vacuous
  }
  // Gauss-Legendre on a smooth path converges fast: 16 steps are within 1e-6 of the change.
  CHECK(previous < 1e-6);

  const auto all = mint::integrated_gradients(model, t, m, {.steps = 9});
  const auto bounded = mint::integrated_gradients(model, t, m, {.steps = 9, .max_batch = 4});  // two steps a pass
  mint::detail::for_each_index(all.values.extents(), [&](const auto& i) {
    CHECK(mint::detail::element_at(bounded.values.view(), i) ==
          doctest::Approx(mint::detail::element_at(all.values.view(), i)).epsilon(1e-12).scale(1e-14));
  });

  for (const double tolerance : {1e-2, 1e-4}) {
    const auto r = mint::adaptive_integrated_gradients(model, t, m, {.tolerance = tolerance, .initial_steps = 1});
    CAPTURE(tolerance);
    CHECK(r.converged);
    CHECK(std::abs(r.delta) <= tolerance * std::abs(r.value - r.baseline_value));
    // The rule doubles: fewer steps would not have met the tolerance.
    if (r.steps > 1) {
      const auto half = mint::integrated_gradients(model, t, m, {.steps = r.steps / 2});
      CHECK(std::abs(half.delta) > tolerance * std::abs(r.value - r.baseline_value));
    }
  }
}

TEST_CASE("layer integrated gradients with another run as the baseline sums to the metric's change") {
  fake_runtime<double> model(9, 6, 5, /*linear=*/false, 8);
  const auto t = two_prompts();
  auto other = mint::token_batch::from_rows({{0, 8, 8, 1}, {2, 2, 4}});
  const auto m = metric_of(t);
  const auto r = mint::integrated_gradients(model, t, m, {.site = "blocks.0.mlp.hook_post", .baseline = mint::ablation::run(other), .steps = 32});
  // The baseline value is the metric with the site patched from the other run: the logits
  // depend on the site alone, so it equals the other run's metric.
  mint::hook_set<double> none;
  CHECK(r.baseline_value == doctest::Approx(m.value(model.forward(other, none), t)).epsilon(1e-12));
  CHECK(std::abs(r.delta) < 1e-8 * std::abs(r.value - r.baseline_value));
  const auto per_token = mint::attribution_totals(r);
  CHECK(per_token.extent(0) == 2);
  CHECK(per_token.extent(1) == 4);
  double sum = 0;
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index p = 0; p < 4; ++p) sum += per_token(b, p);
  CHECK(sum == doctest::Approx(r.value - r.baseline_value).epsilon(1e-8));
}

TEST_CASE("attribution methods name what is wrong with their input") {
  fake_runtime<float> model(9, 6, 5, false, 1);
  const auto t = two_prompts();
  const auto m = metric_of(t);
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(model, t, m, {.steps = 0}), doctest::Contains("steps"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(model, t, m, {.site = "hook_embd"}), doctest::Contains("hook_embed"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(model, t, m, {.max_batch = 1}), doctest::Contains("max_batch"),
                       mint::argument_error);
  mint::array<float> wrong({3, 6});
  wrong.fill(0.0f);
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(model, t, m, {.baseline = mint::ablation::tensor(wrong)}),
                       doctest::Contains("ablation.values"), mint::shape_error);
  mint::array<float> nan({4, 6});
  nan.fill(0.0f);
  nan(1, 1) = NAN;
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(model, t, m, {.baseline = mint::ablation::tensor(nan)}),
                       doctest::Contains("NaN"), mint::argument_error);
  CHECK_THROWS_WITH_AS(
      mint::integrated_gradients(model, t, m, {.baseline = mint::ablation::resample(t)}), doctest::Contains("resample"),
      mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::adaptive_integrated_gradients(model, t, m, {.tolerance = 0}), doctest::Contains("tolerance"),
                       mint::argument_error);
  CHECK_THROWS_AS(mint::saliency(model, mint::token_batch(0, 4), m), mint::shape_error);
  // A site that allows no gradient (as a forward-only engine declares) is named as such.
  fake_runtime<float> forward_only(9, 6, 5, false, 1, mint::access::read | mint::access::write);
  CHECK_THROWS_WITH_AS(mint::saliency(forward_only, t, m, {.site = "blocks.0.mlp.hook_post"}), doctest::Contains("gradient"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::integrated_gradients(forward_only, t, m, {.site = "blocks.0.mlp.hook_post"}),
                       doctest::Contains("allows read|write"), mint::argument_error);
}

namespace {

// Real activation patching of one index of the kept axes: the clean run with the corrupt
// activation copied in at that (batch, pos[, head]) index, every other axis at once.
template <class R, class M>
double patched_metric(R& model, const mint::token_batch& clean, const M& m, const std::string& site,
                      const mint::tensor_view<const double>& corrupt, const std::array<mint::index, 4>& at,
                      const std::vector<int>& kept) {
  mint::hook_set<double> hooks(model.sites());
  hooks.add(site, [&](mint::hook_call<double>& c) {
    mint::detail::for_each_index(c.activation.extents(), [&](const auto& i) {
      for (std::size_t k = 0; k < kept.size(); ++k)
        if (i[std::size_t(kept[k])] != at[k]) return;
      mint::detail::element_at(c.activation, i) = mint::detail::element_at(corrupt, i);
    });
  });
  const auto logits = model.forward(clean, hooks);
  return m.value(logits, clean);
}

}  // namespace

TEST_CASE("attribution patching matches real activation patching to first order on a nearly linear change") {
  mint::toy::transformer_config config{.vocab = 11, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                       .d_mlp = 32};
  mint::toy::transformer<double> model(config);
  model.initialize(21);
  // Token 10 is token 4 moved by 1e-5: the corrupt run is a small perturbation of the clean one,
  // so second-order terms are about 1e-4 of the first-order ones (at 1e-4 some were 2e-3).
  auto embed = model.parameters()["embed.W_E"];
  mint::rng r(5);
  for (mint::index j = 0; j < config.d_model; ++j) embed(10, j) = embed(4, j) + 1e-5 * r.normal();
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 4, 6, 9}});
  auto corrupt = clean;
  corrupt(0, 1) = 10, corrupt(1, 1) = 10;
  const auto m = metric_of(clean);
  const auto est = mint::attribution_patching(model, clean, corrupt, m);
  CHECK(est.sites.size() > 20);  // every differentiable site but the logits
  const auto corrupt_run = mint::run_with_cache(model, corrupt, {"blocks.1.attn.hook_z", "blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"});
  for (const std::string site : {"blocks.1.attn.hook_z", "blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"}) {
    CAPTURE(site);
    const auto& e = est[site];
    const auto& info = model.sites()[model.sites().at(site)];
    std::vector<int> kept;
    for (std::size_t a = 0; a < info.axes.size(); ++a)
      if (std::find(e.axes.begin(), e.axes.end(), info.axes[a]) != e.axes.end()) kept.push_back(int(a));
    CHECK(kept.size() == (site.find("hook_z") != std::string::npos ? 3u : 2u));
    double largest = 0;
    mint::detail::for_each_index(e.values.extents(), [&](const auto& i) {
      const double real = patched_metric(model, clean, m, site, corrupt_run.cache[site], i, kept) - est.clean_value;
      const double estimate = mint::detail::element_at(e.values.view(), i);
      largest = std::max(largest, std::abs(real));
      // First order: the error is second order in the perturbation; double rounding is 1e-9 of these.
      CHECK(estimate == doctest::Approx(real).epsilon(1e-3).scale(1e-12));
    });
    CHECK(largest > 1e-8);  // some patch moves the metric, so the comparison is not vacuous
  }
}
