// Orthogonal matching pursuit, batched: for each signal x, greedily pick the atom
// most correlated with the residual, refit x on the atoms picked so far by least
// squares, stop at `nonzeros` atoms or when ||x - c D||^2 <= tolerance (or earlier, when
// the residual's correlations are rounding noise or the next atom is in the span of those
// picked, both judged relative to machine epsilon). Batch-OMP
// (Rubinstein, Zibulevsky and Elad 2008; scikit-learn's orthogonal_mp_gram):
// everything runs on G = D D^T and D x, with the Cholesky factor of G[I, I] grown
// one row per atom. Cost: O(n d K) for X D^T (one GEMM), O(K^2 d) for G, then
// O(k K + k^2) per pick (k atoms picked, K atoms) for each of the n signals.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/dictionary/detail/sparse_coding.hpp"

namespace mint::dictionary {

/// When OMP stops; at least one of the two must be set.
struct omp_options {
  index nonzeros = 0;      ///< at most this many atoms per signal (0: no limit but the tolerance)
  double tolerance = 0.0;  ///< stop once the squared residual norm ||x - c D||^2 is at or below this (0: off)
};

}  // namespace mint::dictionary

namespace mint::detail {

/// OMP stops when the best correlation with the residual is at most this many machine epsilons
/// of the largest correlation with the signal (rounding noise: the signal is reproduced).
inline constexpr double omp_noise_correlation = 10;
/// OMP leaves out an atom whose new Cholesky pivot is at most this many machine epsilons of its
/// squared norm (in the span of the atoms picked, to rounding), as LARS does.
inline constexpr double omp_dependent_pivot = 100;

#if MINT_CORE_BODIES  // used only by the cores' bodies
inline void check_omp_options(const char* function, const dictionary::omp_options& options) {
  if (options.nonzeros < 0 || options.tolerance < 0 || !std::isfinite(options.tolerance) ||
      (options.nonzeros == 0 && options.tolerance == 0))
    throw argument_error(function, "options",
                         detail::str("has nonzeros ", options.nonzeros, " and tolerance ", options.tolerance),
                         "needs nonzeros > 0 or tolerance > 0 (both >= 0)");
}

/// As scikit-learn: a budget above the number of atoms K is an error, not a silent K.
inline void check_omp_budget(const char* function, const char* name, index nonzeros, index atoms) {
  if (nonzeros > atoms)
    throw argument_error(function, name, detail::str("is ", nonzeros),
                         detail::str("needs at most ", atoms, ", the number of atoms (rows of the dictionary)"));
}

/// One signal's Batch-OMP state, sized once per thread.
template <class T>
class omp_workspace {
public:
  // The factor starts small and doubles when needed: a tolerance-only pursuit may allow
  // every atom, but stops by the signal's dimension, which may be far fewer.
  explicit omp_workspace(index atoms, index max_picks) : alpha_(atoms), beta_(atoms), picked_(std::size_t(atoms), 0) {
    reserve(std::min<index>(max_picks, 64));
  }

