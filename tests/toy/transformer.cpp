// The toy transformer's contract: sites, errors, layer-norm folding, casting.
#include "mint/toy/transformer.hpp"

#include <doctest/doctest.h>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"
#include "mint/model/metrics.hpp"
#include "mint/toy/orthogonalize.hpp"

TEST_CASE("sites follow the TransformerLens names in forward order") {
  mint::toy::transformer<float> m({.vocab = 5, .context = 4, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4, .d_mlp = 8});
  std::vector<std::string> names;
  for (const auto& s : m.sites()) names.push_back(s.name);
  const std::vector<std::string> expected = {
      "hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.ln1.hook_scale",
      "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
      "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.attn.hook_result", "blocks.0.hook_attn_out",
      "blocks.0.hook_resid_mid", "blocks.0.hook_mlp_in", "blocks.0.ln2.hook_scale", "blocks.0.ln2.hook_normalized",
      "blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post",
      "ln_final.hook_scale", "ln_final.hook_normalized", "hook_logits"};
  CHECK(names == expected);
  const auto& pattern = m.sites()[m.sites().at("blocks.0.attn.hook_pattern")];
  CHECK(pattern.extents(3, 4) == std::vector<mint::index>{3, 2, 4, 4});
  CHECK(pattern.layer == 0);
  CHECK(pattern.heads == 2);
  CHECK(m.parameters()["blocks.0.attn.W_Q"].extent(1) == 8);
}

TEST_CASE("bad configs and bad tokens are refused with their reasons") {
  CHECK_THROWS_WITH_AS(mint::toy::transformer<float>({.vocab = 5, .context = 4, .d_model = 8, .heads = 3, .kv_heads = 2, .d_head = 2}),
                       "mint::toy::transformer: config.kv_heads is 2; needs to divide heads (0 for as many as heads)",
                       mint::argument_error);
  CHECK_THROWS_AS(mint::toy::transformer<float>({.vocab = 0, .context = 4, .d_model = 8, .d_head = 2}), mint::argument_error);
  mint::toy::transformer<float> m({.vocab = 5, .context = 4, .d_model = 8, .heads = 2, .d_head = 2});
  CHECK_THROWS_WITH_AS(m.forward(mint::token_batch::from_rows({{1, 5}})),
                       "mint::toy::transformer::forward: tokens hold id 5 at [0, 1]; needs ids in [0, 5)",
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(m.forward(mint::token_batch::from_rows({{1, 2, 3, 4, 1}})), doctest::Contains("needs at most the context, 4"),
                       mint::shape_error);
  auto other = mint::toy::transformer<float>({.vocab = 5, .context = 4, .d_model = 8, .heads = 2, .d_head = 2});
  mint::hook_set<float> foreign(other.sites());
  CHECK_THROWS_AS(m.forward(mint::token_batch::from_rows({{1}}), foreign), mint::argument_error);
  mint::hook_set<float> none;
  mint::array<float> d({1, 1, 5});
  CHECK_THROWS_WITH_AS(m.backward(d.view(), none), doctest::Contains("needs forward() to run to the end first"),
                       mint::argument_error);
  m.forward(mint::token_batch::from_rows({{1, 2}}));
  CHECK_THROWS_WITH_AS(m.backward(d.view(), none), doctest::Contains("needs [1, 2, 5], the last logits"), mint::shape_error);
}

TEST_CASE("folding layer norm keeps the function and leaves unit gains") {
  mint::toy::transformer<double> m({.vocab = 9, .context = 6, .d_model = 10, .layers = 2, .heads = 2, .kv_heads = 1,
                                    .d_head = 3, .d_mlp = 12, .split_qkv_input = true});
  m.initialize(2);
  mint::rng r(3);
  for (const auto& e : m.parameters().entries())
    if (e.name.find("ln") != std::string::npos) r.fill_normal(m.parameters().view_of(e), 1.0, 0.5);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}, {8, 7}});
  const mint::matrixd before = mint::to_matrix(m.forward(tokens));
  m.fold_layer_norm();
  const mint::matrixd after = mint::to_matrix(m.forward(tokens));
  CHECK((after - before).cwiseAbs().maxCoeff() < 1e-12);  // double; a reassociation of the same sums
  CHECK(mint::as_vector(m.parameters()["blocks.1.ln2.w"]).isOnes());
  CHECK(mint::as_vector(m.parameters()["ln_final.b"]).isZero());
}

