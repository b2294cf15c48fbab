// The runtime concepts: what mint needs of a model. A runtime lists its sites
// and runs forward(tokens, hooks), calling the hooks at each site and returning
// logits [batch, pos, vocab]. A differentiable runtime also runs
// backward(dlogits, grad_hooks) after a forward, handing each grad hook
// d(metric)/d(activation). mint computes dmetric/dlogits itself.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// Token ids as runtimes take them.
using token = std::int32_t;

/// A batch of token sequences, right-padded to one length, with each row's true length.
class token_batch {
public:
  token_batch() = default;
  /// `batch` rows of `positions` tokens, all zero, every row full length.
  token_batch(index batch, index positions) : batch_(batch), positions_(positions) {
    if (batch < 0 || positions < 0)
      throw shape_error("mint::token_batch", "extents", detail::str("are [", batch, ", ", positions, "]"),
                        "needs batch >= 0 and positions >= 0");
    ids_.assign(std::size_t(batch * positions), 0);
    lengths_.assign(std::size_t(batch), positions);
  }

  /// Rows of different lengths, padded on the right with `pad`.
  static token_batch from_rows(const std::vector<std::vector<token>>& rows, token pad = 0) {
    index longest = 0;
    for (const auto& r : rows) longest = std::max(longest, index(r.size()));
    token_batch out(index(rows.size()), longest);
    for (index b = 0; b < out.batch(); ++b) {
      const auto& r = rows[std::size_t(b)];
      for (index t = 0; t < longest; ++t) out(b, t) = t < index(r.size()) ? r[std::size_t(t)] : pad;
      out.lengths_[std::size_t(b)] = index(r.size());
    }
    return out;
  }

  index batch() const noexcept { return batch_; }
  index positions() const noexcept { return positions_; }
  token& operator()(index b, index t) { return ids_[std::size_t(b * positions_ + t)]; }
  token operator()(index b, index t) const { return ids_[std::size_t(b * positions_ + t)]; }

  /// Valid positions per row.
  std::span<const index> lengths() const noexcept { return lengths_; }
  index length(index b) const {
    check_row(b, "mint::token_batch::length");
    return lengths_[std::size_t(b)];
  }
  void set_length(index b, index length) {
    check_row(b, "mint::token_batch::set_length");
    if (length < 0 || length > positions_)
      throw shape_error("mint::token_batch::set_length", "length", detail::str("is ", length),
                        detail::str("needs 0 <= length <= ", positions_));
    lengths_[std::size_t(b)] = length;
  }

  /// Positions [begin, end) of every row, as a chunk for an incremental runtime: row b's length
  /// there is its valid positions within the range (0 when the row ended before `begin`).
  token_batch slice(index begin, index end) const {
    if (begin < 0 || end < begin || end > positions_)
      throw shape_error("mint::token_batch::slice", "range", detail::str("is [", begin, ", ", end, ")"),
                        detail::str("needs 0 <= begin <= end <= ", positions_));
    token_batch out(batch_, end - begin);
    for (index b = 0; b < batch_; ++b) {
      for (index t = begin; t < end; ++t) out(b, t - begin) = (*this)(b, t);
      out.lengths_[std::size_t(b)] = std::clamp<index>(lengths_[std::size_t(b)] - begin, 0, end - begin);
    }
    return out;
  }

  /// The ids as a [batch, positions] view.
  tensor_view<const token> ids() const { return tensor_view<const token>(ids_.data(), {batch_, positions_}); }
  tensor_view<token> ids() { return tensor_view<token>(ids_.data(), {batch_, positions_}); }

private:
  void check_row(index b, const char* function) const {
    if (b < 0 || b >= batch_)
      throw argument_error(function, "row", detail::str("is ", b), detail::str("needs a row in [0, ", batch_, ")"));
  }

  index batch_ = 0, positions_ = 0;
  std::vector<token> ids_;
  std::vector<index> lengths_;
};

/// A model mint can run: sites() lists its sites, forward(tokens, hooks) runs it,
/// calling hooks at sites and returning logits [batch, pos, vocab] (valid until the next call).
template <class R>
concept runtime = requires(R& r, const R& cr, const token_batch& tokens,
                           hook_set<typename R::scalar_type>& hooks) {
  typename R::scalar_type;
  { cr.sites() } -> std::same_as<const site_table&>;
  { r.forward(tokens, hooks) } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
};

