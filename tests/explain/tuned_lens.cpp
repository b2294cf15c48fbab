// The tuned lens: the KL's gradient in A and b against central finite differences for every
// final norm; a zero translator is the logit lens exactly; on a trained toy transformer the
// tuned lens beats the logit lens on held-out tokens at every layer but the last, where the
// logit lens is the model's own output; bad input refused by name.
#include "mint/explain/tuned_lens.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "mint/core/random.hpp"
#include "mint/toy/tasks.hpp"
#include "mint/toy/train.hpp"
#include "mint/toy/transformer.hpp"

namespace tuned_lens_test {

mint::matrixd random_matrix(mint::index rows, mint::index cols, double scale, mint::rng& r) {
  mint::matrixd m(rows, cols);
  for (mint::index i = 0; i < rows; ++i)
    for (mint::index j = 0; j < cols; ++j) m(i, j) = scale * r.normal();
  return m;
}

mint::array<double> random_array(std::vector<mint::index> extents, double mean, double scale, mint::rng& r) {
  mint::array<double> a(extents);
  r.fill_normal(a, mean, scale);
  return a;
}

// A lens whose translators are all zero.
template <class T>
mint::tuned_lens<T> zero_lens(const std::vector<std::string>& sites, mint::index d) {
  mint::tuned_lens<T> lens;
  lens.sites = sites;
  for (std::size_t s = 0; s < sites.size(); ++s) {
    lens.translators.push_back(mint::matrix<T>::Zero(d, d));
    lens.biases.emplace_back(static_cast<std::size_t>(d), T(0));
  }
  return lens;
}

}  // namespace tuned_lens_test

TEST_CASE("tuned lens: the KL's gradient in A and b matches central differences, for each final norm") {
  using mint::final_norm;
  const mint::index n = 6, d = 5, vocab = 7;
  for (const final_norm norm : {final_norm::none, final_norm::layer_norm, final_norm::rms_norm}) {
    CAPTURE(int(norm));
    mint::rng r(17 + int(norm));
    const auto gain = tuned_lens_test::random_array({d}, 1.0, 0.3, r), bias = tuned_lens_test::random_array({d}, 0.0, 0.3, r);
    const auto w = tuned_lens_test::random_array({d, vocab}, 0.0, 1.0, r), ub = tuned_lens_test::random_array({vocab}, 0.0, 0.5, r);
    mint::unembedding_weights<double> u{norm, 1e-5, gain.view(), bias.view(), w.view(), ub.view()};
    const mint::matrixd h = tuned_lens_test::random_matrix(n, d, 1.0, r), logits = tuned_lens_test::random_matrix(n, vocab, 2.0, r);
    mint::matrixd a = tuned_lens_test::random_matrix(d, d, 0.2, r), b = tuned_lens_test::random_matrix(1, d, 0.2, r);
    mint::matrixd ga, gb;
    const double loss = mint::tuned_lens_objective(u, h, logits, a, b, &ga, &gb);
    CHECK(loss > 0);
    // Step 1e-5 in double: truncation ~1e-10, rounding ~1e-16 / 1e-5 = 1e-11; 1e-7 of the
    // largest entry leaves room and still catches any wrong term (they are of order 1e-2 and up).
    const double step = 1e-5, largest = std::max(ga.cwiseAbs().maxCoeff(), gb.cwiseAbs().maxCoeff());
    CHECK(largest > 1e-3);
    double worst = 0;
    const auto check = [&](mint::matrixd& p, const mint::matrixd& g) {
      for (mint::index i = 0; i < p.rows(); ++i)
        for (mint::index j = 0; j < p.cols(); ++j) {
          const double keep = p(i, j);
          p(i, j) = keep + step;
          const double up = mint::tuned_lens_objective(u, h, logits, a, b);
          p(i, j) = keep - step;
          const double down = mint::tuned_lens_objective(u, h, logits, a, b);
          p(i, j) = keep;
          worst = std::max(worst, std::abs((up - down) / (2 * step) - g(i, j)));
        }
    };
    check(a, ga);
    check(b, gb);
    MESSAGE("largest |finite difference - gradient| = " << worst << " (largest entry " << largest << ")");
    CHECK(worst < 1e-7 * largest);
  }
}

