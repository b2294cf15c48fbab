// Metrics over logits [batch, pos, vocab], each with its exact gradient
// d(metric)/d(logits), which a differentiable runtime propagates back. Rows'
// padded positions are never read. Softmax work runs in double; cost O(batch * vocab)
// (cross-entropy: O(batch * pos * vocab)).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <utility>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/runtime.hpp"

namespace mint {

/// A metric of logits with its gradient: value(logits, tokens), and
/// gradient(logits, tokens, dlogits) which fills dlogits and returns the value.
template <class M, class T = float>
concept metric = requires(const M& m, tensor_view<const T> logits, const token_batch& tokens, tensor_view<T> grad) {
  { m.value(logits, tokens) } -> std::convertible_to<double>;
  { m.gradient(logits, tokens, grad) } -> std::convertible_to<double>;
};

/// The first position whose logits a metric reads: its first_read(tokens) when it has one (a
/// metric of the last position says so, and sweeps then skip work on earlier positions), else 0.
template <class M>
index first_position_read(const M& m, const token_batch& tokens) {
  if constexpr (requires { { m.first_read(tokens) } -> std::convertible_to<index>; })
    return m.first_read(tokens);
  else
    return 0;
}

namespace detail {

/// The (row, position) pairs a metric reads: given positions per row, or each row's last valid one.
inline std::vector<std::pair<index, index>> chosen_positions(const token_batch& tokens,
                                                             const std::vector<index>& positions,
                                                             const char* function) {
  if (!positions.empty() && index(positions.size()) != tokens.batch())
    throw argument_error(function, "positions", detail::str("has ", positions.size(), " entries"),
                         detail::str("needs one per batch row (", tokens.batch(), ") or none for each row's last"));
  std::vector<std::pair<index, index>> out;
  for (index b = 0; b < tokens.batch(); ++b) {
    const index t = positions.empty() ? tokens.length(b) - 1 : positions[std::size_t(b)];
    if (t < 0 || t >= tokens.length(b))
      throw argument_error(function, "positions", detail::str("reads position ", t, " of row ", b),
                           detail::str("needs a valid position, 0 to ", tokens.length(b) - 1));
    out.emplace_back(b, t);
  }
  return out;
}

/// The first of the positions chosen_positions() reads.
inline index first_chosen(const token_batch& tokens, const std::vector<index>& positions, const char* function) {
  index first = tokens.positions();
  for (const auto& [b, t] : chosen_positions(tokens, positions, function)) first = std::min(first, t);
  return first;
}

template <class T>
void check_logits(const tensor_view<const T>& logits, const token_batch& tokens, const char* function) {
  if (logits.rank() != 3 || logits.extent(0) != tokens.batch() || logits.extent(1) != tokens.positions())
    throw shape_error(function, "logits", "has extents " + shape_string(logits.extents()),
                      detail::str("needs [", tokens.batch(), ", ", tokens.positions(), ", vocab]"));
}

template <class T>
void check_gradient(const tensor_view<const T>& logits, const tensor_view<T>& grad, const char* function) {
  if (!same_shape(logits, grad))
    throw shape_error(function, "dlogits", "has extents " + shape_string(grad.extents()),
                      "needs the extents of logits, " + shape_string(logits.extents()));
}


/// log-softmax of one row of logits, in double.
template <class T>
void log_softmax(const tensor_view<const T>& row, std::vector<double>& out) {
  const index n = row.extent(0);
  out.resize(std::size_t(n));
  double top = -INFINITY;
  for (index j = 0; j < n; ++j) top = std::max(top, double(row(j)));
  double sum = 0;
  for (index j = 0; j < n; ++j) sum += std::exp(double(row(j)) - top);
  const double log_sum = top + std::log(sum);
  for (index j = 0; j < n; ++j) out[std::size_t(j)] = double(row(j)) - log_sum;
}

template <class T>
void check_token(token id, const tensor_view<const T>& logits, const char* function, const char* argument) {
  if (id < 0 || id >= logits.extent(2))
    throw argument_error(function, argument, detail::str("holds token ", id),
                         detail::str("needs ids in [0, ", logits.extent(2), ")"));
}

/// metric.value(logits, tokens) for any tensor of logits.
template <class M, tensor X>
double metric_value(const M& m, const X& logits, const token_batch& tokens) {
  using T = value_t<const X>;
  return m.template evaluate<T>(tensor_view<const T>(mint::view(logits)), tokens, nullptr);
}

/// metric.gradient(logits, tokens, dlogits): fills dlogits (same element type) and returns the value.
template <class M, tensor X, mutable_tensor G>
double metric_gradient(const M& m, const X& logits, const token_batch& tokens, G&& dlogits) {
  using T = value_t<const X>;
  tensor_view<T> grad = mint::view(dlogits);
  return m.template evaluate<T>(tensor_view<const T>(mint::view(logits)), tokens, &grad);
}

}  // namespace detail

// Every metric offers value() and gradient() over any tensors, through its evaluate<T>().
#define MINT_METRIC_MEMBERS                                                                          \
  template <tensor X>                                                                                \
  double value(const X& logits, const token_batch& tokens) const {                                   \
    return detail::metric_value(*this, logits, tokens);                                              \
  }                                                                                                  \
  template <tensor X, mutable_tensor G>                                                              \
  double gradient(const X& logits, const token_batch& tokens, G&& dlogits) const {                   \
    return detail::metric_gradient(*this, logits, tokens, dlogits);                                  \
  }

/// Mean over rows of logit[correct] - logit[wrong] at each row's chosen position.
struct logit_difference {
  std::vector<token> correct{}, wrong{};  ///< one per batch row
  std::vector<index> positions{};     ///< one per row; empty: each row's last valid position

