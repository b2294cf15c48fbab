// Toy tasks with known solutions, each sampling batches of token sequences with
// the positions that are scored: induction (repeated random sequences),
// modular addition, an IOI-like naming task (answer the name that appeared once), and
// delayed copy (recall the token `delay` positions back: a task for a recurrent model).
#pragma once

#include <algorithm>
#include <cstdint>
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

/// Induction: BOS, then random filler with two copies of a sequence r_1 .. r_n at random
/// offsets; the second copy's next tokens are scored. The distance between the copies
/// varies, so no positional shortcut solves it: only an induction circuit does.
/// Tokens: 0 is BOS; r and the fillers are distinct tokens from [1, vocab).
struct induction_task {
  int vocab = 16;
  int length = 6;     ///< n, the repeated sequence's length
  int sequence = 24;  ///< positions per example, BOS included

  int context() const noexcept { return sequence; }

  labelled_batch sample(rng& r, index batch) const {
    if (length < 2 || vocab - 2 < length || sequence < 2 * length + 2)
      throw argument_error("mint::toy::induction_task", "shape",
                           detail::str("is vocab ", vocab, ", length ", length, ", sequence ", sequence),
                           "needs 2 <= length <= vocab - 2 and sequence >= 2 * length + 2");
    labelled_batch out{token_batch(batch, sequence), {}, {}, {}};
    std::vector<token> pool(std::size_t(vocab - 1));
    std::iota(pool.begin(), pool.end(), 1);
    for (index b = 0; b < batch; ++b) {
      r.shuffle(pool.begin(), pool.end());  // pool[0, length) is r; the rest are fillers
      const std::size_t fillers = pool.size() - std::size_t(length);
      out.tokens(b, 0) = 0;
      for (index t = 1; t < sequence; ++t) out.tokens(b, t) = pool[std::size_t(length) + r.below(fillers)];
      // The distance between the copies is uniform over every value that fits, so
      // no head can find the earlier copy by position alone.
      const index distance = length + index(r.below(std::uint64_t(sequence - 2 * length)));
      const index first = 1 + index(r.below(std::uint64_t(sequence - length - distance)));
      const index second = first + distance;
      for (index i = 0; i < length; ++i) out.tokens(b, first + i) = out.tokens(b, second + i) = pool[std::size_t(i)];
      // Position second + i holds r_i; its next token r_{i+1} is predictable by induction.
      for (index i = 0; i + 1 < length; ++i) out.label(b, second + i, pool[std::size_t(i) + 1]);
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
                           detail::str("are ", modulus, " and ", train_fraction),
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
      throw argument_error("mint::toy::ioi_task", "shape", detail::str("is ", names, " names, ", fillers, " fillers, length ", length),
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

/// Delayed copy: uniformly random tokens from [0, vocab); the target at every position
/// t >= delay is the token at t - delay. A recurrent model must keep the last `delay`
/// tokens in its state; chance is 1 / vocab.
struct delayed_copy_task {
  int vocab = 8;
  int length = 16;  ///< positions per example
  int delay = 2;

  int context() const noexcept { return length; }

  labelled_batch sample(rng& r, index batch) const {
    if (vocab < 2 || delay < 0 || length <= delay)
      throw argument_error("mint::toy::delayed_copy_task", "shape",
                           detail::str("is vocab ", vocab, ", length ", length, ", delay ", delay),
                           "needs vocab >= 2 and 0 <= delay < length");
    labelled_batch out{token_batch(batch, length), {}, {}, {}};
    for (index b = 0; b < batch; ++b) {
      for (index t = 0; t < length; ++t) out.tokens(b, t) = token(r.below(std::uint64_t(vocab)));
      for (index t = delay; t < length; ++t) out.label(b, t, out.tokens(b, t - delay));
    }
    return out;
  }
};

}  // namespace mint::toy
