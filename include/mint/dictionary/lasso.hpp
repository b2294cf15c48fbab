// Lasso sparse codes by cyclic coordinate descent on the Gram matrix: for each
// signal x, minimize 0.5 ||x - c D||^2 + alpha ||c||_1 (optionally c >= 0), the
// convention of scikit-learn's sparse_encode(algorithm="lasso_cd", alpha=alpha),
// itself Lasso(alpha=alpha / d) on (D^T, x), whose objective is divided by d.
// Friedman, Hastie and Tibshirani 2010; the stopping rule (coefficient change,
// then the duality gap against tolerance ||x||^2) is scikit-learn's. Cost:
// O(n d K) for X D^T and O(K^2 d) for G, then O(K * changed coefficients) per
// sweep for each of the n signals.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
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

/// The lasso's knobs; defaults are scikit-learn's.
struct lasso_options {
  double alpha = 1.0;            ///< weight of ||c||_1 against 0.5 ||x - c D||^2
  index max_iterations = 1000;   ///< sweeps over the atoms, per signal
  double tolerance = 1e-4;       ///< stop when the duality gap is at most tolerance * ||x||^2
  bool positive = false;         ///< constrain codes to c >= 0
};

/// How the solves went, over all signals.
struct lasso_report {
  index iterations = 0;   ///< the most sweeps any signal took
  index unconverged = 0;  ///< signals that reached max_iterations with the gap above tolerance
};

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
inline void check_lasso_options(const char* function, const dictionary::lasso_options& options) {
  if (!(options.alpha >= 0) || !std::isfinite(options.alpha))
    throw argument_error(function, "options.alpha", detail::str("is ", options.alpha), "needs alpha >= 0");
  if (options.max_iterations < 1)
    throw argument_error(function, "options.max_iterations", detail::str("is ", options.max_iterations),
                         "needs at least 1");
  if (!(options.tolerance >= 0) || !std::isfinite(options.tolerance))
    throw argument_error(function, "options.tolerance", detail::str("is ", options.tolerance),
                         "needs tolerance >= 0");
}

/// One signal's coordinate descent state, sized once per thread.
template <class T>
class lasso_workspace {
public:
  explicit lasso_workspace(index atoms) : w_(atoms), h_(atoms) {}

  /// Solves one signal from the warm start in `code` (K entries, overwritten with the solution).
  /// `diagonal` is G's diagonal, `q` is D x, `y_norm2` is ||x||^2. Returns the sweeps taken and whether the gap closed.
  template <class Gram, class Diagonal, class Row, class Code>
  std::pair<index, bool> solve(const Gram& gram, const Diagonal& diagonal, const Row& q, double y_norm2,
                               const dictionary::lasso_options& options, Code&& code) {
    const index atoms = gram.rows();
    const T alpha = T(options.alpha);
    w_ = code.transpose();
    if (options.positive) w_ = w_.cwiseMax(T(0));
    // h = G w, kept current as coordinates change (G is symmetric: column j is row j).
    h_.setZero();
    for (index j = 0; j < atoms; ++j)
      if (w_(j) != T(0)) h_ += w_(j) * gram.row(j).transpose();
    const double gap_tolerance = options.tolerance * y_norm2;
    index sweep = 0;
    bool converged = false;
    for (; sweep < options.max_iterations && !converged; ++sweep) {
      T w_max = 0, change_max = 0;
      for (index j = 0; j < atoms; ++j) {
        const T g = diagonal(j);
        if (g == T(0)) continue;
        const T old = w_(j);
        // rho = D_j . (x - sum_{i != j} c_i D_i): h without coordinate j's own term.
        const T rho = q(j) - h_(j) + old * g;
        T fresh = 0;
        if (!(options.positive && rho < 0)) fresh = std::copysign(std::max(std::abs(rho) - alpha, T(0)), rho) / g;
        w_(j) = fresh;
        // One pass over h for the change (scikit-learn takes two: remove the old term, add the new).
        if (fresh != old) h_ += (fresh - old) * gram.row(j).transpose();
        change_max = std::max(change_max, std::abs(fresh - old));
        w_max = std::max(w_max, std::abs(fresh));
      }
      if (w_max == T(0) || double(change_max) / double(w_max) < options.tolerance ||
          sweep == options.max_iterations - 1)
        converged = duality_gap(q, y_norm2, options) <= gap_tolerance;
    }
    code = w_.transpose();
    return {sweep, converged};
  }

private:
  // The gap between the primal objective and the dual one at the scaled residual
  // (scikit-learn's enet_coordinate_descent_gram, without the L2 term), in double.
  template <class Row>
  double duality_gap(const Row& q, double y_norm2, const dictionary::lasso_options& options) const {
    double q_dot_w = 0, w_dot_h = 0, l1 = 0, dual_norm = 0;
    for (index j = 0; j < w_.size(); ++j) {
      q_dot_w += double(q(j)) * double(w_(j));
      w_dot_h += double(w_(j)) * double(h_(j));
      l1 += std::abs(double(w_(j)));
      const double correlation = double(q(j)) - double(h_(j));  // D_j . residual
      dual_norm = std::max(dual_norm, options.positive ? correlation : std::abs(correlation));
    }
    const double residual2 = std::max(0.0, y_norm2 + w_dot_h - 2 * q_dot_w);
    double scale = 1, gap = residual2;
    if (dual_norm > options.alpha) {
      scale = options.alpha / dual_norm;
      gap = 0.5 * residual2 * (1 + scale * scale);
    }
    return gap + options.alpha * l1 - scale * y_norm2 + scale * q_dot_w;
  }

