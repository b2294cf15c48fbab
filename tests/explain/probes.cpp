// Linear probes per layer: perfect held-out accuracy on blobs separated by a margin (two and
// three classes), ridge recovering a planted linear map on both of its routes, a split that a
// seed fixes, one table row per residual site of the toy transformer, and bad input refused
// by name.
#include "mint/explain/probes.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "mint/core/random.hpp"
#include "mint/toy/transformer.hpp"

namespace probes_test {

Eigen::VectorXd random_unit(mint::index d, mint::rng& r) {
  Eigen::VectorXd u(d);
  for (mint::index k = 0; k < d; ++k) u(k) = r.normal();
  return u.normalized();
}

// Gaussian rows whose component along u is replaced by +-(1 + |g|): classes 1 and 0 lie on
// either side of the hyperplane u.x = 0 with a gap of 2 between them.
mint::matrixf separable_blobs(mint::index n, mint::index d, const Eigen::VectorXd& u, std::vector<int>& labels,
                              mint::rng& r) {
  mint::matrixf x(n, d);
  labels.assign(std::size_t(n), 0);
  for (mint::index i = 0; i < n; ++i) {
    Eigen::VectorXd z(d);
    for (mint::index k = 0; k < d; ++k) z(k) = r.normal();
    const int label = int(i % 2);
    z += ((label ? 1 : -1) * (1 + std::abs(r.normal())) - z.dot(u)) * u;
    x.row(i) = z.transpose().cast<float>();
    labels[std::size_t(i)] = label;
  }
  return x;
}

mint::toy::transformer<float> probe_model() {
  mint::toy::transformer<float> m({.vocab = 16, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                   .d_mlp = 32});
  m.initialize(11);
  return m;
}

}  // namespace probes_test

TEST_CASE("linear probes: 100% held-out accuracy on blobs separated by a margin") {
  mint::rng r(5);
  const mint::index d = 12;
  const Eigen::VectorXd u = probes_test::random_unit(d, r);
  std::vector<int> labels;
  const mint::matrixf x = probes_test::separable_blobs(240, d, u, labels, r);
  const auto t = mint::fit_probes<float>({"blobs"}, {x}, labels);
  REQUIRE(t.rows.size() == 1);
  CHECK(t.task == mint::probe_task::classification);
  CHECK(t.classes == std::vector<int>{0, 1});
  CHECK(t.train_rows == 180);
  CHECK(t.test_rows == 60);  // a quarter of each class
  CHECK(t.rows[0].weights.rows() == 1);
  CHECK(t.rows[0].converged);
  CHECK(t.rows[0].train_score == 1.0);
  CHECK(t.rows[0].test_score == 1.0);
  // The probe points along the planted direction, towards class 1.
  const Eigen::VectorXd w = t.rows[0].weights.row(0).transpose();
  MESSAGE("cosine(probe, planted direction) = " << w.normalized().dot(u));
  CHECK(w.normalized().dot(u) > 0.8);

  // Three classes (labels 2, 5, 9) at the corners of a triangle in a random plane, one-vs-rest.
  Eigen::VectorXd v = probes_test::random_unit(d, r);
  v = (v - v.dot(u) * u).normalized();
  mint::matrixd y(300, d);
  std::vector<int> three(300);
  const int names[3] = {2, 5, 9};
  for (mint::index i = 0; i < 300; ++i) {
    const int c = int(i % 3);
    const double angle = 2.0943951023931953 * c;  // 2 pi / 3
    for (mint::index k = 0; k < d; ++k) y(i, k) = 0.5 * r.normal();
    y.row(i) += 6 * (std::cos(angle) * u + std::sin(angle) * v).transpose();
    three[std::size_t(i)] = names[c];
  }
  const auto m = mint::fit_probes<double>({"a", "b"}, {y, y}, three, {.seed = 4});
  REQUIRE(m.rows.size() == 2);
  CHECK(m.classes == std::vector<int>{2, 5, 9});
  CHECK(m.rows[0].weights.rows() == 3);
  CHECK(m.rows[1].layer == 1);
  CHECK(m.rows[0].test_score == 1.0);
  CHECK(m.rows[0].train_score == 1.0);
}