  /// Codes one signal: `correlations` is D x, `norm2` is ||x||^2 (read only with a tolerance).
  /// Writes the code into `out` (all K entries); returns the atoms used.
  template <class Gram, class Row, class Out>
  index encode(const Gram& gram, const Row& correlations, double norm2, index max_picks, double tolerance,
               Out&& out) {
    const T tiny = std::numeric_limits<T>::min();
    support_.clear();
    alpha_ = correlations.transpose();
    // Both stopping thresholds are relative, so float and double stop at the same point:
    // a correlation at or below `noise` is rounding error of D x - G gamma, not signal (the
    // atoms picked already reproduce x), and an atom whose new Cholesky pivot, its squared
    // distance to the span of those picked, is at or below dependent_pivot times its squared
    // norm is in that span to rounding (LARS's threshold; scikit-learn compares with eps).
    const T eps = std::numeric_limits<T>::epsilon();
    const T noise = omp_noise_correlation * eps * alpha_.cwiseAbs().maxCoeff();
    double residual2 = norm2, delta = 0;
    index k = 0;
    if (tolerance > 0 && residual2 <= tolerance) max_picks = 0;
    while (k < max_picks) {
      index pick = 0;
      alpha_.cwiseAbs().maxCoeff(&pick);
      // A picked atom is orthogonal to the residual: picking it again (or an atom with no
      // correlation beyond rounding) means the residual lies outside the span of what is left.
      if (picked_[std::size_t(pick)] || alpha_(pick) * alpha_(pick) < tiny || std::abs(alpha_(pick)) <= noise) break;
      const T g = gram(pick, pick);
      if (k == 0) {
        if (!(g > tiny)) break;
        cholesky_(0, 0) = std::sqrt(g);
      } else {
        // The new row of the factor: L[k, :k] solves L[:k, :k] w = G[I, pick].
        auto w = rhs_.head(k);
        for (index i = 0; i < k; ++i) w(i) = gram(pick, support_[std::size_t(i)]);
        cholesky_.topLeftCorner(k, k).template triangularView<Eigen::Lower>().solveInPlace(w);
        const T diagonal = g - w.squaredNorm();
        if (!(diagonal > omp_dependent_pivot * eps * g)) break;  // (numerically) in the span of those picked
        cholesky_.row(k).head(k) = w.transpose();
        cholesky_(k, k) = std::sqrt(diagonal);
      }
      support_.push_back(pick);
      if (k + 1 == cholesky_.rows() && k + 1 < max_picks) reserve(std::min(max_picks, 2 * cholesky_.rows()));
      picked_[std::size_t(pick)] = 1;
      ++k;
      // gamma = G[I, I]^-1 (D x)[I] through the factor; beta = G[:, I] gamma; alpha = D x - beta.
      auto gamma = gamma_.head(k);
      for (index i = 0; i < k; ++i) gamma(i) = correlations(support_[std::size_t(i)]);
      const auto factor = cholesky_.topLeftCorner(k, k);
      factor.template triangularView<Eigen::Lower>().solveInPlace(gamma);
      factor.transpose().template triangularView<Eigen::Upper>().solveInPlace(gamma);
      beta_.setZero();
      for (index i = 0; i < k; ++i) beta_ += gamma(i) * gram.row(support_[std::size_t(i)]).transpose();
      alpha_ = correlations.transpose() - beta_;
      if (tolerance > 0) {
        // ||x - c D||^2 = ||x||^2 - gamma . beta[I] (Rubinstein et al., Batch-OMP with error target).
        residual2 += delta;
        delta = 0;
        for (index i = 0; i < k; ++i) delta += double(gamma(i)) * double(beta_(support_[std::size_t(i)]));
        residual2 -= delta;
        if (std::abs(residual2) <= tolerance) break;
      }
    }
    out.setZero();
    for (index i = 0; i < k; ++i) {
      out(support_[std::size_t(i)]) = gamma_(i);
      picked_[std::size_t(support_[std::size_t(i)])] = 0;
    }
    return k;
  }

private:
  void reserve(index picks) {
    cholesky_.conservativeResize(picks, picks);
    gamma_.resize(picks);
    rhs_.resize(picks);
    support_.reserve(std::size_t(picks));
  }

  matrix<T> cholesky_;
  vector<T> alpha_, beta_, gamma_, rhs_;
  std::vector<index> support_;
  std::vector<char> picked_;
};

/// Batch-OMP over the rows of `correlations` ([n, K], rows D x_i); `norms2` (n values or null) are ||x_i||^2.
template <class T, class Gram, class Correlations, class Out>
void omp_rows(const Gram& gram, const Correlations& correlations, const T* norms2, const dictionary::omp_options& options,
              Out& out) {
  const index n = correlations.rows(), n_atoms = gram.rows();
  const index max_picks = options.nonzeros > 0 ? std::min(options.nonzeros, n_atoms) : n_atoms;
  const row_blocks blocks(n, double(n) * double(max_picks) * double(n_atoms) * 2.0);
  MINT_PARALLEL_FOR(blocks.count > 1 ? parallel_threshold : 0.0)
  for (index b = 0; b < blocks.count; ++b) {
    omp_workspace<T> workspace(n_atoms, max_picks);
    for (index i = blocks.begin(b); i < blocks.end(b); ++i)
      workspace.encode(gram, correlations.row(i), norms2 ? double(norms2[i]) : 0.0, max_picks, options.tolerance,
                       out.row(i));
  }
}
#endif  // MINT_CORE_BODIES

/// OMP over float and double views (mint/core/compiled.hpp); the public functions convert their
/// arguments to the signals' (or correlations') element type T and call these.
template <class T>
struct omp_core {
  /// omp(x, dictionary): codes [n, K] written into `codes`.
  static void code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary, matrix_map<T> codes,
                   const dictionary::omp_options& options);
  /// omp_gram without squared norms.
  static matrix<T> gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                        const dictionary::omp_options& options);
  /// omp_gram with the squared norms of the signals.
  static matrix<T> gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                        const tensor_view<const T>& squared_norms, const dictionary::omp_options& options);
  /// Batch-OMP over products already formed (K-SVD's coding step).
  static void rows(const matrix<T>& gram, const matrix<T>& correlations, const T* norms2, const dictionary::omp_options& options,
                   matrix_map<T> codes);
};

#if MINT_CORE_BODIES
template <class T>
void omp_core<T>::code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary, matrix_map<T> codes,
                       const dictionary::omp_options& options) {
  constexpr const char* function = "mint::dictionary::omp";
  check_omp_options(function, options);
  if (dictionary.rank() == 2) check_omp_budget(function, "options.nonzeros", options.nonzeros, dictionary.extent(0));
  const coding_products<T> p = sparse_coding_core<T>::products(
      function, x, dictionary, options.tolerance > 0 ? signal_norms::same_type : signal_norms::none);
  omp_rows<T>(p.gram, p.correlations, options.tolerance > 0 ? p.norms2.data() : nullptr, options, codes);
}

