// A runtime that evaluates in chunks, adapted to mint: a user's Elman RNN that
// keeps its hidden state between calls, as a KV-cached decoder or llama.cpp's
// micro-batches do. It calls the recurrent site once per step with that step's
// absolute position, so caches, position filters and steering work on it as on
// any runtime, whether the sequence arrives at once or a token at a time.
#include <cmath>
#include <cstdio>
#include <vector>

#include <mint/mint.hpp>

// ---- the user's runtime: an Elman RNN, h_t = tanh(x_t W_x + h_{t-1} W_h + b) --------
class elman_rnn {
public:
  using scalar_type = float;

  elman_rnn(int vocab, int width, std::uint64_t seed)
      : embed_(vocab, width), w_x_(width, width), w_h_(width, width), w_out_(width, vocab), b_(width),
        sequence_(/*context=*/0, vocab) {
    mint::rng r(seed);
    r.fill_normal(embed_);
    r.fill_normal(w_x_, 0.0, 1.0 / std::sqrt(width));
    r.fill_normal(w_h_, 0.0, 0.9 / std::sqrt(width));
    r.fill_normal(w_out_, 0.0, 1.0 / std::sqrt(width));
    b_.setZero();
    using a = mint::axis;
    const std::vector<mint::axis> bpd = {a::batch, a::pos, a::d_model};
    // Forward only: the sites offer no `gradient` (the default, full_access, offers everything).
    const auto forward_only = mint::access::read | mint::access::write | mint::access::add;
    embed_site_ = sites_.add({"hook_embed", -1, mint::site_role::embed, 0, 0, bpd, {0, 0, width}, forward_only});
    // A recurrent state uses d_model as its feature axis; role `other` says it is no transformer site.
    h_site_ = sites_.add({"blocks.0.hook_h", 0, mint::site_role::other, 0, 0, bpd, {0, 0, width}, forward_only});
    logits_site_ = sites_.add({"hook_logits", -1, mint::site_role::logits, 0, 0, {a::batch, a::pos, a::vocab},
                              {0, 0, vocab}, forward_only});
  }

  const mint::site_table& sites() const { return sites_; }

  // The incremental capability: mint::incremental_runtime. mint::chunked_sequence keeps the
  // bookkeeping (where the next chunk starts, each row's absolute length, the checks).
  void reset() { sequence_.reset(); }
  mint::index cached_positions() const { return sequence_.next_position(); }

  mint::tensor_view<const float> forward_chunk(const mint::token_batch& chunk, mint::hook_set<float>& hooks) {
    const mint::index t0 = sequence_.append(chunk, "elman_rnn::forward_chunk");
    const mint::index B = chunk.batch(), n = chunk.positions(), d = embed_.cols();
    if (t0 == 0) state_ = mint::matrixf::Zero(B, d);
    const auto lengths = sequence_.lengths();
    const mint::call_options at{.first_position = t0};  // where this chunk sits in the sequence
    x_.resize(B * n, d);
    for (mint::index b = 0; b < B; ++b)
      for (mint::index t = 0; t < n; ++t) x_.row(b * n + t) = embed_.row(chunk(b, t));
    if (!hooks.call(embed_site_, view3(x_, B, n), lengths, at)) return stopped(t0, n);
    h_.resize(B * n, d);
    mint::matrixf step(B, d);
    for (mint::index t = 0; t < n; ++t) {
      for (mint::index b = 0; b < B; ++b) step.row(b) = x_.row(b * n + t);
      step = (step * w_x_ + state_ * w_h_).rowwise() + b_.transpose();
      step = step.array().tanh().matrix();
      // One call per step, at absolute position t0 + t: a hook's change feeds the next step.
      if (!hooks.call(h_site_, mint::tensor_view<float>(step.data(), {B, 1, d}), lengths, {.first_position = t0 + t}))
        return stopped(t0, n);
      state_ = step;
      for (mint::index b = 0; b < B; ++b) h_.row(b * n + t) = step.row(b);
    }
    logits_.noalias() = h_ * w_out_;
    if (!hooks.call(logits_site_, view3(logits_, B, n), lengths, at)) return stopped(t0, n);
    sequence_.finish(t0, n, false);
    return mint::tensor_view<const float>(logits_.data(), {B, n, logits_.cols()});
  }

  // The plain runtime contract: a whole sequence is one chunk after reset().
  mint::tensor_view<const float> forward(const mint::token_batch& tokens, mint::hook_set<float>& hooks) {
    reset();
    return forward_chunk(tokens, hooks);
  }

private:
  mint::tensor_view<const float> stopped(mint::index t0, mint::index n) {
    sequence_.finish(t0, n, true);  // the state is incomplete: the next chunk needs reset()
    return {};
  }

