// Cross-entropy loss recovered on a small runtime: an exact reconstruction recovers
// all of it, a decoder that outputs zero recovers none, a half-way one lands between,
// and padding and a site that cannot be written are handled.
#include "mint/dictionary/loss_recovered.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "mint/adapters/eigen.hpp"

namespace dict = mint::dictionary;

namespace {

// Embedding -> one residual site -> unembedding: the smallest runtime with a writable site.
class embed_unembed {
public:
  using scalar_type = float;
  embed_unembed(int vocab, int width, std::uint64_t seed) : embed_(vocab, width), unembed_(width, vocab) {
    mint::rng r(seed);
    r.fill_normal(mint::view(embed_));
    r.fill_normal(mint::view(unembed_));
    using a = mint::axis;
    site_ = sites_.add({"blocks.0.hook_resid_post", 0, mint::site_role::resid_post, 0, 0, {a::batch, a::pos, a::d_model},
                        {0, 0, width}});
  }
  const mint::site_table& sites() const { return sites_; }
  mint::tensor_view<const float> forward(const mint::token_batch& tokens, mint::hook_set<float>& hooks) {
    const mint::index B = tokens.batch(), T = tokens.positions(), d = embed_.cols();
    resid_.resize(B * T, d);
    for (mint::index b = 0; b < B; ++b)
      for (mint::index t = 0; t < T; ++t) resid_.row(b * T + t) = embed_.row(tokens(b, t));
    if (!hooks.call(site_, mint::tensor_view<float>(resid_.data(), {B, T, d}), tokens.lengths())) return {};
    logits_ = resid_ * unembed_;
    return mint::tensor_view<const float>(logits_.data(), {B, T, unembed_.cols()});
  }

private:
  mint::matrixf embed_, unembed_, resid_, logits_;
  mint::site_table sites_;
  mint::site_id site_;
};
static_assert(mint::runtime<embed_unembed>);

// relu(x) - relu(-x) = x: an SAE of 2d latents that reconstructs every input exactly.
dict::basic_sae<float> identity_sae(mint::index d, float decoder_scale) {
  dict::basic_sae<float> sae({.d_in = d, .d_sae = 2 * d, .architecture = dict::sae_architecture::relu}, 1);
  sae.W_enc() << mint::matrixf::Identity(d, d), -mint::matrixf::Identity(d, d);
  sae.W_dec().topRows(d) = decoder_scale * mint::matrixf::Identity(d, d);
  sae.W_dec().bottomRows(d) = -decoder_scale * mint::matrixf::Identity(d, d);
  sae.b_enc().setZero();
  sae.b_dec().setZero();
  return sae;
}

}  // namespace

TEST_CASE("loss recovered: 1 for an exact reconstruction, 0 for a zero one, and between for a partial one") {
  embed_unembed model(12, 6, 3);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2, 7, 3, 3, 9}, {4, 11, 0}, {8, 2, 6, 1}});
  const auto exact = dict::loss_recovered(model, identity_sae(6, 1.0f), "blocks.0.hook_resid_post", tokens);
  // The clean and spliced passes see the same activations up to float32 rounding of x - 0 + 0.
  CHECK(exact.spliced == doctest::Approx(exact.clean).epsilon(1e-6));
  CHECK(exact.recovered() == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(exact.zero_ablation == doctest::Approx(std::log(12.0)).epsilon(1e-6));  // zero logits: uniform

  const auto none = dict::loss_recovered(model, identity_sae(6, 0.0f), "blocks.0.hook_resid_post", tokens);
  CHECK(none.recovered() == doctest::Approx(0.0).epsilon(1e-6));

  const auto half = dict::loss_recovered(model, identity_sae(6, 0.5f), "blocks.0.hook_resid_post", tokens);
  CHECK(half.clean == exact.clean);
  CHECK(half.recovered() > 0.0);
  CHECK(half.recovered() < 1.0);
}

TEST_CASE("loss recovered checks the site and the SAE's width") {
  embed_unembed model(12, 6, 3);
  const auto tokens = mint::token_batch::from_rows({{1, 5, 2}});
  CHECK_THROWS_WITH_AS(dict::loss_recovered(model, identity_sae(4, 1.0f), "blocks.0.hook_resid_post", tokens),
                       "mint::dictionary::loss_recovered: site 'blocks.0.hook_resid_post' has rows of 6 values; needs the SAE's d_in = 4",
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(dict::loss_recovered(model, identity_sae(6, 1.0f), "blocks.0.hook_resid_pre", tokens),
                       doctest::Contains("blocks.0.hook_resid_post"), mint::argument_error);
}
