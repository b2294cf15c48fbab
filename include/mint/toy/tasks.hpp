// Toy tasks with known solutions, each sampling batches of token sequences with
// the positions that are scored: induction (repeated random sequences),
// modular addition, and an IOI-like naming task (answer the name that appeared once).
#pragma once

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/model/runtime.hpp"

namespace mint::toy {

/// Sequences and the (row, position, target) triples a loss or an accuracy reads.
struct labelled_batch {
  token_batch tokens;
  std::vector<index> rows, positions;
  std::vector<token> targets;

  void label(index row, index position, token target) {
    rows.push_back(row);
    positions.push_back(position);
    targets.push_back(target);
  }
};

/// [BOS, r_1 .. r_n, r_1 .. r_n] with r drawn from [1, vocab) without repeats; the second
/// copy's next tokens are scored, which only an induction circuit predicts.
struct induction_task {
  int vocab = 16;      ///< token 0 is BOS
  int length = 8;      ///< n, the length of the random part

  int context() const noexcept { return 1 + 2 * length; }

  labelled_batch sample(rng& r, index batch) const {
    if (vocab - 1 < length || length < 2)
      throw argument_error("mint::toy::induction_task", "length", mint::detail::str("is ", length),
                           mint::detail::str("needs 2 <= length <= vocab - 1 (", vocab - 1, ")"));
    labelled_batch out{token_batch(batch, context()), {}, {}, {}};
    std::vector<token> pool(std::size_t(vocab - 1));
    std::iota(pool.begin(), pool.end(), 1);
    for (index b = 0; b < batch; ++b) {
      r.shuffle(pool.begin(), pool.end());
      out.tokens(b, 0) = 0;
      for (index i = 0; i < length; ++i) out.tokens(b, 1 + i) = out.tokens(b, 1 + length + i) = pool[std::size_t(i)];
      // Position 1 + length + i holds r_{i+1}; its next token r_{i+2} is predictable by induction.
      for (index i = 0; i + 1 < length; ++i) out.label(b, 1 + length + i, out.tokens(b, 2 + length + i));
    }
    return out;
  }
};

/// [a, b, =] -> (a + b) mod p at the last position. Pairs split once into train and test by `split_seed`.
class modular_addition_task {
public:
  explicit modular_addition_task(int modulus = 23, double train_fraction = 0.5, std::uint64_t split_seed = 0)
      : p_(modulus) {
    if (modulus < 2 || train_fraction <= 0 || train_fraction >= 1)
      throw argument_error("mint::toy::modular_addition_task", "modulus/train_fraction",
                           mint::detail::str("are ", modulus, " and ", train_fraction),
                           "needs modulus >= 2 and a fraction in (0, 1)");
    std::vector<std::pair<token, token>> pairs;
    for (token a = 0; a < modulus; ++a)
      for (token b = 0; b < modulus; ++b) pairs.emplace_back(a, b);
    rng r(split_seed);
    r.shuffle(pairs.begin(), pairs.end());
    const auto cut = std::ptrdiff_t(double(pairs.size()) * train_fraction);
    train_.assign(pairs.begin(), pairs.begin() + cut);
    test_.assign(pairs.begin() + cut, pairs.end());
  }

  int vocab() const noexcept { return p_ + 1; }  ///< p is the '=' token
  int context() const noexcept { return 3; }

  /// A batch of training pairs, drawn with replacement.
  labelled_batch sample(rng& r, index batch) const {
    std::vector<std::pair<token, token>> chosen;
    for (index i = 0; i < batch; ++i) chosen.push_back(train_[std::size_t(r.below(train_.size()))]);
    return make(chosen);
  }
  /// Every held-out pair.
  labelled_batch test_set() const { return make(test_); }
  labelled_batch train_set() const { return make(train_); }

private:
  labelled_batch make(const std::vector<std::pair<token, token>>& pairs) const {
    labelled_batch out{token_batch(index(pairs.size()), 3), {}, {}, {}};
    for (index i = 0; i < index(pairs.size()); ++i) {
      const auto [a, b] = pairs[std::size_t(i)];
      out.tokens(i, 0) = a;
      out.tokens(i, 1) = b;
      out.tokens(i, 2) = token(p_);
      out.label(i, 2, token((a + b) % p_));
    }
    return out;
  }

  int p_;
  std::vector<std::pair<token, token>> train_, test_;
};

/// An IOI-like task: two names appear in the first half, one of them again in the
/// second half, and after the final END token the answer is the name that appeared once.
/// Tokens: names [0, names), fillers [names, names + fillers), END = names + fillers.
struct ioi_task {
  int names = 8;
  int fillers = 8;
  int length = 12;  ///< sequence length, END included

  int vocab() const noexcept { return names + fillers + 1; }
  int context() const noexcept { return length; }
  token end_token() const noexcept { return token(names + fillers); }

  labelled_batch sample(rng& r, index batch) const {
    if (names < 2 || fillers < 1 || length < 6)
      throw argument_error("mint::toy::ioi_task", "shape", mint::detail::str("is ", names, " names, ", fillers, " fillers, length ", length),
                           "needs >= 2 names, >= 1 filler and length >= 6");
    labelled_batch out{token_batch(batch, length), {}, {}, {}};
    const index half = length / 2;
    for (index b = 0; b < batch; ++b) {
      for (index t = 0; t < length; ++t) out.tokens(b, t) = token(names + int(r.below(std::uint64_t(fillers))));
      const token a = token(r.below(std::uint64_t(names)));
      token c = token(r.below(std::uint64_t(names - 1)));
      if (c >= a) ++c;
      // Two distinct positions in the first half for the names, one in the second half for the repeat.
      const index p1 = index(r.below(std::uint64_t(half)));
      index p2 = index(r.below(std::uint64_t(half - 1)));
      if (p2 >= p1) ++p2;
      const index p3 = half + index(r.below(std::uint64_t(length - 1 - half)));
      const bool repeat_a = r.below(2) == 0;
      out.tokens(b, p1) = a;
      out.tokens(b, p2) = c;
      out.tokens(b, p3) = repeat_a ? a : c;
      out.tokens(b, length - 1) = end_token();
      out.label(b, length - 1, repeat_a ? c : a);
    }
    return out;
  }
};

}  // namespace mint::toy