  vector<T> w_, h_;
};

/// Coordinate descent over the rows of `correlations` ([n, K]); `codes` [n, K] holds the warm starts.
template <class T, class Gram, class Correlations, class Norms, class Codes>
dictionary::lasso_report lasso_rows(const Gram& gram, const Correlations& correlations, const Norms& norms2,
                        const dictionary::lasso_options& options, Codes& codes) {
  const index n = correlations.rows(), atoms = gram.rows();
  const row_blocks blocks(n, double(n) * double(atoms) * double(atoms) * 4.0);
  std::vector<dictionary::lasso_report> reports(std::size_t(blocks.count));
  const vector<T> diagonal = gram.diagonal();  // contiguous: the sweep reads it in order
  MINT_PARALLEL_FOR(blocks.count > 1 ? parallel_threshold : 0.0)
  for (index b = 0; b < blocks.count; ++b) {
    lasso_workspace<T> workspace(atoms);
    dictionary::lasso_report& report = reports[std::size_t(b)];
    for (index i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto [sweeps, converged] =
          workspace.solve(gram, diagonal, correlations.row(i), double(norms2(i)), options, codes.row(i));
      report.iterations = std::max(report.iterations, sweeps);
      report.unconverged += !converged;
    }
  }
  dictionary::lasso_report total;
  for (const auto& r : reports) {
    total.iterations = std::max(total.iterations, r.iterations);
    total.unconverged += r.unconverged;
  }
  return total;
}
#endif  // MINT_CORE_BODIES

/// The lasso over float and double views (mint/core/compiled.hpp); the public functions convert
/// their arguments to the signals' (or correlations') element type T and call these.
template <class T>
struct lasso_core {
  /// lasso(x, dictionary) from the warm start in `codes` ([n, K]).
  static dictionary::lasso_report code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary, matrix_map<T> codes,
                           const dictionary::lasso_options& options);
  /// lasso_gram.
  static dictionary::lasso_report gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                           const tensor_view<const double>& squared_norms, const tensor_view<T>& codes,
                           const dictionary::lasso_options& options);
  /// Coordinate descent over products already formed (online dictionary learning's coding step).
  static dictionary::lasso_report rows(const matrix<T>& gram, const matrix<T>& correlations, const vectord& norms2,
                           const dictionary::lasso_options& options, matrix_map<T> codes);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::lasso_report lasso_core<T>::code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary,
                                 matrix_map<T> codes, const dictionary::lasso_options& options) {
  constexpr const char* function = "mint::dictionary::lasso";
  check_lasso_options(function, options);
  if (!codes.allFinite()) throw numeric_error(function, "codes", "hold a NaN or infinity", "needs a finite warm start");
  const coding_products<T> p = sparse_coding_core<T>::products(function, x, dictionary, signal_norms::in_double);
  return lasso_rows<T>(p.gram, p.correlations, p.norms2_double, options, codes);
}