  MINT_METRIC_MEMBERS
  index first_read(const token_batch& tokens) const {
    return detail::first_chosen(tokens, positions, "mint::logit_difference");
  }

  template <class T>
  double evaluate(const tensor_view<const T>& logits, const token_batch& tokens, tensor_view<T>* grad) const {
    const char* fn = "mint::logit_difference";
    detail::check_logits(logits, tokens, fn);
    if (index(correct.size()) != tokens.batch() || index(wrong.size()) != tokens.batch())
      throw argument_error(fn, "correct/wrong", detail::str("hold ", correct.size(), " and ", wrong.size(), " tokens"),
                           detail::str("need one per batch row (", tokens.batch(), ")"));
    const auto at = detail::chosen_positions(tokens, positions, fn);
    if (grad) detail::check_gradient(logits, *grad, fn), mint::fill(*grad, T(0));
    double sum = 0;
    const double weight = 1.0 / double(at.size());
    for (std::size_t r = 0; r < at.size(); ++r) {
      const auto [b, t] = at[r];
      detail::check_token(correct[r], logits, fn, "correct");
      detail::check_token(wrong[r], logits, fn, "wrong");
      sum += double(logits(b, t, correct[r])) - double(logits(b, t, wrong[r]));
      if (grad) {
        (*grad)(b, t, correct[r]) += T(weight);
        (*grad)(b, t, wrong[r]) -= T(weight);
      }
    }
    return sum * weight;
  }
};

/// Mean over rows of the probability (or, with log = true, the log-probability) of a target token.
struct token_probability {
  std::vector<token> target{};   ///< one per batch row
  std::vector<index> positions{};  ///< one per row; empty: each row's last valid position
  bool log = false;

  MINT_METRIC_MEMBERS
  index first_read(const token_batch& tokens) const {
    return detail::first_chosen(tokens, positions, log ? "mint::token_log_probability" : "mint::token_probability");
  }