/// A runtime that also propagates d(metric)/d(logits) back through the last forward,
/// calling grad hooks with d(metric)/d(activation) at each site.
template <class R>
concept differentiable_runtime =
    runtime<R> && requires(R& r, tensor_view<const typename R::scalar_type> dlogits,
                           hook_set<typename R::scalar_type>& grad_hooks) {
      r.backward(dlogits, grad_hooks);
    };

/// A runtime that also evaluates a sequence in chunks, keeping its own state between them
/// (a KV cache, an RNN's hidden state): reset() forgets the sequence; forward_chunk(chunk, hooks)
/// runs the next chunk.positions() positions of every row, calling hooks with the chunk's
/// absolute first position, and returns their logits [batch, chunk positions, vocab];
/// cached_positions() is where the next chunk starts. A row whose chunk length is below the
/// chunk's width ends there: its later positions are padding. The result equals one forward
/// over the concatenated chunks (to rounding). Algorithms detect it with `if constexpr` and
/// otherwise recompute the whole sequence with forward().
template <class R>
concept incremental_runtime =
    runtime<R> && requires(R& r, const R& cr, const token_batch& chunk, hook_set<typename R::scalar_type>& hooks) {
      r.reset();
      { r.forward_chunk(chunk, hooks) } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
      { cr.cached_positions() } -> std::convertible_to<index>;
    };

/// A runtime that resumes a forward at a block: forward_from(layer, resid, tokens, hooks) runs
/// blocks layer, layer + 1, ... and the unembedding with `resid` [batch, positions, d_model] as
/// blocks.<layer>.hook_resid_pre (hooks there see it first), skipping the embeddings and earlier
/// blocks; layer -1 is forward(). Patching at layer l then costs only the blocks from l on.
template <class R>
concept resumable_runtime =
    runtime<R> && requires(R& r, int layer, tensor_view<const typename R::scalar_type> resid, const token_batch& tokens,
                           hook_set<typename R::scalar_type>& hooks) {
      { r.forward_from(layer, resid, tokens, hooks) } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
    };

/// An incremental runtime that also branches off its cached sequence:
/// forward_branch(layer, resid, chunk, hooks) runs `chunk` as the continuation of the cached
/// positions and does not keep it (cached_positions() stays). chunk.batch() may be k times the
/// cached rows: row r continues cached row r mod rows. layer -1 runs from the tokens; a
/// resumable runtime also resumes at a block as forward_from() does (`resid` the chunk's
/// blocks.<layer>.hook_resid_pre). A patch at position p then reuses the keys and values (or
/// the recurrent state) of positions before p and recomputes only the suffix. The logits
/// ([chunk rows, chunk positions, vocab]) equal a whole forward's at those positions, to rounding.
template <class R>
concept branching_runtime =
    incremental_runtime<R> && requires(R& r, int layer, tensor_view<const typename R::scalar_type> resid,
                                       const token_batch& chunk, hook_set<typename R::scalar_type>& hooks) {
      { r.forward_branch(layer, resid, chunk, hooks) } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
    };

/// A branching runtime that can compute a branch's logits at its last positions only:
/// forward_branch(layer, resid, chunk, hooks, outputs) returns [chunk rows, outputs, vocab], the
/// logits of the chunk's last `outputs` positions. The last block computes its keys and values at
/// every position and whatever comes after them (attention pattern, output, MLP, residual, final
/// norm, logits) at those positions alone; hooks at those sites see them, first_position moved
/// to match. What an inference engine does when only the last token's logits are wanted; a
/// patching sweep whose metric reads only the last position then skips most of the last block.
template <class R>
concept output_trimming_runtime =
    branching_runtime<R> && requires(R& r, int layer, tensor_view<const typename R::scalar_type> resid,
                                     const token_batch& chunk, hook_set<typename R::scalar_type>& hooks, index outputs) {
      { r.forward_branch(layer, resid, chunk, hooks, outputs) } -> std::convertible_to<tensor_view<const typename R::scalar_type>>;
    };

/// The scalar type of a runtime's activations.
template <runtime R>
using scalar_t = typename R::scalar_type;

}  // namespace mint
