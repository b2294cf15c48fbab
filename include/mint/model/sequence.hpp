// chunked_sequence: the bookkeeping of a runtime that evaluates a sequence in
// chunks (a KV cache, an RNN's state), written once for every runtime: where the
// next chunk starts, each row's absolute valid length, the checks a chunk must
// pass, and whether a hook stopped the last one (leaving the state incomplete).
// The toy transformer and the toy LSTM keep one; so may a user's runtime.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// Throws argument_error unless `hooks` suit a forward pass of the runtime whose sites are `sites`.
template <class T>
void check_forward_hooks(const hook_set<T>& hooks, const site_table& sites, const char* function) {
  if (hooks.sites() && hooks.sites() != &sites)
    throw argument_error(function, "hooks", "were made for another runtime's sites", "needs hook_set(model.sites())");
  if (hooks.phase() != hook_phase::forward)
    throw argument_error(function, "hooks", "are gradient hooks", "needs a hook set for the forward phase");
}

/// One sequence evaluated whole or in chunks. A row whose length in a chunk is below the
/// chunk's width has ended: its later positions are padding whatever later chunks hold.
class chunked_sequence {
public:
  /// `context`: most positions a sequence may reach (0: no limit); token ids must lie in
  /// [0, vocab) (0: unchecked).
  explicit chunked_sequence(index context = 0, index vocab = 0) : context_(context), vocab_(vocab) {}

  /// Forgets the sequence: the next chunk starts a new one at position 0.
  void reset() noexcept {
    next_ = 0;
    stopped_ = false;
  }

  /// Where the next chunk starts: the positions evaluated so far.
  index next_position() const noexcept { return next_; }
  /// Rows of the sequence (fixed by its first chunk).
  index batch() const noexcept { return index(lengths_.size()); }
  /// Valid positions per row, absolute: what hook calls pass as `lengths`.
  std::span<const index> lengths() const noexcept { return lengths_; }

  /// A whole sequence (forward()): checks it, forgets any earlier one and takes its row lengths.
  void start(const token_batch& tokens, const char* function) {
    check_extents(tokens, "tokens", function);
    if (context_ > 0 && tokens.positions() > context_)
      throw shape_error(function, "tokens", detail::str("have ", tokens.positions(), " positions"),
                        detail::str("needs at most the context, ", context_));
    for (index b = 0; b < tokens.batch(); ++b)
      if (tokens.length(b) < 1)
        throw argument_error(function, "tokens", detail::str("row ", b, " has length 0"), "needs every row to hold a token");
    check_ids(tokens, function);
    reset();
    lengths_.assign(tokens.lengths().begin(), tokens.lengths().end());
  }

  /// The next chunk: checks it against the sequence, grows the lengths of the rows still open
  /// (every earlier chunk full), and returns its first position.
  index append(const token_batch& chunk, const char* function) {
    if (stopped_)
      throw argument_error(function, "model", "had its last chunk stopped by a hook, so its state is incomplete",
                           "needs reset() before the next chunk");
    check_extents(chunk, "chunk", function);
    if (next_ > 0 && chunk.batch() != batch())
      throw shape_error(function, "chunk", detail::str("has ", chunk.batch(), " rows"),
                        detail::str("needs the sequence's ", batch(), " rows (reset() to start another)"));
    if (context_ > 0 && next_ + chunk.positions() > context_)
      throw shape_error(function, "chunk", detail::str("has ", chunk.positions(), " positions after ", next_, " cached"),
                        detail::str("needs at most the context, ", context_, ", in all"));
    if (next_ == 0)
      for (index b = 0; b < chunk.batch(); ++b)
        if (chunk.length(b) < 1)
          throw argument_error(function, "chunk", detail::str("row ", b, " has length 0 in the first chunk"),
                               "needs every row to start with a token");
    check_ids(chunk, function);
    if (next_ == 0) {
      lengths_.assign(chunk.lengths().begin(), chunk.lengths().end());
    } else {
      for (index b = 0; b < chunk.batch(); ++b)
        if (lengths_[std::size_t(b)] == next_) lengths_[std::size_t(b)] = next_ + chunk.length(b);
    }
    return next_;
  }

  /// A branch off the sequence (a continuation evaluated and not kept): checks `chunk` and
  /// returns each of its rows' absolute lengths. chunk.batch() may be k times the sequence's
  /// rows: chunk row r continues row r mod batch(). Leaves the sequence as it was.
  std::vector<index> branch(const token_batch& chunk, const char* function) const {
    if (stopped_)
      throw argument_error(function, "model", "had its last chunk stopped by a hook, so its state is incomplete",
                           "needs reset() and a complete chunk before a branch");
    if (next_ == 0)
      throw argument_error(function, "model", "holds no sequence to branch from", "needs a chunk evaluated first");
    check_extents(chunk, "chunk", function);
    if (chunk.batch() % batch() != 0)
      throw shape_error(function, "chunk", detail::str("has ", chunk.batch(), " rows"),
                        detail::str("needs a multiple of the sequence's ", batch(), " rows"));
    if (context_ > 0 && next_ + chunk.positions() > context_)
      throw shape_error(function, "chunk", detail::str("has ", chunk.positions(), " positions after ", next_, " cached"),
                        detail::str("needs at most the context, ", context_, ", in all"));
    check_ids(chunk, function);
    std::vector<index> out(std::size_t(chunk.batch()));
    for (index r = 0; r < chunk.batch(); ++r) {
      const index before = lengths_[std::size_t(r % batch())];
      out[std::size_t(r)] = before == next_ ? next_ + chunk.length(r) : before;  // an ended row stays ended
    }
    return out;
  }

  /// After a pass over positions [first, first + width): the next chunk starts after it, or,
  /// when a hook stopped the pass, no chunk may follow until reset().
  void finish(index first, index width, bool stopped) noexcept {
    if (stopped) stopped_ = true;
    else next_ = first + width;
  }

private:
  static void check_extents(const token_batch& tokens, const char* argument, const char* function) {
    if (tokens.batch() < 1 || tokens.positions() < 1)
      throw shape_error(function, argument,
                        detail::str(std::string_view(argument) == "tokens" ? "are [" : "is [", tokens.batch(), ", ",
                                    tokens.positions(), "]"),
                        "needs at least one row of one token");
  }

  void check_ids(const token_batch& tokens, const char* function) const {
    if (vocab_ <= 0) return;
    for (index b = 0; b < tokens.batch(); ++b)
      for (index t = 0; t < tokens.positions(); ++t)
        if (tokens(b, t) < 0 || tokens(b, t) >= vocab_)
          throw argument_error(function, "tokens", detail::str("hold id ", tokens(b, t), " at [", b, ", ", t, "]"),
                               detail::str("needs ids in [0, ", vocab_, ")"));
  }

  index context_ = 0, vocab_ = 0;
  index next_ = 0;
  bool stopped_ = false;
  std::vector<index> lengths_;
};

}  // namespace mint
