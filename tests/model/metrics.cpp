// Metrics: known values and their gradients against finite differences (double).
#include "mint/model/metrics.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/core/random.hpp"

namespace {

mint::array<double> random_logits(const mint::token_batch& tokens, mint::index vocab, std::uint64_t seed) {
  mint::array<double> logits({tokens.batch(), tokens.positions(), vocab});
  mint::rng(seed).fill_normal(logits, 0.0, 2.0);
  return logits;
}

// Central differences at eps 1e-6 on smooth functions of order-one logits: error ~1e-10.
template <class M>
void check_gradient(const M& metric, mint::array<double> logits, const mint::token_batch& tokens) {
  auto [value, grad] = mint::value_and_gradient(metric, logits, tokens);
  CHECK(value == doctest::Approx(metric.value(logits, tokens)));
  const double eps = 1e-6;
  double worst = 0;
  for (mint::index i = 0; i < logits.size(); ++i) {
    const double saved = logits.data()[i];
    logits.data()[i] = saved + eps;
    const double up = metric.value(logits, tokens);
    logits.data()[i] = saved - eps;
    const double down = metric.value(logits, tokens);
    logits.data()[i] = saved;
    worst = std::max(worst, std::abs((up - down) / (2 * eps) - grad.data()[i]));
  }
  CHECK(worst < 1e-7);
}

const auto ragged_tokens = mint::token_batch::from_rows({{1, 2, 3, 0}, {4, 1}, {2, 2, 2}});

}  // namespace

TEST_CASE("every metric's gradient matches finite differences, and padding gets none") {
  const auto logits = random_logits(ragged_tokens, 5, 1);
  check_gradient(mint::logit_difference{{1, 2, 3}, {0, 4, 4}}, logits, ragged_tokens);
  check_gradient(mint::logit_difference{{1, 2, 3}, {0, 4, 4}, {1, 0, 2}}, logits, ragged_tokens);
  check_gradient(mint::token_probability{{1, 2, 3}}, logits, ragged_tokens);
  check_gradient(mint::token_log_probability({1, 2, 3}), logits, ragged_tokens);
  check_gradient(mint::cross_entropy{}, logits, ragged_tokens);
  check_gradient(mint::target_cross_entropy{{0, 2}, {3, 1}, {4, 0}}, logits, ragged_tokens);
  const auto reference = random_logits(ragged_tokens, 5, 2);
  check_gradient(mint::kl_divergence(reference, ragged_tokens), logits, ragged_tokens);
  check_gradient(mint::kl_divergence(reference, ragged_tokens, true), logits, ragged_tokens);

  auto [v, g] = mint::value_and_gradient(mint::cross_entropy{}, logits, ragged_tokens);
  CHECK(g(1, 1, 0) == 0.0);  // row 1 has length 2: position 1 predicts nothing
  CHECK(g(1, 3, 2) == 0.0);  // padding
}

TEST_CASE("metrics give their known values") {
  mint::array<double> logits({3, 4, 5});
  // Uniform logits: probability 1/5, cross-entropy log 5, KL to itself 0.
  CHECK(mint::token_probability{{1, 2, 3}}.value(logits, ragged_tokens) ==
        doctest::Approx(0.2));
  CHECK(mint::cross_entropy{}.value(logits, ragged_tokens) ==
        doctest::Approx(std::log(5.0)));
  const auto random = random_logits(ragged_tokens, 5, 3);
  CHECK(std::abs(mint::kl_divergence(random, ragged_tokens, true).value(random, ragged_tokens)) < 1e-12);
  // Logit difference reads each row's last valid position: rows of length 4, 2, 3.
  logits(0, 3, 1) = 2;
  logits(1, 1, 2) = 5;
  logits(2, 2, 3) = -1;
  CHECK(mint::logit_difference{{1, 2, 3}, {0, 0, 0}}.value(logits, ragged_tokens) ==
        doctest::Approx((2.0 + 5.0 - 1.0) / 3.0));
}

TEST_CASE("metrics refuse bad ragged_tokens, positions and shapes") {
  const auto logits = random_logits(ragged_tokens, 5, 4);
  const mint::tensor_view<const double> l = logits.view();
  CHECK_THROWS_WITH_AS(mint::logit_difference({{1, 2, 9}, {0, 0, 0}}).value(l, ragged_tokens),
                       "mint::logit_difference: correct holds token 9; needs ids in [0, 5)", mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::token_probability({{1, 2}}).value(l, ragged_tokens), doctest::Contains("needs one per batch row (3)"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::token_probability({{1, 2, 3}, {0, 3, 0}}).value(l, ragged_tokens),
                       doctest::Contains("reads position 3 of row 1"), mint::argument_error);
  mint::array<double> wrong({3, 5, 5});
  CHECK_THROWS_AS(mint::cross_entropy{}.value(wrong, ragged_tokens), mint::shape_error);
  const auto other = mint::token_batch::from_rows({{1, 2}});
  CHECK_THROWS_AS(mint::kl_divergence(logits, other), mint::shape_error);
}
