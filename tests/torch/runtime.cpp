// A libtorch transformer through hook points against the toy transformer with the same weights:
// logits, every cached activation and every site's gradient; hooks that write, stop and change
// gradients; the KV cache. Tolerances: 1e-5 in float32 (torch's einsum and mint's kernels sum in
// other orders; layer-norm statistics are double in the toy, float in torch) and 1e-12 in
// float64, each relative to the largest magnitude compared (at least 1).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <mint/model.hpp>

#include "common.hpp"

namespace {

using torch_test::max_abs;
using torch_test::max_difference;

std::vector<mint::toy::transformer_config> twin_configs() {
  return {
      {.vocab = 11, .context = 8, .d_model = 12, .layers = 2, .heads = 3, .d_head = 4, .d_mlp = 16},
      {.vocab = 9, .context = 7, .d_model = 8, .layers = 2, .heads = 4, .kv_heads = 2, .d_head = 3, .d_mlp = 0,
       .layer_norm = false},
      {.vocab = 10, .context = 6, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4, .d_mlp = 12,
       .activation = mint::toy::activation_fn::gelu_tanh},
      {.vocab = 10, .context = 6, .d_model = 8, .layers = 1, .heads = 2, .d_head = 4, .d_mlp = 12,
       .activation = mint::toy::activation_fn::relu},
      {.vocab = 10, .context = 6, .d_model = 8, .layers = 2, .heads = 4, .kv_heads = 2, .d_head = 2, .d_mlp = 12,
       .split_qkv_input = true},
  };
}

template <class T>
constexpr double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
// Gradients: the 1e-4 relative in float32, 1e-9 in float64.
template <class T>
constexpr double gradient_tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-9;

std::vector<std::string> all_sites(const mint::site_table& sites) {
  std::vector<std::string> out;
  for (const auto& s : sites) out.push_back(s.name);
  return out;
}

template <class T>
void check_twins(const mint::toy::transformer_config& config) {
  mint::toy::transformer<T> toy(config);
  toy.initialize(17);
  auto twin = torch_test::twin_of(toy);
  // The site tables match name by name, with the same axes.
  REQUIRE(twin.sites().size() == toy.sites().size());
  for (std::size_t s = 0; s < toy.sites().size(); ++s) {
    CHECK(twin.sites()[mint::site_id(s)].name == toy.sites()[mint::site_id(s)].name);
    CHECK((twin.sites()[mint::site_id(s)].axes == toy.sites()[mint::site_id(s)].axes));
  }
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {5, 4, 3}, {0, 7, 7, 2, 1}});
  const auto names = all_sites(toy.sites());
  auto a = mint::run_with_cache(toy, tokens, names);
  auto b = mint::run_with_cache(twin, tokens, names);
  const double scale = std::max(1.0, max_abs(a.logits));
  CHECK(max_difference(a.logits, b.logits) <= tolerance<T> * scale);
  for (const auto& name : names) {
    CAPTURE(name);
    const double s = std::max(1.0, max_abs(a.cache[name]));
    CHECK(max_difference(a.cache[name], b.cache[name]) <= tolerance<T> * s);
  }

  // Gradients of the cross-entropy at every site.
  const auto gradients = [&](auto& model, mint::tensor_view<const T> logits) {
    const auto dlogits = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens).second;
    mint::hook_set<T> grads(model.sites(), mint::hook_phase::backward);
    mint::activation_cache<T> cache(model.sites(), names);
    cache.reserve(tokens.batch(), tokens.positions());
    cache.attach(grads);
    model.backward(dlogits.view(), grads);
    return cache;
  };
  const auto ga = gradients(toy, toy.forward(tokens));
  const auto gb = gradients(twin, twin.forward(tokens));
  for (const auto& name : names) {
    CAPTURE(name);
    const double s = max_abs(ga[name]);
    CHECK(s > 0);  // every site is on a path to the loss
    CHECK(max_difference(ga[name], gb[name]) <= gradient_tolerance<T> * s);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("a libtorch transformer gives the toy's logits, activations and gradients at every site", T, float, double) {
  for (const auto& config : twin_configs()) {
    CAPTURE(config.d_mlp);
    CAPTURE(config.kv_heads);
    CAPTURE(config.split_qkv_input);
    check_twins<T>(config);
  }
}

TEST_CASE("hooks that write at the libtorch model's points: the toy's logits, and no parameter changes") {
  mint::toy::transformer<float> toy(twin_configs()[0]);
  toy.initialize(3);
  auto twin = torch_test::twin_of(toy);
  const at::Tensor W_pos = twin.model().W_pos.clone();
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {5, 4, 3}});
  const auto edit = [](auto& hooks) {
    hooks.add("hook_pos_embed", [](auto& c) { mint::fill(c.activation, 0.5f); }, {.needs = mint::access::write});
    hooks.add("blocks.0.attn.hook_pattern", [](auto& c) { mint::fill(c.activation, 0.25f); },
              {.needs = mint::access::write, .only = {.head_begin = 1, .head_end = 2}});
    hooks.add("blocks.1.hook_mlp_in", [](auto& c) { mint::fill(c.activation, 0.0f); },
              {.needs = mint::access::write, .only = {.position_begin = 2, .position_end = 4}});
    hooks.add("blocks.1.hook_resid_mid", [](auto& c) { c.activation.data()[0] += 3.0f; }, {.needs = mint::access::add});
  };
  mint::hook_set<float> ha(toy.sites()), hb(twin.sites());
  edit(ha);
  edit(hb);
  const mint::array<float> expected = mint::array<float>::copy_of(toy.forward(tokens, ha));
  for (bool grad_mode : {true, false}) {
    CAPTURE(grad_mode);
    torch::autograd::AutoGradMode mode(grad_mode);
    CHECK(max_difference(expected, twin.forward(tokens, hb)) <= 1e-5 * std::max(1.0, max_abs(expected)));
  }
  // The positional embedding site is a view of W_pos: the writing hook got a copy.
  CHECK(torch::equal(W_pos, twin.model().W_pos));
  // mlp_in is patchable alone: resid_mid (cached after the hooks above) is the toy's.
  const auto resid_mid = [&](auto& model, mint::hook_set<float>& hooks) {
    mint::activation_cache<float> cache(model.sites(), {"blocks.1.hook_resid_mid"});
    cache.reserve(tokens.batch(), tokens.positions());
    cache.attach(hooks);
    model.forward(tokens, hooks);
    return mint::array<float>::copy_of(cache["blocks.1.hook_resid_mid"]);
  };
  const auto ra = resid_mid(toy, ha);
  CHECK(max_difference(ra, resid_mid(twin, hb)) <= 1e-5 * std::max(1.0, max_abs(ra)));
}

