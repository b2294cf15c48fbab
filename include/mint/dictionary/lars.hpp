// Lasso sparse codes by least-angle regression with the lasso modification
// (Efron, Hastie, Johnstone and Tibshirani 2004): for each signal x, the exact
// minimizer of 0.5 ||x - c D||^2 + alpha ||c||_1 (optionally c >= 0), the
// convention of scikit-learn's sparse_encode(algorithm="lasso_lars", alpha=alpha),
// itself LassoLars(alpha=alpha / d) on (D^T, x), whose objective is divided by d.
//
// The homotopy follows the solution as the L1 weight falls from max |D x| to alpha.
// With A the active atoms, s their signs and lambda the current weight, every
// active atom has correlation D_j . (x - c D) = s_j lambda; the codes move along
// u = G_AA^-1 s, which lowers all active correlations together (the equiangular
// direction), until an inactive atom's correlation reaches the falling level
// (it joins), an active coefficient reaches zero (it leaves: the lasso
// modification), or lambda reaches alpha (the last step is cut there exactly).
// Everything runs on G = D D^T and D x, with the Cholesky factor of G_AA grown
// by one row per joining atom. Cost: O(n d K) for X D^T and O(K^2 d) for G, then
// O(K k + k^2) per step (k active atoms, K atoms) for each of the n signals;
// a drop refactors the rows after the dropped atom, O(k^3) at most.
#pragma once

#include <algorithm>
#include <cmath>
#include <initializer_list>
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

/// LARS-lasso's knobs; alpha has the meaning of lasso_options::alpha.
struct lars_options {
  double alpha = 1.0;       ///< weight of ||c||_1 against 0.5 ||x - c D||^2
  index max_atoms = -1;     ///< at most this many non-zeros a code (-1: no limit); stops the path early
  index max_steps = 1000;   ///< joins and drops per signal (scikit-learn's max_iter)
  bool positive = false;    ///< constrain codes to c >= 0 (only positive correlations enter)
};

/// How the paths went, over all signals.
struct lars_report {
  index steps = 0;     ///< the most steps (joins, drops and the last step) any signal took
  index drops = 0;     ///< coefficients that reached zero and left the active set, over all signals
  index limited = 0;   ///< signals stopped by max_atoms or max_steps before reaching alpha
  index singular = 0;  ///< signals where an atom dependent on the active atoms was left out (see lars)
};

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
inline void check_lars_options(const char* function, const dictionary::lars_options& options) {
  if (!(options.alpha >= 0) || !std::isfinite(options.alpha))
    throw argument_error(function, "options.alpha", detail::str("is ", options.alpha),
                         "needs a finite alpha >= 0");
  if (options.max_atoms < -1)
    throw argument_error(function, "options.max_atoms", detail::str("is ", options.max_atoms),
                         "needs -1 (no limit) or a count >= 0");
  if (options.max_steps < 1)
    throw argument_error(function, "options.max_steps", detail::str("is ", options.max_steps),
                         "needs at least 1");
}

/// One signal's homotopy state, sized once per thread.
template <class T>
class lars_workspace {
public:
  struct outcome {
    index steps = 0;
    index drops = 0;
    bool limited = false;
    bool singular = false;
  };

  // The factor starts small and doubles when needed, as in omp_workspace: codes of a
  // few atoms should not cost a K x K factor per thread.
  lars_workspace(index atoms, index max_active)
      : c_(atoms), a_(atoms), active_flag_(std::size_t(atoms), 0), skipped_(std::size_t(atoms), 0) {
    reserve(std::min<index>(max_active, 64));
  }