  template <class T>
  double evaluate(const tensor_view<const T>& logits, const token_batch& tokens, tensor_view<T>* grad) const {
    const char* fn = log ? "mint::token_log_probability" : "mint::token_probability";
    detail::check_logits(logits, tokens, fn);
    if (index(target.size()) != tokens.batch())
      throw argument_error(fn, "target", detail::str("holds ", target.size(), " tokens"),
                           detail::str("needs one per batch row (", tokens.batch(), ")"));
    const auto at = detail::chosen_positions(tokens, positions, fn);
    if (grad) detail::check_gradient(logits, *grad, fn), mint::fill(*grad, T(0));
    std::vector<double> logp;
    double sum = 0;
    const double weight = 1.0 / double(at.size());
    for (std::size_t r = 0; r < at.size(); ++r) {
      const auto [b, t] = at[r];
      detail::check_token(target[r], logits, fn, "target");
      detail::log_softmax(logits.subview(b).subview(t), logp);
      const double lp = logp[std::size_t(target[r])], p = std::exp(lp);
      sum += log ? lp : p;
      if (!grad) continue;
      // d log p_y / d l_j = [j = y] - p_j; d p_y / d l_j = p_y ([j = y] - p_j).
      const double outer = log ? weight : weight * p;
      for (index j = 0; j < logits.extent(2); ++j)
        (*grad)(b, t, j) = T(outer * ((j == target[r]) - std::exp(logp[std::size_t(j)])));
    }
    return sum * weight;
  }
};

/// Log-probability of a target token: token_probability with log = true.
inline token_probability token_log_probability(std::vector<token> target, std::vector<index> positions = {}) {
  return token_probability{std::move(target), std::move(positions), true};
}

/// Next-token cross-entropy, averaged over every valid position that has a next token.
struct cross_entropy {
  MINT_METRIC_MEMBERS

  template <class T>
  double evaluate(const tensor_view<const T>& logits, const token_batch& tokens, tensor_view<T>* grad) const {
    const char* fn = "mint::cross_entropy";
    detail::check_logits(logits, tokens, fn);
    if (grad) detail::check_gradient(logits, *grad, fn), mint::fill(*grad, T(0));
    index count = 0;
    for (index b = 0; b < tokens.batch(); ++b) count += std::max<index>(tokens.length(b) - 1, 0);
    if (count == 0)
      throw argument_error(fn, "tokens", "have no row of length 2 or more", "needs a next token to predict");
    const double weight = 1.0 / double(count);
    std::vector<double> logp;
    double sum = 0;
    for (index b = 0; b < tokens.batch(); ++b)
      for (index t = 0; t + 1 < tokens.length(b); ++t) {
        const token next = tokens(b, t + 1);
        detail::check_token(next, logits, fn, "tokens");
        detail::log_softmax(logits.subview(b).subview(t), logp);
        sum -= logp[std::size_t(next)];
        if (grad)
          for (index j = 0; j < logits.extent(2); ++j)
            (*grad)(b, t, j) = T(weight * (std::exp(logp[std::size_t(j)]) - (j == next)));
      }
    return sum * weight;
  }
};

/// Cross-entropy of chosen target tokens at chosen (row, position) pairs, averaged:
/// the training loss of tasks that score some positions only.
struct target_cross_entropy {
  std::vector<index> rows{}, positions{};  ///< one entry per target
  std::vector<token> targets{};

  MINT_METRIC_MEMBERS
  index first_read(const token_batch&) const {
    return positions.empty() ? 0 : std::max<index>(0, *std::min_element(positions.begin(), positions.end()));
  }

  template <class T>
  double evaluate(const tensor_view<const T>& logits, const token_batch& tokens, tensor_view<T>* grad) const {
    const char* fn = "mint::target_cross_entropy";
    detail::check_logits(logits, tokens, fn);
    if (rows.size() != targets.size() || positions.size() != targets.size() || targets.empty())
      throw argument_error(fn, "rows/positions/targets",
                           detail::str("hold ", rows.size(), ", ", positions.size(), " and ", targets.size(), " entries"),
                           "needs the same number, at least one");
    if (grad) detail::check_gradient(logits, *grad, fn), mint::fill(*grad, T(0));
    const double weight = 1.0 / double(targets.size());
    std::vector<double> logp;
    double sum = 0;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const index b = rows[i], t = positions[i];
      if (b < 0 || b >= tokens.batch() || t < 0 || t >= tokens.length(b))
        throw argument_error(fn, "positions", detail::str("hold (", b, ", ", t, ")"), "needs valid (row, position) pairs");
      detail::check_token(targets[i], logits, fn, "targets");
      detail::log_softmax(logits.subview(b).subview(t), logp);
      sum -= logp[std::size_t(targets[i])];
      if (grad)
        for (index j = 0; j < logits.extent(2); ++j)
          (*grad)(b, t, j) += T(weight * (std::exp(logp[std::size_t(j)]) - (j == targets[i])));
    }
    return sum * weight;
  }
};