TEST_CASE("ridge probe: recovers a planted linear map, through the d x d and the n x n system") {
  mint::rng r(9);
  const mint::index n = 400, d = 10;
  Eigen::VectorXd w(d);
  for (mint::index k = 0; k < d; ++k) w(k) = r.normal();
  mint::matrixf x(n, d);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (mint::index i = 0; i < n; ++i) {
    for (mint::index k = 0; k < d; ++k) x(i, k) = float(r.normal());
    y[std::size_t(i)] = x.row(i).cast<double>().dot(w) + 0.5 + 0.01 * r.normal();
  }
  const auto t = mint::fit_probes<float>({"x"}, {x}, y);
  REQUIRE(t.rows.size() == 1);
  CHECK(t.task == mint::probe_task::regression);
  const auto& p = t.rows[0];
  // Noise variance 1e-4 against a signal variance |w|^2 ~ 10, and lambda = 1 shrinks w by about
  // 1 / 300 (300 training rows of unit variance): both cost R^2 about 1e-5, so 0.999 is loose.
  MESSAGE("ridge R^2 train " << p.train_score << ", test " << p.test_score);
  CHECK(p.test_score > 0.999);
  CHECK(p.train_score > 0.999);
  CHECK((p.weights.row(0).transpose() - w).norm() < 0.02 * w.norm());
  CHECK(p.bias[0] == doctest::Approx(0.5).epsilon(0.02));

  // More features than training rows: the n x n route; it matches the d x d normal equations.
  const mint::index wide = 60, rows = 40;
  mint::matrixd a(rows, wide);
  std::vector<double> target(static_cast<std::size_t>(rows));
  for (mint::index i = 0; i < rows; ++i) {
    for (mint::index k = 0; k < wide; ++k) a(i, k) = r.normal();
    target[std::size_t(i)] = r.normal();
  }
  const mint::layer_probe_options options{.ridge = 0.3};
  const auto dual = mint::fit_probes<double>({"wide"}, {a}, target, options);
  const auto split = mint::split_probe_rows(rows, {}, options);
  Eigen::MatrixXd train(split.train.size(), wide);
  Eigen::VectorXd yt(split.train.size());
  for (std::size_t i = 0; i < split.train.size(); ++i) {
    train.row(mint::index(i)) = a.row(split.train[i]);
    yt(mint::index(i)) = target[std::size_t(split.train[i])];
  }
  const Eigen::RowVectorXd mean = train.colwise().mean();
  train.rowwise() -= mean;
  yt.array() -= yt.mean();
  Eigen::MatrixXd normal = train.transpose() * train;
  normal.diagonal().array() += 0.3;
  const Eigen::VectorXd primal = normal.ldlt().solve(train.transpose() * yt);
  // Two solves of systems with condition number up to ~1e2 in double: 1e-9 relative.
  CHECK((dual.rows[0].weights.row(0).transpose() - primal).norm() < 1e-9 * primal.norm());
}

TEST_CASE("probe split: a seed fixes it, another seed changes it, classes are held out in proportion") {
  std::vector<int> labels(100);
  for (int i = 0; i < 100; ++i) labels[std::size_t(i)] = i < 80 ? 0 : 1;
  const auto a = mint::split_probe_rows(100, labels, {.seed = 3});
  const auto b = mint::split_probe_rows(100, labels, {.seed = 3});
  const auto c = mint::split_probe_rows(100, labels, {.seed = 4});
  CHECK(a.test == b.test);
  CHECK(a.train == b.train);
  CHECK(a.test != c.test);
  REQUIRE(a.test.size() == 25);
  CHECK(a.train.size() == 75);
  int ones = 0;
  for (const auto i : a.test) ones += labels[std::size_t(i)];
  CHECK(ones == 5);  // 25% of the 20 ones, 25% of the 80 zeros
  std::set<mint::index> all(a.train.begin(), a.train.end());
  all.insert(a.test.begin(), a.test.end());
  CHECK(all.size() == 100);
  // Unstratified: any 25 rows.
  const auto u = mint::split_probe_rows(100, labels, {.seed = 3, .stratify = false});
  CHECK(u.test.size() == 25);
  const auto none = mint::split_probe_rows(10, {}, {.test_fraction = 0.5, .seed = 1});
  CHECK(none.test.size() == 5);
}

