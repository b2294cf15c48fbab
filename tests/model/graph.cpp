// The residual edge graph: its size on known shapes, and that each receiver's
// input really is the sum of its upstream senders' outputs (plus biases).
#include "mint/model/graph.hpp"

#include <doctest/doctest.h>

#include "mint/core/eigen.hpp"
#include "mint/model/cache.hpp"
#include "mint/toy/transformer.hpp"

TEST_CASE("GPT-2 small's shape gives auto-circuit's 32,491 edges") {
  mint::toy::transformer<float> gpt2_shape({.vocab = 4, .context = 4, .d_model = 8, .layers = 12, .heads = 12,
                                            .d_head = 2, .d_mlp = 8, .split_qkv_input = true});
  const auto g = gpt2_shape.graph();
  CHECK(g.edges().size() == 32491);
  CHECK(g.senders().size() == 1 + 12 * 12 + 12);
  CHECK(g.receivers().size() == 12 * (3 * 12 + 1) + 1);
  // Layer 1's query of head 0 hears the embeddings, layer 0's twelve heads and layer 0's MLP.
  CHECK(g.incoming(g.receiver("L1H0.q")).size() == 14);
  CHECK(g.edge_name(g.edge("L0H3", "L1H0.q")) == "L0H3 -> L1H0.q");
  CHECK_THROWS_WITH_AS(g.edge("L1H0", "L0H3.q"), doctest::Contains("needs a sender upstream of the receiver"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(g.receiver("L0H3.x"), doctest::Contains("'L0H3.x' is not in the graph"), mint::argument_error);
}

TEST_CASE("grouped-query attention: one k and v receiver per key/value head") {
  mint::toy::transformer<float> m({.vocab = 4, .context = 4, .d_model = 8, .layers = 2, .heads = 4, .kv_heads = 2,
                                   .d_head = 2, .split_qkv_input = true});
  const auto g = m.graph();
  CHECK(g.receivers().size() == 2 * (4 + 2 + 2) + 1);
  CHECK_THROWS_AS(g.receiver("L0H2.k"), mint::argument_error);
  mint::toy::transformer<float> unsplit({.vocab = 4, .context = 4, .d_model = 8, .layers = 1, .heads = 1, .d_head = 2});
  CHECK_THROWS_WITH_AS(unsplit.graph(), doctest::Contains("config.split_qkv_input is false"), mint::argument_error);
}

TEST_CASE("each receiver's input is the sum of its upstream senders plus the biases they pass") {
  mint::toy::transformer<double> m({.vocab = 9, .context = 6, .d_model = 10, .layers = 2, .heads = 2, .d_head = 3,
                                    .d_mlp = 12, .split_qkv_input = true});
  m.initialize(4);
  mint::rng r(5);
  for (const auto& e : m.parameters().entries())  // biases too, so they must be accounted for
    if (e.name.find(".b_") != std::string::npos)
      r.fill_normal(m.parameters().view_of(e));
  const auto g = m.graph();
  std::vector<std::string> names;
  for (const auto& s : m.sites()) names.push_back(s.name);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5, 6}});
  const auto run = mint::run_with_cache(m, tokens, names);
  for (int rcv = 0; rcv < int(g.receivers().size()); ++rcv) {
    const auto& node = g.receivers()[std::size_t(rcv)];
    const auto& info = m.sites()[node.site];
    mint::matrixd expected = mint::matrixd::Zero(6, 10);
    for (int e : g.incoming(rcv)) {
      const auto& sender = g.senders()[std::size_t(g.edges()[std::size_t(e)].sender)];
      const auto& sinfo = m.sites()[sender.site];
      auto out = run.cache[sinfo.name];
      if (sender.head >= 0) out = out.select(sinfo.axis_of(mint::axis::head), sender.head);
      expected += mint::as_matrix(out);
    }
    // Constants on the way: every upstream attention layer's b_O (b_out is inside hook_mlp_out).
    for (int l = 0; l < node.layer && l < 2; ++l)
      expected.rowwise() += mint::as_vector(m.parameters()["blocks." + std::to_string(l) + ".attn.b_O"]).transpose();
    if (info.role == mint::site_role::mlp_in)  // the MLP's own layer's attention comes before it
      expected.rowwise() += mint::as_vector(m.parameters()["blocks." + std::to_string(node.layer) + ".attn.b_O"]).transpose();
    auto input = run.cache[info.name];
    if (node.head >= 0) input = input.select(2, node.head);
    INFO("receiver " << node.name);
    CHECK((mint::as_matrix(input) - expected).cwiseAbs().maxCoeff() < 1e-12);  // double: sums of ~30 terms
  }
}
