// A runtime written in another style, adapted to mint: a bigram MLP whose weights
// and activations live in xtensor arrays. It declares three sites and calls the
// hook set at each; that is all mint needs to cache, patch and ablate it.
#include <cstdio>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <mint/mint.hpp>

// ---- the user's runtime: 45 lines --------------------------------------------------
class bigram_mlp {
public:
  using scalar_type = float;

  bigram_mlp(int vocab, int width, int hidden, std::uint64_t seed)
      : embed_({std::size_t(vocab), std::size_t(width)}), w_in_({std::size_t(width), std::size_t(hidden)}),
        w_out_({std::size_t(hidden), std::size_t(vocab)}) {
    mint::rng r(seed);
    r.fill_normal(embed_);
    r.fill_normal(w_in_, 0.0, 1.0 / std::sqrt(width));
    r.fill_normal(w_out_, 0.0, 1.0 / std::sqrt(hidden));
    using a = mint::axis;
    embed_site_ = sites_.add({"hook_embed", -1, mint::site_role::embed, 0, 0, {a::batch, a::pos, a::d_model}, {0, 0, width}});
    hidden_site_ = sites_.add({"blocks.0.mlp.hook_post", 0, mint::site_role::mlp_post, 0, 0, {a::batch, a::pos, a::d_mlp}, {0, 0, hidden}});
    logits_site_ = sites_.add({"hook_logits", -1, mint::site_role::logits, 0, 0, {a::batch, a::pos, a::vocab}, {0, 0, vocab}});
  }

  const mint::site_table& sites() const { return sites_; }

  mint::tensor_view<const float> forward(const mint::token_batch& tokens, mint::hook_set<float>& hooks) {
    const std::size_t B = std::size_t(tokens.batch()), T = std::size_t(tokens.positions());
    x_.resize({B, T, embed_.shape(1)});
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t)
        xt::view(x_, b, t, xt::all()) = xt::view(embed_, tokens(mint::index(b), mint::index(t)), xt::all());
    if (!hooks.call(embed_site_, mint::view(x_), tokens.lengths())) return {};
    // Products through mint's Eigen bridge: [B*T, width] x [width, hidden].
    hidden_.resize({B, T, w_in_.shape(1)});
    mint::as_matrix(hidden_) = (mint::as_matrix(x_) * mint::as_matrix(w_in_)).cwiseMax(0.0f);
    if (!hooks.call(hidden_site_, mint::view(hidden_), tokens.lengths())) return {};
    logits_.resize({B, T, w_out_.shape(1)});
    mint::as_matrix(logits_) = mint::as_matrix(hidden_) * mint::as_matrix(w_out_);
    if (!hooks.call(logits_site_, mint::view(logits_), tokens.lengths())) return {};
    return mint::view(std::as_const(logits_));
  }

private:
  xt::xtensor<float, 2> embed_, w_in_, w_out_;
  xt::xtensor<float, 3> x_, hidden_, logits_;
  mint::site_table sites_;
  mint::site_id embed_site_, hidden_site_, logits_site_;
};
static_assert(mint::runtime<bigram_mlp>);
// ---- end of the user's runtime -------------------------------------------------------

int main() {
  bigram_mlp model(/*vocab=*/16, /*width=*/8, /*hidden=*/32, /*seed=*/1);
  const auto tokens = mint::token_batch::from_rows({{3, 1, 4, 1, 5, 9, 2, 6}, {5, 3, 5}});

  // Cache a site: the same call as for any runtime.
  auto run = mint::run_with_cache(model, tokens, {"blocks.0.mlp.hook_post"});
  const auto hidden = run.cache["blocks.0.mlp.hook_post"];
  const mint::matrixf rows = run.cache.rows("blocks.0.mlp.hook_post");
  std::printf("cached blocks.0.mlp.hook_post: extents %s, %td valid positions, %.0f%% of units active\n",
              mint::shape_string(hidden.extents()).c_str(), rows.rows(),
              100.0 * double((rows.array() > 0).count()) / double(rows.size()));

  // Ablate the most active hidden unit and measure the change in the next-token cross-entropy.
  Eigen::Index unit = 0;
  rows.colwise().sum().maxCoeff(&unit);
  mint::hook_set<float> ablate(model.sites());
  ablate.add("blocks.0.mlp.hook_post", [unit](mint::hook_call<float>& c) { mint::fill(c.activation.select(2, unit), 0.0f); },
             {.needs = mint::access::write});
  const double clean = mint::cross_entropy{}.value(run.logits, tokens);
  const double ablated = mint::cross_entropy{}.value(model.forward(tokens, ablate), tokens);
  std::printf("cross-entropy %.4f clean, %.4f with unit %td ablated\n", clean, ablated, mint::index(unit));

  // A wrong site name says which names exist.
  try {
    ablate.add("blocks.0.mlp.hook_pre", [](mint::hook_call<float>&) {});
  } catch (const mint::error& e) {
    std::printf("error, as expected: %s\n", e.what());
  }
  return 0;
}
