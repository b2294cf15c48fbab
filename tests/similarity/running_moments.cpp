// running_moments: streamed means and covariances against the two-pass formula, merging,
// CCA from moments against CCA of the rows, and the errors.
#include "mint/similarity/running_moments.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "mint/adapters/eigen.hpp"
#include "mint/core/random.hpp"
#include "mint/similarity/cca.hpp"

namespace {

mint::matrixd shifted_rows(mint::index n, mint::index d, double shift, std::uint64_t seed) {
  mint::rng g(seed);
  mint::matrixd x(n, d);
  for (mint::index i = 0; i < x.size(); ++i) x.data()[i] = shift + g.normal() * (1 + i % d);
  return x;
}

mint::matrixd two_pass_covariance(const mint::matrixd& x, const mint::matrixd& y) {
  const mint::matrixd xc = x.rowwise() - x.colwise().mean(), yc = y.rowwise() - y.colwise().mean();
  return xc.transpose() * yc / double(x.rows() - 1);
}

}  // namespace

TEST_CASE("running_moments matches the two-pass formula where a one-pass sum would not") {
  // Mean 1e6, standard deviations 1..5: E[x^2] - E[x]^2 would lose ~12 of 16 digits.
  const mint::matrixd x = shifted_rows(1000, 5, 1e6, 1), y = shifted_rows(1000, 3, -2e5, 2);
  mint::running_moments m(5, 3);
  for (mint::index i = 0; i < 1000; i += 99) {
    const mint::index n = std::min<mint::index>(99, 1000 - i);
    m.add(mint::matrixd(x.middleRows(i, n)), mint::matrixd(y.middleRows(i, n)));
  }
  CHECK(m.rows() == 1000);
  CHECK((m.mean() - x.colwise().mean().transpose()).cwiseAbs().maxCoeff() < 1e-9);  // 1e6 x 1e-15
  // Variances 1..25: 1e-9 absolute is ~1e-10 relative, far above the two methods' rounding.
  CHECK((m.covariance() - two_pass_covariance(x, x)).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((m.paired_covariance() - two_pass_covariance(y, y)).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((m.cross_covariance() - two_pass_covariance(x, y)).cwiseAbs().maxCoeff() < 1e-9);
  CHECK((m.covariance(0) * 1000.0 - m.scatter()).cwiseAbs().maxCoeff() < 1e-6);
  // The naive one-pass formula on the same data is visibly off (so the check above can fail).
  const mint::vectord sq = x.array().square().colwise().mean().transpose();
  const mint::vectord mean = x.colwise().mean().transpose();
  const double naive = (sq(0) - mean(0) * mean(0)) * 1000.0 / 999.0;
  CHECK(std::abs(naive - m.covariance()(0, 0)) > 1e-6);
}

TEST_CASE("merging accumulators equals adding every row to one; CCA from moments equals CCA of rows") {
  const mint::matrixd x = shifted_rows(300, 4, 10, 3);
  mint::matrixd y = shifted_rows(300, 3, 0, 4);
  y.col(0) += 2.0 * x.col(1);
  mint::running_moments all(4, 3), a(4, 3), b(4, 3);
  all.add(x, y);
  a.add(mint::matrixd(x.topRows(120)), mint::matrixd(y.topRows(120)));
  b.add(mint::matrixd(x.bottomRows(180)), mint::matrixd(y.bottomRows(180)));
  a.merge(b);
  CHECK(a.rows() == 300);
  CHECK((a.covariance() - all.covariance()).cwiseAbs().maxCoeff() < 1e-12 * all.covariance().cwiseAbs().maxCoeff());
  CHECK((a.cross_covariance() - all.cross_covariance()).cwiseAbs().maxCoeff() < 1e-12 * all.cross_covariance().cwiseAbs().maxCoeff());
  const mint::vectord rho = mint::canonical_correlations(x, y), from_moments = mint::canonical_correlations(a);
  REQUIRE(from_moments.size() == 3);
  CHECK(rho(0) > 0.5);
  CHECK((rho - from_moments).cwiseAbs().maxCoeff() < 1e-10);
  // Rows of a [batch, pos, d] tensor: leading axes merge.
  mint::running_moments single(4);
  single.add(x);
  CHECK((single.mean() - all.mean()).cwiseAbs().maxCoeff() < 1e-12);
  // Means alone: the same means, no scatter, merging and covariance refused.
  mint::running_moments means(4, 0, false), more(4, 0, false);
  means.add(mint::matrixd(x.topRows(100)));
  more.add(mint::matrixd(x.bottomRows(200)));
  means.merge(more);
  CHECK(means.rows() == 300);
  CHECK((means.mean() - all.mean()).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(means.scatter().size() == 0);
  CHECK_THROWS_AS(means.covariance(), mint::argument_error);
  CHECK_THROWS_AS(means.merge(single), mint::argument_error);
}

TEST_CASE("running_moments refuses what it cannot use") {
  mint::running_moments m(4), paired(4, 2);
  const mint::matrixd three(5, 3), four = mint::matrixd::Ones(5, 4);
  CHECK_THROWS_AS(mint::running_moments(0), mint::argument_error);
  CHECK_THROWS_AS(m.add(three), mint::shape_error);
  CHECK_THROWS_AS(paired.add(four), mint::argument_error);  // paired rows missing
  CHECK_THROWS_AS(m.add(four, three), mint::argument_error);
  CHECK_THROWS_AS(paired.add(four, mint::matrixd(4, 2)), mint::shape_error);
  mint::matrixd nan = four;
  nan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(m.add(nan), mint::numeric_error);
  CHECK_THROWS_AS(m.covariance(), mint::argument_error);  // no rows yet
  m.add(four);
  CHECK_THROWS_AS(m.covariance(5), mint::argument_error);
  CHECK_THROWS_AS(m.merge(paired), mint::argument_error);
  CHECK_THROWS_AS(mint::canonical_correlations(m), mint::argument_error);  // no paired rows
}
