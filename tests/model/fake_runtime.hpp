// A small differentiable runtime for tests that should not depend on the toy transformer:
// per position, e = E[token] (hook_embed), h = act(e A) (blocks.0.mlp.hook_post), logits = h W
// (hook_logits), with act the identity (a model linear in its embeddings) or tanh. Its backward
// is exact and follows mint's contract: grad hooks from the logits back to the embeddings, what a
// hook leaves flowing upstream, hooked forward changes treated as added constants.
#pragma once

#include <cmath>
#include <utility>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/random.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint_test {

template <class T>
class fake_runtime {
public:
  using scalar_type = T;

  /// `hidden_access`: what the hidden site allows (a forward-only engine's site lacks gradient).
  fake_runtime(mint::index vocab, mint::index width, mint::index hidden, bool linear, std::uint64_t seed,
               mint::access hidden_access = mint::full_access)
      : embed(vocab, width), a(width, hidden), w(hidden, vocab), linear_(linear) {
    mint::rng r(seed);
    r.fill_normal(embed);
    r.fill_normal(a, 0.0, 1.0 / std::sqrt(double(width)));
    r.fill_normal(w, 0.0, 1.0 / std::sqrt(double(hidden)));
    using ax = mint::axis;
    embed_site_ = sites_.add({"hook_embed", -1, mint::site_role::embed, 0, 0, {ax::batch, ax::pos, ax::d_model}, {0, 0, width}});
    hidden_site_ = sites_.add(
        {"blocks.0.mlp.hook_post", 0, mint::site_role::mlp_post, 0, 0, {ax::batch, ax::pos, ax::d_mlp}, {0, 0, hidden}, hidden_access});
    logits_site_ = sites_.add({"hook_logits", -1, mint::site_role::logits, 0, 0, {ax::batch, ax::pos, ax::vocab}, {0, 0, vocab}});
  }

  const mint::site_table& sites() const { return sites_; }

  mint::tensor_view<const T> forward(const mint::token_batch& tokens, mint::hook_set<T>& hooks) {
    const mint::index rows = tokens.batch() * tokens.positions();
    lengths_.assign(tokens.lengths().begin(), tokens.lengths().end());
    batch_ = tokens.batch();
    positions_ = tokens.positions();
    e_ = mint::array<T>({batch_, positions_, embed.cols()});
    for (mint::index b = 0; b < batch_; ++b)
      for (mint::index t = 0; t < positions_; ++t) mint::as_matrix(e_.view()).row(b * positions_ + t) = embed.row(tokens(b, t));
    if (!hooks.call(embed_site_, e_.view(), tokens.lengths())) return {};
    pre_ = mint::array<T>({batch_, positions_, a.cols()});
    h_ = mint::array<T>({batch_, positions_, a.cols()});
    mint::as_matrix(pre_.view()) = mint::as_matrix(e_.view()) * a;
    auto h = mint::as_matrix(h_.view());
    h = linear_ ? mint::matrix<T>(mint::as_matrix(pre_.view())) : mint::matrix<T>(mint::as_matrix(pre_.view()).array().tanh());
    if (!hooks.call(hidden_site_, h_.view(), tokens.lengths())) return {};
    logits_ = mint::array<T>({batch_, positions_, w.cols()});
    mint::as_matrix(logits_.view()) = mint::as_matrix(h_.view()) * w;
    if (!hooks.call(logits_site_, logits_.view(), tokens.lengths())) return {};
    (void)rows;
    return std::as_const(logits_).view();
  }

  void backward(mint::tensor_view<const T> dlogits, mint::hook_set<T>& grad_hooks) {
    mint::array<T> dl({batch_, positions_, w.cols()});
    mint::copy(dlogits, dl.view());
    grad_hooks.call(logits_site_, dl.view(), lengths_);
    mint::array<T> dh({batch_, positions_, a.cols()});
    mint::as_matrix(dh.view()) = mint::as_matrix(dl.view()) * w.transpose();
    grad_hooks.call(hidden_site_, dh.view(), lengths_);
    auto dpre = mint::as_matrix(dh.view());
    if (!linear_) dpre.array() *= 1 - mint::as_matrix(pre_.view()).array().tanh().square();
    mint::array<T> de({batch_, positions_, embed.cols()});
    mint::as_matrix(de.view()) = dpre * a.transpose();
    grad_hooks.call(embed_site_, de.view(), lengths_);
  }

  mint::matrix<T> embed, a, w;

private:
  bool linear_;
  mint::site_table sites_;
  mint::site_id embed_site_{}, hidden_site_{}, logits_site_{};
  mint::index batch_ = 0, positions_ = 0;
  std::vector<mint::index> lengths_;
  mint::array<T> e_, pre_, h_, logits_;
};

static_assert(mint::differentiable_runtime<fake_runtime<float>>);
static_assert(mint::differentiable_runtime<fake_runtime<double>>);

}  // namespace mint_test
