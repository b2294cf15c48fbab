// Models whose weights are set by hand so their circuit is known edge by edge:
// scoring for circuit discovery. Attention-only, no layer norm, split q/k/v
// inputs; the residual stream is cut into one-hot subspaces (token, position,
// previous token, output, scratch) so every head reads and writes exactly what
// the circuit says, and distractor heads write only to a subspace no one reads.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/toy/transformer.hpp"

namespace mint::toy {

/// A model and the edges of the circuit it computes (names as in model.graph()).
struct known_circuit {
  transformer<float> model;
  /// (sender, receiver) edges that carry what differs between inputs: patching any one
  /// of them from another input changes the output; patching every other edge does not.
  std::vector<std::pair<std::string, std::string>> edges;
  /// Edges the mechanism also uses that carry positions only. They are the same for
  /// every input of a length, so no patching between such inputs can see them;
  /// zero-ablating them breaks the circuit.
  std::vector<std::pair<std::string, std::string>> positional_edges;
  std::string description;
};

}  // namespace mint::toy

namespace mint::detail {

/// Offsets of the residual's one-hot subspaces.
struct subspaces {
  int vocab, context, token, position, previous, output, scratch, d_model;
  subspaces(int v, int c) : vocab(v), context(c) {
    token = 0;
    position = token + v;
    previous = position + c;
    output = previous + v;
    scratch = output + v;
    d_model = scratch + 4;
  }
};

inline toy::transformer_config circuit_config(const subspaces& s, int layers) {
  return {.vocab = s.vocab, .context = s.context, .d_model = s.d_model, .layers = layers, .heads = 2,
          .d_head = std::max(s.vocab, s.context), .layer_norm = false, .split_qkv_input = true};
}

/// Weights of one head: W_Q/W_K/W_V [d_model, d_head], W_O [d_head, d_model] as tensor views.
struct head_weights {
  tensor_view<float> q, k, v, o;
};

inline head_weights head(toy::transformer<float>& m, int layer, int h) {
  auto& p = m.parameters();
  const std::string b = "blocks." + std::to_string(layer) + ".attn.";
  return {p[b + "W_Q"].subview(h), p[b + "W_K"].subview(h), p[b + "W_V"].subview(h), p[b + "W_O"].subview(h)};
}

/// A head that attends from each position to the one before it (position 0 to itself):
/// query e_pos(t) -> u_t, key e_pos(s) -> u_{s+1}, so the match scores `sharpness`.
inline void previous_position_attention(head_weights w, const subspaces& s, float sharpness) {
  for (int t = 0; t < s.context; ++t) w.q(s.position + t, t) = sharpness;
  for (int t = 0; t + 1 < s.context; ++t) w.k(s.position + t, t + 1) = 1.0f;
}

/// OV circuit copying the token one-hot from subspace `from` into subspace `to`, times `gain`.
inline void copy_tokens(head_weights w, const subspaces& s, int from, int to, float gain) {
  for (int t = 0; t < s.vocab; ++t) {
    w.v(from + t, t) = 1.0f;
    w.o(t, to + t) = gain;
  }
}

/// A distractor: random reads of the token and position subspaces, writes only to scratch.
inline void distractor(head_weights w, const subspaces& s, rng& r) {
  for (int i = 0; i < s.position + s.context; ++i)
    for (int j = 0; j < 4; ++j) {
      w.q(i, j) = float(r.normal());
      w.k(i, j) = float(r.normal());
      w.v(i, j) = float(r.normal());
    }
  for (int j = 0; j < 4; ++j) w.o(j, s.scratch + j) = 1.0f;
}

inline void one_hot_embeddings_and_unembedding(toy::transformer<float>& m, const subspaces& s, float gain) {
  auto& p = m.parameters();
  for (int t = 0; t < s.vocab; ++t) p["embed.W_E"](t, s.token + t) = 1.0f;
  for (int t = 0; t < s.context; ++t) p["pos_embed.W_pos"](t, s.position + t) = 1.0f;
  for (int t = 0; t < s.vocab; ++t) p["unembed.W_U"](s.output + t, t) = gain;
}

inline void check_sizes(int vocab, int context, const char* fn) {
  if (vocab < 2 || context < 2)
    throw argument_error(fn, "vocab/context", detail::str("are ", vocab, " and ", context), "needs >= 2 each");
}

}  // namespace mint::detail

namespace mint::toy {

/// One layer, two heads: head 0 attends to the previous position and copies its
/// token to the output, so the model predicts the previous token (position 0: its own).
/// Head 1 is a distractor. Circuit: embed -> L0H0.v, L0H0 -> resid_final; positional:
/// embed -> L0H0.{q,k}.
inline known_circuit previous_token_copy(int vocab = 8, int context = 12, std::uint64_t seed = 0) {
  detail::check_sizes(vocab, context, "mint::toy::previous_token_copy");
  const detail::subspaces s(vocab, context);
  known_circuit out{transformer<float>(detail::circuit_config(s, 1)), {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  const auto h0 = detail::head(out.model, 0, 0);
  detail::previous_position_attention(h0, s, 100.0f);
  detail::copy_tokens(h0, s, s.token, s.output, 1.0f);
  rng r(seed);
  detail::distractor(detail::head(out.model, 0, 1), s, r);
  out.edges = {{"embed", "L0H0.v"}, {"L0H0", "resid_final"}};
  out.positional_edges = {{"embed", "L0H0.q"}, {"embed", "L0H0.k"}};
  out.description = "previous-token copy: L0H0 attends to position t-1 and copies its token to the logits";
  return out;
}

/// Two layers, two heads each: L0H0 is a previous-token head writing the previous
/// token into its own subspace; L1H0 is an induction head whose key reads that
/// subspace (K-composition) and whose query reads the current token, so it attends
/// to the position after an earlier copy of the current token and copies the token
/// there. L0H1 and L1H1 are distractors. Use token 0 as BOS at position 0 (as
/// induction_task does), so position 0's own token never matches.
/// Circuit: embed -> L0H0.v, L0H0 -> L1H0.k, embed -> L1H0.{q,v}, L1H0 -> resid_final;
/// positional: embed -> L0H0.{q,k}.
inline known_circuit induction_circuit(int vocab = 12, int context = 24, std::uint64_t seed = 0) {
  detail::check_sizes(vocab, context, "mint::toy::induction_circuit");
  const detail::subspaces s(vocab, context);
  known_circuit out{transformer<float>(detail::circuit_config(s, 2)), {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  const auto previous = detail::head(out.model, 0, 0);
  detail::previous_position_attention(previous, s, 100.0f);
  detail::copy_tokens(previous, s, s.token, s.previous, 1.0f);
  const auto induction = detail::head(out.model, 1, 0);
  for (int t = 1; t < s.vocab; ++t) {  // BOS (token 0) is never a query
    induction.q(s.token + t, t) = 100.0f;
    induction.k(s.previous + t, t) = 1.0f;
  }
  detail::copy_tokens(induction, s, s.token, s.output, 1.0f);
  rng r(seed);
  detail::distractor(detail::head(out.model, 0, 1), s, r);
  detail::distractor(detail::head(out.model, 1, 1), s, r);
  out.edges = {{"embed", "L0H0.v"}, {"L0H0", "L1H0.k"}, {"embed", "L1H0.q"}, {"embed", "L1H0.v"},
               {"L1H0", "resid_final"}};
  out.positional_edges = {{"embed", "L0H0.q"}, {"embed", "L0H0.k"}};
  out.description = "induction: previous-token head L0H0 feeds induction head L1H0 through its key";
  return out;
}

}  // namespace mint::toy
