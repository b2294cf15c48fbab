// Online dictionary learning (Mairal, Bach, Ponce and Sapiro 2010), the algorithm
// behind scikit-learn's MiniBatchDictionaryLearning, step for step: per minibatch,
// lasso codes C (0.5 ||x - c D||^2 + alpha ||c||_1, coordinate descent), the
// sufficient statistics A = sum C^T C and B = sum C^T X decayed as scikit-learn
// does, then one block-coordinate sweep over the atoms, d_k += (B_k - A_k D) / A_kk,
// projected into the unit ball. Cost per step of b signals: O(b d K) for the codes'
// products plus the lasso sweeps, O(b K^2 + b K d) for A and B, O(K^2 d) for the sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
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
#include "mint/dictionary/lasso.hpp"

namespace mint::dictionary {

/// The learner's knobs; defaults follow scikit-learn's MiniBatchDictionaryLearning (1.3 on).
struct online_dictionary_options {
  index atoms = 0;                 ///< K, the number of atoms (required)
  double alpha = 1.0;              ///< the lasso's L1 weight, as in sparse_encode
  index batch_size = 256;          ///< signals per step
  index epochs = 1;                ///< passes over the data in fit() (scikit-learn's max_iter)
  bool shuffle = true;             ///< shuffle the signals once before fit() (scikit-learn's shuffle)
  index lasso_iterations = 1000;   ///< coordinate descent sweeps per code (transform_max_iter)
  double lasso_tolerance = 1e-4;   ///< the lasso's duality-gap tolerance, relative to ||x||^2
  bool positive_code = false;      ///< codes c >= 0
  bool positive_dictionary = false;///< atoms >= 0 elementwise
  std::uint64_t seed = 0;          ///< shuffling and the resampling of unused atoms
  progress_callback progress{};    ///< per step in fit(): "cost" (the batch's objective per signal)
};

template <class T>
class online_dictionary;

}  // namespace mint::dictionary

namespace mint::detail {

/// What online_dictionary does with the caller's data, over the learner's type T and the data's
/// element type V (float or double: mint/core/compiled.hpp; another V compiles where it is used).
template <class T, class V>
struct online_dictionary_core {
  static void initialize(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& x);
  static void set_dictionary(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& dictionary);
  static double partial_fit(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& batch);
  static void fit(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& x);
  /// The signals as an owned copy in T, checked; initializes the dictionary from them when unset.
  /// Errors name `function`, the one the caller called, also when it initializes.
  static matrix<T> signals(dictionary::online_dictionary<T>& learner, const char* function, const char* name,
                           const tensor_view<const V>& x);
};

}  // namespace mint::detail

namespace mint::dictionary {

/// A dictionary learned online: call fit() on a data set, or partial_fit() per batch.
template <class T = float>
class online_dictionary {
public:
  explicit online_dictionary(online_dictionary_options options);

  /// Starts from the top right singular vectors of x ([n, d]) times their singular values
  /// (scikit-learn's default start; atoms past min(n, d) are zero and get resampled).
  template <tensor X>
  void initialize(const X& x) {
    detail::online_dictionary_core<T, value_t<const X>>::initialize(*this, mint::view(x));
  }

  /// Starts from a given dictionary ([K, d]), as scikit-learn's dict_init.
  template <tensor D>
  void set_dictionary(const D& dictionary) {
    detail::online_dictionary_core<T, value_t<const D>>::set_dictionary(*this, mint::view(dictionary));
  }

  /// Forgets A, B and the step count (fit() does this itself), keeping the dictionary.
  void reset_statistics();

  /// One step on a minibatch ([b, d]); starts from initialize(batch) when there is no
  /// dictionary yet. Returns the batch's objective per signal before the update.
  template <tensor X>
  double partial_fit(const X& batch) {
    return detail::online_dictionary_core<T, value_t<const X>>::partial_fit(*this, mint::view(batch));
  }

  /// Learns from x ([n, d]): the dictionary set or learned before (else initialize(x)),
  /// statistics reset, then epochs * ceil(n / batch_size) steps over the (shuffled) signals.
  /// Unlike scikit-learn's fit, which starts afresh, this continues from the current
  /// dictionary: call initialize(x) or set_dictionary() first to restart.
  template <tensor X>
  void fit(const X& x) {
    detail::online_dictionary_core<T, value_t<const X>>::fit(*this, mint::view(x));
  }

  /// Lasso codes of x ([n, d]) over the current dictionary, with the learner's alpha: [n, K].
  template <tensor X>
  matrix<detail::scalar_of<X>> transform(const X& x) const {
    if (dictionary_.size() == 0)
      throw argument_error("mint::dictionary::online_dictionary::transform", "dictionary", "is not set",
                           "needs fit(), partial_fit(), initialize() or set_dictionary() first");
    return lasso(x, tensor_view<const T>(dictionary_.data(), {dictionary_.rows(), dictionary_.cols()}), coding());
  }

