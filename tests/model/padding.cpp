// Batches of prompts of different lengths give the numbers each prompt gives alone.
#include <doctest/doctest.h>

#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/metrics.hpp"
#include "mint/toy/transformer.hpp"

TEST_CASE("padding: a batch of different lengths equals one prompt at a time") {
  for (bool split : {false, true}) {
    mint::toy::transformer<float> m({.vocab = 13, .context = 9, .d_model = 16, .layers = 2, .heads = 4, .kv_heads = 2,
                                     .d_head = 4, .d_mlp = 32, .split_qkv_input = split});
    m.initialize(11);
    const std::vector<std::vector<mint::token>> prompts = {{1, 5, 2, 9}, {3, 3, 12, 0, 7, 7, 1, 2, 4}, {6}};
    const auto batch = mint::token_batch::from_rows(prompts, 0);
    auto together = mint::run_with_cache(m, batch, {"blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern"});
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto alone_tokens = mint::token_batch::from_rows({prompts[i]});
      auto alone = mint::run_with_cache(m, alone_tokens, {"blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern"});
      const auto n = mint::index(prompts[i].size());
      // Products of different shapes may sum in another order: float32 agreement to 1e-5.
      float worst = 0;
      for (mint::index t = 0; t < n; ++t)
        for (mint::index j = 0; j < 13; ++j)
          worst = std::max(worst, std::abs(together.logits(mint::index(i), t, j) - alone.logits(0, t, j)));
      for (mint::index t = 0; t < n; ++t)
        for (mint::index j = 0; j < 16; ++j)
          worst = std::max(worst, std::abs(together.cache["blocks.1.hook_resid_post"](mint::index(i), t, j) -
                                           alone.cache["blocks.1.hook_resid_post"](0, t, j)));
      for (mint::index h = 0; h < 4; ++h)
        for (mint::index q = 0; q < n; ++q)
          for (mint::index k = 0; k < n; ++k)
            worst = std::max(worst, std::abs(together.cache["blocks.0.attn.hook_pattern"](mint::index(i), h, q, k) -
                                             alone.cache["blocks.0.attn.hook_pattern"](0, h, q, k)));
      INFO("prompt " << i << (split ? " (split inputs)" : ""));
      CHECK(worst < 1e-5f);
    }
    // Metrics read each row's last valid position, so they agree too.
    const mint::token_probability p{{2, 4, 6}};
    const double batched = p.value(together.logits, batch);
    double separate = 0;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto t = mint::token_batch::from_rows({prompts[i]});
      separate += mint::token_probability{{p.target[i]}}.value(m.forward(t), t) / 3.0;
    }
    CHECK(batched == doctest::Approx(separate).epsilon(1e-5));
  }
}
