// The sharper sanity check: Y is a known transform of X (rotation, isotropic scaling, an invertible
// linear map, added noise of growing size) and each measure must move exactly as its invariances say:
// unchanged where it is invariant, changed where it is not, and steadily worse as noise grows.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "common.hpp"
#include "mint/similarity.hpp"

using namespace similarity_test;

namespace {

struct expectation {
  std::string name;
  std::function<double(const mint::matrixd&, const mint::matrixd&)> measure;
  bool distance;             // 0 means identical (else 1 does)
  bool invariant_to_linear;  // unchanged by an invertible linear map
  bool invariant_to_scale = true;  // unchanged by isotropic scaling
};

}  // namespace

TEST_CASE("each measure moves with known transforms exactly as its invariances say") {
  // 400 examples, 16 features with variances spread from 1 to 100 (so linear maps matter).
  const mint::index n = 400, d = 16;
  const Eigen::VectorXd spread = Eigen::VectorXd::LinSpaced(d, 1.0, 10.0);
  const mint::matrixd x = gaussian(n, d, 181) * spread.asDiagonal() * orthogonal(d, 182);
  const mint::matrixd noise = gaussian(n, d, 183) * 3.0;
  const std::vector<expectation> measures{
      {"linear CKA", [](auto& a, auto& b) { return mint::linear_cka(a, b); }, false, false},
      {"debiased linear CKA", [](auto& a, auto& b) { return mint::debiased_linear_cka(a, b); }, false, false},
      {"RBF CKA", [](auto& a, auto& b) { return mint::kernel_cka(a, b); }, false, false},
      {"mean CCA", [](auto& a, auto& b) { return mint::mean_cca(a, b, {.epsilon = 0}); }, false, true},
      {"PWCCA", [](auto& a, auto& b) { return mint::pwcca(a, b, {.epsilon = 0}); }, false, true},
      {"linear regression", [](auto& a, auto& b) { return mint::linear_regression_r2(a, b, {.ridge = 0}); }, false, true},
      {"Procrustes", [](auto& a, auto& b) { return mint::procrustes_distance(a, b); }, true, false},
      {"shape metric alpha 0", [](auto& a, auto& b) { return mint::shape_distance(a, b, {.alpha = 0}); }, true, true},
      // Partial whitening mixes X with its whitened self, so for 0 < alpha < 1 the overall scale
      // matters (as in netrep): not invariant to isotropic scaling.
      {"shape metric alpha 0.5", [](auto& a, auto& b) { return mint::shape_distance(a, b, {.alpha = 0.5}); }, true, false,
       false},
      {"shape metric alpha 1", [](auto& a, auto& b) { return mint::shape_distance(a, b, {.alpha = 1}); }, true, false},
      {"RSA (Euclidean RDM)",
       [](auto& a, auto& b) { return mint::rsa(a, b, {.distance = mint::rdm_distance::euclidean}); }, false, false},
      {"mutual kNN (Euclidean)",
       [](auto& a, auto& b) { return mint::mutual_knn_alignment(a, b, {.k = 10, .metric = mint::knn_metric::euclidean}); },
       false, false},
  };
  const mint::matrixd rotated = x * orthogonal(d, 184), scaled = 7.5 * x, mapped = x * invertible(d, 185);
  for (const auto& m : measures) {
    CAPTURE(m.name);
    const double same = m.distance ? 0.0 : 1.0;
    // Invariant: unchanged up to rounding (distances pass through a square root or arccos: 1e-6).
    CHECK(m.measure(x, x) == doctest::Approx(same).epsilon(1e-6).scale(1.0));
    CHECK(m.measure(x, rotated) == doctest::Approx(same).epsilon(1e-6).scale(1.0));
    if (m.invariant_to_scale)
      CHECK(m.measure(x, scaled) == doctest::Approx(same).epsilon(1e-6).scale(1.0));
    else
      CHECK(std::abs(m.measure(x, scaled) - same) > 1e-3);
    // An invertible linear map: only CCA-like measures stay put; the others must move clearly.
    const double linear = m.measure(x, mapped);
    if (m.invariant_to_linear)
      CHECK(linear == doctest::Approx(same).epsilon(1e-6).scale(1.0));
    else
      CHECK(std::abs(linear - same) > 0.01);
    // Growing noise: strictly further from identical at every step.
    double previous = same;
    for (const double sigma : {0.05, 0.2, 0.8, 3.0}) {
      CAPTURE(sigma);
      const double value = m.measure(x, mint::matrixd(x + sigma * noise));
      CHECK((m.distance ? value > previous : value < previous));
      previous = value;
    }
  }
}