  /// Codes one signal: `q` is D x (K entries). Writes all K entries of `code`.
  template <class Gram, class Row, class Code>
  outcome solve(const Gram& gram, const Row& q, const dictionary::lars_options& options, index max_active, Code&& code) {
    const index atoms = gram.rows();
    const T alpha = T(options.alpha);
    const bool positive = options.positive;
    // A new row of the factor whose pivot is below this fraction of the atom's squared
    // norm means the atom lies (numerically) in the span of the active ones.
    const T singular_pivot = T(100) * std::numeric_limits<T>::epsilon();
    outcome out;
    c_ = q.transpose();  // c_j = D_j . (x - c D), kept current along the path
    k_ = 0;
    any_skipped_ = false;

    T level = 0;  // lambda: the common |correlation| of the active atoms
    T join_sign = 1;
    index join = strongest(positive, level, join_sign);
    index dropped = -1;  // the atom that left at the last step, and its sign there
    T dropped_sign = 0;
    if (join >= 0 && level > alpha) {
      for (;;) {
        if (join >= 0) {
          if (k_ == max_active) {
            out.limited = true;
            break;
          }
          if (k_ == index(active_.size())) reserve(std::min(max_active, 2 * k_));
          active_[std::size_t(k_)] = join;
          sign_(k_) = join_sign;
          w_(k_) = 0;
          if (factor_row(gram, k_, singular_pivot)) {
            active_flag_[std::size_t(join)] = 1;
            ++k_;
          } else {
            // Left out until the active set loses an atom: while the active set stays, the
            // correlation of an atom in its span is a fixed combination of theirs and never
            // passes the level, so the path without it is still the lasso's.
            skipped_[std::size_t(join)] = 1;
            any_skipped_ = true;
            out.singular = true;
          }
          join = -1;
          if (k_ == 0) {  // the first atom was left out: start from the next strongest
            join = strongest(positive, level, join_sign);
            if (join < 0 || !(level > alpha)) break;
            continue;
          }
        }
        if (out.steps == options.max_steps) {
          out.limited = true;
          break;
        }

        // The direction u = G_AA^-1 s through the factor; a = G[:, A] u is how fast each
        // correlation falls per unit of level (a_j = s_j on the active atoms).
        auto u = u_.head(k_);
        u = sign_.head(k_);
        const auto factor = cholesky_.topLeftCorner(k_, k_);
        factor.template triangularView<Eigen::Lower>().solveInPlace(u);
        factor.transpose().template triangularView<Eigen::Upper>().solveInPlace(u);
        a_.setZero();
        for (index i = 0; i < k_; ++i) a_.noalias() += u(i) * gram.row(active_[std::size_t(i)]).transpose();

        // The step t (the fall of the level) to the first event.
        enum class event { stop, drop, enter };
        event next = event::stop;
        T step = level - alpha;
        index which = -1;
        T which_sign = 1;
        for (index i = 0; i < k_; ++i) {
          // Coefficient i moves toward zero when s_i u_i < 0 and reaches it after s_i w_i / |u_i|.
          const T toward = -sign_(i) * u(i);
          if (!(toward > 0)) continue;
          const T t = std::max(sign_(i) * w_(i), T(0)) / toward;
          if (t < step) {
            step = t;
            next = event::drop;
            which = i;
          }
        }
        for (index j = 0; j < atoms; ++j) {
          if (active_flag_[std::size_t(j)] || skipped_[std::size_t(j)]) continue;
          for (const T side : {T(1), T(-1)}) {
            if (side < 0 && positive) break;
            // The atom that just left sits on the level on its old side and moves inside.
            if (j == dropped && side == dropped_sign) continue;
            // side * c_j - (level - t) closes at rate 1 - side * a_j.
            const T rate = T(1) - side * a_(j);
            if (!(rate > 0)) continue;
            const T t = std::max(level - side * c_(j), T(0)) / rate;
            if (t < step) {
              step = t;
              next = event::enter;
              which = j;
              which_sign = side;
            }
          }
        }

        w_.head(k_) += step * u;
        c_ -= step * a_;
        level -= step;
        ++out.steps;
        dropped = -1;
        if (next == event::stop) break;
        if (next == event::enter) {
          join = which;
          join_sign = which_sign;
          continue;
        }
        // A drop: remove position `which`, then refactor the rows after it (those before keep
        // their rows: the factor of a leading block is the leading block of the factor).
        ++out.drops;
        dropped = active_[std::size_t(which)];
        dropped_sign = sign_(which);
        active_flag_[std::size_t(dropped)] = 0;
        for (index i = which; i + 1 < k_; ++i) {
          active_[std::size_t(i)] = active_[std::size_t(i + 1)];
          sign_(i) = sign_(i + 1);
          w_(i) = w_(i + 1);
        }
        --k_;
        if (any_skipped_) {
          std::fill(skipped_.begin(), skipped_.end(), char(0));
          any_skipped_ = false;
        }
        bool refactored = true;
        for (index r = which; r < k_ && refactored; ++r) refactored = factor_row(gram, r, T(0));
        if (!refactored) {  // an independent set lost an atom and became singular: rounding; stop here
          out.singular = true;
          break;
        }
      }
    }

    code.setZero();
    for (index i = 0; i < k_; ++i) {
      const index j = active_[std::size_t(i)];
      code(j) = w_(i);
      active_flag_[std::size_t(j)] = 0;
    }
    if (any_skipped_) std::fill(skipped_.begin(), skipped_.end(), char(0));
    return out;
  }

private:
  /// The inactive atom of largest |c_j| (largest c_j when positive), its value in `level`
  /// and its sign; -1 when none has a correlation above zero.
  index strongest(bool positive, T& level, T& sign) const {
    index best = -1;
    level = 0;
    for (index j = 0; j < c_.size(); ++j) {
      if (active_flag_[std::size_t(j)] || skipped_[std::size_t(j)]) continue;
      const T v = positive ? c_(j) : std::abs(c_(j));
      if (v > level) {
        level = v;
        best = j;
      }
    }
    sign = best >= 0 && c_(best) < 0 ? T(-1) : T(1);
    return best;
  }