TEST_CASE("probe_layers on the toy transformer: one row per residual site") {
  auto model = probes_test::probe_model();
  mint::rng r(21);
  const mint::index rows = 160;
  mint::token_batch tokens(rows, 6);
  std::vector<int> parity(static_cast<std::size_t>(rows)), third(static_cast<std::size_t>(rows));
  std::vector<double> value(static_cast<std::size_t>(rows));
  for (mint::index b = 0; b < rows; ++b) {
    for (mint::index t = 0; t < 6; ++t) tokens(b, t) = mint::token(r.below(16));
    // Labels of the last token: its parity and its id mod 3, and a value that is its id's
    // square: a table over 16 tokens, so linear in their 16-dimensional embeddings.
    const mint::token last = tokens(b, 5);
    parity[std::size_t(b)] = int(last % 2);
    third[std::size_t(b)] = int(last % 3);
    value[std::size_t(b)] = double(last * last) / 16;
  }
  // Embeddings are small (initial scale), so a weak penalty lets the probes reach them.
  const mint::probe_layers_options options{.probe = {.seed = 1, .logistic = {.l2 = 1e-3}, .ridge = 1e-3}};
  const auto t = mint::probe_layers(model, tokens, parity, options);
  REQUIRE(t.rows.size() == 3);  // blocks.0.hook_resid_pre, then resid_post of layers 0 and 1
  CHECK(t.rows[0].site == "blocks.0.hook_resid_pre");
  CHECK(t.rows[1].site == "blocks.0.hook_resid_post");
  CHECK(t.rows[2].site == "blocks.1.hook_resid_post");
  CHECK(t.rows[0].layer == 0);
  CHECK(t.rows[2].layer == 1);
  MESSAGE("parity of the last token:\n" << mint::to_markdown(t));
  // At the embedding the token is all there is (plus its position, the same for every row).
  CHECK(t.rows[0].test_score == 1.0);
  // Later layers mix in earlier tokens (the model is untrained): the last token fades but stays
  // above chance.
  for (const auto& row : t.rows) CHECK(row.test_score > 0.55);

  const auto m = mint::probe_layers(model, tokens, third, options);
  REQUIRE(m.rows.size() == 3);
  MESSAGE("last token mod 3:\n" << mint::to_markdown(m));
  CHECK(m.rows[0].test_score == 1.0);

  const auto g = mint::probe_layers(model, tokens, value, options);
  REQUIRE(g.rows.size() == 3);
  MESSAGE("last token's id squared / 16 (ridge):\n" << mint::to_markdown(g));
  CHECK(g.rows[0].test_score > 0.99);
  CHECK(mint::to_markdown(g).find("R^2") != std::string::npos);

  // An earlier token, at a chosen site.
  const auto at = mint::probe_layers(model, tokens, parity, {.sites = {"blocks.1.hook_resid_mid"}, .positions = {2}});
  REQUIRE(at.rows.size() == 1);
  CHECK(at.rows[0].site == "blocks.1.hook_resid_mid");
}

TEST_CASE("linear probes: bad input is refused by name") {
  mint::matrixf x = mint::matrixf::Random(8, 3);
  const std::vector<int> labels{0, 1, 0, 1, 0, 1, 0, 1};
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {x}, std::vector<int>{0, 1, 0}), doctest::Contains("mint::fit_probes"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {x}, std::vector<int>(8, 3)), doctest::Contains("one class"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({}, {}, labels), doctest::Contains("activations"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {x}, std::vector<int>{}), doctest::Contains("mint::fit_probes"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {mint::matrixf(0, 3)}, std::vector<double>{}),
                       doctest::Contains("targets"), mint::argument_error);
  for (const double f : {0.0, 1.0, -0.5, 1.5, std::nan("")})
    CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {x}, labels, {.test_fraction = f}),
                         doctest::Contains("options.test_fraction"), mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s", "t"}, {x}, labels), doctest::Contains("sites"), mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::fit_probes<float>({"s"}, {x}, std::vector<double>(8, 1.0), {.ridge = -1}),
                       doctest::Contains("options.ridge"), mint::argument_error);

  auto model = probes_test::probe_model();
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {1, 3, 5}});
  CHECK_THROWS_WITH_AS(mint::probe_layers(model, tokens, std::vector<int>{0, 1}), doctest::Contains("mint::probe_layers"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(mint::probe_layers(model, tokens, std::vector<int>{1, 1, 1, 1}), doctest::Contains("mint::probe_layers"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(mint::probe_layers(model, tokens, std::vector<int>{0, 1, 0, 1}, {.sites = {"blocks.9.nothing"}}),
                       doctest::Contains("blocks.9.nothing"), mint::argument_error);
}
