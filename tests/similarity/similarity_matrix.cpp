// The layer x layer similarity matrix: equal to pairwise calls for every measure, prepared once
// per layer, the sanity-check accuracy, and errors naming the layer at fault.
#include "mint/similarity/similarity_matrix.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "common.hpp"
#include "mint/similarity.hpp"

using namespace similarity_test;

namespace {

// Two "models" of 4 layers on the same 150 examples: layer l of B is layer l of A rotated plus noise,
// as float32 (a, b) and as double (a64, b64).
struct two_models {
  std::vector<mint::matrixf> a, b;
  std::vector<mint::matrixd> a64, b64;
  two_models() {
    mint::matrixd h = gaussian(150, 12, 121);
    for (int l = 0; l < 4; ++l) {
      h = (h * gaussian(12, 12, 122 + l) / 3.0).array().tanh().matrix() + 0.3 * gaussian(150, 12, 130 + l);
      a64.push_back(h);
      b64.push_back(h * orthogonal(12, 140 + l) + 0.2 * gaussian(150, 12, 150 + l));
      a.push_back(a64.back().cast<float>());
      b.push_back(b64.back().cast<float>());
    }
  }
};

// The matrix against separate calls: equal to rounding in double (1e-12); with float32 layers, a
// separate call makes one pass over both layers and the matrix one per layer, so their float
// products are summed in different orders (1e-6).
template <class M, class F>
void check_against_pairs(const two_models& m, const M& measure, F&& pairwise) {
  const auto check = [&](const auto& a, const auto& b, double tolerance) {
    const mint::matrixd s = mint::similarity_matrix(a, b, measure);
    REQUIRE(s.rows() == 4);
    REQUIRE(s.cols() == 4);
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        CHECK(s(mint::index(i), mint::index(j)) == doctest::Approx(pairwise(a[i], b[j])).epsilon(tolerance));
    CHECK(mint::matching_accuracy(s, M::is_distance) == 1.0);
  };
  check(m.a64, m.b64, 1e-12);
  check(m.a, m.b, 1e-6);
}

}  // namespace

TEST_CASE("the similarity matrix equals pairwise calls for every measure, and finds matching layers") {
  const two_models m;
  check_against_pairs(m, mint::linear_cka_options{}, [](const auto& x, const auto& y) { return mint::linear_cka(x, y); });
  check_against_pairs(m, mint::linear_cka_options{.estimator = mint::hsic_estimator::unbiased},
                      [](const auto& x, const auto& y) { return mint::debiased_linear_cka(x, y); });
  check_against_pairs(m, mint::kernel_cka_options{}, [](const auto& x, const auto& y) { return mint::kernel_cka(x, y); });
  check_against_pairs(m, mint::cca_options{}, [](const auto& x, const auto& y) { return mint::mean_cca(x, y); });
  check_against_pairs(m, mint::svcca_options{}, [](const auto& x, const auto& y) { return mint::svcca(x, y); });
  check_against_pairs(m, mint::pwcca_options{}, [](const auto& x, const auto& y) { return mint::pwcca(x, y); });
  check_against_pairs(m, mint::procrustes_options{}, [](const auto& x, const auto& y) { return mint::procrustes_distance(x, y); });
  check_against_pairs(m, mint::shape_metric_options{.alpha = 0.5},
                      [](const auto& x, const auto& y) { return mint::shape_distance(x, y, {.alpha = 0.5}); });
  check_against_pairs(m, mint::linear_regression_options{},
                      [](const auto& x, const auto& y) { return mint::linear_regression_r2(x, y); });
  check_against_pairs(m, mint::rsa_options{}, [](const auto& x, const auto& y) { return mint::rsa(x, y); });
  check_against_pairs(m, mint::mutual_knn_options{}, [](const auto& x, const auto& y) { return mint::mutual_knn_alignment(x, y); });
  check_against_pairs(m, mint::knn_jaccard_options{}, [](const auto& x, const auto& y) { return mint::knn_jaccard(x, y); });
}

TEST_CASE("one model against itself fills a symmetric matrix with ones on the diagonal") {
  const two_models m;
  const mint::matrixd s = mint::similarity_matrix(m.a, mint::linear_cka_options{});
  CHECK((s - s.transpose()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((s.diagonal().array() - 1.0).abs().maxCoeff() < 1e-6);  // float32 layers: the float path's rounding
  CHECK(s(0, 1) == doctest::Approx(mint::linear_cka(m.a[0], m.a[1])).epsilon(1e-6));
  // An asymmetric measure computes both triangles.
  const mint::matrixd r = mint::similarity_matrix(m.a64, mint::linear_regression_options{});
  CHECK(r(0, 1) == doctest::Approx(mint::linear_regression_r2(m.a64[0], m.a64[1])).epsilon(1e-12));
  CHECK(r(1, 0) == doctest::Approx(mint::linear_regression_r2(m.a64[1], m.a64[0])).epsilon(1e-12));
}

TEST_CASE("layers may be any tensors, of mixed element types across the two models") {
  const two_models m;
  std::vector<mint::tensor_view<const float>> a_views;
  for (const auto& l : m.a) a_views.push_back(mint::view(l));
  const mint::matrixd s = mint::similarity_matrix(a_views, m.b64, mint::linear_cka_options{});
  // A float32 layer's own pass is in float32; the pair call runs both in double: 1e-6.
  CHECK(s(2, 2) == doctest::Approx(mint::linear_cka(m.a[2], m.b64[2])).epsilon(1e-6));
}

TEST_CASE("the matrix reports progress and names the layer at fault") {
  const two_models m;
  int reports = 0;
  std::int64_t last = 0, total = 0;
  mint::similarity_matrix(m.a, m.b, mint::procrustes_options{}, [&](const mint::progress& p) {
    ++reports;
    last = p.step;
    total = p.total;
  });
  CHECK(reports >= 1);
  CHECK(last == 4 + 4 + 16);
  CHECK(total == 24);
  std::vector<mint::matrixf> bad = m.b;
  bad[2] = bad[2].topRows(100).eval();
  CHECK_THROWS_WITH_AS(mint::similarity_matrix(m.a, bad, mint::linear_cka_options{}),
                       "mint::similarity_matrix: layers_b[2] has 100 examples; needs 150, the examples of layers_a[0] "
                       "(the same inputs, in the same order)",
                       mint::shape_error);
  CHECK_THROWS_AS(mint::similarity_matrix(std::vector<mint::matrixf>{}, m.b, mint::linear_cka_options{}), mint::argument_error);
}

TEST_CASE("matching accuracy counts rows whose best column is their own") {
  mint::matrixd s(3, 3);
  s << 0.9, 0.2, 0.1,  //
      0.3, 0.4, 0.8,   // row 1's best is column 2: a miss
      0.1, 0.2, 0.7;
  CHECK(mint::matching_accuracy(s) == doctest::Approx(2.0 / 3));
  CHECK(mint::matching_accuracy(-s, true) == doctest::Approx(2.0 / 3));
  CHECK_THROWS_AS(mint::matching_accuracy(mint::matrixd(2, 3)), mint::shape_error);
}