  /// Row r of the factor of G_AA for the atom active_[r], from the rows above it: L[r, :r]
  /// solves L[:r, :r] w = G[A_:r, A_r]. False when the pivot is not above
  /// `threshold` times the atom's squared norm (the factor is then unchanged up to row r).
  template <class Gram>
  bool factor_row(const Gram& gram, index r, T threshold) {
    const index j = active_[std::size_t(r)];
    const T g = gram(j, j);
    T pivot = g;
    if (r > 0) {
      auto w = rhs_.head(r);
      for (index i = 0; i < r; ++i) w(i) = gram(j, active_[std::size_t(i)]);
      cholesky_.topLeftCorner(r, r).template triangularView<Eigen::Lower>().solveInPlace(w);
      pivot = g - w.squaredNorm();
      if (!(g > 0) || !(pivot > threshold * g)) return false;
      cholesky_.row(r).head(r) = w.transpose();
    } else if (!(g > 0) || !(pivot > threshold * g)) {
      return false;
    }
    cholesky_(r, r) = std::sqrt(pivot);
    return true;
  }

  void reserve(index capacity) {
    cholesky_.conservativeResize(capacity, capacity);
    sign_.conservativeResize(capacity);
    w_.conservativeResize(capacity);
    u_.resize(capacity);
    rhs_.resize(capacity);
    active_.resize(std::size_t(capacity));
  }

  matrix<T> cholesky_;        // lower factor of G_AA, in active order
  vector<T> c_, a_;           // correlations and their rates of fall, all atoms
  vector<T> sign_, w_, u_, rhs_;  // per active position: sign, coefficient, direction, scratch
  std::vector<index> active_;
  std::vector<char> active_flag_, skipped_;
  index k_ = 0;
  bool any_skipped_ = false;
};

/// LARS-lasso over the rows of `correlations` ([n, K], rows D x_i), writing `codes` [n, K].
template <class T, class Gram, class Correlations, class Codes>
dictionary::lars_report lars_rows(const Gram& gram, const Correlations& correlations, const dictionary::lars_options& options,
                      Codes& codes) {
  const index n = correlations.rows(), atoms = gram.rows();
  const index max_active = options.max_atoms < 0 ? atoms : std::min(options.max_atoms, atoms);
  const row_blocks blocks(n, double(n) * double(atoms) * double(max_active) * 2.0);
  std::vector<dictionary::lars_report> reports(std::size_t(blocks.count));
  MINT_PARALLEL_FOR(blocks.count > 1 ? parallel_threshold : 0.0)
  for (index b = 0; b < blocks.count; ++b) {
    lars_workspace<T> workspace(atoms, max_active);
    dictionary::lars_report& report = reports[std::size_t(b)];
    for (index i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto out = workspace.solve(gram, correlations.row(i), options, max_active, codes.row(i));
      report.steps = std::max(report.steps, out.steps);
      report.drops += out.drops;
      report.limited += out.limited;
      report.singular += out.singular;
    }
  }
  dictionary::lars_report total;
  for (const auto& r : reports) {
    total.steps = std::max(total.steps, r.steps);
    total.drops += r.drops;
    total.limited += r.limited;
    total.singular += r.singular;
  }
  return total;
}
#endif  // MINT_CORE_BODIES

