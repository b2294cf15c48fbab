// Dictionary learning against a planted dictionary: K-SVD (ksvd.hpp) and online
// dictionary learning (online_dictionary.hpp), scored by MMCS (synthetic.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/ksvd.hpp"
#include "mint/dictionary/online_dictionary.hpp"
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
  CHECK_THROWS_WITH_AS(md::ksvd(x, {.atoms = 4, .nonzeros = 5}),
                       doctest::Contains("options.nonzeros is 5; needs at most 4, the number of atoms"), mint::argument_error);
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

// ---------------------------------------------------------------------------
// Online dictionary learning (online_dictionary.hpp)

TEST_CASE("online dictionary learning takes scikit-learn's MiniBatchDictionaryLearning steps") {
  // scikit-learn 1.2.1 (Debian's python3-sklearn), float64:
  //   X[s, j] = sin(0.37 s + 1.1 j + 0.05 s j) (40 x 6), D0[k, j] = cos(0.9 k + 0.5 j + 0.3 k j) (8 x 6)
  //   MiniBatchDictionaryLearning(n_components=8, alpha=0.05, batch_size=10, max_iter=3,
  //       fit_algorithm="cd", shuffle=False, dict_init=D0, tol=0, max_no_improvement=None,
  //       verbose=1).fit(X)
  //   -> n_steps_ 12, no atom resampled (random in both), first "mean batch cost"
  //   0.06970320013770204, components_ printed with np.array2string(precision=10, floatmode="fixed").
  // Same codes (coordinate descent, same stopping rule), same decay of A and B, same
  // sweep: the two agree to rounding. Tolerance 1e-8 over 12 steps in double.
  mint::matrixd x(40, 6), d0(8, 6);
  for (int s = 0; s < 40; ++s)
    for (int j = 0; j < 6; ++j) x(s, j) = std::sin(0.37 * s + 1.1 * j + 0.05 * s * j);
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 6; ++j) d0(k, j) = std::cos(0.9 * k + 0.5 * j + 0.3 * k * j);
  const std::vector<double> expected = {
      -0.0891195939, 0.7935267753,  -0.5172106684, 0.1763129919,  -0.1632590814, -0.1926818116,
      0.5802224697,  0.4146923069,  -0.2000732687, -0.1003890152, -0.4202468813, 0.5144487028,
      -0.0566554786, -0.5574878792, -0.3920917984, 0.3073252095,  0.5418707418,  0.3797219480,
      -0.5042843566, -0.2215514861, 0.4251134204,  0.4521696354,  -0.1862800551, -0.5260543398,
      -0.4225616620, 0.3867821746,  0.4061292922,  -0.4383607533, -0.3529386292, 0.4360898568,
      -0.0654543394, 0.5979699211,  -0.1663100077, -0.5663660085, 0.3235959113,  0.4301208143,
      -0.4449589979, 0.2173078891,  0.4438365872,  -0.1806448008, -0.6191118785, 0.3766507578,
      0.7174862847,  0.2198027384,  -0.2012189534, -0.3159101314, 0.0452665621,  0.5427364439};
  md::online_dictionary<double> learner({.atoms = 8, .alpha = 0.05, .batch_size = 10, .epochs = 3, .shuffle = false});
  learner.set_dictionary(d0);
  learner.fit(x);
  CHECK(learner.steps() == 12);
  CHECK(learner.resampled() == 0);
  CHECK((learner.dictionary() - Eigen::Map<const mint::matrixd>(expected.data(), 8, 6)).cwiseAbs().maxCoeff() < 1e-8);

  SUBCASE("partial_fit step by step is fit without shuffling") {
    md::online_dictionary<double> stepper({.atoms = 8, .alpha = 0.05, .batch_size = 10, .shuffle = false});
    stepper.set_dictionary(d0);
    CHECK(stepper.partial_fit(x.topRows(10).eval()) == doctest::Approx(0.06970320013770204).epsilon(1e-10));
    for (int step = 1; step < 12; ++step) stepper.partial_fit(x.middleRows(10 * (step % 4), 10).eval());
    CHECK((stepper.dictionary() - learner.dictionary()).cwiseAbs().maxCoeff() == 0.0);
    CHECK((stepper.statistics_a() - learner.statistics_a()).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("online dictionary learning recovers a planted dictionary") {
  // synthetic_features: 64 unit features in 32 dimensions, each firing with probability
  // 0.05 (L0 3.2 on average), coefficients Uniform[0, 1); 4000 samples, non-negative lasso
  // codes with alpha 0.05, batches of 32, 10 epochs (1250 steps), started from the data's
  // SVD (32 directions; the other 32 atoms start at zero and are resampled from the data).
  // Over six seeds MMCS was 0.993 to 0.9998 with 61 to 64 of 64 features found (|cosine| >
  // 0.99); we require MMCS >= 0.99 (the bar) and 58 found.
  md::synthetic_features truth({.features = 64, .dims = 32, .firing_probability = 0.05, .seed = 1});
  mint::rng r(2);
  mint::matrixf x;
  truth.sample(r, 4000, x);
  md::online_dictionary<float> learner(
      {.atoms = 64, .alpha = 0.05, .batch_size = 32, .epochs = 10, .positive_code = true, .seed = 3});
  learner.fit(x);
  CHECK(learner.steps() == 1250);
  CHECK(learner.resampled() >= 32);
  CHECK(md::mmcs(learner.dictionary(), truth.dictionary()) >= 0.99);
  CHECK(atoms_found(learner.dictionary(), truth.dictionary()) >= 58);
  CHECK(learner.dictionary().rowwise().norm().maxCoeff() <= 1.0f + 1e-6f);
  // Codes through the learned dictionary: non-negative, sparse, and they reconstruct x.
  const mint::matrixf codes = learner.transform(x.topRows(500).eval());
  CHECK(codes.minCoeff() >= 0.0f);
  const double l0 = double((codes.array() != 0).count()) / 500.0;
  CHECK(l0 < 8.0);
  const double fvu = (x.topRows(500) - codes * learner.dictionary()).squaredNorm() /
                     (x.topRows(500).rowwise() - x.topRows(500).colwise().mean()).squaredNorm();
  CHECK(fvu < 0.1);
}

TEST_CASE("online dictionary learning refuses bad input") {
  CHECK_THROWS_WITH_AS(md::online_dictionary<float>({}), doctest::Contains("needs K >= 1 atoms"), mint::argument_error);
  CHECK_THROWS_AS(md::online_dictionary<float>({.atoms = 4, .alpha = -1}), mint::argument_error);
  md::online_dictionary<float> learner({.atoms = 4});
  const mint::matrixf x = mint::matrixf::Ones(10, 5);
  CHECK_THROWS_WITH_AS(learner.transform(x), doctest::Contains("needs fit()"), mint::argument_error);
  CHECK_THROWS_WITH_AS(learner.set_dictionary(mint::matrixf::Ones(3, 5).eval()),
                       doctest::Contains("needs options.atoms = 4"), mint::shape_error);
  learner.fit(x);
  CHECK_THROWS_WITH_AS(learner.partial_fit(mint::matrixf::Ones(2, 6).eval()),
                       doctest::Contains("batch has 6 columns; needs 5"), mint::shape_error);
  // A NaN is reported against the function the caller called, even when that function
  // would have initialized the dictionary from the data first.
  mint::matrixf bad = x;
  bad(2, 3) = std::nanf("");
  md::online_dictionary<float> fresh({.atoms = 4});
  CHECK_THROWS_WITH_AS(fresh.fit(bad), doctest::Contains("mint::dictionary::online_dictionary::fit: x holds a NaN"),
                       mint::numeric_error);
  CHECK_THROWS_WITH_AS(fresh.partial_fit(bad),
                       doctest::Contains("mint::dictionary::online_dictionary::partial_fit: batch holds a NaN"),
                       mint::numeric_error);
  CHECK_THROWS_WITH_AS(fresh.initialize(bad), doctest::Contains("mint::dictionary::online_dictionary::initialize: x holds a NaN"),
                       mint::numeric_error);
  CHECK(fresh.dictionary().size() == 0);  // nothing was learned from the bad data
}