  static mint::tensor_view<float> view3(mint::matrixf& m, mint::index B, mint::index n) {
    return mint::tensor_view<float>(m.data(), {B, n, mint::index(m.cols())});
  }

  mint::matrixf embed_, w_x_, w_h_, w_out_;
  mint::vectorf b_;
  mint::matrixf x_, h_, logits_, state_;
  mint::chunked_sequence sequence_;
  mint::site_table sites_;
  mint::site_id embed_site_, h_site_, logits_site_;
};
static_assert(mint::incremental_runtime<elman_rnn>);
// ---- end of the user's runtime -------------------------------------------------------

int main() {
  elman_rnn model(/*vocab=*/12, /*width=*/16, /*seed=*/3);
  const auto tokens = mint::token_batch::from_rows({{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, {2, 7, 1, 8, 2, 8}});

  // 1. One forward over the whole batch, cached.
  auto whole = mint::run_with_cache(model, tokens, {"blocks.0.hook_h", "hook_logits"});

  // 2. The same sequence as a prefill of 4 positions, then one token at a time, cached into
  //    one activation_cache: every chunk lands at its absolute positions.
  mint::activation_cache<float> cache(model.sites(), {"blocks.0.hook_h", "hook_logits"});
  cache.reserve(tokens.batch(), tokens.positions());
  mint::hook_set<float> hooks(model.sites());
  cache.attach(hooks);
  model.reset();
  model.forward_chunk(tokens.slice(0, 4), hooks);
  for (mint::index t = 4; t < tokens.positions(); ++t) model.forward_chunk(tokens.slice(t, t + 1), hooks);
  const double gap = (mint::to_matrix(cache["blocks.0.hook_h"].reshape({20, 16})) -
                      mint::to_matrix(whole.cache["blocks.0.hook_h"].reshape({20, 16}))).cwiseAbs().maxCoeff();
  std::printf("blocks.0.hook_h %s cached from 7 chunks; largest difference from one forward: %.2g\n",
              mint::shape_string(cache["blocks.0.hook_h"].extents()).c_str(), gap);

  // 3. A position filter in absolute positions: steer the hidden state at positions 6 and up only.
  //    Run at once or chunk by chunk, the hook acts on the same positions.
  mint::hook_set<float> steer(model.sites());
  std::vector<mint::index> steered;
  steer.add("blocks.0.hook_h", [&](mint::hook_call<float>& c) {
    for (mint::index i = 0; i < c.activation.extent(1); ++i) steered.push_back(c.position(i));
    for (mint::index b = 0; b < c.activation.extent(0); ++b) c.activation(b, 0, 0) += 2.0f;
  }, {.needs = mint::access::add, .only = {.position_begin = 6}});
  const auto at_once = mint::array<float>::copy_of(model.forward(tokens, steer));  // keep it past the next call
  model.reset();
  model.forward_chunk(tokens.slice(0, 5), steer);
  const auto chunk = model.forward_chunk(tokens.slice(5, 10), steer);
  const double steer_gap = (mint::to_matrix(chunk.subview(0)) -
                            mint::to_matrix(at_once.view().subview(0).narrow(0, 5, 10))).cwiseAbs().maxCoeff();
  std::printf("steering at positions >= 6 reached positions");
  for (mint::index p : steered) std::printf(" %td", p);
  std::printf("\n  (once per run: at once and in two chunks); logits differ between the two by %.2g\n", steer_gap);

  // 4. Generation: with the runtime's own state (one prefix chunk, then a token a step) or by
  //    recomputing the whole sequence every step; the same tokens either way.
  const auto prompts = mint::token_batch::from_rows({{3, 1, 4}, {2, 7, 1, 8, 2}});
  mint::generation_options options{.max_new_tokens = 8, .temperature = 0.8, .seed = 5};
  const auto incremental = mint::generate(model, prompts, options);
  options.use_incremental = false;
  const auto recomputed = mint::generate(model, prompts, options);
  for (mint::index b = 0; b < prompts.batch(); ++b) {
    std::printf("row %td:", b);
    for (mint::index t = 0; t < incremental.tokens.length(b); ++t)
      std::printf(t == incremental.prompt_lengths[std::size_t(b)] ? " | %d" : " %d", incremental.tokens(b, t));
    std::printf("\n");
  }
  bool same = true;
  for (mint::index b = 0; b < prompts.batch(); ++b)
    for (mint::index t = 0; t < incremental.tokens.length(b); ++t) same = same && incremental.tokens(b, t) == recomputed.tokens(b, t);
  std::printf("sampled (temperature 0.8) in %td calls with the RNN's state, %td recomputing: %s tokens\n",
              incremental.forward_calls, recomputed.forward_calls, same ? "the same" : "DIFFERENT");
  return same ? 0 : 1;
}
