// Hook sets on the toy transformer: read, overwrite, add, filters, stop, and errors.
#include "mint/model/hooks.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/model/cache.hpp"
#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> small_model(bool split = false) {
  mint::toy::transformer<float> m({.vocab = 11, .context = 10, .d_model = 16, .layers = 2, .heads = 4, .d_head = 4,
                                   .d_mlp = 24, .split_qkv_input = split});
  m.initialize(3);
  return m;
}

const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1}});

mint::matrixf logits_of(mint::toy::transformer<float>& m, mint::hook_set<float>& hooks) {
  return mint::to_matrix(m.forward(tokens, hooks));
}

}  // namespace

TEST_CASE("a read hook sees the activation with its site's extents and lengths") {
  auto m = small_model();
  mint::hook_set<float> hooks(m.sites());
  std::vector<mint::index> seen;
  mint::index calls = 0;
  hooks.add("blocks.1.attn.hook_z", [&](mint::hook_call<float>& c) {
    seen.assign(c.activation.extents().begin(), c.activation.extents().end());
    CHECK(c.site.role == mint::site_role::attn_z);
    CHECK(c.lengths.size() == 2);
    ++calls;
  });
  mint::hook_set<float> none(m.sites());
  const auto plain = logits_of(m, none);
  CHECK(logits_of(m, hooks) == plain);  // reading changes nothing
  CHECK(calls == 1);
  CHECK(seen == std::vector<mint::index>{2, 8, 4, 4});
  CHECK(hooks.wants(m.sites().at("blocks.1.attn.hook_z")));
  CHECK_FALSE(hooks.wants(m.sites().at("blocks.0.attn.hook_z")));
  CHECK_FALSE(mint::hook_set<float>().wants(0));
}

TEST_CASE("overwriting a site changes what comes after it, and only that") {
  auto m = small_model();
  mint::hook_set<float> none(m.sites());
  const auto plain = logits_of(m, none);
  // Zero-ablating the last MLP output moves the logits.
  mint::hook_set<float> ablate(m.sites());
  ablate.add("blocks.1.hook_mlp_out", [](mint::hook_call<float>& c) { mint::as_matrix(c.activation).setZero(); },
             {.needs = mint::access::write});
  const auto ablated = logits_of(m, ablate);
  CHECK((ablated - plain).norm() > 1e-3f);
  // Overwriting a site with its own value is the identity.
  auto cached = mint::run_with_cache(m, tokens, {"blocks.0.hook_resid_mid"});
  mint::hook_set<float> same(m.sites());
  same.add("blocks.0.hook_resid_mid", [&](mint::hook_call<float>& c) {
    mint::copy(cached.cache["blocks.0.hook_resid_mid"], c.activation);
  }, {.needs = mint::access::write});
  CHECK((logits_of(m, same) - plain).norm() == 0.0f);
}

TEST_CASE("adding a direction at the last residual moves the logits by its unembedding") {
  // With layer norm folded off (none here), adding v to the final residual adds v W_U to every logit row.
  mint::toy::transformer<float> m({.vocab = 7, .context = 6, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4,
                                   .layer_norm = false});
  m.initialize(5);
  const auto t = mint::token_batch::from_rows({{1, 2, 3}});
  mint::hook_set<float> none(m.sites());
  const mint::matrixf before = mint::to_matrix(m.forward(t, none));
  mint::vectorf v = mint::vectorf::LinSpaced(8, -1, 1);
  mint::hook_set<float> steer(m.sites());
  steer.add("blocks.0.hook_resid_post", [&](mint::hook_call<float>& c) {
    mint::as_matrix(c.activation).rowwise() += v.transpose();
  }, {.needs = mint::access::add});
  const mint::matrixf after = mint::to_matrix(m.forward(t, steer));
  const mint::matrixf expected_shift = (v.transpose() * mint::as_matrix(m.parameters()["unembed.W_U"])).replicate(3, 1);
  // float32 products of unit-scale values: 1e-5 absolute.
  CHECK((after - before - expected_shift).cwiseAbs().maxCoeff() < 1e-5f);
}

