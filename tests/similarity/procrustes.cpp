// Procrustes distance: zero up to rotation, translation and scale; the rotation it finds.
#include "mint/similarity/procrustes.hpp"
#include "mint/similarity/shape_metric.hpp"
#include "mint/similarity/similarity_matrix.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common.hpp"

using namespace similarity_test;

TEST_CASE("Procrustes distance is 0 for rotated, translated, scaled copies and positive otherwise") {
  const mint::matrixd x = gaussian(200, 10, 61);
  const mint::matrixd moved = ((0.3 * x * orthogonal(10, 62)).rowwise() + Eigen::RowVectorXd::Constant(10, 5.0)).eval();
  // Near 0 the sqrt amplifies rounding: 1e-7 is sqrt(1e-14).
  CHECK(mint::procrustes_distance(x, moved) < 1e-7);
  CHECK(mint::procrustes_distance(x, x) < 1e-7);
  CHECK(mint::procrustes_distance(x, mint::matrixd(x * invertible(10, 63))) > 0.05);
  CHECK(mint::procrustes_distance(x, gaussian(200, 10, 64)) > 1.0);
}

TEST_CASE("Procrustes distance equals the residual of the optimal rotation, and NumPy's value") {
  const auto [x, y] = linear_reference();
  const double distance = mint::procrustes_distance(x, y);
  // NumPy: sqrt(2 - 2 * svd(Xn^T Yn).sum()) with Xn, Yn centred and unit-norm.
  CHECK(distance == doctest::Approx(1.069009062672487).epsilon(1e-10));
  const mint::matrixd q = mint::procrustes_rotation(x, y);  // [9, 12]: maps Y onto X
  CHECK(q.rows() == 9);
  CHECK((q * q.transpose() - mint::matrixd::Identity(9, 9)).cwiseAbs().maxCoeff() < 1e-12);
  const mint::matrixd xn = centred(x) / centred(x).norm(), yn = centred(y) / centred(y).norm();
  CHECK((xn - yn * q).norm() == doctest::Approx(distance).epsilon(1e-10));
  // A different sample's float32 copy.
  const mint::matrixf xf = x.cast<float>(), yf = y.cast<float>();
  CHECK(mint::procrustes_distance(xf, yf) == doctest::Approx(distance).epsilon(1e-6));
}

TEST_CASE("near-identical representations keep their small Procrustes distance accurate") {
  // Rank-deficient (n < d) data, nudged: the fast nuclear norm alone would be off by ~1e-4 here.
  const mint::matrixd x = gaussian(40, 120, 65);
  const mint::matrixd nudged = x + 1e-4 * gaussian(40, 120, 66);
  const mint::matrixd xn = centred(x) / centred(x).norm(), yn = centred(nudged) / centred(nudged).norm();
  const double exact =
      std::sqrt(std::max(0.0, 2.0 - 2.0 * Eigen::BDCSVD<Eigen::MatrixXd>(xn.transpose() * yn).singularValues().sum()));
  CHECK(mint::procrustes_distance(x, nudged) == doctest::Approx(exact).epsilon(1e-6));
}

TEST_CASE("Procrustes distance refuses a constant representation") {
  CHECK_THROWS_AS(mint::procrustes_distance(gaussian(10, 3, 67), mint::matrixd(mint::matrixd::Ones(10, 3))), mint::numeric_error);
}

TEST_CASE("an infinity or a NaN is named as such, not as a representation without variance") {
  // centred_sum_squares clamps at 0, so before the check a NaN sum read as "no variance".
  const mint::matrixd x = gaussian(20, 3, 68);
  for (const double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    mint::matrixd y = gaussian(20, 3, 69);
    y(4, 1) = bad;
    const char* message = "mint::procrustes_distance: y holds NaN or infinity (or values whose squares overflow); needs finite activations";
    CHECK_THROWS_WITH_AS(mint::procrustes_distance(x, y), message, mint::numeric_error);
    CHECK_THROWS_WITH_AS(mint::shape_distance(y, x),
                         "mint::shape_distance: x holds NaN or infinity (or values whose squares overflow); needs finite activations",
                         mint::numeric_error);
    const std::vector<mint::matrixd> layers{x, y};
    CHECK_THROWS_WITH_AS(mint::similarity_matrix(layers, mint::procrustes_options{}),
                         "mint::similarity_matrix: layers[1] holds NaN or infinity (or values whose squares overflow); "
                         "needs finite activations",
                         mint::numeric_error);
  }
}