TEST_CASE("a hook that stops the libtorch pass, and grad hooks that run in reverse and flow upstream") {
  mint::toy::transformer<double> toy(twin_configs()[0]);
  toy.initialize(5);
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {5, 4, 3}});
  mint::hook_set<double> stop(twin.sites());
  int after = 0;
  stop.add("blocks.0.hook_resid_post", [](auto& c) { c.stop(); });
  stop.add("blocks.1.hook_resid_pre", [&](auto&) { ++after; });
  CHECK(twin.forward(tokens, stop).empty());
  CHECK(after == 0);
  CHECK_THROWS_WITH_AS(twin.backward(mint::array<double>({2, 5, 11}).view(), stop), doctest::Contains("hook_phase::backward"),
                       mint::argument_error);

  const auto logits = twin.forward(tokens);
  const auto dlogits = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens).second;
  const auto embed_gradient = [&](double factor, std::vector<int>* layers) {
    mint::hook_set<double> grads(twin.sites(), mint::hook_phase::backward);
    if (layers)
      for (const auto& s : twin.sites()) grads.add(s.name, [layers](auto& c) { layers->push_back(c.site.layer); });
    grads.add("blocks.1.hook_resid_pre", [factor](auto& c) {
      mint::detail::for_each_index(c.activation.extents(), [&](const auto& i) { mint::detail::element_at(c.activation, i) *= factor; });
    }, {.needs = mint::access::write});
    mint::activation_cache<double> cache(twin.sites(), {"hook_embed"});
    cache.reserve(tokens.batch(), tokens.positions());
    cache.attach(grads);
    twin.backward(dlogits.view(), grads);
    return mint::array<double>::copy_of(cache["hook_embed"]);
  };
  std::vector<int> layers;
  const auto once = embed_gradient(1.0, &layers);
  REQUIRE(layers.size() == twin.sites().size());  // each site once
  auto middle_begin = std::find_if(layers.begin(), layers.end(), [](int l) { return l >= 0; });
  auto middle_end = std::find_if(middle_begin, layers.end(), [](int l) { return l < 0; });
  CHECK(std::is_sorted(middle_begin, middle_end, std::greater<>()));  // later layers first
  CHECK(layers.end() - middle_end == 2);                              // the embeddings last
  const auto twice = embed_gradient(2.0, nullptr);
  CHECK(max_abs(once) > 0);
  // Every path to the embeddings crosses blocks.1.hook_resid_pre (double: rounding only).
  mint::array<double> doubled = mint::array<double>::copy_of(once.view());
  for (mint::index i = 0; i < doubled.size(); ++i) doubled.data()[i] *= 2;
  CHECK(max_difference(twice, doubled) <= 1e-12 * max_abs(once));
  // Two backward passes after one forward give the same gradients (the graph is kept).
  CHECK(max_difference(embed_gradient(1.0, nullptr), once) == 0);
}