TEST_CASE("tuned lens: a zero translator is the logit lens exactly") {
  for (const bool layer_norm : {true, false}) {
    CAPTURE(layer_norm);
    mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                         .d_mlp = 32, .layer_norm = layer_norm});
    model.initialize(5);
    const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9}});
    const std::vector<std::string> sites{"blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"};
    const auto lens = tuned_lens_test::zero_lens<float>(sites, 16);
    const auto rows = mint::lens_kl(model, tokens, lens);
    REQUIRE(rows.size() == 3);
    for (const auto& row : rows) CHECK(row.tuned_lens == row.logit_lens);
    // The logit lens alone, at the default sites: the same sites and numbers, tuned NaN.
    const auto alone = mint::lens_kl(model, tokens);
    REQUIRE(alone.size() == 3);
    for (std::size_t s = 0; s < 3; ++s) {
      CHECK(alone[s].site == sites[s]);
      CHECK(alone[s].logit_lens == rows[s].logit_lens);
      CHECK(std::isnan(alone[s].tuned_lens));
    }
    // The last layer decodes to the model's own logits: float32 forward against a double decode.
    CHECK(rows[2].logit_lens < 1e-6);
    // apply() leaves the residual as it is, bit for bit.
    const auto run = mint::run_with_cache(model, tokens, sites);
    const auto h = run.cache[sites[1]];
    const auto translated = lens.apply(sites[1], h);
    REQUIRE(std::ranges::equal(translated.view().extents(), h.extents()));
    bool same = true;
    for (mint::index b = 0; b < 2; ++b)
      for (mint::index t = 0; t < 6; ++t)
        for (mint::index j = 0; j < 16; ++j) same = same && translated(b, t, j) == h(b, t, j);
    CHECK(same);
  }
}

// Named "*learns induction*" so -Dtraining_tests=false skips it, as tests/attribution/trained.cpp.
TEST_CASE("tuned lens on a model that learns induction: lower held-out KL than the logit lens before the last layer") {
  const mint::toy::induction_task task{.vocab = 16, .length = 6, .sequence = 24};
  mint::toy::transformer<float> model({.vocab = task.vocab, .context = task.context(), .d_model = 64, .layers = 2, .heads = 4,
                                       .d_head = 16});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 300, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  trainer.run();
  mint::rng r(2026);
  const auto train = task.sample(r, 64), held_out = task.sample(r, 32);
  const double accuracy = mint::toy::evaluate(model, held_out).accuracy;
  MESSAGE("induction accuracy on the held-out batch: " << accuracy);
  REQUIRE(accuracy > 0.9);
  const auto lens = mint::train_tuned_lens(model, train.tokens, {.steps = 300, .batch_rows = 256, .lr = 1e-2, .seed = 1});
  REQUIRE(lens.sites.size() == 3);
  const auto rows = mint::lens_kl(model, held_out.tokens, lens);
  REQUIRE(rows.size() == 3);
  for (std::size_t s = 0; s < rows.size(); ++s)
    MESSAGE(rows[s].site << ": logit lens " << rows[s].logit_lens << " nats, tuned lens " << rows[s].tuned_lens
                         << " (training " << lens.train_kl[s] << ")");
  for (std::size_t s = 0; s + 1 < rows.size(); ++s) {
    CAPTURE(rows[s].site);
    CHECK(rows[s].tuned_lens < rows[s].logit_lens);
  }
  // The last resid_post is what the model decodes: the logit lens there is the output itself, and
  // its translator stays near zero (its gradient starts at zero).
  CHECK(rows.back().logit_lens < 1e-6);
  CHECK(rows.back().tuned_lens < 1e-3);
  // The same seed trains the same lens.
  const auto again = mint::train_tuned_lens(model, train.tokens, {.steps = 300, .batch_rows = 256, .lr = 1e-2, .seed = 1});
  CHECK(again.translators[1] == lens.translators[1]);
}

TEST_CASE("tuned lens: bad input is refused by name") {
  mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8});
  model.initialize(5);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6, 9}});
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.sites = {"blocks.7.hook_resid_post"}}),
                       doctest::Contains("mint::train_tuned_lens"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.sites = {"blocks.0.attn.hook_z"}}),
                       doctest::Contains("residual"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, mint::token_batch(0, 0)), doctest::Contains("mint::train_tuned_lens"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.steps = 0}), doctest::Contains("options.steps"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.batch_rows = -1}), doctest::Contains("options.batch_rows"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.lr = 0}), doctest::Contains("options.lr"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::train_tuned_lens(model, tokens, {.weight_decay = -1}), doctest::Contains("options.weight_decay"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::lens_kl(model, mint::token_batch(0, 0)), doctest::Contains("mint::lens_kl"), mint::shape_error);
  const auto lens = mint::train_tuned_lens(model, tokens, {.sites = {"blocks.0.hook_resid_post"}, .steps = 2});
  CHECK_THROWS_WITH_AS(lens.apply("blocks.1.hook_resid_post", mint::tensor_view<const float>()), doctest::Contains("mint::tuned_lens"),
                       mint::argument_error);
  const mint::array<float> wrong({3, 5});
  CHECK_THROWS_WITH_AS(lens.apply("blocks.0.hook_resid_post", wrong.view()), doctest::Contains("mint::tuned_lens::apply"),
                       mint::shape_error);
  mint::tuned_lens<float> small = lens;
  small.translators[0] = mint::matrixf::Zero(4, 4);
  CHECK_THROWS_WITH_AS(mint::lens_kl(model, tokens, small), doctest::Contains("mint::lens_kl"), mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::lens_kl(model, tokens, mint::tuned_lens<float>{}), doctest::Contains("mint::lens_kl"),
                       mint::argument_error);
}