/// KL(reference || model) of the next-token distributions, averaged over the chosen
/// positions (each row's last valid one, or every valid position).
class kl_divergence {
public:
  /// Keeps the reference's log-probabilities (for example the clean run's logits).
  template <tensor X>
  kl_divergence(const X& reference_logits, const token_batch& tokens, bool all_positions = false)
      : all_positions_(all_positions), batch_(tokens.batch()), positions_(tokens.positions()) {
    const auto ref = mint::view(reference_logits);
    using R = typename decltype(ref)::value_type;
    detail::check_logits(tensor_view<const R>(ref), tokens, "mint::kl_divergence");
    vocab_ = ref.extent(2);
    std::vector<double> logp;
    for (const auto& [b, t] : select(tokens)) {
      detail::log_softmax(tensor_view<const R>(ref.subview(b).subview(t)), logp);
      reference_.insert(reference_.end(), logp.begin(), logp.end());
    }
  }

  MINT_METRIC_MEMBERS
  index first_read(const token_batch& tokens) const {
    return all_positions_ ? 0 : detail::first_chosen(tokens, {}, "mint::kl_divergence");
  }

  std::vector<std::pair<index, index>> select(const token_batch& tokens) const {
    if (!all_positions_) return detail::chosen_positions(tokens, {}, "mint::kl_divergence");
    std::vector<std::pair<index, index>> out;
    for (index b = 0; b < tokens.batch(); ++b)
      for (index t = 0; t < tokens.length(b); ++t) out.emplace_back(b, t);
    return out;
  }

  template <class T>
  double evaluate(const tensor_view<const T>& logits, const token_batch& tokens, tensor_view<T>* grad) const {
    const char* fn = "mint::kl_divergence";
    detail::check_logits(logits, tokens, fn);
    if (tokens.batch() != batch_ || tokens.positions() != positions_ || logits.extent(2) != vocab_)
      throw shape_error(fn, "logits", "has extents " + detail::shape_string(logits.extents()),
                        detail::str("needs those of the reference, [", batch_, ", ", positions_, ", ", vocab_, "]"));
    if (grad) detail::check_gradient(logits, *grad, fn), mint::fill(*grad, T(0));
    const auto at = select(tokens);
    if (index(at.size()) * vocab_ != index(reference_.size()))
      throw argument_error(fn, "tokens", "have other lengths than the reference run", "needs the same rows");
    const double weight = 1.0 / double(at.size());
    std::vector<double> logp;
    double sum = 0;
    for (std::size_t r = 0; r < at.size(); ++r) {
      const auto [b, t] = at[r];
      detail::log_softmax(logits.subview(b).subview(t), logp);
      const double* ref = reference_.data() + r * std::size_t(vocab_);
      for (index j = 0; j < vocab_; ++j) {
        const double p_ref = std::exp(ref[j]);
        if (p_ref > 0) sum += p_ref * (ref[j] - logp[std::size_t(j)]);
        if (grad) (*grad)(b, t, j) = T(weight * (std::exp(logp[std::size_t(j)]) - p_ref));
      }
    }
    return sum * weight;
  }

private:
  bool all_positions_;
  index batch_, positions_, vocab_ = 0;
  std::vector<double> reference_;  // log-probabilities at the chosen positions, row after row
};

/// The metric's value and its gradient d(metric)/d(logits) in a new array.
template <class M, tensor X>
  requires metric<M, value_t<const X>>
std::pair<double, array<value_t<const X>>> value_and_gradient(const M& m, const X& logits, const token_batch& tokens) {
  array<value_t<const X>> grad(mint::view(logits).extents());
  const double v = m.gradient(logits, tokens, grad);
  return {v, std::move(grad)};
}

}  // namespace mint

#undef MINT_METRIC_MEMBERS
