// Test data for the similarity tests: seeded Gaussian matrices, random orthogonal
// and invertible maps, and data whose canonical correlations are known exactly.
#pragma once

#include <Eigen/Dense>

#include "mint/adapters/eigen.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/random.hpp"

namespace similarity_test {

/// The test matrices are small: one Eigen thread is faster than several (whose hand-offs dominate,
/// and stall on a busy machine). tests/similarity/threads.cpp checks the threaded paths agree.
inline const bool single_threaded = [] {
  Eigen::setNbThreads(1);
  return true;
}();

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

/// Two related representations for checks against reference values computed in NumPy on the
/// same numbers: X [n, dx] and Y [n, dy] Gaussian from rng(seed), Y's first `shared` features plus
/// `weight` x X's, then X shifted by `offset`.
struct reference_pair {
  mint::matrixd x, y;
};

inline reference_pair related(mint::index n, mint::index dx, mint::index dy, mint::index shared, double weight,
                              double offset, std::uint64_t seed) {
  reference_pair p{mint::matrixd(n, dx), mint::matrixd(n, dy)};
  mint::rng rng(seed);
  rng.fill_normal(p.x);
  rng.fill_normal(p.y);
  p.y.leftCols(shared) += weight * p.x.leftCols(shared);
  p.x.array() += offset;
  return p;
}

/// rng(3): X [300, 12] + 2, Y [300, 9] with Y[:, :6] += 0.7 X[:, :6] (CCA family, Procrustes, shape, R^2).
inline reference_pair linear_reference() { return related(300, 12, 9, 6, 0.7, 2.0, 3); }

/// rng(1): X [200, 30], Y [200, 20] with Y[:, :10] += 0.5 X[:, :10] (Kornblith et al.'s CKA code).
inline reference_pair cka_reference() { return related(200, 30, 20, 10, 0.5, 0.0, 1); }

}  // namespace similarity_test
