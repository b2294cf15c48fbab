// The toy model of superposition (superposition.hpp): its exact gradient against
// finite differences, and Elhage et al.'s result that sparsity lets more features in.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/superposition.hpp"

namespace md = mint::dictionary;

TEST_CASE("the toy model's gradient matches central finite differences") {
  // Double, 6 features in 3 dimensions, random W and b (so some pre-activations are
  // negative and the ReLU's mask matters), 7 sparse samples. Central differences at
  // eps = 1e-6 carry truncation error ~1e-12 and rounding ~1e-10 of the loss's scale:
  // tolerance 1e-7 relative to max(1, |gradient|). A ReLU kink within eps of a
  // pre-activation would break this; with these seeds none is.
  md::superposition_model<double> model({.features = 6, .hidden = 3, .importance_decay = 0.8, .sparsity = 0.3, .seed = 4});
  mint::rng r(5);
  r.fill_normal(model.bias(), 0.0, 0.3);
  mint::matrixd x;
  model.sample(r, 7, x);
  auto gradient = model.parameters().zeros_like();
  const double loss = model.loss_and_gradient(x, gradient);
  CHECK(loss == doctest::Approx(model.loss(x)).epsilon(1e-14));
  const auto flat = model.parameters().flat();
  const double eps = 1e-6;
  for (std::size_t i = 0; i < flat.size(); ++i) {
    const double saved = flat[i];
    flat[i] = saved + eps;
    const double up = model.loss(x);
    flat[i] = saved - eps;
    const double down = model.loss(x);
    flat[i] = saved;
    const double numeric = (up - down) / (2 * eps), analytic = gradient.flat()[i];
    INFO("parameter " << i << ": analytic " << analytic << ", finite difference " << numeric);
    CHECK(std::abs(analytic - numeric) <= 1e-7 * std::max(1.0, std::abs(numeric)));
  }
  // A few training steps move the parameters and report a finite loss.
  const std::vector<double> before(flat.begin(), flat.end());
  CHECK(std::isfinite(model.train({.steps = 3, .batch_size = 4})));
  CHECK(std::vector<double>(flat.begin(), flat.end()) != before);
}

TEST_CASE("dense features: only the m most important are represented; sparse ones: more than m") {
  // Elhage et al.'s main setting: 20 features in 5 dimensions, importance 0.7^i, features
  // Uniform[0, 1) and zero with probability S. Trained here 2000 steps of 512 with Adam at
  // 1e-2 (the paper: 10,000 steps of 1024 at 1e-3; this converges to the same picture in a
  // tenth of the time). Over seeds 0-3: with S = 0 exactly features 0-4 had ||W_i|| > 0.99
  // and every other one < 0.05; with S = 0.9, 9 or 10 features were represented (the most
  // important ones, ||W_i|| in 0.89-1.03). Thresholds: represented means ||W_i|| > 0.5.
  const md::superposition_training training{.steps = 2000, .batch_size = 512, .adam = {.lr = 1e-2}, .seed = 1};

  md::superposition_model<float> dense({.features = 20, .hidden = 5, .importance_decay = 0.7, .sparsity = 0.0});
  dense.train(training);
  const mint::vectord norms = dense.feature_norms();
  CHECK(dense.represented() == 5);
  CHECK(norms.head(5).minCoeff() > 0.9);
  CHECK(norms.tail(15).maxCoeff() < 0.1);
  // The 5 represented features are orthogonal (no interference), and every dropped feature
  // predicts its mean through the bias: E[x_i] = 0.5.
  CHECK(dense.interference().head(5).maxCoeff() < 0.01);
  CHECK((dense.bias().tail(15).array() - 0.5f).abs().maxCoeff() < 0.05f);

  md::superposition_model<float> sparse({.features = 20, .hidden = 5, .importance_decay = 0.7, .sparsity = 0.9});
  sparse.train(training);
  CHECK(sparse.represented() >= 8);
  CHECK(sparse.feature_norms().head(7).minCoeff() > 0.5);
  // In superposition: represented features share directions (interference near 1 each).
  CHECK(sparse.interference().head(7).maxCoeff() > 0.5);
  // Dropped features predict their mean 0.1 * 0.5 = 0.05.
  CHECK((sparse.bias().tail(8).array() - 0.05f).abs().maxCoeff() < 0.03f);
}

TEST_CASE("the toy model refuses bad input") {
  CHECK_THROWS_WITH_AS(md::superposition_model<float>({.features = 0}), doctest::Contains("needs both >= 1"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(md::superposition_model<float>({.sparsity = 1.0}), doctest::Contains("needs a probability in [0, 1)"),
                       mint::argument_error);
  md::superposition_model<float> model({.features = 4, .hidden = 2});
  const mint::matrixf wrong = mint::matrixf::Zero(3, 5);
  CHECK_THROWS_WITH_AS(model.forward(wrong), doctest::Contains("needs [batch, 4]"), mint::shape_error);
  auto other = md::superposition_model<float>({.features = 5, .hidden = 2}).parameters().zeros_like();
  CHECK_THROWS_AS(model.loss_and_gradient(mint::matrixf::Zero(3, 4).eval(), other), mint::shape_error);
  CHECK_THROWS_AS(model.train({.batch_size = 0}), mint::argument_error);
}