TEST_CASE("filters hand the hook one head at some positions only") {
  auto m = small_model();
  mint::hook_set<float> hooks(m.sites());
  std::vector<mint::index> seen;
  mint::index first_position = -1;
  int first_head = -1;
  hooks.add("blocks.0.attn.hook_z", [&](mint::hook_call<float>& c) {
    seen.assign(c.activation.extents().begin(), c.activation.extents().end());
    first_position = c.first_position;
    first_head = c.first_head;
    mint::fill(c.activation, 0.0f);  // positions 5..7 of head 3 only
  }, {.needs = mint::access::write, .only = {.position_begin = 5, .position_end = 8, .head_begin = 3, .head_end = 4}});
  auto check = mint::run_with_cache(m, tokens, {"blocks.0.attn.hook_z"});
  mint::activation_cache<float> after(m.sites(), {"blocks.0.attn.hook_z"});
  after.reserve(2, 8);
  after.attach(hooks);
  m.forward(tokens, hooks);
  CHECK(seen == std::vector<mint::index>{2, 3, 1, 4});
  CHECK(first_position == 5);
  CHECK(first_head == 3);
  const auto z = after["blocks.0.attn.hook_z"], z0 = check.cache["blocks.0.attn.hook_z"];
  int changed_outside = 0, zero_inside = 0;
  for (mint::index b = 0; b < 2; ++b)
    for (mint::index t = 0; t < 8; ++t)
      for (mint::index h = 0; h < 4; ++h)
        for (mint::index k = 0; k < 4; ++k) {
          const bool inside = t >= 5 && t < 8 && h == 3;
          if (inside) zero_inside += z(b, t, h, k) == 0.0f;
          else changed_outside += z(b, t, h, k) != z0(b, t, h, k);
        }
  CHECK(zero_inside == 2 * 3 * 4);
  CHECK(changed_outside == 0);
}

TEST_CASE("a hook can stop the pass; later sites are not reached") {
  auto m = small_model();
  mint::hook_set<float> hooks(m.sites());
  bool reached_later = false;
  hooks.add("blocks.0.hook_resid_post", [](mint::hook_call<float>& c) { c.stop(); });
  hooks.add("blocks.1.hook_resid_post", [&](mint::hook_call<float>&) { reached_later = true; });
  CHECK(m.forward(tokens, hooks).empty());
  CHECK_FALSE(reached_later);
  // And caching up to layer 0 stops there, with the cache filled.
  auto run = mint::run_with_cache(m, tokens, {"blocks.0.hook_resid_post"}, true);
  CHECK(run.logits.size() == 0);
  CHECK(run.cache.filled("blocks.0.hook_resid_post"));
}

TEST_CASE("a wrong site name is refused with the nearest valid names") {
  auto m = small_model();
  mint::hook_set<float> hooks(m.sites());
  CHECK_THROWS_WITH_AS(hooks.add("blocks.1.attn.hook_zz", [](mint::hook_call<float>&) {}),
                       doctest::Contains("'blocks.1.attn.hook_zz' is not a site of this runtime; needs one of its sites; "
                                         "nearest: 'blocks.1.attn.hook_z'"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(hooks.add("blocks.0.hook_resid_pre", [](mint::hook_call<float>&) {}, {.only = {.head_begin = 1}}),
                       doctest::Contains("needs a site with a head axis"), mint::argument_error);
  mint::hook_set<float> unbound;
  CHECK_THROWS_AS(unbound.add("hook_embed", [](mint::hook_call<float>&) {}), mint::argument_error);
}

TEST_CASE("capabilities: a hook that needs what a site does not allow is refused") {
  mint::site_table table;
  table.add({"read_only", 0, mint::site_role::resid_post, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model},
             {0, 0, 4}, mint::access::read});
  table.add({"add_only", 0, mint::site_role::resid_post, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model},
             {0, 0, 4}, mint::access::add});
  mint::hook_set<float> hooks(table);
  hooks.add("read_only", [](mint::hook_call<float>&) {});
  CHECK_THROWS_WITH_AS(hooks.add("read_only", [](mint::hook_call<float>&) {}, {.needs = mint::access::write}),
                       "mint::hook_set::add: site 'read_only' allows read; needs write for this hook",
                       mint::argument_error);
  CHECK_THROWS_AS(hooks.add("add_only", [](mint::hook_call<float>&) {}), mint::argument_error);
  hooks.add("add_only", [](mint::hook_call<float>&) {}, {.needs = mint::access::add});
  mint::hook_set<float> grads(table, mint::hook_phase::backward);
  CHECK_THROWS_WITH_AS(grads.add("read_only", [](mint::hook_call<float>&) {}), doctest::Contains("needs read|gradient"),
                       mint::argument_error);
  CHECK(mint::to_string(mint::full_access) == "read|write|add|gradient");
}
