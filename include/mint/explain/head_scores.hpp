// Head scores from attention patterns, as TransformerLens's head detector computes them: for a
// head's pattern A [query, key] on one sequence and a detection pattern D of the same shape,
// score = sum(A * D) / sum(A) (its "mul" measure), the fraction of the head's attention that
// lands where the pattern says; sequences are scored one by one and averaged. Patterns:
//   previous token   D[q, k] = 1 when k = q - 1
//   duplicate token  D[q, k] = 1 when k < q and token[k] = token[q]
//   induction        D[q, k] = 1 when 1 <= k <= q and token[k - 1] = token[q] (the duplicate
//                    pattern shifted one key right: the token after an earlier copy)
//   first token      D[q, k] = 1 when k = 0
// Any runtime whose sites include attention patterns (role attn_pattern, axes [batch, head,
// pos, key_pos]) works; chunked runtimes too. Cost: one forward per max_batch rows plus
// O(rows x heads x positions^2) per layer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// What a head score measures.
enum class head_pattern : std::uint8_t { previous_token, duplicate_token, induction, first_token };

/// "previous_token", ...: names for tables.
inline const char* to_string(head_pattern p) noexcept {
  switch (p) {
    case head_pattern::previous_token: return "previous_token";
    case head_pattern::duplicate_token: return "duplicate_token";
    case head_pattern::induction: return "induction";
    case head_pattern::first_token: return "first_token";
  }
  return "?";
}

/// Options of head_scores.
struct head_score_options {
  std::vector<head_pattern> patterns{head_pattern::previous_token, head_pattern::duplicate_token, head_pattern::induction,
                                     head_pattern::first_token};
  /// TransformerLens's exclude_bos: attention to position 0 counts in neither sum.
  bool exclude_bos = false;
  /// TransformerLens's exclude_current_token: attention of a query to itself counts in neither sum.
  bool exclude_current_token = false;
  index max_batch = 0;  ///< rows per forward; 0: all rows at once
};

/// Scores per pattern, each a [layers, heads] array (a layer without a pattern site holds zeros).
struct head_scores_result {
  std::vector<head_pattern> patterns;
  std::vector<array<double>> scores;
  int layers = 0, heads = 0;

  /// The [layers, heads] scores of one pattern; an argument_error for a pattern not computed.
  const array<double>& operator[](head_pattern p) const {
    for (std::size_t i = 0; i < patterns.size(); ++i)
      if (patterns[i] == p) return scores[i];
    throw argument_error("mint::head_scores_result::operator[]", "pattern", std::string("'") + to_string(p) + "' was not computed",
                         "needs one of options.patterns");
  }
};

namespace detail {

/// D[q, k] of a pattern for row b of `tokens`.
inline bool detection(head_pattern p, const token_batch& tokens, index b, index q, index k) {
  switch (p) {
    case head_pattern::previous_token: return k == q - 1;
    case head_pattern::duplicate_token: return k < q && tokens(b, k) == tokens(b, q);
    case head_pattern::induction: return k >= 1 && k <= q && tokens(b, k - 1) == tokens(b, q);
    case head_pattern::first_token: return k == 0;
  }
  return false;
}

}  // namespace detail

