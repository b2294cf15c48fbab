// QK/OV circuits and composition scores: the factored forms against dense products computed
// here, the copying score against the eigenvalues of the whole vocab x vocab circuit, and the
// known induction circuit named by its scores (its induction head copies, its previous-token
// head K-composes into the induction head).
#include "mint/explain/qk_ov.hpp"

#include <doctest/doctest.h>

#include <Eigen/Eigenvalues>

#include "mint/toy/circuits.hpp"
#include "mint/toy/transformer.hpp"

namespace {

Eigen::MatrixXd dense(const mint::tensor_view<const float>& w) {
  Eigen::MatrixXd out(w.extent(0), w.extent(1));
  for (mint::index i = 0; i < w.extent(0); ++i)
    for (mint::index j = 0; j < w.extent(1); ++j) out(i, j) = w(i, j);
  return out;
}

}  // namespace

TEST_CASE("QK and OV circuits, copying and composition scores match dense products") {
  mint::toy::transformer<float> model({.vocab = 11, .context = 8, .d_model = 12, .layers = 3, .heads = 4, .kv_heads = 2,
                                       .d_head = 3, .d_mlp = 0});
  model.initialize(6);
  const Eigen::MatrixXd E = dense(model.embedding_weights()), U = dense(model.unembedding().weight);
  const auto w1 = model.attention_weights(1);
  // Query head 3 reads key/value head 1 under grouped-query attention.
  const Eigen::MatrixXd Q = dense(w1.W_Q.subview(3)), K = dense(w1.W_K.subview(1)), V = dense(w1.W_V.subview(1)),
                        O = dense(w1.W_O.subview(3));
  const auto qk = mint::qk_circuit(model, 1, 3);
  const auto ov = mint::ov_circuit(model, 1, 3);
  // Double products of float weights: 1e-12 relative.
  CHECK((qk.full() - E * Q * K.transpose() * E.transpose()).cwiseAbs().maxCoeff() < 1e-12 * (1 + qk.full().cwiseAbs().maxCoeff()));
  const Eigen::MatrixXd whole = E * V * O * U;
  CHECK((ov.full() - whole).cwiseAbs().maxCoeff() < 1e-12 * (1 + whole.cwiseAbs().maxCoeff()));
  // The copying score from the small factor product equals the whole circuit's eigenvalues.
  const Eigen::VectorXcd lambda = Eigen::EigenSolver<Eigen::MatrixXd>(whole, false).eigenvalues();
  CHECK(mint::copying_score(ov) == doctest::Approx(lambda.sum().real() / lambda.cwiseAbs().sum()).epsilon(1e-9));
  // Composition scores against dense d x d products.
  const auto c = mint::composition_scores(model, 3);
  const auto w0 = model.attention_weights(0);
  const Eigen::MatrixXd OV1 = dense(w0.W_V.subview(0)) * dense(w0.W_O.subview(1));  // head 1 of block 0 reads kv head 0
  const Eigen::MatrixXd QK2 = Q * K.transpose(), OV2 = V * O;
  const auto ratio = [](const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) { return (a * b).norm() / (a.norm() * b.norm()); };
  CHECK(c.q(0, 1, 1, 3) == doctest::Approx(ratio(OV1, QK2)).epsilon(1e-9));
  CHECK(c.k(0, 1, 1, 3) == doctest::Approx(ratio(OV1, QK2.transpose())).epsilon(1e-9));
  CHECK(c.v(0, 1, 1, 3) == doctest::Approx(ratio(OV1, OV2)).epsilon(1e-9));
  CHECK(c.q(1, 3, 0, 1) == 0.0);  // a later head never composes into an earlier one
  CHECK(c.q(1, 0, 1, 2) == 0.0);  // nor into one of its own block
  CHECK_THROWS_AS(mint::qk_circuit(model, 1, 4), mint::argument_error);
  CHECK_THROWS_AS(mint::qk_circuit(model, 3, 0), mint::argument_error);
  CHECK_THROWS_AS(mint::composition_scores(model, 1), mint::argument_error);
}

TEST_CASE("the induction circuit's heads are named by copying and K-composition scores") {
  auto circuit = mint::toy::induction_circuit();
  const auto& model = circuit.model;
  CHECK(mint::copying_score(mint::ov_circuit(model, 1, 0)) > 0.9);  // the induction head copies what it attends to
  const auto c = mint::composition_scores(model, 2);
  double best = -1;
  int best_sender = -1, best_receiver = -1;
  for (int h1 = 0; h1 < 2; ++h1)
    for (int h2 = 0; h2 < 2; ++h2)
      if (c.k(0, h1, 1, h2) > best) best = c.k(0, h1, 1, h2), best_sender = h1, best_receiver = h2;
  CHECK(best_sender == 0);  // L0H0, the previous-token head ...
  CHECK(best_receiver == 0);  // ... feeds L1H0's keys
  CHECK(c.k(0, 0, 1, 0) > c.q(0, 0, 1, 0));
  CHECK(c.k(0, 0, 1, 0) > c.v(0, 0, 1, 0));
}