TEST_CASE("folding layer norm then centring the writing weights keeps the logits, and leaves writes of mean zero") {
  mint::toy::transformer<float> m({.vocab = 9, .context = 6, .d_model = 10, .layers = 2, .heads = 2, .d_head = 3, .d_mlp = 12});
  m.initialize(4);
  mint::rng r(5);
  for (const auto& e : m.parameters().entries())
    if (e.name.find("ln") != std::string::npos || e.name.find(".b_") != std::string::npos)
      r.fill_normal(m.parameters().view_of(e), e.name.find(".w") != std::string::npos ? 1.0 : 0.0, 0.5);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}, {8, 7}});
  const mint::matrixf before = mint::to_matrix<float>(m.forward(tokens));
  m.fold_layer_norm();
  mint::toy::center_writes(m);
  const mint::matrixf after = mint::to_matrix<float>(m.forward(tokens));
  CHECK((after - before).cwiseAbs().maxCoeff() < 1e-5);  // TransformerLens's bound for fold + centre, float32
  for (const char* name : {"embed.W_E", "blocks.1.attn.W_O", "blocks.0.mlp.b_out"}) {
    const auto w = m.parameters()[name];
    const mint::index d = 10;
    const auto rows = mint::as_matrix(w.reshape({w.size() / d, d}));
    CHECK(rows.rowwise().sum().cwiseAbs().maxCoeff() < 1e-5);  // every written row has mean zero
  }
  mint::toy::transformer<float> plain({.vocab = 9, .context = 6, .d_model = 10, .layers = 1, .heads = 2, .d_head = 3,
                                       .layer_norm = false});
  CHECK_THROWS_AS(mint::toy::center_writes(plain), mint::argument_error);
}

TEST_CASE("cast to double runs the same function") {
  mint::toy::transformer<float> m({.vocab = 9, .context = 6, .d_model = 10, .layers = 1, .heads = 2, .d_head = 3, .d_mlp = 8});
  m.initialize(9);
  auto d = m.cast<double>();
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3}});
  const mint::matrixd a = mint::to_matrix<double>(m.forward(tokens)), b = mint::to_matrix(d.forward(tokens));
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-5);  // float32 rounding of order-one logits
}

TEST_CASE("threaded runs repeat bit for bit, and agree with one thread to rounding") {
  // Large enough (batch 48, 4 heads, 32 positions) that the attention loops run in parallel.
  mint::toy::transformer<float> m({.vocab = 20, .context = 32, .d_model = 32, .layers = 2, .heads = 4, .d_head = 16,
                                   .d_mlp = 64});
  m.initialize(4);
  mint::toy::transformer<float> copy = m;
  mint::token_batch tokens(48, 32);
  mint::rng r(5);
  for (mint::index b = 0; b < 48; ++b)
    for (mint::index t = 0; t < 32; ++t) tokens(b, t) = mint::token(r.below(20));
  auto run = [&](mint::toy::transformer<float>& model, int threads) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    (void)threads;
    const auto logits = model.forward(tokens);
    auto [loss, grad] = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens);
    auto g = model.parameters().zeros_like();
    model.backward(grad.view(), g);
    return std::vector<float>(g.flat().begin(), g.flat().end());
  };
  const auto one = run(m, 1), two = run(copy, 2), again = run(m, 2);
  CHECK(two == again);  // each thread owns its rows: the same schedule gives the same bits
  // Eigen blocks its products by thread count, which reorders sums: float32 rounding, relative 1e-4.
  float worst = 0, scale = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    worst = std::max(worst, std::abs(one[i] - two[i]));
    scale = std::max(scale, std::abs(one[i]));
  }
  CHECK(worst <= 1e-4f * scale);
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
}