template <class T>
dictionary::lasso_report lasso_core<T>::gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                                 const tensor_view<const double>& squared_norms, const tensor_view<T>& codes,
                                 const dictionary::lasso_options& options) {
  constexpr const char* function = "mint::dictionary::lasso_gram";
  check_lasso_options(function, options);
  check_gram_products(function, gram, correlations);
  check_squared_norms(function, squared_norms, correlations.extent(0));
  auto out = checked_output<T>(function, "codes", codes, correlations.extent(0), gram.extent(0));
  if (!out.allFinite()) throw numeric_error(function, "codes", "hold a NaN or infinity", "needs a finite warm start");
  const matrix<T> g = sparse_coding_core<T>::finite_copy(function, "gram", gram);
  const vectord norms2 = as_vector(squared_norms);
  dictionary::lasso_report report;
  visit_finite(function, "correlations", correlations,
               [&](const auto& cm) { report = lasso_rows<T>(g, cm, norms2, options, out); });
  return report;
}

template <class T>
dictionary::lasso_report lasso_core<T>::rows(const matrix<T>& gram, const matrix<T>& correlations, const vectord& norms2,
                                 const dictionary::lasso_options& options, matrix_map<T> codes) {
  return lasso_rows<T>(gram, correlations, norms2, options, codes);
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Lasso codes of the rows of x ([n, d]) over the rows of `dictionary` ([K, d]): [n, K], each row
/// minimizing 0.5 ||x - c D||^2 + alpha ||c||_1, started from zero.
template <tensor X, tensor D>
matrix<detail::scalar_of<X>> lasso(const X& x, const D& dictionary, const lasso_options& options) {
  using T = detail::scalar_of<X>;
  static_assert(std::is_floating_point_v<T>, "mint::dictionary::lasso codes float or double signals");
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  matrix<T> codes = matrix<T>::Zero(rows, atoms);
  std::vector<T> converted;
  detail::lasso_core<T>::code(xv, detail::view_as<T>(dv, converted), detail::map_of(codes), options);
  return codes;
}

/// As above in the caller's `codes` ([n, K]), which hold the warm start on entry (zero them for a cold one).
template <tensor X, tensor D, mutable_tensor Codes>
  requires tensor_of<Codes, detail::scalar_of<X>>
lasso_report lasso(const X& x, const D& dictionary, Codes&& codes, const lasso_options& options) {
  using T = detail::scalar_of<X>;
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  auto out = detail::checked_output<T>("mint::dictionary::lasso", "codes", mint::view(codes), rows, atoms);
  std::vector<T> converted;
  return detail::lasso_core<T>::code(xv, detail::view_as<T>(dv, converted), out, options);
}

/// Lasso from precomputed products: `gram` = D D^T ([K, K]), `correlations` = X D^T ([n, K]),
/// `squared_norms` = ||x_i||^2 (n values, for the duality gap); `codes` [n, K] warm start and result.
template <tensor G, tensor C, tensor N, mutable_tensor Codes>
  requires tensor_of<Codes, detail::scalar_of<C>>
lasso_report lasso_gram(const G& gram, const C& correlations, const N& squared_norms, Codes&& codes,
                        const lasso_options& options) {
  using T = detail::scalar_of<C>;
  std::vector<T> converted_gram;
  std::vector<double> converted_norms;  // the duality gap is in double
  return detail::lasso_core<T>::gram(detail::view_as<T>(mint::view(gram), converted_gram), mint::view(correlations),
                                     detail::view_as<double>(mint::view(squared_norms), converted_norms),
                                     mint::view(codes), options);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_LASSO(CORE) \
  MINT_CORE_FD(CORE, mint::detail::lasso_core)
MINT_CORES_DICTIONARY_LASSO(MINT_CORE)
