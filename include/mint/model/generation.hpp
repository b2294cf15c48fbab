// generate: autoregressive decoding from any runtime, greedy or sampled
// (temperature, top-k, top-p), with hooks on every pass. Rows decode in
// lockstep, so position t of every row is the same absolute position t and a
// hook (a steering vector, a cache) tells prompt from generated positions by
// position alone. An incremental runtime decodes with its own state (a KV
// cache): one prefix chunk, then one position per step; any other runtime
// recomputes the whole sequence every step. Both give the same tokens. Cost:
// incremental, one pass over the prefix then `steps` one-position passes;
// recomputation, `steps` passes over the whole sequence so far.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// How generate() decodes.
struct generation_options {
  index max_new_tokens = 16;      ///< new tokens per row at most
  double temperature = 0;         ///< 0: greedy (argmax, ties to the lower id); > 0: sample
  int top_k = 0;                  ///< sample among the k most likely tokens only; 0: off
  double top_p = 1.0;             ///< sample among the smallest set holding mass p (nucleus); 1: off
  std::vector<token> stop_tokens{};  ///< a row that samples one ends (the stop token is kept)
  std::uint64_t seed = 0;         ///< the mint::rng stream that sampling draws from
  bool use_incremental = true;    ///< decode with the runtime's forward_chunk when it has one
  /// Longest row (prompt + generated) the runtime may see, e.g. its context; 0: no limit
  /// besides max_new_tokens. mint cannot ask a runtime for its context, so say it here.
  index max_positions = 0;
};

/// What generate() made.
struct generation_result {
  /// Prompt and generated tokens, right-padded with 0; lengths() = prompt + generated per row.
  token_batch tokens;
  std::vector<index> prompt_lengths;  ///< per row: where its generated tokens start
  std::vector<index> generated;       ///< per row: new tokens, a final stop token included
  std::vector<bool> stopped;          ///< per row: ended on a stop token
  index forward_calls = 0;            ///< forward() or forward_chunk() calls made
};

namespace detail {

/// The vocabulary a runtime declares at its logits site (0 when it declares none).
inline index declared_vocab(const site_table& sites) {
  for (const auto& s : sites)
    if (s.role == site_role::logits)
      if (const int a = s.axis_of(axis::vocab); a >= 0 && s.sizes[std::size_t(a)] > 0) return s.sizes[std::size_t(a)];
  return 0;
}

inline void check_generation(const token_batch& prompts, const generation_options& o) {
  const char* fn = "mint::generate";
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw argument_error(fn, "options.temperature", detail::str("is ", o.temperature), "needs a finite value >= 0 (0 for greedy)");
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw argument_error(fn, "options.top_p", detail::str("is ", o.top_p), "needs 0 < top_p <= 1 (1 for off)");
  if (o.top_k < 0)
    throw argument_error(fn, "options.top_k", detail::str("is ", o.top_k), "needs top_k >= 0 (0 for off)");
  if (o.max_new_tokens < 0)
    throw argument_error(fn, "options.max_new_tokens", detail::str("is ", o.max_new_tokens), "needs >= 0");
  if (o.max_positions < 0)
    throw argument_error(fn, "options.max_positions", detail::str("is ", o.max_positions), "needs >= 0 (0 for no limit)");
  if (prompts.batch() < 1 || prompts.positions() < 1)
    throw shape_error(fn, "prompts", detail::str("are [", prompts.batch(), ", ", prompts.positions(), "]"),
                      "needs at least one row of one token");
  for (index b = 0; b < prompts.batch(); ++b) {
    if (prompts.length(b) < 1)
      throw argument_error(fn, "prompts", detail::str("row ", b, " has length 0"), "needs every row to hold a token");
    if (o.max_positions > 0 && prompts.length(b) > o.max_positions)
      throw argument_error(fn, "prompts", detail::str("row ", b, " has ", prompts.length(b), " tokens"),
                           detail::str("needs at most options.max_positions, ", o.max_positions));
  }
}

/// Prompt ids and stop tokens against the vocabulary (once it is known).
inline void check_vocab(const token_batch& prompts, const generation_options& o, index vocab) {
  const char* fn = "mint::generate";
  for (index b = 0; b < prompts.batch(); ++b)
    for (index t = 0; t < prompts.length(b); ++t)
      if (prompts(b, t) < 0 || prompts(b, t) >= vocab)
        throw argument_error(fn, "prompts", detail::str("hold id ", prompts(b, t), " at [", b, ", ", t, "]"),
                             detail::str("needs ids in [0, ", vocab, ")"));
  for (const token s : o.stop_tokens)
    if (s < 0 || s >= vocab)
      throw argument_error(fn, "options.stop_tokens", detail::str("hold id ", s), detail::str("needs ids in [0, ", vocab, ")"));
}

/// Picks a token from one row of logits; its buffers persist, so a step does not allocate.
class token_sampler {
public:
  /// Argmax, ties to the lower id.
  template <class T>
  static token greedy(const tensor_view<const T>& row) {
    index best = 0;
    for (index j = 1; j < row.extent(0); ++j)
      if (row(j) > row(best)) best = j;
    return token(best);
  }

