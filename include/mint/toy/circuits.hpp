// Models whose weights are set by hand so their circuit is known edge by edge:
// scoring for circuit discovery. Attention-only, no layer norm, split q/k/v
// inputs; the residual stream is cut into one-hot subspaces (token, position,
// previous token, output, scratch) so every head reads and writes exactly what
// the circuit says, and distractor heads write only to a subspace no one reads.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/toy/tasks.hpp"
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
  /// Inputs the model solves, with the (row, position, target) triples it gets right: clean
  /// and corrupt batches for discovery are two draws.
  std::function<labelled_batch(rng&, index)> sample;
};

}  // namespace mint::toy

namespace mint::detail {

/// Offsets of the residual's one-hot subspaces; `codes` extra subspaces of `context` dims each
/// (code(i)) carry positions from head to head.
struct subspaces {
  int vocab, context, token, position, previous, output, scratch, d_model;
  subspaces(int v, int c, int codes = 0) : vocab(v), context(c) {
    token = 0;
    position = token + v;
    previous = position + c;
    output = previous + v;
    scratch = output + v;
    d_model = scratch + 4 + codes * c;
  }
  int code(int i) const noexcept { return scratch + 4 + i * context; }
};

inline toy::transformer_config circuit_config(const subspaces& s, int layers, int heads = 2, int d_mlp = 0) {
  return {.vocab = s.vocab, .context = s.context, .d_model = s.d_model, .layers = layers, .heads = heads,
          .d_head = std::max(s.vocab, s.context), .d_mlp = d_mlp, .activation = toy::activation_fn::relu,
          .layer_norm = false, .split_qkv_input = true};
}

/// Random tokens from [0, vocab), every position from 1 on labelled by target(previous token).
template <class F>
std::function<toy::labelled_batch(rng&, index)> previous_token_sampler(int vocab, int length, F target) {
  return [=](rng& r, index rows) {
    toy::labelled_batch out{token_batch(rows, length), {}, {}, {}};
    for (index b = 0; b < rows; ++b)
      for (index t = 0; t < length; ++t) {
        out.tokens(b, t) = token(r.below(std::uint64_t(vocab)));
        if (t > 0) out.label(b, t, target(out.tokens(b, t - 1)));
      }
    return out;
  };
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
  known_circuit out{transformer<float>(detail::circuit_config(s, 1)), {}, {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  const auto h0 = detail::head(out.model, 0, 0);
  detail::previous_position_attention(h0, s, 100.0f);
  detail::copy_tokens(h0, s, s.token, s.output, 1.0f);
  rng r(seed);
  detail::distractor(detail::head(out.model, 0, 1), s, r);
  out.edges = {{"embed", "L0H0.v"}, {"L0H0", "resid_final"}};
  out.positional_edges = {{"embed", "L0H0.q"}, {"embed", "L0H0.k"}};
  out.description = "previous-token copy: L0H0 attends to position t-1 and copies its token to the logits";
  out.sample = detail::previous_token_sampler(vocab, context, [](token t) { return t; });
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
  known_circuit out{transformer<float>(detail::circuit_config(s, 2)), {}, {}, {}, {}};
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
  const induction_task task{.vocab = vocab, .length = std::min(6, (context - 2) / 2), .sequence = context};
  out.sample = [task](rng& r, index rows) { return task.sample(r, rows); };
  return out;
}

/// One layer, two heads and an MLP: L0H0 copies the previous token into its own subspace, and
/// the MLP looks it up in a table (neuron t fires for previous token t and writes
/// table(t) = (3 t + 1) mod vocab), so the model predicts the table's entry for the previous
/// token. MLP nodes are part of the circuit. L0H1 is a distractor.
/// Circuit: embed -> L0H0.v, L0H0 -> mlp0.in, mlp0 -> resid_final; positional: embed -> L0H0.{q,k}.
inline known_circuit mlp_lookup(int vocab = 8, int context = 12, std::uint64_t seed = 0) {
  detail::check_sizes(vocab, context, "mint::toy::mlp_lookup");
  const detail::subspaces s(vocab, context);
  known_circuit out{transformer<float>(detail::circuit_config(s, 1, 2, vocab)), {}, {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  const auto h0 = detail::head(out.model, 0, 0);
  detail::previous_position_attention(h0, s, 100.0f);
  detail::copy_tokens(h0, s, s.token, s.previous, 1.0f);
  auto table = [vocab](token t) { return token((3 * t + 1) % vocab); };
  auto& p = out.model.parameters();
  for (int t = 0; t < vocab; ++t) {
    p["blocks.0.mlp.W_in"](s.previous + t, t) = 1.0f;  // relu(1) = 1 for the previous token, 0 otherwise
    p["blocks.0.mlp.W_out"](t, s.output + table(token(t))) = 1.0f;
  }
  rng r(seed);
  detail::distractor(detail::head(out.model, 0, 1), s, r);
  out.edges = {{"embed", "L0H0.v"}, {"L0H0", "mlp0.in"}, {"mlp0", "resid_final"}};
  out.positional_edges = {{"embed", "L0H0.q"}, {"embed", "L0H0.k"}};
  out.description = "MLP lookup: L0H0 moves the previous token to the MLP, which looks up (3 t + 1) mod vocab";
  out.sample = detail::previous_token_sampler(vocab, context, table);
  return out;
}

/// One layer, four heads: L0H0, L0H1 and L0H2 each copy the previous token to the logits, a
/// vote of three; L0H3 is a distractor. Patching one path from another input leaves two votes
/// against one, so the prediction stands and a saturating metric (the KL divergence, the
/// probability of the answer) barely moves: each path looks dispensable alone, though the
/// three together are the circuit. Greedy pruning (ACDC with the KL divergence) drops the first
/// path it visits and must keep the other two. A linear metric (a logit difference) sees every path.
/// Circuit: embed -> L0H{0,1,2}.v, L0H{0,1,2} -> resid_final; positional: embed -> L0H{0,1,2}.{q,k}.
inline known_circuit redundant_copy(int vocab = 8, int context = 12, std::uint64_t seed = 0) {
  detail::check_sizes(vocab, context, "mint::toy::redundant_copy");
  const detail::subspaces s(vocab, context);
  known_circuit out{transformer<float>(detail::circuit_config(s, 1, 4)), {}, {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  for (int h = 0; h < 3; ++h) {
    const auto w = detail::head(out.model, 0, h);
    detail::previous_position_attention(w, s, 100.0f);
    detail::copy_tokens(w, s, s.token, s.output, 1.0f);
    const std::string name = "L0H" + std::to_string(h);
    out.edges.emplace_back("embed", name + ".v");
    out.edges.emplace_back(name, "resid_final");
    out.positional_edges.emplace_back("embed", name + ".q");
    out.positional_edges.emplace_back("embed", name + ".k");
  }
  rng r(seed);
  detail::distractor(detail::head(out.model, 0, 3), s, r);
  out.description = "redundant copy: L0H0, L0H1 and L0H2 each copy the previous token, a vote of three";
  out.sample = detail::previous_token_sampler(vocab, context, [](token t) { return t; });
  return out;
}

/// An IOI-like circuit on the template [BOS, A, B, S, END] (S is A or B; names from
/// [2, vocab), 0 BOS, 1 END): the answer at END is the name that appeared once. Three layers,
/// two heads each, the first head of each layer in the circuit and the second a distractor:
/// - L0H0, duplicate-token head: at position 3 attends to the earlier position (1 or 2) holding
///   the same token, and writes that position into code subspace 0 (its value reads positions).
/// - L1H0, S-inhibition head: at END attends to position 3 and moves code 0 into code 1.
/// - L2H0, name mover: at END attends to positions 1 and 2, its query pushed away from the
///   position in code 1 (Q-composition), and copies the token there (the other name) to the logits.
/// Circuit: embed -> L0H0.{q,k} (the tokens compared), L0H0 -> L1H0.v, L1H0 -> L2H0.q,
/// embed -> L2H0.v, L2H0 -> resid_final; positional: embed -> L0H0.v, embed -> L1H0.{q,k},
/// embed -> L2H0.{q,k}.
inline known_circuit ioi_circuit(int vocab = 10, std::uint64_t seed = 0) {
  if (vocab < 4)
    throw argument_error("mint::toy::ioi_circuit", "vocab", detail::str("is ", vocab), "needs >= 4 (BOS, END, two names)");
  const int context = 5;
  const detail::subspaces s(vocab, context, 2);
  known_circuit out{transformer<float>(detail::circuit_config(s, 3)), {}, {}, {}, {}};
  detail::one_hot_embeddings_and_unembedding(out.model, s, 10.0f);
  const float sharp = 100.0f;
  // Duplicate-token head: at position 3, score sharp for the same token and sharp for a key at
  // position 1 or 2, so the earlier copy (2 sharp) beats the other name and itself (sharp each).
  const auto dup = detail::head(out.model, 0, 0);
  for (int t = 2; t < vocab; ++t) {
    dup.q(s.token + t, t) = sharp;
    dup.k(s.token + t, t) = 1.0f;
  }
  dup.q(s.position + 3, 0) = sharp;  // column 0: no name is token 0
  for (int p : {1, 2}) dup.k(s.position + p, 0) = 1.0f;
  for (int p = 0; p < context; ++p) {
    dup.v(s.position + p, p) = 1.0f;
    dup.o(p, s.code(0) + p) = 1.0f;
  }
  // S-inhibition head: END (position 4) attends to position 3, moving code 0 into code 1.
  const auto inhibit = detail::head(out.model, 1, 0);
  inhibit.q(s.position + 4, 0) = sharp;
  inhibit.k(s.position + 3, 0) = 1.0f;
  for (int p = 0; p < context; ++p) {
    inhibit.v(s.code(0) + p, p) = 1.0f;
    inhibit.o(p, s.code(1) + p) = 1.0f;
  }
  // Name mover: END scores positions 1 and 2 by sharp, minus 2 sharp where code 1 points.
  const auto mover = detail::head(out.model, 2, 0);
  for (int p : {1, 2}) {
    mover.q(s.position + 4, p) = sharp;
    mover.q(s.code(1) + p, p) = -2 * sharp;
    mover.k(s.position + p, p) = 1.0f;
  }
  detail::copy_tokens(mover, s, s.token, s.output, 1.0f);
  rng r(seed);
  for (int l = 0; l < 3; ++l) detail::distractor(detail::head(out.model, l, 1), s, r);
  out.edges = {{"embed", "L0H0.q"}, {"embed", "L0H0.k"}, {"L0H0", "L1H0.v"}, {"L1H0", "L2H0.q"},
               {"embed", "L2H0.v"}, {"L2H0", "resid_final"}};
  out.positional_edges = {{"embed", "L0H0.v"}, {"embed", "L1H0.q"}, {"embed", "L1H0.k"}, {"embed", "L2H0.q"},
                          {"embed", "L2H0.k"}};
  out.description = "IOI-like: duplicate-token head L0H0, S-inhibition head L1H0, name mover L2H0 (Q-composition)";
  out.sample = [vocab](rng& r, index rows) {
    labelled_batch b{token_batch(rows, 5), {}, {}, {}};
    const auto names = std::uint64_t(vocab - 2);
    for (index row = 0; row < rows; ++row) {
      const token a = token(2 + r.below(names));
      token c = token(2 + r.below(names - 1));
      if (c >= a) ++c;
      const bool first = r.below(2) == 0;  // which of the two names repeats
      b.tokens(row, 0) = 0, b.tokens(row, 1) = a, b.tokens(row, 2) = c, b.tokens(row, 3) = first ? a : c, b.tokens(row, 4) = 1;
      b.label(row, 4, first ? c : a);
    }
    return b;
  };
  return out;
}

}  // namespace mint::toy