  /// The dictionary, [K, d]; rows have norm at most 1.
  const matrix<T>& dictionary() const noexcept { return dictionary_; }
  /// The sufficient statistics: A [K, K] (decayed C^T C / b), B [K, d] (decayed C^T X / b).
  const matrix<T>& statistics_a() const noexcept { return a_; }
  const matrix<T>& statistics_b() const noexcept { return b_; }
  /// Minibatch steps since the statistics were reset.
  index steps() const noexcept { return steps_; }
  /// Atoms resampled from the data because no code used them.
  index resampled() const noexcept { return resampled_; }
  const online_dictionary_options& options() const noexcept { return options_; }

private:
  template <class, class>
  friend struct detail::online_dictionary_core;

  // The top right singular vectors of x times their singular values; statistics reset.
  void initialize_from(const matrixd& xd);

  lasso_options coding() const {
    return {.alpha = options_.alpha, .max_iterations = options_.lasso_iterations,
            .tolerance = options_.lasso_tolerance, .positive = options_.positive_code};
  }

  // One minibatch: rows of a matrix of T (a whole batch, or a block of fit()'s shuffled copy).
  double step(const Eigen::Ref<const matrix<T>>& x);

  online_dictionary_options options_;
  mint::rng rng_;
  matrix<T> dictionary_, a_, b_;
  matrix<T> codes_, correlations_, residual_;
  Eigen::Matrix<T, 1, Eigen::Dynamic> atom_;
  index steps_ = 0;
  index resampled_ = 0;
};

#if MINT_CORE_BODIES
template <class T>
online_dictionary<T>::online_dictionary(online_dictionary_options options)
    : options_(std::move(options)), rng_(options_.seed, 0x0D1C) {
  constexpr const char* function = "mint::dictionary::online_dictionary";
  if (options_.atoms < 1)
    throw argument_error(function, "options.atoms", detail::str("is ", options_.atoms), "needs K >= 1 atoms");
  if (options_.batch_size < 1)
    throw argument_error(function, "options.batch_size", detail::str("is ", options_.batch_size),
                         "needs at least 1");
  if (options_.epochs < 0)
    throw argument_error(function, "options.epochs", detail::str("is ", options_.epochs), "needs >= 0");
  detail::check_lasso_options(function, coding());
}

template <class T>
void online_dictionary<T>::reset_statistics() {
  a_.setZero(options_.atoms, options_.atoms);
  b_.setZero(options_.atoms, dictionary_.cols());
  steps_ = 0;
}

template <class T>
void online_dictionary<T>::initialize_from(const matrixd& xd) {
  // X^T X = V S^2 V^T: the right singular vectors with the squared singular values.
  Eigen::SelfAdjointEigenSolver<matrixd> eigen;
  detail::sparse_coding_core<T>::symmetric_eigen(xd.transpose() * xd, eigen);
  const index dims = xd.cols(), rank = std::min(xd.rows(), dims);
  dictionary_.setZero(options_.atoms, dims);
  for (index k = 0; k < std::min(rank, options_.atoms); ++k) {
    const double s = std::sqrt(std::max(0.0, eigen.eigenvalues()(dims - 1 - k)));
    dictionary_.row(k) = (s * eigen.eigenvectors().col(dims - 1 - k)).transpose().template cast<T>();
  }
  reset_statistics();
}

template <class T>
double online_dictionary<T>::step(const Eigen::Ref<const matrix<T>>& x) {
  const index b = x.rows(), atoms = options_.atoms;
  // Codes by the lasso from zero, as scikit-learn does per batch.
  const matrix<T> gram = detail::sparse_coding_core<T>::gram(dictionary_);
  detail::sparse_coding_core<T>::correlations(x, dictionary_, correlations_);
  const vectord norms2 = x.template cast<double>().rowwise().squaredNorm();
  codes_.setZero(b, atoms);
  detail::lasso_core<T>::rows(gram, correlations_, norms2, coding(), detail::map_of(codes_));
  residual_ = x;
  residual_.noalias() -= codes_ * dictionary_;
  const double cost = (0.5 * residual_.template cast<double>().squaredNorm() +
                       options_.alpha * codes_.template cast<double>().cwiseAbs().sum()) / double(b);

  // Past information decays as in scikit-learn's _update_inner_stats (Mairal et al. 2010, 3.4.3).
  const double theta = steps_ < b - 1 ? double(steps_ + 1) * double(b)
                                      : double(b) * double(b) + double(steps_) + 1 - double(b);
  const T beta = T((theta + 1 - double(b)) / (theta + 1));
  a_ *= beta;
  a_.noalias() += codes_.transpose() * codes_ / T(b);
  b_ *= beta;
  b_.noalias() += codes_.transpose() * x / T(b);

  // Block-coordinate descent: each atom solves its block given the others (already updated).
  for (index k = 0; k < atoms; ++k) {
    if (a_(k, k) > T(1e-6)) {
      // 1e-6: scikit-learn's (and SPAMS's) threshold for an atom in use.
      atom_.noalias() = a_.row(k) * dictionary_;
      dictionary_.row(k) += (b_.row(k) - atom_) / a_(k, k);
    } else {
      // Unused: a random signal of the batch plus noise of 1% of its spread.
      const index pick = index(rng_.below(std::uint64_t(b)));
      const auto row = x.row(pick);
      const double mean = row.template cast<double>().mean();
      double spread = std::sqrt((row.template cast<double>().array() - mean).square().mean());
      if (spread == 0) spread = 1;
      for (index c = 0; c < dictionary_.cols(); ++c) dictionary_(k, c) = T(double(row(c)) + rng_.normal(0, 0.01 * spread));
      ++resampled_;
    }
    if (options_.positive_dictionary) dictionary_.row(k) = dictionary_.row(k).cwiseMax(T(0));
    const T norm = dictionary_.row(k).norm();
    if (norm > T(1)) dictionary_.row(k) /= norm;
  }
  if (!dictionary_.allFinite())
    throw numeric_error("mint::dictionary::online_dictionary", "dictionary",
                        detail::str("became non-finite at step ", steps_ + 1), "needs finite data of moderate scale");
  ++steps_;
  return cost;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::dictionary

namespace mint::detail {

#if MINT_CORE_BODIES
template <class T, class V>
void online_dictionary_core<T, V>::initialize(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& xv) {
  constexpr const char* function = "mint::dictionary::online_dictionary::initialize";
  check_rank2(function, "x", xv);
  if (xv.extent(0) < 1 || xv.extent(1) < 1)
    throw shape_error(function, "x", detail::str("has extents ", detail::shape_string(xv.extents())),
                      "needs at least one signal of at least one dimension");
  learner.initialize_from(finite_copy<double>(function, "x", xv));
}

template <class T, class V>
void online_dictionary_core<T, V>::set_dictionary(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& dv) {
  constexpr const char* function = "mint::dictionary::online_dictionary::set_dictionary";
  check_rank2(function, "dictionary", dv);
  if (dv.extent(0) != learner.options_.atoms)
    throw shape_error(function, "dictionary", detail::str("has ", dv.extent(0), " rows"),
                      detail::str("needs options.atoms = ", learner.options_.atoms));
  learner.dictionary_ = finite_copy<T>(function, "dictionary", dv);
  learner.reset_statistics();
}

template <class T, class V>
double online_dictionary_core<T, V>::partial_fit(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& batch) {
  return learner.step(signals(learner, "mint::dictionary::online_dictionary::partial_fit", "batch", batch));
}

template <class T, class V>
void online_dictionary_core<T, V>::fit(dictionary::online_dictionary<T>& learner, const tensor_view<const V>& x) {
  matrix<T> data = signals(learner, "mint::dictionary::online_dictionary::fit", "x", x);
  learner.reset_statistics();
  const index n = data.rows();
  const dictionary::online_dictionary_options& options = learner.options_;
  if (options.shuffle) {
    std::vector<index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), index(0));
    learner.rng_.shuffle(order.begin(), order.end());
    matrix<T> shuffled(n, data.cols());
    for (index i = 0; i < n; ++i) shuffled.row(i) = data.row(order[std::size_t(i)]);
    data.swap(shuffled);
  }
  const index per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const index total = per_epoch * options.epochs;
  progress_reporter reporter(options.progress, "online dictionary", total);
  for (index s = 0; s < total; ++s) {
    const index begin = (s % per_epoch) * options.batch_size;
    const index rows = std::min(options.batch_size, n - begin);
    const double cost = learner.step(data.middleRows(begin, rows));
    reporter.report(s + 1, {{"cost", cost}});
  }
}

template <class T, class V>
matrix<T> online_dictionary_core<T, V>::signals(dictionary::online_dictionary<T>& learner, const char* function, const char* name,
                                                const tensor_view<const V>& xv) {
  check_rank2(function, name, xv);
  if (xv.extent(0) < 1) throw shape_error(function, name, "has no rows", "needs at least one signal");
  if (learner.dictionary_.size() == 0) {
    if (xv.extent(1) < 1) throw shape_error(function, name, "has no columns", "needs signals of at least one dimension");
    learner.initialize_from(finite_copy<double>(function, name, xv));
  }
  check_rank2(function, name, xv, learner.dictionary_.cols(), "the columns (dimensions) of the dictionary");
  return finite_copy<T>(function, name, xv);
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_ONLINE_DICTIONARY(CORE)        \
  CORE(class mint::dictionary::online_dictionary<float>)     \
  CORE(class mint::dictionary::online_dictionary<double>)    \
  MINT_CORE_FD2(CORE, mint::detail::online_dictionary_core)
MINT_CORES_DICTIONARY_ONLINE_DICTIONARY(MINT_CORE)
