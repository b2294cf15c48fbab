// Path patching against edge patching, the corrupted run, and the known induction circuit.
#include "mint/patching/activation_patching.hpp"
#include "mint/patching/path_patching.hpp"

#include <doctest/doctest.h>

#include "mint/model/metrics.hpp"
#include "mint/toy/circuits.hpp"
#include "mint/toy/transformer.hpp"

TEST_CASE("path patching: each sender's sweep value is edge patching of its edges; every sender into the final residual is the corrupt run") {
  mint::toy::transformer<float> model({.vocab = 13, .context = 8, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8, .d_mlp = 24,
                                       .split_qkv_input = true});
  model.initialize(12);
  const auto graph = model.graph();
  const auto clean = mint::token_batch::from_rows({{1, 4, 2, 7, 4, 3}, {3, 5, 6, 9, 9, 2}});
  auto corrupt = clean;
  corrupt(0, 1) = 11, corrupt(1, 2) = 12;
  const mint::logit_difference m{{2, 8}, {5, 1}, {}};
  const std::vector<std::string> receivers{"L1H0.k", "L1H1.v", "mlp1.in"};
  const auto sweep = mint::path_patching(model, graph, clean, corrupt, m, {.receivers = receivers, .max_batch = 6});
  REQUIRE(sweep.senders.size() == 6);  // embed, L0H0, L0H1, mlp0 and, into mlp1.in, L1H0 and L1H1
  const double span = sweep.clean_value - sweep.corrupt_value;
  for (std::size_t i = 0; i < sweep.senders.size(); ++i) {
    CAPTURE(sweep.senders[i]);
    const double edge = mint::path_patch(model, graph, clean, corrupt, m, {sweep.senders[i]}, receivers);
    // float32, the sweep batched three senders a forward: 1e-6 of the span.
    CHECK(sweep.values[i] == doctest::Approx((edge - sweep.corrupt_value) / span).epsilon(1e-6).scale(1.0));
  }
  std::vector<std::string> all;
  for (const auto& s : graph.senders()) all.push_back(s.name);
  CHECK(mint::path_patch(model, graph, clean, corrupt, m, all, {"resid_final"}) == doctest::Approx(sweep.corrupt_value).epsilon(1e-5));
  // Denoising: the corrupt run with each sender's clean output along its edges (edge patching
  // with the runs' roles swapped); every sender into the final residual gives the clean run.
  const auto denoise = mint::path_patching(model, graph, clean, corrupt, m,
                                           {.receivers = receivers, .direction = mint::patch_direction::denoising, .max_batch = 4});
  CHECK(denoise.clean_value == doctest::Approx(sweep.clean_value).epsilon(1e-6));
  CHECK(denoise.corrupt_value == doctest::Approx(sweep.corrupt_value).epsilon(1e-6));
  for (std::size_t i = 0; i < denoise.senders.size(); ++i) {
    CAPTURE(denoise.senders[i]);
    const auto logits = mint::patch_edges(model, graph, corrupt, clean, mint::edges_between(graph, {denoise.senders[i]}, receivers));
    const double edge = m.value(logits, clean);
    CHECK(denoise.values[i] == doctest::Approx((edge - denoise.corrupt_value) / span).epsilon(1e-6).scale(1.0));  // as above
  }
  const auto all_logits = mint::patch_edges(model, graph, corrupt, clean, mint::edges_between(graph, all, {"resid_final"}));
  CHECK(m.value(all_logits, clean) == doctest::Approx(sweep.clean_value).epsilon(1e-5));
  CHECK_THROWS_WITH_AS(mint::path_patching(model, graph, clean, corrupt, m, {}), doctest::Contains("receivers"), mint::argument_error);
  CHECK_THROWS_AS(mint::path_patching(model, graph, clean, corrupt, m, {.receivers = {"L9H0.k"}}), mint::argument_error);
}

TEST_CASE("path patching finds the induction circuit's K-composition and scores distractors 0") {
  auto circuit = mint::toy::induction_circuit(12, 24);
  const auto graph = circuit.model.graph();
  const auto clean = mint::token_batch::from_rows({{0, 3, 8, 5, 1, 6, 2, 3, 8, 5, 1}});
  auto corrupt = clean;
  for (mint::index t = 1; t <= 6; ++t) corrupt(0, t) = mint::token((t * 5 + 4) % 11 + 1);
  const mint::logit_difference m{{6}, {9}, {}};
  const auto r = mint::path_patching(circuit.model, graph, clean, corrupt, m, {.receivers = {"L1H0.k"}, .normalize = false});
  for (std::size_t i = 0; i < r.senders.size(); ++i) {
    CAPTURE(r.senders[i]);
    const double effect = r.values[i] - r.clean_value;
    if (r.senders[i] == "L0H0") CHECK(effect < -1.0);  // the previous-token head feeds the induction head's key
    if (r.senders[i] == "L0H1") CHECK(std::abs(effect) < 1e-6);  // the distractor
  }
}

TEST_CASE("activation patching of each head finds the induction circuit's heads and scores distractors 0") {
  auto circuit = mint::toy::induction_circuit(12, 24);
  const auto clean = mint::token_batch::from_rows({{0, 3, 8, 5, 1, 6, 2, 3, 8, 5, 1}});
  auto corrupt = clean;
  for (mint::index t = 1; t <= 6; ++t) corrupt(0, t) = mint::token((t * 5 + 4) % 11 + 1);
  const mint::logit_difference m{{6}, {9}, {}};
  for (const auto direction : {mint::patch_direction::denoising, mint::patch_direction::noising}) {
    const auto r = mint::activation_patching(circuit.model, clean, corrupt, m,
                                             {.sites = {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"}, .by = {mint::axis::head},
                                              .direction = direction});
    CAPTURE(direction == mint::patch_direction::denoising);
    const auto &layer0 = r["blocks.0.attn.hook_z"].values, &layer1 = r["blocks.1.attn.hook_z"].values;
    // Denoising a circuit head restores part of the behaviour; noising it breaks part: either way
    // its value is away from the distractors', which do nothing (0 denoising, 1 noising).
    const double nothing = direction == mint::patch_direction::denoising ? 0.0 : 1.0;
    CHECK(std::abs(layer0(0) - nothing) > 0.05);  // the previous-token head (0.083 denoising: alone it restores little)
    CHECK(std::abs(layer1(0) - nothing) > 0.1);  // the induction head
    CHECK(layer0(1) == doctest::Approx(nothing).epsilon(1e-6).scale(1.0));  // distractors
    CHECK(layer1(1) == doctest::Approx(nothing).epsilon(1e-6).scale(1.0));
  }
}