/// Every attention head's score for each of options.patterns, averaged over the rows of
/// `tokens` (a row whose head attends nowhere countable scores 0, where TransformerLens gives
/// NaN). Induction scores need sequences that repeat: TransformerLens's users pass a random
/// sequence repeated twice (repeated_random_tokens below).
template <runtime R>
head_scores_result head_scores(R& model, const token_batch& tokens, const head_score_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::head_scores";
  if (options.patterns.empty()) throw argument_error(fn, "options.patterns", "are empty", "needs at least one pattern");
  if (options.max_batch < 0)
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch), "needs >= 0 (0 for all rows)");
  if (tokens.batch() < 1 || tokens.positions() < 1)
    throw shape_error(fn, "tokens", detail::str("are [", tokens.batch(), ", ", tokens.positions(), "]"),
                      "needs at least one row and one position");
  const site_table& table = model.sites();
  std::vector<site_id> ids;
  head_scores_result out;
  out.patterns = options.patterns;
  std::vector<int> layers_seen;
  for (const auto& s : table)
    if (s.role == site_role::attn_pattern) {
      if (s.axes.size() != 4 || s.axes[0] != axis::batch || s.axes[1] != axis::head || s.axes[2] != axis::pos ||
          s.axes[3] != axis::key_pos || s.layer < 0 || s.heads < 1)
        throw argument_error(fn, "model", detail::str("has the pattern site '", s.name, "' of layer ", s.layer, " and ", s.heads, " heads"),
                             "needs attention patterns [batch, head, pos, key_pos] of a block (layer >= 0) with heads >= 1");
      if (std::find(layers_seen.begin(), layers_seen.end(), s.layer) != layers_seen.end())
        throw argument_error(fn, "model", detail::str("has two pattern sites for layer ", s.layer), "needs one per block");
      layers_seen.push_back(s.layer);
      ids.push_back(*table.find(s.name));
      out.layers = std::max(out.layers, s.layer + 1);
      out.heads = std::max(out.heads, s.heads);
    }
  if (ids.empty())
    throw argument_error(fn, "model", "has no attention-pattern site", "needs sites of role attn_pattern (hook_pattern)");
  const std::size_t P = options.patterns.size();
  // Per row, layer, head and pattern: the two sums of TransformerLens's measure.
  const index B = tokens.batch(), L = out.layers, H = out.heads;
  std::vector<double> numerator(std::size_t(B * L * H) * P, 0.0), denominator(std::size_t(B * L * H), 0.0);
  const index step = options.max_batch > 0 ? options.max_batch : B;
  for (index r0 = 0; r0 < B; r0 += step) {
    const index r1 = std::min(B, r0 + step);
    token_batch rows(r1 - r0, tokens.positions());
    for (index b = r0; b < r1; ++b) {
      for (index t = 0; t < tokens.positions(); ++t) rows(b - r0, t) = tokens(b, t);
      rows.set_length(b - r0, tokens.length(b));
    }
    hook_set<T> hooks(table);
    for (const site_id id : ids)
      hooks.add(id, [&, r0, layer = table[id].layer, heads = table[id].heads](hook_call<T>& c) {
        const auto& A = c.activation;  // [rows, heads, queries of this call, keys]
        if (c.first_head + A.extent(1) > heads || A.extent(0) != rows.batch())
          throw shape_error(fn, "model", "called '" + c.site.name + "' with a pattern " + detail::shape_string(A.extents()),
                            detail::str("needs ", rows.batch(), " rows and at most its ", heads, " heads"));
        for (index b = 0; b < A.extent(0); ++b)
          for (index h = 0; h < A.extent(1); ++h) {
            const std::size_t cell = std::size_t(((r0 + b) * L + layer) * H + c.first_head + h);
            for (index i = 0; i < A.extent(2); ++i) {
              if (!c.valid(b, i)) continue;
              const index q = c.position(i), keys = std::min(A.extent(3), c.lengths[std::size_t(b)]);
              for (index k = 0; k < keys; ++k) {
                if ((options.exclude_bos && k == 0) || (options.exclude_current_token && k == q)) continue;
                const double a = double(A(b, h, i, k));
                denominator[cell] += a;
                for (std::size_t p = 0; p < P; ++p)
                  if (detail::detection(options.patterns[p], tokens, r0 + b, q, k)) numerator[cell * P + p] += a;
              }
            }
          }
      });
    model.forward(rows, hooks);
  }
  for (std::size_t p = 0; p < P; ++p) {
    array<double> s({index(L), index(H)});
    for (index l = 0; l < L; ++l)
      for (index h = 0; h < H; ++h) {
        double sum = 0;
        for (index b = 0; b < B; ++b) {
          const std::size_t cell = std::size_t((b * L + l) * H + h);
          sum += denominator[cell] > 0 ? numerator[cell * P + p] / denominator[cell] : 0.0;
        }
        s(l, h) = sum / double(B);
      }
    out.scores.push_back(std::move(s));
  }
  return out;
}

/// A random sequence of `length` tokens from [first, vocab) repeated once, after a BOS token:
/// `rows` rows of [bos, s, s], the input TransformerLens's induction detector uses.
inline token_batch repeated_random_tokens(index rows, index length, token vocab, std::uint64_t seed, token bos = 0,
                                          token first = 1) {
  const char* fn = "mint::repeated_random_tokens";
  if (rows < 1 || length < 1)
    throw argument_error(fn, "rows, length", detail::str("are ", rows, ", ", length), "needs at least one row of one token");
  if (first < 0 || vocab <= first)
    throw argument_error(fn, "vocab", detail::str("is ", vocab, " with first ", first), "needs first >= 0 and vocab > first");
  if (bos < 0 || (bos >= first && bos < vocab))
    throw argument_error(fn, "bos", detail::str("is ", bos, " with tokens drawn from [", first, ", ", vocab, ")"),
                         "needs a token >= 0 outside the drawn range (it would count as a duplicate)");
  token_batch out(rows, 1 + 2 * length);
  rng r(seed);
  for (index b = 0; b < rows; ++b) {
    out(b, 0) = bos;
    for (index t = 0; t < length; ++t)
      out(b, 1 + t) = out(b, 1 + length + t) = token(first + token(r.below(std::uint64_t(vocab - first))));
  }
  return out;
}

}  // namespace mint