TEST_CASE("the libtorch model's KV cache: chunks give the full forward's logits and the same generated tokens") {
  mint::toy::transformer<float> toy(twin_configs()[1]);
  toy.initialize(9);
  auto twin = torch_test::twin_of(toy);
  static_assert(mint::incremental_runtime<decltype(twin)>);
  static_assert(mint::differentiable_runtime<decltype(twin)>);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5, 6}, {5, 4, 3}});
  const mint::array<float> whole = mint::array<float>::copy_of(twin.forward(tokens));
  twin.reset();
  for (auto [begin, end] : {std::pair{0, 2}, {2, 3}, {3, 6}}) {
    const auto chunk = tokens.slice(begin, end);
    const auto logits = twin.forward_chunk(chunk);
    CHECK(twin.cached_positions() == end);
    for (mint::index b = 0; b < 2; ++b)
      for (mint::index t = begin; t < std::min<mint::index>(end, tokens.lengths()[std::size_t(b)]); ++t)
        for (mint::index v = 0; v < 9; ++v) CHECK(std::abs(logits(b, t - begin, v) - whole(b, t, v)) <= 1e-5f);
  }
  // The chunk has no graph: backward names what it needs.
  CHECK_THROWS_WITH_AS(twin.backward(mint::array<float>({2, 3, 9}).view(), *std::make_unique<mint::hook_set<float>>(
                                                                              twin.sites(), mint::hook_phase::backward)),
                       doctest::Contains("ran without a graph"), mint::argument_error);
  const auto prompts = mint::token_batch::from_rows({{1, 2}, {3}});
  const auto cached = mint::generate(twin, prompts, {.max_new_tokens = 4});
  const auto recomputed = mint::generate(twin, prompts, {.max_new_tokens = 4, .use_incremental = false});
  const auto on_toy = mint::generate(toy, prompts, {.max_new_tokens = 4});
  const auto same = [](const mint::token_batch& x, const mint::token_batch& y) {
    if (x.batch() != y.batch() || x.positions() != y.positions() || !std::ranges::equal(x.lengths(), y.lengths())) return false;
    for (mint::index b = 0; b < x.batch(); ++b)
      for (mint::index t = 0; t < x.positions(); ++t)
        if (x(b, t) != y(b, t)) return false;
    return true;
  };
  CHECK(same(cached.tokens, recomputed.tokens));
  CHECK(same(cached.tokens, on_toy.tokens));
}

TEST_CASE("the libtorch runtime names what is wrong") {
  mint::toy::transformer<float> toy(twin_configs()[0]);
  toy.initialize(1);
  auto twin = torch_test::twin_of(toy);
  mint::hook_set<float> foreign(toy.sites());
  CHECK_THROWS_WITH_AS(twin.forward(mint::token_batch::from_rows({{1, 2}}), foreign), doctest::Contains("another runtime's sites"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(twin.forward(mint::token_batch::from_rows({{1, 99}})), doctest::Contains("mint::torch_runtime::forward"),
                       mint::argument_error);
  CHECK_THROWS_WITH_AS(twin.backward(mint::array<float>({1, 2, 11}).view(), *std::make_unique<mint::hook_set<float>>(
                                                                              twin.sites(), mint::hook_phase::backward)),
                       doctest::Contains("has not run"), mint::argument_error);
  {
    torch::NoGradGuard no_grad;
    twin.forward(mint::token_batch::from_rows({{1, 2}}));
  }
  mint::hook_set<float> grads(twin.sites(), mint::hook_phase::backward);
  grads.add("hook_embed", [](auto&) {});
  CHECK_THROWS_WITH_AS(twin.backward(mint::array<float>({1, 2, 11}).view(), grads), doctest::Contains("grad mode"),
                       mint::argument_error);
  // A module whose point gets a tensor of another shape than it declared.
  mint::torch_hook_points points;
  points.add({"x", -1, mint::site_role::other, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model}, {0, 0, 4}});
  CHECK(torch::equal(points.point("x", torch::ones({2, 3, 5})), torch::ones({2, 3, 5})));  // outside a pass: x itself
  CHECK_FALSE(points.active("x"));
}

TEST_CASE("active(): a point is read when a hook listens there or a graph is recorded") {
  mint::toy::transformer<float> toy(twin_configs()[1]);
  toy.initialize(2);
  auto twin = torch_test::twin_of(toy);
  auto& points = twin.model().hook_points();
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3}});
  std::vector<std::pair<bool, bool>> seen;  // (active at hook_z of block 0, at block 1) seen from hook_embed
  mint::hook_set<float> hooks(twin.sites());
  hooks.add("hook_embed", [&](auto&) { seen.emplace_back(points.active("blocks.0.attn.hook_z"), points.active("blocks.1.attn.hook_z")); });
  hooks.add("blocks.0.attn.hook_z", [](auto&) {});
  {
    torch::NoGradGuard no_grad;
    twin.forward(tokens, hooks);
  }
  twin.forward(tokens, hooks);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair{true, false});  // no graph: only where a hook listens
  CHECK(seen[1] == std::pair{true, true});   // a graph: every point
}

