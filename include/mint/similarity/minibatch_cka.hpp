// Minibatch CKA (Nguyen et al. 2021): the unbiased HSIC of each minibatch, averaged over batches,
// CKA = mean HSIC(K, L) / sqrt(mean HSIC(K, K) mean HSIC(L, L)). It never holds more than one batch,
// so n can exceed memory, and it converges to the population CKA. Cost per batch of m examples:
// linear CKA's on m (feature space m d^2 or Gram m^2 d, whichever is smaller).
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/distributed/communicator.hpp"
#include "mint/similarity/linear_cka.hpp"
#include "mint/similarity/measure.hpp"

namespace mint {

namespace detail {

/// One batch's unbiased HSIC for every pair of layers and every layer with itself, over float
/// and double views; nothing is summed unless every layer holds the batch's examples.
template <class T, class U>
struct minibatch_cka_core {
  struct batch {
    matrixd cross;
    vectord self_a, self_b;
  };
  static batch hsic(product_precision precision, const checked_layers<T>& a, const checked_layers<U>& b);
};

#if MINT_CORE_BODIES
template <class T, class U>
typename minibatch_cka_core<T, U>::batch minibatch_cka_core<T, U>::hsic(product_precision precision,
                                                                         const checked_layers<T>& a_batches,
                                                                         const checked_layers<U>& b_batches) {
  const linear_cka_options measure{.estimator = hsic_estimator::unbiased, .precision = precision};
  const auto prepare_all = [&](const auto& layers) {
    std::vector<decltype(measure.prepare(layers.rows[0], layers.where[0]))> out;
    for (std::size_t i = 0; i < layers.rows.size(); ++i) out.push_back(measure.prepare(layers.rows[i], layers.where[i]));
    return out;
  };
  const auto a = prepare_all(a_batches);
  const auto b = prepare_all(b_batches);
  // Check every layer holds the batch's examples before any sum changes.
  for (const auto& p : b) require_same_examples(a[0].rows.extent(0), a[0].where, p.rows.extent(0), p.where);
  for (const auto& p : a) require_same_examples(a[0].rows.extent(0), a[0].where, p.rows.extent(0), p.where);
  batch out{matrixd(index(a.size()), index(b.size())), vectord(index(a.size())), vectord(index(b.size()))};
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < b.size(); ++j) out.cross(index(i), index(j)) = measure.hsic(a[i], b[j]);
  for (std::size_t i = 0; i < a.size(); ++i) out.self_a(index(i)) = a[i].self_hsic;
  for (std::size_t j = 0; j < b.size(); ++j) out.self_b(index(j)) = b[j].self_hsic;
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Options of minibatch CKA.
struct minibatch_cka_options {
  product_precision precision = product_precision::input;
};

/// Accumulates unbiased HSIC over minibatches for every pair of layers of two models
/// (one pair by default): add() each batch, read value() or values() at any time.
class minibatch_cka {
public:
  /// A layers_a x layers_b matrix of CKAs (1 x 1 for two representations).
  explicit minibatch_cka(index layers_a = 1, index layers_b = 1, minibatch_cka_options options = {})
      : options_(options) {
    if (layers_a < 1 || layers_b < 1)
      throw argument_error("mint::minibatch_cka", layers_a < 1 ? "layers_a" : "layers_b",
                           detail::str("is ", layers_a < 1 ? layers_a : layers_b), "needs at least 1 layer");
    cross_ = matrixd::Zero(layers_a, layers_b);
    self_a_ = vectord::Zero(layers_a);
    self_b_ = vectord::Zero(layers_b);
  }

  /// Adds one batch of the two representations (the same m >= 4 examples; the 1 x 1 case).
  template <tensor X, tensor Y>
  void add(const X& x_batch, const Y& y_batch) {
    if (cross_.size() != 1)
      throw argument_error("mint::minibatch_cka::add", "x_batch",
                           detail::str("is one layer, but this accumulator holds ", cross_.rows(), " x ", cross_.cols()),
                           "needs add_layers with every layer's batch");
    const std::vector<tensor_view<const value_t<const X>>> a{mint::view(x_batch)};
    const std::vector<tensor_view<const value_t<const Y>>> b{mint::view(y_batch)};
    add_layers(a, b);
  }

