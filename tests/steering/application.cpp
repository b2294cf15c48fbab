// Steering vectors and their application: arithmetic over the union of sites; adding a vector
// equals resuming the model from the shifted residual; every position policy changes exactly
// its positions; whole, chunked and KV-cached runs agree; clamping and directional ablation
// leave the projection they promise; ablation at every residual site equals orthogonalising
// the writing weights; bad input is refused by name.
#include "mint/steering/application.hpp"
#include "mint/steering/vector.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mint/core/random.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/generation.hpp"
#include "mint/toy/orthogonalize.hpp"
#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> steer_model(std::uint64_t seed = 5) {
  mint::toy::transformer<float> m({.vocab = 16, .context = 32, .d_model = 16, .layers = 3, .heads = 2, .d_head = 8,
                                   .d_mlp = 32});
  m.initialize(seed);
  return m;
}

std::vector<float> steer_direction(std::uint64_t seed, mint::index d = 16) {
  mint::rng r(seed);
  std::vector<float> v(static_cast<std::size_t>(d));
  for (auto& x : v) x = float(r.normal());
  return v;
}

mint::token_batch steer_tokens() { return mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3, 9}, {3, 5, 6, 9, 2}}); }

// Largest |a - b| over two logits views of one shape.
double steer_max_diff(const mint::tensor_view<const float>& a, const mint::tensor_view<const float>& b) {
  REQUIRE(mint::same_shape(a, b));
  double worst = 0;
  mint::detail::for_each_index(a.extents(), [&](const auto& i) {
    worst = std::max(worst, std::abs(double(mint::detail::element_at(a, i)) - double(mint::detail::element_at(b, i))));
  });
  return worst;
}

}  // namespace

TEST_CASE("steering vectors: union arithmetic, mean, cosine, projection, normalisation, norm matching") {
  const mint::steering_vector<float> a{{"x", {1, 2, 0}}, {"y", {0, 0, 3}}};
  const mint::steering_vector<float> b{{"x", {1, 0, 0}}, {"z", {2, 2, 2}}};
  const auto sum = a + b;
  REQUIRE(sum.size() == 3);  // the union: a site one lacks is the zero direction there
  CHECK(sum["x"] == std::vector<float>{2, 2, 0});
  CHECK(sum["y"] == std::vector<float>{0, 0, 3});
  CHECK(sum["z"] == std::vector<float>{2, 2, 2});
  CHECK((a - b)["z"] == std::vector<float>{-2, -2, -2});
  CHECK((2.0 * a)["x"] == std::vector<float>{2, 4, 0});
  const auto m = mint::mean(std::vector<mint::steering_vector<float>>{a, b});
  CHECK(m["x"] == std::vector<float>{1, 1, 0});
  CHECK(m["z"] == std::vector<float>{1, 1, 1});  // sum over the union, divided by the count
  const auto cos = mint::cosine_similarity(a, b);
  REQUIRE(cos.size() == 1);  // only sites both have
  CHECK(cos.at("x") == doctest::Approx(1 / std::sqrt(5.0)).epsilon(1e-12));
  const auto off = mint::project_off(a, b);
  CHECK(off["x"] == std::vector<float>{0, 2, 0});
  CHECK(off["y"] == a["y"]);  // b has no direction at y
  const auto unit = mint::normalized(a);
  CHECK(mint::norms(unit).at("x") == doctest::Approx(1).epsilon(1e-7));
  const auto matched = mint::match_norm(a, {{"x", 10.0}, {"y", 4.0}}, 0.5);
  CHECK(mint::norms(matched).at("x") == doctest::Approx(5).epsilon(1e-6));
  CHECK(mint::norms(matched).at("y") == doctest::Approx(2).epsilon(1e-6));

  const mint::steering_vector<float> short_x{{"x", {1, 2}}};
  // Typical norms from a run and from a cache of the same tokens agree.
  auto model = steer_model();
  const auto tokens = steer_tokens();
  const std::vector<std::string> sites{"blocks.0.hook_resid_post", "blocks.2.hook_resid_mid"};
  const auto from_run = mint::typical_norms(model, tokens, sites, 1);
  const auto cached = mint::run_with_cache(model, tokens, sites);
  const auto from_cache = mint::typical_norms(cached.cache, sites);
  for (const auto& s : sites) {
    CHECK(from_run.at(s) > 0);
    CHECK(from_run.at(s) == doctest::Approx(from_cache.at(s)).epsilon(1e-6));  // float32 activations, summed in double
  }

  CHECK_THROWS_AS(a + short_x, mint::shape_error);
  CHECK_THROWS_AS(mint::normalized(mint::steering_vector<float>{{"x", {0, 0}}}), mint::numeric_error);
  CHECK_THROWS_AS(mint::match_norm(a, {{"x", 1.0}}), mint::argument_error);  // no norm for y
  CHECK_THROWS_AS(a["w"], mint::argument_error);
}

