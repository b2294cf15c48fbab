// kNN alignment: brute-force neighbours, mutual kNN and Jaccard, invariances.
#include "mint/similarity/knn.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "common.hpp"

using namespace similarity_test;

namespace {
std::set<mint::index> brute_neighbours(const mint::matrixd& x, mint::index i, mint::index k) {
  std::vector<mint::index> order(std::size_t(x.rows()));
  std::iota(order.begin(), order.end(), 0);
  const Eigen::RowVectorXd xi = x.row(i).normalized();
  const auto score = [&](mint::index j) { return xi.dot(x.row(j).normalized()); };
  std::stable_sort(order.begin(), order.end(), [&](mint::index a, mint::index b) { return score(a) > score(b); });
  std::set<mint::index> out;
  for (const mint::index j : order)
    if (j != i && mint::index(out.size()) < k) out.insert(j);
  return out;
}
}  // namespace

TEST_CASE("nearest neighbours match brute force; mutual kNN and Jaccard follow from them") {
  const mint::matrixd x = gaussian(60, 5, 111);
  mint::matrixd y = gaussian(60, 5, 112);
  y.leftCols(3) += 2.0 * x.leftCols(3);
  const mint::index k = 6;
  const auto nx = mint::nearest_neighbours(x, k), ny = mint::nearest_neighbours(y, k);
  double overlap = 0, jaccard = 0;
  for (mint::index i = 0; i < 60; ++i) {
    const auto bx = brute_neighbours(x, i, k), by = brute_neighbours(y, i, k);
    CHECK(std::set<mint::index>(nx.row(i).data(), nx.row(i).data() + k) == bx);
    std::vector<mint::index> shared;
    std::set_intersection(bx.begin(), bx.end(), by.begin(), by.end(), std::back_inserter(shared));
    overlap += double(shared.size()) / double(k);
    jaccard += double(shared.size()) / double(2 * k - mint::index(shared.size()));
  }
  CHECK(mint::mutual_knn_alignment(x, y, {.k = k}) == doctest::Approx(overlap / 60).epsilon(1e-12));
  CHECK(mint::knn_jaccard(x, y, {.k = k}) == doctest::Approx(jaccard / 60).epsilon(1e-12));
  CHECK(mint::mutual_knn_alignment(x, x, {.k = k}) == 1.0);
}

TEST_CASE("kNN alignment is invariant to rotation and scale, and the metric matters") {
  const mint::matrixd x = gaussian(80, 6, 113);
  const mint::matrixd rotated = 4.0 * x * orthogonal(6, 114);
  for (const auto metric : {mint::knn_metric::cosine, mint::knn_metric::euclidean, mint::knn_metric::inner_product})
    CHECK(mint::mutual_knn_alignment(x, rotated, {.k = 5, .metric = metric}) == 1.0);
  const mint::matrixd shifted = x.array() + 3.0;
  CHECK(mint::mutual_knn_alignment(x, shifted, {.k = 5, .metric = mint::knn_metric::euclidean}) == 1.0);
  CHECK(mint::mutual_knn_alignment(x, shifted, {.k = 5, .metric = mint::knn_metric::cosine}) < 1.0);
  // Independent data share about k / (n - 1) of their neighbours.
  CHECK(mint::mutual_knn_alignment(x, gaussian(80, 6, 115), {.k = 5}) < 0.2);
}

TEST_CASE("kNN refuses k out of range") {
  const mint::matrixd x = gaussian(10, 3, 116);
  CHECK_THROWS_WITH_AS(mint::mutual_knn_alignment(x, x, {.k = 10}),
                       "mint::mutual_knn_alignment: k is 10; needs 1 <= k <= 9, the other examples", mint::argument_error);
  CHECK_THROWS_AS(mint::knn_jaccard(x, x, {.k = 0}), mint::argument_error);
}