/// LARS over float and double views (mint/core/compiled.hpp); the public functions convert their
/// arguments to the signals' (or correlations') element type T and call these.
template <class T>
struct lars_core {
  /// lars(x, dictionary), writing `codes` ([n, K]).
  static dictionary::lars_report code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary, matrix_map<T> codes,
                          const dictionary::lars_options& options);
  /// lars_gram.
  static dictionary::lars_report gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                          const tensor_view<T>& codes, const dictionary::lars_options& options);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::lars_report lars_core<T>::code(const tensor_view<const T>& x, const tensor_view<const T>& dictionary,
                               matrix_map<T> codes, const dictionary::lars_options& options) {
  constexpr const char* function = "mint::dictionary::lars";
  check_lars_options(function, options);
  const coding_products<T> p = sparse_coding_core<T>::products(function, x, dictionary, signal_norms::none);
  return lars_rows<T>(p.gram, p.correlations, options, codes);
}

template <class T>
dictionary::lars_report lars_core<T>::gram(const tensor_view<const T>& gram, const tensor_view<const T>& correlations,
                               const tensor_view<T>& codes, const dictionary::lars_options& options) {
  constexpr const char* function = "mint::dictionary::lars_gram";
  check_lars_options(function, options);
  check_gram_products(function, gram, correlations);
  auto out = checked_output<T>(function, "codes", codes, correlations.extent(0), gram.extent(0));
  const matrix<T> g = sparse_coding_core<T>::finite_copy(function, "gram", gram);
  dictionary::lars_report report;
  visit_finite(function, "correlations", correlations,
               [&](const auto& cm) { report = lars_rows<T>(g, cm, options, out); });
  return report;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Lasso codes of the rows of x ([n, d]) over the rows of `dictionary` ([K, d]) by LARS: [n, K],
/// each row the exact minimizer of 0.5 ||x - c D||^2 + alpha ||c||_1 (up to rounding).
///
/// An atom found to lie in the span of the active atoms (a duplicate, or collinear ones) is left
/// out until the active set loses an atom; for an exactly dependent atom the result is still the
/// lasso's (not unique then), and the report counts the signal in `singular`.
template <tensor X, tensor D>
matrix<detail::scalar_of<X>> lars(const X& x, const D& dictionary, const lars_options& options) {
  using T = detail::scalar_of<X>;
  static_assert(std::is_floating_point_v<T>, "mint::dictionary::lars codes float or double signals");
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  matrix<T> codes(rows, atoms);
  std::vector<T> converted;
  detail::lars_core<T>::code(xv, detail::view_as<T>(dv, converted), detail::map_of(codes), options);
  return codes;
}

/// As above in the caller's `codes` ([n, K]; overwritten, LARS always starts from zero).
template <tensor X, tensor D, mutable_tensor Codes>
  requires tensor_of<Codes, detail::scalar_of<X>>
lars_report lars(const X& x, const D& dictionary, Codes&& codes, const lars_options& options) {
  using T = detail::scalar_of<X>;
  const auto xv = mint::view(x);
  const auto dv = mint::view(dictionary);
  const auto [rows, atoms] = detail::code_extents(xv, dv);
  auto out = detail::checked_output<T>("mint::dictionary::lars", "codes", mint::view(codes), rows, atoms);
  std::vector<T> converted;
  return detail::lars_core<T>::code(xv, detail::view_as<T>(dv, converted), out, options);
}

/// LARS from precomputed products: `gram` = D D^T ([K, K]), `correlations` = X D^T ([n, K], the
/// transpose of scikit-learn's Xy); writes `codes` [n, K].
template <tensor G, tensor C, mutable_tensor Codes>
  requires tensor_of<Codes, detail::scalar_of<C>>
lars_report lars_gram(const G& gram, const C& correlations, Codes&& codes, const lars_options& options) {
  using T = detail::scalar_of<C>;
  std::vector<T> converted;
  return detail::lars_core<T>::gram(detail::view_as<T>(mint::view(gram), converted), mint::view(correlations),
                                    mint::view(codes), options);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_LARS(CORE) \
  MINT_CORE_FD(CORE, mint::detail::lars_core)
MINT_CORES_DICTIONARY_LARS(MINT_CORE)
