// Dictionary learning against a planted dictionary: K-SVD (ksvd.hpp) and online
// dictionary learning (online_dictionary.hpp), scored by MMCS (synthetic.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/ksvd.hpp"
#include "mint/dictionary/synthetic.hpp"

namespace md = mint::dictionary;
using dictionary_test::sparse_codes;
using dictionary_test::unit_dictionary;

namespace {

// True atoms that some learned atom matches with |cosine| above 0.99 (Aharon et al.'s count).
mint::index atoms_found(const mint::matrixf& learned, const mint::matrixf& truth) {
  const mint::matrixf cosines = (truth * learned.transpose()).cwiseAbs();
  return (cosines.rowwise().maxCoeff().array() > 0.99f).count();
}

}  // namespace

TEST_CASE("ksvd recovers a planted dictionary (Aharon et al.'s synthetic experiment)") {
  // Aharon, Elad and Bruckstein's setting: 50 random unit atoms in 20 dimensions, signals
  // of exactly 3 atoms (here magnitudes in [0.5, 1.5) with random signs, no noise), OMP with
  // 3 atoms; they report about 96% of the atoms found (|cosine| > 0.99) after 80 iterations
  // on 1500 signals. Here 3000 signals, 60 iterations. Over six seeds (dictionary, codes,
  // start) the exact update found 44 to 48 atoms (MMCS 0.987 to 0.996) and the approximate
  // one 48 to 50 (MMCS 0.995 to 0.9999); the result moves with rounding (-march=native
  // changes it), so we require MMCS >= 0.98 and 42 atoms found for both.
  const mint::index atoms = 50, dims = 20, n = 3000, k = 3;
  const mint::matrixf truth = unit_dictionary(atoms, dims, 1);
  const mint::matrixf x = sparse_codes(n, atoms, k, 2) * truth;

  const auto exact = md::ksvd(x, {.atoms = atoms, .nonzeros = k, .iterations = 60, .seed = 3});
  CHECK(exact.dictionary.rows() == atoms);
  CHECK(exact.dictionary.rowwise().norm().minCoeff() == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(exact.dictionary.rowwise().norm().maxCoeff() == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(md::mmcs(exact.dictionary, truth) >= 0.98);
  CHECK(atoms_found(exact.dictionary, truth) >= 42);
  REQUIRE(exact.rmse.size() == 60);
  CHECK(exact.rmse.back() < 0.5 * exact.rmse.front());
  // The codes returned are those of the last iteration: k non-zeros a row, and they
  // reproduce the residual the last figure reports.
  CHECK((exact.codes.array() != 0).rowwise().count().maxCoeff() <= k);
  const double rmse = std::sqrt((x - exact.codes * exact.dictionary).cast<double>().squaredNorm() / double(n * dims));
  CHECK(rmse == doctest::Approx(exact.rmse.back()).epsilon(1e-3));

  const auto approximate = md::ksvd(
      x, {.atoms = atoms, .nonzeros = k, .iterations = 60, .update = md::ksvd_update::approximate, .seed = 3});
  CHECK(md::mmcs(approximate.dictionary, truth) >= 0.98);
  CHECK(atoms_found(approximate.dictionary, truth) >= 42);

  SUBCASE("deterministic for a seed; from a given dictionary") {
    const auto again = md::ksvd(x, {.atoms = atoms, .nonzeros = k, .iterations = 3, .seed = 3});
    const auto twice = md::ksvd(x, {.atoms = atoms, .nonzeros = k, .iterations = 3, .seed = 3});
    CHECK((again.dictionary - twice.dictionary).cwiseAbs().maxCoeff() == 0.0f);
    // Starting at the truth, K-SVD stays near it: OMP misses the support of a few signals
    // (the atoms are coherent: max |cosine| about 0.8), and those pull the atoms slightly.
    const auto from_truth = md::ksvd(x, truth, {.atoms = atoms, .nonzeros = k, .iterations = 2});
    CHECK(md::mmcs(from_truth.dictionary, truth) > 0.999);
  }
}

TEST_CASE("ksvd refuses bad input and replaces atoms no signal uses") {
  mint::matrixf x(30, 6);
  mint::rng(5).fill_normal(x);
  CHECK_THROWS_WITH_AS(md::ksvd(x, {.nonzeros = 2}), doctest::Contains("needs K >= 1 atoms"), mint::argument_error);
  CHECK_THROWS_WITH_AS(md::ksvd(x, {.atoms = 4}), doctest::Contains("needs nonzeros > 0 or tolerance > 0"),
                       mint::argument_error);
  const mint::matrixf wrong(4, 5);
  CHECK_THROWS_WITH_AS(md::ksvd(x, wrong, {.atoms = 4, .nonzeros = 1}),
                       doctest::Contains("initial has 5 columns; needs 6"), mint::shape_error);
  mint::matrixf zero_row = mint::matrixf::Ones(4, 6);
  zero_row.row(2).setZero();
  CHECK_THROWS_AS(md::ksvd(x, zero_row, {.atoms = 4, .nonzeros = 1}), mint::numeric_error);
  // Two copies of one atom: after the first coding the copy is unused (OMP picks the first of
  // equals) or a duplicate, and is replaced by a signal.
  mint::matrixf twins = unit_dictionary(4, 6, 6);
  twins.row(1) = twins.row(0);
  const auto result = md::ksvd(x, twins, {.atoms = 4, .nonzeros = 1, .iterations = 2});
  CHECK(result.replaced >= 1);
  CHECK(std::abs(result.dictionary.row(0).dot(result.dictionary.row(1))) < 0.99f);
}
