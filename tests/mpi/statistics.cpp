// Distributed statistics: each rank streams its share of the rows, allreduce() combines, and
// every rank holds what one process streaming every row holds: counts, top lists and
// histograms exactly, sums and moments to rounding (tolerances below).
#include <doctest/doctest.h>

#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/core/random.hpp"
#include "mint/dictionary/feature_analysis.hpp"
#include "mint/similarity/cca.hpp"
#include "mint/similarity/minibatch_cka.hpp"
#include "mint/similarity/running_moments.hpp"

namespace dict = mint::dictionary;
using mpi_test::world;

namespace {

// The same rows on every rank: a mean of 100 (where one-pass formulas lose digits) and paired
// rows that depend on the first.
struct paired_rows {
  mint::matrixd x, y;
};
const paired_rows& rows() {
  static const paired_rows r = [] {
    mint::rng g(21);
    paired_rows out{mint::matrixd(601, 6), mint::matrixd(601, 4)};
    for (mint::index i = 0; i < out.x.size(); ++i) out.x.data()[i] = 100.0 + g.normal();
    for (mint::index i = 0; i < out.y.rows(); ++i)
      for (mint::index j = 0; j < 4; ++j) out.y(i, j) = out.x(i, j) * (j + 1) + 3.0 * g.normal();
    return out;
  }();
  return r;
}

// Rank r's share of n items: an uneven split, so 2 and 3 ranks hold different counts.
std::pair<mint::index, mint::index> share(mint::index n) {
  const mint::index r = world().rank(), size = world().size();
  return {n * r / size, n * (r + 1) / size};
}

}  // namespace

TEST_CASE("running_moments: means, covariances and CCA of the group's rows") {
  const auto& d = rows();
  mint::running_moments one(6, 4), group(6, 4);
  for (mint::index i = 0; i < 601; i += 50) {
    const mint::index n = std::min<mint::index>(50, 601 - i);
    one.add(mint::matrixd(d.x.middleRows(i, n)), mint::matrixd(d.y.middleRows(i, n)));
  }
  const auto [first, last] = share(601);
  for (mint::index i = first; i < last; i += 37) {  // other batches than one's
    const mint::index n = std::min<mint::index>(37, last - i);
    group.add(mint::matrixd(d.x.middleRows(i, n)), mint::matrixd(d.y.middleRows(i, n)));
  }
  group.allreduce(world());
  CHECK(group.rows() == 601);
  // Sums of 601 terms in another order: 1e-12 relative is ~4000 ulps of slack, 1e-16 the rounding.
  CHECK((group.mean() - one.mean()).cwiseAbs().maxCoeff() < 1e-12 * 100);
  CHECK((group.covariance() - one.covariance()).cwiseAbs().maxCoeff() < 1e-12 * one.covariance().cwiseAbs().maxCoeff());
  CHECK((group.cross_covariance() - one.cross_covariance()).cwiseAbs().maxCoeff() <
        1e-12 * one.cross_covariance().cwiseAbs().maxCoeff());
  // Against the two-pass formula on all rows, and CCA against CCA of the rows themselves.
  const mint::matrixd xc = d.x.rowwise() - d.x.colwise().mean();
  const mint::matrixd two_pass = xc.transpose() * xc / 600.0;
  CHECK((group.covariance() - two_pass).cwiseAbs().maxCoeff() < 1e-11);
  const mint::vectord from_rows = mint::canonical_correlations(d.x, d.y);
  const mint::vectord from_moments = mint::canonical_correlations(group);
  CHECK((from_rows - from_moments).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("means alone, for mean ablation: a site's per-position mean over the group's examples") {
  // 601 examples of a [positions 3, d 2] site, as rows of 6: the mean is the [3, 2] tensor
  // ablation::tensor takes.
  const auto& d = rows();
  mint::running_moments one(6, 0, false), group(6, 0, false);
  one.add(d.x);
  const auto [first, last] = share(601);
  group.add(mint::matrixd(d.x.middleRows(first, last - first)));
  group.allreduce(world());
  CHECK(group.rows() == 601);
  CHECK((group.mean() - one.mean()).cwiseAbs().maxCoeff() < 1e-12 * 100);
  CHECK(group.scatter().size() == 0);
}

TEST_CASE("minibatch_cka: every layer pair over the group's batches") {
  const auto& d = rows();
  // Layers a_i = x scaled per column, b_j = y + j x[:, :4]: 2 x 3 pairs, 12 batches of 50 rows.
  auto layers = [&](mint::index batch) {
    const mint::matrixd x = d.x.middleRows(batch * 50, 50), y = d.y.middleRows(batch * 50, 50);
    std::vector<mint::matrixd> a{x, x.array().square().matrix()}, b;
    for (int j = 0; j < 3; ++j) b.push_back(y + double(j) * x.leftCols(4));
    return std::pair{a, b};
  };
  mint::minibatch_cka one(2, 3), group(2, 3);
  for (mint::index b = 0; b < 12; ++b) {
    const auto [a, bl] = layers(b);
    one.add_layers(a, bl);
  }
  const auto [first, last] = share(12);
  for (mint::index b = first; b < last; ++b) {
    const auto [a, bl] = layers(b);
    group.add_layers(a, bl);
  }
  group.allreduce(world());
  CHECK(group.batches() == 12);
  CHECK((group.values() - one.values()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("feature_collector: top examples, counts and histograms exactly as one process") {
  // Codes with ties (values on a 0.25 grid), so the tie order (smaller example first) matters.
  mint::rng g(5);
  mint::matrixd codes(900, 10);
  for (mint::index i = 0; i < codes.size(); ++i) codes.data()[i] = g.uniform() < 0.3 ? std::floor(g.uniform() * 12) * 0.25 : 0.0;
  std::vector<dict::example_ref> refs(900);
  for (std::size_t i = 0; i < refs.size(); ++i) refs[i] = {std::int64_t(i / 30), std::int64_t(i % 30)};
  const dict::feature_collector_options o{.top_n = 7, .histogram_bins = 8};
  dict::feature_collector one(10, o), group(10, o);
  one.add(codes, refs);
  const auto [first, last] = share(900);
  group.add(mint::matrixd(codes.middleRows(first, last - first)), std::span(refs).subspan(std::size_t(first), std::size_t(last - first)));
  group.allreduce(world());
  CHECK(group.rows() == 900);
  for (mint::index j = 0; j < 10; ++j) {
    CAPTURE(j);
    CHECK(group.fires(j) == one.fires(j));
    const auto a = group.top(j), b = one.top(j);
    REQUIRE(a.size() == b.size());
    for (std::size_t e = 0; e < a.size(); ++e) CHECK((a[e].value == b[e].value && a[e].where == b[e].where));
    CHECK(group.histogram(j).counts == one.histogram(j).counts);
    CHECK(group.histogram(j).top == one.histogram(j).top);
    CHECK(group.mean_activation(j) == doctest::Approx(one.mean_activation(j)).epsilon(1e-12));
  }
}
