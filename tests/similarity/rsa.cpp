// RSA: RDMs against explicit formulas, the three comparisons against brute force, ranks with ties.
#include "mint/similarity/rsa.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"

using namespace similarity_test;

namespace {

std::vector<double> upper_of(const mint::matrixd& m) {
  std::vector<double> out;
  for (mint::index i = 0; i < m.rows(); ++i)
    for (mint::index j = i + 1; j < m.cols(); ++j) out.push_back(m(i, j));
  return out;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const Eigen::Map<const Eigen::ArrayXd> x(a.data(), mint::index(a.size())), y(b.data(), mint::index(b.size()));
  const Eigen::ArrayXd cx = x - x.mean(), cy = y - y.mean();
  return (cx * cy).sum() / std::sqrt(cx.square().sum() * cy.square().sum());
}

std::vector<double> brute_ranks(const std::vector<double>& v) {
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    double below = 0, equal = 0;
    for (const double w : v) below += w < v[i], equal += w == v[i];
    r[i] = below + (equal + 1) / 2;
  }
  return r;
}

double brute_kendall(const std::vector<double>& a, const std::vector<double>& b) {
  double concordant = 0, discordant = 0, ties_a = 0, ties_b = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = i + 1; j < a.size(); ++j) {
      const double s = (a[i] - a[j]) * (b[i] - b[j]);
      if (a[i] == a[j] && b[i] == b[j]) continue;
      if (a[i] == a[j]) ++ties_a;
      else if (b[i] == b[j]) ++ties_b;
      else if (s > 0) ++concordant;
      else ++discordant;
    }
  return (concordant - discordant) / std::sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b));
}

}  // namespace

TEST_CASE("RDMs follow their definitions") {
  const mint::matrixd x = gaussian(12, 5, 91);
  const mint::matrixd correlation = mint::rdm(x), cosine = mint::rdm(x, mint::rdm_distance::cosine),
                      euclidean = mint::rdm(x, mint::rdm_distance::euclidean);
  for (mint::index i = 0; i < 12; ++i)
    for (mint::index j = 0; j < 12; ++j) {
      const Eigen::RowVectorXd a = x.row(i), b = x.row(j);
      const Eigen::RowVectorXd ca = a.array() - a.mean(), cb = b.array() - b.mean();
      CHECK(correlation(i, j) == doctest::Approx(i == j ? 0.0 : 1.0 - ca.dot(cb) / (ca.norm() * cb.norm())).epsilon(1e-12));
      CHECK(cosine(i, j) == doctest::Approx(i == j ? 0.0 : 1.0 - a.dot(b) / (a.norm() * b.norm())).epsilon(1e-12));
      CHECK(euclidean(i, j) == doctest::Approx((a - b).norm()).epsilon(1e-12));
    }
}

TEST_CASE("RSA's comparisons match brute-force Pearson, Spearman and Kendall tau-b") {
  const mint::matrixd x = gaussian(40, 6, 92);
  mint::matrixd y = gaussian(40, 4, 93);
  y.leftCols(2) += x.leftCols(2);
  const auto a = upper_of(mint::rdm(x)), b = upper_of(mint::rdm(y));
  CHECK(mint::rsa(x, y, {.comparison = mint::rsa_comparison::pearson}) == doctest::Approx(pearson(a, b)).epsilon(1e-12));
  CHECK(mint::rsa(x, y, {.comparison = mint::rsa_comparison::spearman}) ==
        doctest::Approx(pearson(brute_ranks(a), brute_ranks(b))).epsilon(1e-12));
  CHECK(mint::rsa(x, y, {.comparison = mint::rsa_comparison::kendall}) == doctest::Approx(brute_kendall(a, b)).epsilon(1e-12));
  CHECK(mint::rsa(x, x) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("ranks and Kendall's tau-b handle ties as scipy does") {
  // Integer-valued features give many equal Euclidean distances.
  mint::matrixd x = (gaussian(30, 2, 94) * 1.5).array().round();
  mint::matrixd y = (gaussian(30, 2, 95) * 1.5).array().round();
  y.col(0) = x.col(0);
  const auto a = upper_of(mint::rdm(x, mint::rdm_distance::euclidean)), b = upper_of(mint::rdm(y, mint::rdm_distance::euclidean));
  const std::vector<double> ranks = mint::detail::average_ranks<double, double>(a), expected = brute_ranks(a);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(ranks[i] == expected[i]);
  const mint::rsa_options kendall{.distance = mint::rdm_distance::euclidean, .comparison = mint::rsa_comparison::kendall};
  CHECK(mint::rsa(x, y, kendall) == doctest::Approx(brute_kendall(a, b)).epsilon(1e-12));
  const mint::rsa_options spearman{.distance = mint::rdm_distance::euclidean};
  CHECK(mint::rsa(x, y, spearman) == doctest::Approx(pearson(brute_ranks(a), brute_ranks(b))).epsilon(1e-12));
}

TEST_CASE("the radix order sorts floats, negatives and signed zeros included") {
  const std::vector<float> values{3.5f, -1.0f, 0.0f, -0.0f, 2.0f, -7.25f, 1e-30f, 3.5f};
  std::vector<std::uint32_t> keys;
  for (const float v : values) keys.push_back(mint::detail::ordered_key(v));
  const auto order = mint::detail::radix_order(keys);
  for (std::size_t i = 1; i < order.size(); ++i) CHECK(values[order[i - 1]] <= values[order[i]]);
  CHECK(mint::detail::ordered_key(0.0f) == mint::detail::ordered_key(-0.0f));
}

TEST_CASE("RSA with the correlation distance ignores each example's offset and scale; Euclidean does not") {
  const mint::matrixd x = gaussian(30, 8, 96);
  Eigen::VectorXd offsets = gaussian(30, 1, 97).col(0), scales = (gaussian(30, 1, 98).array().abs() + 0.5).matrix().col(0);
  const mint::matrixd changed = (scales.asDiagonal() * x).colwise() + offsets;
  CHECK(mint::rsa(x, changed) == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(mint::rsa(x, changed, {.distance = mint::rdm_distance::euclidean}) < 0.99);
  CHECK(mint::rsa(x, mint::matrixd(x * orthogonal(8, 99)), {.distance = mint::rdm_distance::euclidean}) ==
        doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("RSA refuses constant examples and too few of them") {
  mint::matrixd x = gaussian(10, 4, 100);
  x.row(3).setConstant(0.25);
  CHECK_THROWS_WITH_AS(mint::rsa(x, x),
                       "mint::rsa: x has example 3 constant across features; needs examples with a direction for the "
                       "correlation distance",
                       mint::numeric_error);
  CHECK_THROWS_AS(mint::rsa(gaussian(2, 3, 101), gaussian(2, 3, 102)), mint::shape_error);
}