  /// Adds one batch for every layer: a_batches[i] is layer i of model A on the batch, b_batches[j]
  /// layer j of model B on the same examples. Per-layer HSIC(K, K) is computed once per batch.
  template <std::ranges::forward_range A, std::ranges::forward_range B>
    requires tensor<std::ranges::range_value_t<A>> && tensor<std::ranges::range_value_t<B>>
  void add_layers(const A& a_batches, const B& b_batches) {
    const auto a = views(a_batches, "a_batches", cross_.rows());
    const auto b = views(b_batches, "b_batches", cross_.cols());
    using T = typename decltype(a.rows)::value_type::value_type;
    using U = typename decltype(b.rows)::value_type::value_type;
    const auto batch = detail::minibatch_cka_core<T, U>::hsic(options_.precision, a, b);
    cross_ += batch.cross;
    self_a_ += batch.self_a;
    self_b_ += batch.self_b;
    ++batches_;
  }

  /// Batches added so far.
  index batches() const noexcept { return batches_; }

  /// The CKA so far (the 1 x 1 case).
  MINT_LAZY double value() const { return values()(0, 0); }

  /// Every pair's CKA so far, layers_a x layers_b.
  MINT_LAZY matrixd values() const {
    if (batches_ == 0)
      throw argument_error("mint::minibatch_cka::values", "batches", "is 0", "needs at least one add() first");
    for (index i = 0; i < self_a_.size() + self_b_.size(); ++i) {
      const bool in_a = i < self_a_.size();
      if (!((in_a ? self_a_(i) : self_b_(i - self_a_.size())) > 0.0))
        throw numeric_error("mint::minibatch_cka::values", in_a ? "a_batches" : "b_batches",
                            detail::str("layer ", in_a ? i : i - self_a_.size(), " has a summed HSIC(K, K) <= 0"),
                            "needs more (or larger) batches, of examples that differ");
    }
    matrixd out(cross_.rows(), cross_.cols());
    for (index i = 0; i < out.rows(); ++i)
      for (index j = 0; j < out.cols(); ++j) out(i, j) = cross_(i, j) / std::sqrt(self_a_(i) * self_b_(j));
    return out;
  }

  /// Every rank ends with the group's sums (a collective: every rank calls it), so values() is
  /// CKA over every rank's batches: one process's figure on the same batches, to rounding. Call it
  /// once for the group's batches: a second call would count them again.
  MINT_LAZY void allreduce(distributed::communicator_ref comm) {
    distributed::check_same(comm, "mint::minibatch_cka::allreduce", "the accumulator",
                            detail::str(cross_.rows(), " x ", cross_.cols(), " layers"));
    if (comm.size() == 1) return;
    const index c = cross_.size(), a = self_a_.size(), b = self_b_.size();
    std::vector<double> sums(std::size_t(c + a + b + 1));
    std::copy(cross_.data(), cross_.data() + c, sums.begin());
    std::copy(self_a_.data(), self_a_.data() + a, sums.begin() + c);
    std::copy(self_b_.data(), self_b_.data() + b, sums.begin() + c + a);
    sums.back() = double(batches_);  // a whole number: exact in any order
    comm.allreduce_sum(std::span<double>(sums));
    std::copy(sums.begin(), sums.begin() + c, cross_.data());
    std::copy(sums.begin() + c, sums.begin() + c + a, self_a_.data());
    std::copy(sums.begin() + c + a, sums.begin() + c + a + b, self_b_.data());
    batches_ = index(sums.back());
  }

  /// Forgets every batch.
  MINT_LAZY void reset() {
    cross_.setZero();
    self_a_.setZero();
    self_b_.setZero();
    batches_ = 0;
  }

private:
  template <class R>
  static auto views(const R& layers, const char* name, index expected) {
    detail::checked_layers<value_t<const std::ranges::range_value_t<R>>> out;
    for (const auto& layer : layers) {
      out.where.push_back({"mint::minibatch_cka::add_layers", detail::str(name, "[", out.rows.size(), "]")});
      out.rows.push_back(detail::measure_view(layer));
    }
    if (index(out.rows.size()) != expected)
      throw shape_error("mint::minibatch_cka::add_layers", name, detail::str("holds ", out.rows.size(), " layers"),
                        detail::str("needs ", expected, ", as the accumulator was built with"));
    return out;
  }

  minibatch_cka_options options_;
  matrixd cross_;
  vectord self_a_, self_b_;
  index batches_ = 0;
};

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_SIMILARITY_MINIBATCH_CKA(CORE) \
  MINT_CORE_FD2(CORE, mint::detail::minibatch_cka_core)
MINT_CORES_SIMILARITY_MINIBATCH_CKA(MINT_CORE)