TEST_CASE("add_steering at a residual site equals resuming the model from the shifted residual") {
  auto model = steer_model();
  const auto tokens = steer_tokens();
  const auto v = steer_direction(1);
  const double scale = 3.5;
  mint::hook_set<float> hooks(model.sites());
  mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.1.hook_resid_pre", v}}, scale);
  const auto steered = mint::array<float>::copy_of(model.forward(tokens, hooks));

  // The independent route: cache the residual, shift every valid position, resume at block 1.
  auto run = mint::run_with_cache(model, tokens, {"blocks.1.hook_resid_pre"});
  mint::array<float> resid = mint::array<float>::copy_of(run.cache["blocks.1.hook_resid_pre"]);
  for (mint::index b = 0; b < tokens.batch(); ++b)
    for (mint::index t = 0; t < tokens.length(b); ++t)
      for (mint::index k = 0; k < 16; ++k) resid(b, t, k) += float(scale * v[std::size_t(k)]);
  mint::hook_set<float> none;
  const auto resumed = model.forward_from(1, resid.view(), tokens, none);
  // float32 logits of order 1, one extra rounding of the sum: 1e-5.
  for (mint::index b = 0; b < tokens.batch(); ++b)
    for (mint::index t = 0; t < tokens.length(b); ++t)
      for (mint::index j = 0; j < 16; ++j) CHECK(steered(b, t, j) == doctest::Approx(resumed(b, t, j)).epsilon(1e-5));
}

TEST_CASE("position policies change exactly their positions, and padding never") {
  auto model = steer_model();
  const auto tokens = steer_tokens();  // lengths 7 and 5
  const auto v = steer_direction(2);
  const std::string site = "blocks.0.hook_resid_post";
  const auto plain = mint::run_with_cache(model, tokens, {site});
  const auto moved = [&](const mint::position_policy& at) {
    mint::activation_cache<float> cache(model.sites(), {site});
    cache.reserve(tokens.batch(), tokens.positions());
    mint::hook_set<float> hooks(model.sites());
    mint::add_steering(hooks, mint::steering_vector<float>{{site, v}}, 2.0, at);
    cache.attach(hooks);  // after the steering hook: sees the steered activation
    model.forward(tokens, hooks);
    // Per (row, position): 1 when the activation moved by 2 v, 0 when it did not move.
    std::vector<std::vector<int>> out(2, std::vector<int>(7, -1));
    for (mint::index b = 0; b < 2; ++b)
      for (mint::index t = 0; t < tokens.length(b); ++t) {
        double still = 0, shifted = 0;
        for (mint::index k = 0; k < 16; ++k) {
          const double delta = double(cache[site](b, t, k)) - double(plain.cache[site](b, t, k));
          still = std::max(still, std::abs(delta));
          shifted = std::max(shifted, std::abs(delta - 2.0 * v[std::size_t(k)]));
        }
        out[std::size_t(b)][std::size_t(t)] = still == 0 ? 0 : shifted < 1e-5 ? 1 : -2;
      }
    return out;
  };
  using rows = std::vector<std::vector<int>>;
  CHECK(moved({}) == rows{{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, -1, -1}});
  CHECK(moved({.positions = mint::steer_positions::prompt, .prompt_lengths = {3, 4}}) ==
        rows{{1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 1, 0, -1, -1}});
  CHECK(moved({.positions = mint::steer_positions::generated, .prompt_lengths = {3}}) ==
        rows{{0, 0, 0, 1, 1, 1, 1}, {0, 0, 0, 1, 1, -1, -1}});
  CHECK(moved({.positions = mint::steer_positions::given, .given = {6, 0, 4}}) ==
        rows{{1, 0, 0, 0, 1, 0, 1}, {1, 0, 0, 0, 1, -1, -1}});
}

