// Test data for the similarity tests: seeded Gaussian matrices, random orthogonal
// and invertible maps, and data whose canonical correlations are known exactly.
#pragma once

#include <Eigen/Dense>

#include "mint/adapters/eigen.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/random.hpp"

namespace similarity_test {

inline mint::matrixd gaussian(mint::index rows, mint::index cols, std::uint64_t seed) {
  mint::matrixd m(rows, cols);
  mint::rng(seed).fill_normal(m);
  return m;
}

/// A d x d orthogonal matrix (Q of a Gaussian matrix's QR).
inline mint::matrixd orthogonal(mint::index d, std::uint64_t seed) {
  const Eigen::MatrixXd g = gaussian(d, d, seed);
  return mint::matrixd(Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ());
}

/// A d x d invertible map far from orthogonal: a rotation, a spread of scales (1 to 20), another rotation.
inline mint::matrixd invertible(mint::index d, std::uint64_t seed) {
  Eigen::VectorXd scales = Eigen::VectorXd::LinSpaced(d, 1.0, 20.0);
  return orthogonal(d, seed) * scales.asDiagonal() * orthogonal(d, seed + 1);
}

/// Centred columns.
inline mint::matrixd centred(const mint::matrixd& m) { return m.rowwise() - m.colwise().mean(); }

/// X [n, k] and Y [n, k] whose sample canonical correlations are exactly rho (descending):
/// X = Q1 diag(scale), Y = Q1 diag(rho) + Q2 diag(sqrt(1 - rho^2)), Q = [Q1 Q2] orthonormal and centred.
struct canonical_pair {
  mint::matrixd x, y;
};

inline canonical_pair with_correlations(mint::index n, const Eigen::VectorXd& rho, const Eigen::VectorXd& scale,
                                        std::uint64_t seed) {
  const mint::index k = rho.size();
  const Eigen::MatrixXd g = centred(gaussian(n, 2 * k, seed));
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ() * Eigen::MatrixXd::Identity(n, 2 * k);
  canonical_pair out;
  out.x = q.leftCols(k) * scale.asDiagonal();
  const Eigen::VectorXd rest = (1.0 - rho.array().square()).sqrt();
  out.y = q.leftCols(k) * rho.asDiagonal() + q.rightCols(k) * rest.asDiagonal();
  return out;
}

}  // namespace similarity_test