namespace {

// An Elman RNN whose state is a site called once per step (point(site, h, t)).
struct StepRnnImpl : torch::nn::Module {
  StepRnnImpl() {
    torch::manual_seed(4);
    E = register_parameter("E", torch::randn({7, 5}, torch::kDouble));
    W = register_parameter("W", torch::randn({5, 5}, torch::kDouble) * 0.5);
    U = register_parameter("U", torch::randn({5, 7}, torch::kDouble));
    hooks_.add({"h", 0, mint::site_role::other, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model}, {0, 0, 5}});
  }
  mint::torch_hook_points& hook_points() { return hooks_; }
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor&) {
    auto h = torch::zeros({tokens.size(0), 1, 5}, torch::kDouble);
    std::vector<torch::Tensor> states;
    for (std::int64_t t = 0; t < tokens.size(1); ++t) {
      h = torch::tanh(torch::matmul(h, W) + E.index_select(0, tokens.select(1, t)).unsqueeze(1));
      h = hooks_.point("h", h, t);
      states.push_back(h);
    }
    return torch::matmul(torch::cat(states, 1), U);
  }
  torch::Tensor E, W, U;
  mint::torch_hook_points hooks_;
};
TORCH_MODULE(StepRnn);

}  // namespace

TEST_CASE("a state hooked once per step: cached at its positions, filtered by position, gradients in reverse time") {
  StepRnn rnn;
  mint::torch_runtime<StepRnnImpl, double> model(rnn.ptr());
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}, {5, 6}});
  const auto run = mint::run_with_cache(model, tokens, {"h"});
  // Step t's state is at position t; the logits are h_t U.
  const at::Tensor U = rnn->U.detach();
  for (mint::index t = 0; t < 4; ++t)
    for (mint::index v = 0; v < 7; ++v) {
      double expected = 0;
      for (mint::index j = 0; j < 5; ++j) expected += run.cache["h"](0, t, j) * U[j][v].item<double>();
      CHECK(run.logits(0, t, v) == doctest::Approx(expected).epsilon(1e-12));
    }
  // A filter for position 2 sees the third step only; zeroing h_2 there changes logits from position 2 on.
  mint::hook_set<double> hooks(model.sites());
  std::vector<mint::index> steps;
  hooks.add("h", [&](auto& c) { steps.push_back(c.first_position); mint::fill(c.activation, 0.0); },
            {.needs = mint::access::write, .only = {.position_begin = 2, .position_end = 3}});
  const auto patched = mint::array<double>::copy_of(model.forward(tokens, hooks));
  CHECK(steps == std::vector<mint::index>{2});
  CHECK(patched(0, 1, 0) == run.logits(0, 1, 0));
  CHECK(patched(0, 2, 0) == 0.0);
  CHECK(patched(0, 3, 0) != run.logits(0, 3, 0));
  // Backward calls the state once per step, the last first.
  model.forward(tokens);
  const auto dlogits = mint::value_and_gradient(mint::cross_entropy{}, mint::tensor_view<const double>(run.logits.view()), tokens).second;
  mint::hook_set<double> grads(model.sites(), mint::hook_phase::backward);
  std::vector<mint::index> order;
  grads.add("h", [&](auto& c) { order.push_back(c.first_position); });
  model.backward(dlogits.view(), grads);
  CHECK(order == std::vector<mint::index>{3, 2, 1, 0});
}