  /// Softmax of logits / temperature in double, top-k then top-p (each renormalising), then the
  /// inverse CDF at u in [0, 1). Filtered tokens are walked from most to least likely.
  template <class T>
  token sample(const tensor_view<const T>& row, const generation_options& o, double u) {
    const index V = row.extent(0);
    weight_.resize(std::size_t(V));
    double top = -INFINITY;
    for (index j = 0; j < V; ++j) top = std::max(top, double(row(j)) / o.temperature);
    if (!std::isfinite(top))
      throw numeric_error("mint::generate", "logits", detail::str("have maximum ", top, " / temperature"),
                          "needs finite logits to sample from");
    for (index j = 0; j < V; ++j) weight_[std::size_t(j)] = std::exp(double(row(j)) / o.temperature - top);

    const bool by_k = o.top_k > 0 && o.top_k < V;
    if (!by_k && o.top_p >= 1) {  // no filter: walk in id order, no sort
      const double target = u * std::accumulate(weight_.begin(), weight_.end(), 0.0);
      double sum = 0;
      index last = 0;
      for (index j = 0; j < V; ++j) {
        if (weight_[std::size_t(j)] <= 0) continue;
        sum += weight_[std::size_t(j)];
        last = j;
        if (target < sum) return token(j);
      }
      return token(last);  // u * total rounded up to the total
    }

    order_.resize(std::size_t(V));
    std::iota(order_.begin(), order_.end(), token(0));
    const auto before = [&](token a, token b) {
      const double wa = weight_[std::size_t(a)], wb = weight_[std::size_t(b)];
      return wa != wb ? wa > wb : a < b;  // most likely first, ties to the lower id
    };
    index kept = by_k ? index(o.top_k) : V;
    std::partial_sort(order_.begin(), order_.begin() + kept, order_.end(), before);
    if (o.top_p < 1) {
      // Hugging Face's nucleus: the smallest prefix whose (renormalised) mass reaches p, at least one token.
      double mass = 0;
      for (index i = 0; i < kept; ++i) mass += weight_[std::size_t(order_[std::size_t(i)])];
      double sum = 0;
      index n = 0;
      while (n < kept) {
        sum += weight_[std::size_t(order_[std::size_t(n++)])];
        if (sum >= o.top_p * mass) break;
      }
      kept = n;
    }
    double total = 0;
    for (index i = 0; i < kept; ++i) total += weight_[std::size_t(order_[std::size_t(i)])];
    const double target = u * total;
    double sum = 0;
    for (index i = 0; i < kept; ++i) {
      sum += weight_[std::size_t(order_[std::size_t(i)])];
      if (target < sum) return order_[std::size_t(i)];
    }
    return order_[std::size_t(kept - 1)];
  }

private:
  std::vector<double> weight_;
  std::vector<token> order_;
};

}  // namespace detail

