// K-SVD dictionary learning (Aharon, Elad and Bruckstein 2006): alternate OMP
// sparse coding of every signal with a sweep over the atoms, each replaced by the
// best rank-1 fit of the residual of the signals that use it (the top singular
// pair, from Eigen's symmetric eigensolver on the smaller Gram matrix of the
// residual, or the one power step of approximate K-SVD, Rubinstein,
// Zibulevsky and Elad 2008). Atoms no signal uses are replaced by the worst
// represented signal. Cost per iteration: OMP (O(n d K) plus O(n k K) per pick),
// then O(n k d) for the residual and O(|I_j| d m + m^3), m = min(|I_j|, d), for atom j.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/progress.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/dictionary/detail/sparse_coding.hpp"
#include "mint/dictionary/omp.hpp"

namespace mint::dictionary {

/// How K-SVD refits an atom from the residual of the signals that use it.
enum class ksvd_update : std::uint8_t {
  exact,        ///< the top singular pair of the residual (Aharon et al.)
  approximate,  ///< one power step from the current codes (Rubinstein et al. 2008), O(|I| d)
};

/// K-SVD's knobs.
struct ksvd_options {
  index atoms = 0;        ///< K, the number of atoms to learn (required)
  index nonzeros = 0;     ///< OMP's atoms per signal (this or tolerance required)
  double tolerance = 0;   ///< OMP's squared-residual target per signal (0: off)
  index iterations = 10;  ///< coding + update rounds
  ksvd_update update = ksvd_update::exact;
  double max_coherence = 0.99;  ///< between iterations, an atom this close to another (|cosine|) is replaced
  index min_uses = 4;           ///< between iterations, an atom fewer signals use is replaced
  std::uint64_t seed = 0;       ///< picks the signals the dictionary starts from
  progress_callback progress{}; ///< per iteration: "rmse", "replaced"
};

/// What K-SVD learned.
template <class T>
struct ksvd_result {
  matrix<T> dictionary;       ///< [K, d], unit rows
  matrix<T> codes;            ///< [n, K], the codes of the last iteration, refit by the last update
  std::vector<double> rmse;   ///< sqrt(||X - C D||^2 / (n d)) after each iteration
  index replaced = 0;         ///< atoms replaced (unused, rarely used or duplicates), over all iterations
};

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
template <class T>
dictionary::ksvd_result<T> ksvd_run(const matrix<T>& x, matrix<T> dictionary, const dictionary::ksvd_options& options) {
  constexpr const char* function = "mint::dictionary::ksvd";
  const index n = x.rows(), dims = x.cols(), atoms = dictionary.rows();
  dictionary::ksvd_result<T> result;
  progress_reporter reporter(options.progress, "ksvd", options.iterations);
  const dictionary::omp_options coding{.nonzeros = options.nonzeros, .tolerance = options.tolerance};
  matrix<T> correlations(n, atoms), residual(n, dims);
  matrix<T>& codes = result.codes;
  codes.resize(n, atoms);
  vector<T> norms2;
  if (options.tolerance > 0) norms2 = x.rowwise().squaredNorm();
  std::vector<std::vector<index>> users(static_cast<std::size_t>(atoms));
  std::vector<char> taken(static_cast<std::size_t>(n));
  matrix<T> block;
  vector<T> coefficients, atom;
  Eigen::SelfAdjointEigenSolver<matrixd> eigen;

  for (index iteration = 1; iteration <= options.iterations; ++iteration) {
    // Sparse coding with the current dictionary.
    const matrix<T> gram = sparse_coding_core<T>::gram(dictionary);
    sparse_coding_core<T>::correlations(x, dictionary, correlations);
    omp_core<T>::rows(gram, correlations, options.tolerance > 0 ? norms2.data() : nullptr, coding, map_of(codes));

    // The residual from the sparse codes (k non-zeros a row, so by rows rather than a dense GEMM).
    for (auto& u : users) u.clear();
    residual = x;
    for (index i = 0; i < n; ++i)
      for (index j = 0; j < atoms; ++j)
        if (codes(i, j) != T(0)) {
          residual.row(i) -= codes(i, j) * dictionary.row(j);
          users[std::size_t(j)].push_back(i);
        }

    // Replaces atom j by the worst represented signal not taken yet this round, normalized.
    std::fill(taken.begin(), taken.end(), 0);
    index replaced = 0;
    const auto replace = [&](index j) {
      index worst = -1;
      T worst_norm = 0;
      for (index i = 0; i < n; ++i) {
        const T r = residual.row(i).squaredNorm();
        if (!taken[std::size_t(i)] && r > worst_norm && x.row(i).squaredNorm() > T(0)) worst = i, worst_norm = r;
      }
      if (worst < 0) return;
      taken[std::size_t(worst)] = 1;
      dictionary.row(j) = x.row(worst).normalized();
      ++replaced;
    };

    // Atom by atom, each seeing the atoms updated before it.
    for (index j = 0; j < atoms; ++j) {
      const auto& signals = users[std::size_t(j)];
      const index used = index(signals.size());
      if (used == 0) {
        replace(j);
        continue;
      }
      // E = R_I + g d_j: the residual of these signals without atom j.
      block.resize(used, dims);
      coefficients.resize(used);
      for (index u = 0; u < used; ++u) {
        const index i = signals[std::size_t(u)];
        coefficients(u) = codes(i, j);
        block.row(u) = residual.row(i) + coefficients(u) * dictionary.row(j);
      }
      if (options.update == dictionary::ksvd_update::exact) {
        // The top right singular vector of E is the top eigenvector of E^T E, or E^T u for the
        // top eigenvector u of E E^T, whichever is smaller; in double, then g = E d.
        const matrixd e = block.template cast<double>();
        if (used >= dims) {
          sparse_coding_core<T>::symmetric_eigen(e.transpose() * e, eigen);
          atom = eigen.eigenvectors().col(dims - 1).template cast<T>();
        } else {
          sparse_coding_core<T>::symmetric_eigen(e * e.transpose(), eigen);
          atom = (e.transpose() * eigen.eigenvectors().col(used - 1)).normalized().template cast<T>();
        }
        coefficients.noalias() = block * atom;
      } else {
        atom.noalias() = block.transpose() * coefficients;
        const T norm = atom.norm();
        if (!(norm > T(0))) continue;
        atom /= norm;
        coefficients.noalias() = block * atom;
      }
      dictionary.row(j) = atom.transpose();
      for (index u = 0; u < used; ++u) {
        const index i = signals[std::size_t(u)];
        codes(i, j) = coefficients(u);
        residual.row(i) = block.row(u) - coefficients(u) * atom.transpose();
      }
    }
    const double rmse = std::sqrt(residual.template cast<double>().squaredNorm() / double(std::max<index>(1, n * dims)));

    // Between iterations (as Rubinstein's KSVD-Box does), atoms that duplicate another or
    // that few signals use go to badly represented signals; the next coding sees them.
    if (iteration < options.iterations) {
      vector<T> cosines(atoms);
      for (index j = 0; j < atoms; ++j) {
        cosines.noalias() = dictionary * dictionary.row(j).transpose();
        cosines(j) = 0;
        if (index(users[std::size_t(j)].size()) < options.min_uses ||
            double(cosines.cwiseAbs().maxCoeff()) > options.max_coherence)
          replace(j);
      }
    }
    result.replaced += replaced;
    if (!dictionary.allFinite())
      throw numeric_error(function, "dictionary", detail::str("became non-finite at iteration ", iteration),
                          "needs finite data of moderate scale");
    result.rmse.push_back(rmse);
    reporter.report(iteration, {{"rmse", rmse}, {"replaced", double(replaced)}});
  }
  result.dictionary = std::move(dictionary);
  return result;
}

inline void check_ksvd_options(const char* function, const dictionary::ksvd_options& options, index n, index dims) {
  if (options.atoms < 1)
    throw argument_error(function, "options.atoms", detail::str("is ", options.atoms), "needs K >= 1 atoms");
  check_omp_options(function, {.nonzeros = options.nonzeros, .tolerance = options.tolerance});
  check_omp_budget(function, "options.nonzeros", options.nonzeros, options.atoms);
  if (options.iterations < 0)
    throw argument_error(function, "options.iterations", detail::str("is ", options.iterations), "needs >= 0");
  if (n < 1 || dims < 1)
    throw shape_error(function, "x", detail::str("has ", n, " rows and ", dims, " columns"),
                      "needs at least one signal of at least one dimension");
}
#endif  // MINT_CORE_BODIES

/// K-SVD over float and double views (mint/core/compiled.hpp).
template <class T>
struct ksvd_core {
  /// ksvd(x, options): from K signals drawn with options.seed.
  static dictionary::ksvd_result<T> learn(const tensor_view<const T>& x, const dictionary::ksvd_options& options);
  /// ksvd(x, initial, options).
  static dictionary::ksvd_result<T> learn(const tensor_view<const T>& x, const tensor_view<const T>& initial,
                              const dictionary::ksvd_options& options);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::ksvd_result<T> ksvd_core<T>::learn(const tensor_view<const T>& x, const dictionary::ksvd_options& options) {
  constexpr const char* function = "mint::dictionary::ksvd";
  check_rank2(function, "x", x);
  check_ksvd_options(function, options, x.extent(0), x.extent(1));
  const matrix<T> xm = sparse_coding_core<T>::finite_copy(function, "x", x);
  // Start from signals: a random choice without repeats (with repeats when K > n), zero ones
  // replaced by random directions.
  mint::rng r(options.seed, 0x4B5D);
  std::vector<index> order(std::size_t(xm.rows()));
  std::iota(order.begin(), order.end(), index(0));
  r.shuffle(order.begin(), order.end());
  matrix<T> dictionary(options.atoms, xm.cols());
  for (index j = 0; j < options.atoms; ++j) {
    dictionary.row(j) = xm.row(order[std::size_t(j % xm.rows())]);
    if (j >= xm.rows() || dictionary.row(j).squaredNorm() == T(0))
      for (index c = 0; c < xm.cols(); ++c) dictionary(j, c) = T(r.normal());
    dictionary.row(j).normalize();
  }
  return ksvd_run<T>(xm, std::move(dictionary), options);
}

template <class T>
dictionary::ksvd_result<T> ksvd_core<T>::learn(const tensor_view<const T>& x, const tensor_view<const T>& initial,
                                   const dictionary::ksvd_options& options) {
  constexpr const char* function = "mint::dictionary::ksvd";
  check_rank2(function, "x", x);
  check_ksvd_options(function, options, x.extent(0), x.extent(1));
  check_rank2(function, "initial", initial, x.extent(1), "the columns (dimensions) of x");
  if (initial.extent(0) != options.atoms)
    throw shape_error(function, "initial", detail::str("has ", initial.extent(0), " rows"),
                      detail::str("needs options.atoms = ", options.atoms));
  matrix<T> dictionary = sparse_coding_core<T>::finite_copy(function, "initial", initial);
  for (index j = 0; j < dictionary.rows(); ++j) {
    if (dictionary.row(j).squaredNorm() == T(0))
      throw numeric_error(function, "initial", detail::str("has a zero row ", j), "needs atoms of non-zero norm");
    dictionary.row(j).normalize();
  }
  return ksvd_run<T>(sparse_coding_core<T>::finite_copy(function, "x", x), std::move(dictionary), options);
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// K-SVD on the rows of x ([n, d]) from K distinct signals drawn with options.seed, normalized.
template <tensor X>
ksvd_result<detail::scalar_of<X>> ksvd(const X& x, const ksvd_options& options) {
  using T = detail::scalar_of<X>;
  static_assert(std::is_floating_point_v<T>, "mint::dictionary::ksvd learns from float or double signals");
  return detail::ksvd_core<T>::learn(mint::view(x), options);
}

/// K-SVD from a given dictionary ([K, d]; rows normalized first); options.atoms must equal K.
template <tensor X, tensor D>
ksvd_result<detail::scalar_of<X>> ksvd(const X& x, const D& initial, const ksvd_options& options) {
  using T = detail::scalar_of<X>;
  std::vector<T> converted;
  return detail::ksvd_core<T>::learn(mint::view(x), detail::view_as<T>(mint::view(initial), converted), options);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_KSVD(CORE) \
  MINT_CORE_FD(CORE, mint::detail::ksvd_core)
MINT_CORES_DICTIONARY_KSVD(MINT_CORE)