TEST_CASE("gradients after hooks that write where autograd saved the tensor: the toy's straight-through gradients") {
  // The softmax saves its output and the layer norm's sqrt its own: a hook that overwrote them in
  // place would change what backward reads. The runtime hands writing hooks a copy.
  mint::toy::transformer<double> toy(twin_configs()[0]);
  toy.initialize(8);
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4, 5}, {5, 4, 3}});
  const auto gradient_at_embed = [&](auto& model) {
    mint::hook_set<double> hooks(model.sites());
    hooks.add("blocks.1.attn.hook_pattern", [](auto& c) { mint::fill(c.activation, 0.2); },
              {.needs = mint::access::write, .only = {.head_begin = 0, .head_end = 1}});
    hooks.add("blocks.0.ln1.hook_scale", [](auto& c) { mint::fill(c.activation, 1.5); }, {.needs = mint::access::write});
    hooks.add("blocks.0.hook_mlp_out", [](auto& c) { c.activation.data()[3] += 2.0; }, {.needs = mint::access::add});
    const auto logits = model.forward(tokens, hooks);
    const auto dlogits = mint::value_and_gradient(mint::cross_entropy{}, logits, tokens).second;
    mint::hook_set<double> grads(model.sites(), mint::hook_phase::backward);
    mint::activation_cache<double> cache(model.sites(), {"hook_embed", "blocks.0.hook_resid_pre", "blocks.1.attn.hook_v"});
    cache.reserve(tokens.batch(), tokens.positions());
    cache.attach(grads);
    model.backward(dlogits.view(), grads);
    return cache;
  };
  const auto a = gradient_at_embed(toy);
  const auto b = gradient_at_embed(twin);
  for (const std::string site : {"hook_embed", "blocks.0.hook_resid_pre", "blocks.1.attn.hook_v"}) {
    CAPTURE(site);
    CHECK(max_abs(a[site]) > 0);
    CHECK(max_difference(a[site], b[site]) <= 1e-9 * max_abs(a[site]));
  }
}

namespace {

// A module that modifies a point's output in place (h += 1, then relu_), as C++ code often does.
struct InPlaceImpl : torch::nn::Module {
  InPlaceImpl() {
    E = register_parameter("E", torch::randn({6, 3}, torch::kDouble));
    U = register_parameter("U", torch::randn({3, 6}, torch::kDouble));
    hooks_.add({"h", -1, mint::site_role::other, 0, 0, {mint::axis::batch, mint::axis::pos, mint::axis::d_model}, {0, 0, 3}});
  }
  mint::torch_hook_points& hook_points() { return hooks_; }
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor&) {
    auto h = hooks_.point("h", E.index_select(0, tokens.reshape({-1})).view({tokens.size(0), tokens.size(1), 3}) * 2.0);
    h += 1.0;
    h.tanh_();
    return torch::matmul(h, U);
  }
  torch::Tensor E, U;
  mint::torch_hook_points hooks_;
};
TORCH_MODULE(InPlace);

}  // namespace

TEST_CASE("a module may modify a point's output in place, as it could without the point") {
  torch::manual_seed(6);
  InPlace module;
  mint::torch_runtime<InPlaceImpl, double> model(module.ptr());
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3}, {4, 5}});
  const auto logits = mint::array<double>::copy_of(model.forward(tokens));  // grad mode: a graph
  // d(sum of logits)/dh at each position: U's row sums times tanh'(h + 1), with h = 2 E[t].
  mint::array<double> ones({2, 3, 6});
  ones.fill(1.0);
  mint::hook_set<double> grads(model.sites(), mint::hook_phase::backward);
  mint::activation_cache<double> cache(model.sites(), {"h"});
  cache.reserve(2, 3);
  cache.attach(grads);
  model.backward(ones.view(), grads);
  const at::Tensor E = module->E.detach(), U = module->U.detach();
  for (mint::index t = 0; t < 3; ++t)
    for (mint::index j = 0; j < 3; ++j) {
      const double pre = 2.0 * E[t + 1][j].item<double>() + 1.0;
      const double expected = U[j].sum().item<double>() * (1.0 - std::tanh(pre) * std::tanh(pre));
      CHECK(cache["h"](0, t, j) == doctest::Approx(expected).epsilon(1e-12));
    }
  CHECK(logits(0, 0, 0) == doctest::Approx(torch::matmul(torch::tanh(2.0 * E[1] + 1.0), U)[0].item<double>()).epsilon(1e-12));
  // A hook that reads, and one that writes, at the same point: both fine with the in-place ops.
  mint::hook_set<double> hooks(model.sites());
  hooks.add("h", [](auto&) {});
  CHECK_NOTHROW(model.forward(tokens, hooks));
  hooks.add("h", [](auto& c) { mint::fill(c.activation, 0.0); }, {.needs = mint::access::write});
  const auto zeroed = model.forward(tokens, hooks);
  CHECK(zeroed(0, 0, 0) == doctest::Approx(torch::matmul(torch::full({3}, std::tanh(1.0), torch::kDouble), U)[0].item<double>()).epsilon(1e-12));
}