/// Generates up to options.max_new_tokens tokens after each prompt row, calling `hooks` on every
/// pass. Rows decode in lockstep from P, the shortest prompt: the first pass covers positions
/// [0, P) of every row, then each step one position t; a row's token at t is its prompt token
/// while t < its prompt length, else drawn from its logits at t - 1. A row ends after
/// max_new_tokens new tokens, on a stop token, or at options.max_positions; an ended row is
/// padding from then on (chunk length 0, or its length in a recomputed batch), and its last token
/// is never fed (nothing needs its logits). Hooks see absolute positions: position >= a row's
/// prompt length means generated. With an incremental runtime and options.use_incremental:
/// reset(), forward_chunk() of [0, P), then one-position chunks; otherwise forward() over [0, t + 1)
/// every step. The tokens are the same either way (to the runtime's rounding): sampling draws
/// one uniform from mint::rng(options.seed) per sampling row per step, rows in order.
/// A hook that stops a pass is an argument_error: generation needs the logits.
template <runtime R>
generation_result generate(R& model, const token_batch& prompts, const generation_options& options,
                           hook_set<scalar_t<R>>& hooks) {
  using T = scalar_t<R>;
  const char* fn = "mint::generate";
  detail::check_generation(prompts, options);
  index vocab = detail::declared_vocab(model.sites());
  if (vocab > 0) detail::check_vocab(prompts, options, vocab);

  const index B = prompts.batch();
  generation_result out;
  out.prompt_lengths.assign(prompts.lengths().begin(), prompts.lengths().end());
  out.generated.assign(std::size_t(B), 0);
  out.stopped.assign(std::size_t(B), false);
  std::vector<std::vector<token>> rows(static_cast<std::size_t>(B));
  std::vector<index> budget(static_cast<std::size_t>(B));
  std::vector<char> open(static_cast<std::size_t>(B));  // still needs logits
  index P = prompts.positions();
  for (index b = 0; b < B; ++b) {
    const index L = prompts.length(b);
    auto& row = rows[std::size_t(b)];
    row.reserve(std::size_t(L + std::min<index>(options.max_new_tokens, 1024)));
    for (index t = 0; t < L; ++t) row.push_back(prompts(b, t));
    budget[std::size_t(b)] = options.max_positions > 0 ? std::min(options.max_new_tokens, options.max_positions - L)
                                                       : options.max_new_tokens;
    open[std::size_t(b)] = budget[std::size_t(b)] > 0;
    P = std::min(P, L);
  }
  const auto finish = [&] {
    out.tokens = token_batch::from_rows(rows);
    return std::move(out);
  };
  if (std::none_of(open.begin(), open.end(), [](char o) { return o != 0; })) return finish();

  // Positions each row has been fed: the prefix [0, P) for all, then t + 1 while open.
  std::vector<index> fed(std::size_t(B), P);
  // The logits of a pass over [first, end) whose output holds `width` positions.
  const auto checked = [&](tensor_view<const T> logits, index width, index first, index end) {
    ++out.forward_calls;
    if (logits.empty())
      throw argument_error(fn, "hooks", detail::str("stopped the pass over positions [", first, ", ", end, ")"),
                           "needs every pass to reach the logits, which generation samples from");
    if (logits.rank() != 3 || logits.extent(0) != B || logits.extent(1) != width ||
        (vocab > 0 && logits.extent(2) != vocab) || logits.extent(2) < 1)
      throw shape_error(fn, "model", "returned logits " + detail::shape_string(logits.extents()),
                        detail::str("needs [", B, ", ", width, ", ", vocab > 0 ? detail::str(vocab) : "vocab", "]"));
    if (vocab == 0) {
      vocab = logits.extent(2);
      detail::check_vocab(prompts, options, vocab);
    }
    return logits;
  };

  constexpr bool can_chunk = incremental_runtime<R>;
  const bool chunked = can_chunk && options.use_incremental;
  token_batch step(B, 1);
  // Runs positions [first, end): the prefix or one step.
  const auto run = [&](index first, index end) -> tensor_view<const T> {
    if constexpr (can_chunk) {
      if (chunked) {
        if (first == 0) {
          model.reset();
          token_batch prefix(B, end);
          for (index b = 0; b < B; ++b)
            for (index t = 0; t < end; ++t) prefix(b, t) = rows[std::size_t(b)][std::size_t(t)];
          return checked(model.forward_chunk(prefix, hooks), end, first, end);
        }
        for (index b = 0; b < B; ++b) {
          const bool live = open[std::size_t(b)] != 0;
          step(b, 0) = live ? rows[std::size_t(b)][std::size_t(first)] : 0;
          step.set_length(b, live ? 1 : 0);
        }
        return checked(model.forward_chunk(step, hooks), 1, first, end);
      }
    }
    // Recomputation: the whole sequence so far, each row up to what it has been fed.
    token_batch all(B, end);
    for (index b = 0; b < B; ++b) {
      for (index t = 0; t < fed[std::size_t(b)]; ++t) all(b, t) = rows[std::size_t(b)][std::size_t(t)];
      all.set_length(b, fed[std::size_t(b)]);
    }
    return checked(model.forward(all, hooks), end, index(0), end);
  };

  detail::token_sampler sampler;
  rng random(options.seed);
  const bool greedy = options.temperature == 0;
  tensor_view<const T> logits = run(0, P);
  for (index t = P;; ++t) {
    bool any_open = false;
    for (index b = 0; b < B; ++b) {
      const auto i = std::size_t(b);
      if (!open[i]) continue;
      if (t >= prompts.length(b)) {  // else forced: rows[i][t] is the prompt's token
        const auto row = logits.subview(b).subview(logits.extent(1) - 1);  // position t - 1
        const token next = greedy ? detail::token_sampler::greedy(row) : sampler.sample(row, options, random.uniform());
        rows[i].push_back(next);
        ++out.generated[i];
        if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), next) != options.stop_tokens.end()) {
          out.stopped[i] = true;
          open[i] = 0;
        } else if (out.generated[i] == budget[i]) {
          open[i] = 0;
        }
      }
      any_open = any_open || open[i];
    }
    if (!any_open) break;
    for (index b = 0; b < B; ++b)
      if (open[std::size_t(b)]) fed[std::size_t(b)] = t + 1;
    logits = run(t, t + 1);
  }
  return finish();
}

/// generate() without hooks.
template <runtime R>
generation_result generate(R& model, const token_batch& prompts, const generation_options& options = {}) {
  hook_set<scalar_t<R>> none;
  return generate(model, prompts, options, none);
}

}  // namespace mint