TEST_CASE("steering gives the same logits whole, in chunks and token by token, and the same generations") {
  auto model = steer_model(8);
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3, 9, 11}, {3, 5, 6, 9, 2, 2, 8, 1}});
  const mint::steering_vector<float> v{{"blocks.1.hook_resid_pre", steer_direction(3)},
                                       {"blocks.2.hook_resid_mid", steer_direction(4)}};
  for (const mint::position_policy& at :
       {mint::position_policy{}, mint::position_policy{.positions = mint::steer_positions::generated, .prompt_lengths = {3, 5}},
        mint::position_policy{.positions = mint::steer_positions::given, .given = {2, 6}}}) {
    mint::hook_set<float> hooks(model.sites());
    mint::add_steering(hooks, v, 4.0, at);
    const auto whole = mint::array<float>::copy_of(model.forward(tokens, hooks));
    model.reset();
    for (const auto& [begin, end] : std::vector<std::pair<mint::index, mint::index>>{{0, 3}, {3, 4}, {4, 7}, {7, 8}}) {
      const auto part = model.forward_chunk(tokens.slice(begin, end), hooks);
      // float32, attention over cached keys sums in another order: 1e-5 absolute on logits of order 1.
      CHECK(steer_max_diff(part, whole.view().narrow(1, begin, end)) < 1e-5);
    }
  }
  // generate(): KV cache and recomputation steer the same positions, so they pick the same tokens.
  const auto prompts = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6}});
  for (const auto policy : {mint::steer_positions::all, mint::steer_positions::generated, mint::steer_positions::prompt}) {
    mint::hook_set<float> hooks(model.sites());
    mint::add_steering(hooks, v, 6.0, {.positions = policy, .prompt_lengths = {4, 3}});
    mint::generation_options o{.max_new_tokens = 10};
    const auto cached = mint::generate(model, prompts, o, hooks);
    o.use_incremental = false;
    const auto recomputed = mint::generate(model, prompts, o, hooks);
    for (mint::index b = 0; b < 2; ++b)
      for (mint::index t = 0; t < cached.tokens.length(b); ++t) CHECK(cached.tokens(b, t) == recomputed.tokens(b, t));
  }
  // And steering at generated positions changes the generation (the vector is strong).
  mint::hook_set<float> strong(model.sites());
  mint::add_steering(strong, v, 40.0, {.positions = mint::steer_positions::generated, .prompt_lengths = {4, 3}});
  const auto steered = mint::generate(model, prompts, {.max_new_tokens = 10}, strong);
  const auto plain = mint::generate(model, prompts, {.max_new_tokens = 10});
  bool differs = false;
  for (mint::index t = 4; t < 14; ++t) differs = differs || steered.tokens(0, t) != plain.tokens(0, t);
  CHECK(differs);
}

TEST_CASE("projection clamp and directional ablation leave the projection they promise") {
  auto model = steer_model();
  const auto tokens = steer_tokens();
  const auto r = steer_direction(5);
  const double norm = std::sqrt(mint::detail::direction_dot(r, r));
  const std::string site = "blocks.1.hook_resid_mid";
  for (const bool ablate : {false, true}) {
    mint::activation_cache<float> cache(model.sites(), {site});
    cache.reserve(tokens.batch(), tokens.positions());
    mint::hook_set<float> hooks(model.sites());
    if (ablate) mint::add_directional_ablation(hooks, mint::steering_vector<float>{{site, r}});
    else mint::add_projection_clamp(hooks, mint::steering_vector<float>{{site, r}}, 2.5);
    cache.attach(hooks);
    model.forward(tokens, hooks);
    for (mint::index b = 0; b < tokens.batch(); ++b)
      for (mint::index t = 0; t < tokens.length(b); ++t) {
        double along = 0;
        for (mint::index k = 0; k < 16; ++k) along += double(cache[site](b, t, k)) * r[std::size_t(k)] / norm;
        // float32 activations of norm about 4: 1e-5.
        CHECK(along == doctest::Approx(ablate ? 0.0 : 2.5).epsilon(1e-5).scale(1));
      }
  }
}