template <class T>
matrix<T> omp_core<T>::gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                            const dictionary::omp_options& options) {
  constexpr const char* function = "mint::dictionary::omp_gram";
  if (options.tolerance > 0)
    throw argument_error(function, "options.tolerance", detail::str("is ", options.tolerance),
                         "needs the squared norms of the signals: call omp_gram(gram, correlations, squared_norms, options)");
  check_omp_options(function, options);
  check_gram_products(function, gram, correlations);
  check_omp_budget(function, "options.nonzeros", options.nonzeros, gram.extent(0));
  const matrix<T> g = sparse_coding_core<T>::finite_copy(function, "gram", gram);
  matrix<T> codes(correlations.extent(0), g.rows());
  visit_finite(function, "correlations", correlations,
               [&](const auto& cm) { omp_rows<T>(g, cm, nullptr, options, codes); });
  return codes;
}

template <class T>
matrix<T> omp_core<T>::gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                            const tensor_view<const T>& squared_norms, const dictionary::omp_options& options) {
  constexpr const char* function = "mint::dictionary::omp_gram";
  check_omp_options(function, options);
  check_gram_products(function, gram, correlations);
  check_omp_budget(function, "options.nonzeros", options.nonzeros, gram.extent(0));
  check_squared_norms(function, squared_norms, correlations.extent(0));
  const matrix<T> g = sparse_coding_core<T>::finite_copy(function, "gram", gram);
  const vector<T> norms2 = as_vector(squared_norms);
  matrix<T> codes(correlations.extent(0), g.rows());
  visit_finite(function, "correlations", correlations,
               [&](const auto& cm) { omp_rows<T>(g, cm, norms2.data(), options, codes); });
  return codes;
}

template <class T>
void omp_core<T>::rows(const matrix<T>& gram, const matrix<T>& correlations, const T* norms2,
                       const dictionary::omp_options& options, matrix_map<T> codes) {
  omp_rows<T>(gram, correlations, norms2, options, codes);
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Sparse codes of the rows of x ([n, d]) over the rows of `dictionary` ([K, d], atoms of unit norm
/// for the usual greedy rule): [n, K], at most options.nonzeros non-zeros a row.
template <tensor X, tensor D>
matrix<detail::scalar_of<X>> omp(const X& x, const D& dictionary, const omp_options& options) {
  using T = detail::scalar_of<X>;
  static_assert(std::is_floating_point_v<T>, "mint::dictionary::omp codes float or double signals");
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  matrix<T> codes(rows, atoms);
  std::vector<T> converted;
  detail::omp_core<T>::code(xv, detail::view_as<T>(dv, converted), detail::map_of(codes), options);
  return codes;
}

/// As above, writing into the caller's `codes` ([n, K], the signals' element type).
template <tensor X, tensor D, mutable_tensor Codes>
  requires tensor_of<Codes, detail::scalar_of<X>>
void omp(const X& x, const D& dictionary, Codes&& codes, const omp_options& options) {
  using T = detail::scalar_of<X>;
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  auto out = detail::checked_output<T>("mint::dictionary::omp", "codes", mint::view(codes), rows, atoms);
  std::vector<T> converted;
  detail::omp_core<T>::code(xv, detail::view_as<T>(dv, converted), out, options);
}

/// OMP from precomputed products, as scikit-learn's orthogonal_mp_gram: `gram` = D D^T ([K, K]),
/// `correlations` = X D^T ([n, K], one row per signal). Returns [n, K]. Without squared norms
/// the tolerance cannot be tracked: options.nonzeros must be set.
template <tensor G, tensor C>
matrix<detail::scalar_of<C>> omp_gram(const G& gram, const C& correlations, const omp_options& options) {
  using T = detail::scalar_of<C>;
  std::vector<T> converted;
  return detail::omp_core<T>::gram(detail::view_as<T>(mint::view(gram), converted), mint::view(correlations), options);
}

/// As above with the signals' squared norms ||x_i||^2 (n values), so a tolerance can stop the pursuit.
template <tensor G, tensor C, tensor N>
matrix<detail::scalar_of<C>> omp_gram(const G& gram, const C& correlations, const N& squared_norms,
                                      const omp_options& options) {
  using T = detail::scalar_of<C>;
  std::vector<T> converted_gram, converted_norms;
  return detail::omp_core<T>::gram(detail::view_as<T>(mint::view(gram), converted_gram), mint::view(correlations),
                                   detail::view_as<T>(mint::view(squared_norms), converted_norms), options);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_OMP(CORE) \
  MINT_CORE_FD(CORE, mint::detail::omp_core)
MINT_CORES_DICTIONARY_OMP(MINT_CORE)