TEST_CASE("the libtorch runtime's sequence after a stop, a failed chunk and a whole forward") {
  mint::toy::transformer<float> toy(twin_configs()[1]);
  toy.initialize(12);
  auto twin = torch_test::twin_of(toy);
  const auto tokens = mint::token_batch::from_rows({{1, 2, 3, 4}});
  mint::hook_set<float> stop(twin.sites());
  stop.add("blocks.0.hook_resid_post", [](auto& c) { c.stop(); });
  CHECK(twin.forward(tokens, stop).empty());
  mint::hook_set<float> grads(twin.sites(), mint::hook_phase::backward);
  grads.add("hook_embed", [](auto&) {});
  CHECK_THROWS_WITH_AS(twin.backward(mint::array<float>({1, 4, 9}).view(), grads), doctest::Contains("was stopped by a hook"),
                       mint::argument_error);
  // A whole forward leaves no sequence: chunks start at 0 (after it, and after a stopped one).
  twin.forward(tokens);
  CHECK(twin.cached_positions() == 0);
  CHECK(twin.forward_chunk(tokens.slice(0, 2)).extent(1) == 2);
  CHECK(twin.cached_positions() == 2);
  // A chunk whose hook throws ends the sequence: the next chunk needs reset().
  mint::hook_set<float> throwing(twin.sites());
  throwing.add("blocks.1.attn.hook_z", [](auto&) { throw std::runtime_error("a user's hook failed"); });
  CHECK_THROWS_WITH_AS(twin.forward_chunk(tokens.slice(2, 3), throwing), "a user's hook failed", std::runtime_error);
  CHECK_THROWS_WITH_AS(twin.forward_chunk(tokens.slice(3, 4)), doctest::Contains("stopped"), mint::argument_error);
  twin.reset();
  const auto again = mint::array<float>::copy_of(twin.forward_chunk(tokens.slice(0, 4)));
  const auto whole = mint::array<float>::copy_of(twin.forward(tokens));
  CHECK(max_difference(again, whole) <= 1e-5);
}

TEST_CASE("a point handed a tensor that does not fit its site is a named error, in a pass") {
  mint::toy::transformer<float> toy(twin_configs()[1]);
  toy.initialize(12);
  auto twin = torch_test::twin_of(toy);
  auto& points = twin.model().hook_points();
  const auto tokens = mint::token_batch::from_rows({{1, 2}});
  mint::hook_set<float> hooks(twin.sites());
  std::string shape_error, dtype_error, name_error;
  hooks.add("hook_embed", [&](auto&) {
    try {
      points.point("hook_pos_embed", torch::ones({1, 2, 5}));
    } catch (const mint::argument_error& e) {
      shape_error = e.what();
    }
    try {
      points.point("hook_pos_embed", torch::ones({1, 2, 8}, torch::kDouble));
    } catch (const mint::argument_error& e) {
      dtype_error = e.what();
    }
    try {
      points.point("hook_pos_embedd", torch::ones({1, 2, 8}));
    } catch (const mint::argument_error& e) {
      name_error = e.what();
    }
  });
  torch::NoGradGuard no_grad;
  hooks.add("hook_pos_embed", [](auto&) {});  // so the point is read without a graph
  twin.forward(tokens, hooks);
  CHECK(shape_error.find("at 'hook_pos_embed' has shape [1, 2, 5]") != std::string::npos);
  CHECK(dtype_error.find("x at 'hook_pos_embed'") != std::string::npos);
  CHECK(dtype_error.find("has dtype Double") != std::string::npos);
  CHECK(name_error.find("nearest: 'hook_pos_embed'") != std::string::npos);
}