TEST_CASE("directional ablation at every residual site equals orthogonalising the writing weights") {
  auto model = steer_model(11);
  const auto tokens = steer_tokens();
  const auto r = steer_direction(6);
  const auto sites = mint::residual_stream_sites(model.sites());
  REQUIRE(sites.size() == 9);  // resid_pre, resid_mid, resid_post of three blocks
  mint::hook_set<float> hooks(model.sites());
  mint::add_directional_ablation(hooks, mint::at_sites(r, sites));
  const auto ablated = mint::array<float>::copy_of(model.forward(tokens, hooks));
  mint::hook_set<float> none;
  const auto before = mint::array<float>::copy_of(model.forward(tokens, none));
  mint::toy::orthogonalize_writes(model, r);
  const auto orthogonal = mint::array<float>::copy_of(model.forward(tokens, none));
  // The bound: 1e-5 in float32 (logits of order 1; the two routes round differently).
  double worst = 0, change = 0;
  for (mint::index b = 0; b < tokens.batch(); ++b)
    for (mint::index t = 0; t < tokens.length(b); ++t)
      for (mint::index j = 0; j < 16; ++j) {
        worst = std::max(worst, std::abs(double(ablated(b, t, j)) - double(orthogonal(b, t, j))));
        change = std::max(change, std::abs(double(ablated(b, t, j)) - double(before(b, t, j))));
      }
  CHECK(worst < 1e-5);
  CHECK(change > 1e-2);  // the ablation did something
}

TEST_CASE("steering refuses bad input by name") {
  auto model = steer_model();
  mint::hook_set<float> hooks(model.sites());
  const auto v = steer_direction(1);
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.9.hook_resid_pre", v}}), mint::argument_error);
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", {1, 2, 3}}}),
                  mint::shape_error);
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", v}}, 1.0,
                                     {.positions = mint::steer_positions::prompt}),
                  mint::argument_error);  // no prompt lengths
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", v}}, NAN),
                  mint::argument_error);
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{}), mint::argument_error);
  CHECK_THROWS_AS(mint::add_projection_clamp(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", v}}, INFINITY),
                  mint::argument_error);
  CHECK_THROWS_AS(mint::toy::orthogonalize_writes(model, std::vector<float>(16, 0.0f)), mint::argument_error);
  CHECK_THROWS_AS(mint::toy::orthogonalize_writes(model, std::vector<float>(15, 1.0f)), mint::shape_error);
  // Messages name the function and what was needed.
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const mint::error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const auto wrong_length = message([&] { mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", {1, 2}}}); });
  CHECK(wrong_length.find("mint::add_steering") != std::string::npos);
  CHECK(wrong_length.find("16 features") != std::string::npos);
  const auto zero = message([&] {
    mint::add_directional_ablation(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", std::vector<float>(16, 0.0f)}});
  });
  CHECK(zero.find("mint::add_directional_ablation") != std::string::npos);
  // A scale that overflows float is refused, though finite as a double.
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", v}}, 1e39),
                  mint::argument_error);
  // A site with no features after [batch, pos] (a layer norm's scale) cannot be steered.
  CHECK_THROWS_AS(mint::add_steering(hooks, mint::steering_vector<float>{{"blocks.0.ln1.hook_scale", {1}}}), mint::argument_error);
  // prompt_lengths of another count than the run's rows: refused when the hook is called.
  mint::hook_set<float> three(model.sites());
  mint::add_steering(three, mint::steering_vector<float>{{"blocks.0.hook_resid_pre", v}}, 1.0,
                     mint::prompt_positions(std::vector<mint::index>{1, 2, 3}));
  CHECK_THROWS_AS(model.forward(steer_tokens(), three), mint::argument_error);
}

TEST_CASE("steering hooks leave padding alone, in a chunk that starts mid-sequence") {
  mint::site_table sites;
  const mint::site_id id = sites.add({"resid", 0, mint::site_role::resid_pre, 0, 0,
                                      {mint::axis::batch, mint::axis::pos, mint::axis::d_model}, {0, 0, 2}});
  mint::hook_set<float> hooks(sites);
  mint::add_steering(hooks, mint::steering_vector<float>{{"resid", {1, 10}}}, 1.0);
  // Rows of lengths 4 and 2; the chunk covers positions [1, 4): row 1 has only position 1 there.
  std::vector<float> buffer(2 * 3 * 2, 0.0f);
  const std::vector<mint::index> lengths{4, 2};
  hooks.call(id, mint::tensor_view<float>(buffer.data(), {2, 3, 2}), lengths, {.first_position = 1});
  CHECK(buffer == std::vector<float>{1, 10, 1, 10, 1, 10,  // row 0: positions 1, 2, 3
                                     1, 10, 0, 0, 0, 0});  // row 1: position 1, then padding
}
