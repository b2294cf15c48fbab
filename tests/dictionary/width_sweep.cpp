// Width sweeps: feature matching on hand-built decoders, and a sweep on synthetic
// features whose FVU falls with width.
#include "mint/dictionary/width_sweep.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/synthetic.hpp"

namespace dict = mint::dictionary;

TEST_CASE("match_features finds the parent of known mixtures and counts splits") {
  // Narrow: the 4 unit axes of R^5. Wide: rows built from them with known cosines.
  mint::matrixf narrow = mint::matrixf::Zero(4, 5);
  for (int j = 0; j < 4; ++j) narrow(j, j) = 2.0f;  // norms do not matter
  mint::matrixf wide = mint::matrixf::Zero(7, 5);
  wide.row(0) << 1, 0, 0, 0, 0;        // parent 0, cosine 1
  wide.row(1) << 2, 1, 0, 0, 0;        // parent 0, cosine 2/sqrt(5) = 0.894
  wide.row(2) << 0, 0.6f, 0.8f, 0, 0;  // parent 2, cosine 0.8
  wide.row(3) << 0, 0, 0, -1, 0;       // cosine -1 with 3, 0 with the others: ties go to index 0, below min_cosine
  wide.row(4) << 0, 0, 0, 0, 1;        // orthogonal to every narrow row: new
  wide.row(5) << 0, 0, 0, 0, 0;        // a zero row: cosine 0 everywhere
  wide.row(6) << 0, 1, 1, 0, 0;        // tie between 1 and 2 at 0.707: the lower index, 1
  const auto m = dict::match_features(wide, narrow);
  const std::vector<mint::index> best = {0, 0, 2, 0, 0, 0, 1};
  CHECK(m.best == best);
  CHECK(m.cosine[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(m.cosine[1] == doctest::Approx(2 / std::sqrt(5.0)).epsilon(1e-6));
  CHECK(m.cosine[2] == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(m.cosine[3] == 0.0);
  CHECK(m.cosine[6] == doctest::Approx(std::sqrt(0.5)).epsilon(1e-6));
  const std::vector<mint::index> children = {2, 1, 1, 0};
  CHECK(m.children == children);
  CHECK(m.split == 1);     // narrow 0 has two children
  CHECK(m.kept == 2);      // narrow 1 and 2
  CHECK(m.vanished == 1);  // narrow 3 (its flipped copy does not count)
  CHECK(m.new_latents == 3);  // rows 3, 4, 5
  CHECK(m.mean_cosine == doctest::Approx((1 + 2 / std::sqrt(5.0) + 0.8 + std::sqrt(0.5)) / 7).epsilon(1e-6));

  SUBCASE("absolute cosines count a flipped feature") {
    const auto a = dict::match_features(wide, narrow, {.absolute = true});
    CHECK(a.best[3] == 3);
    CHECK(a.cosine[3] == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(a.vanished == 0);
  }
  SUBCASE("a higher min_cosine turns weak matches into new latents") {
    const auto s = dict::match_features(wide, narrow, {.min_cosine = 0.85});
    CHECK(s.children[0] == 2);
    CHECK(s.children[2] == 0);  // 0.8 < 0.85
    CHECK(s.children[1] == 0);
    CHECK(s.split == 1);
    CHECK(s.new_latents == 5);
  }
  SUBCASE("skipped latents are neither matched nor chosen") {
    const std::vector<std::uint8_t> skip_wide = {0, 1, 0, 0, 0, 0, 0}, skip_narrow = {1, 0, 0, 0};
    const auto s = dict::match_features(wide, narrow, {.skip_wide = skip_wide, .skip_narrow = skip_narrow});
    CHECK(s.best[1] == -1);
    CHECK(s.best[0] != 0);
    CHECK(s.children[0] == 0);
    CHECK(s.split == 0);
    CHECK(s.vanished == 1);  // narrow 3; narrow 0 is skipped, not vanished
  }
  SUBCASE("bad shapes are mint errors") {
    CHECK_THROWS_AS(dict::match_features(wide, mint::matrixf(4, 4)), mint::shape_error);
    CHECK_THROWS_AS(dict::match_features(wide, mint::matrixf(0, 5)), mint::shape_error);
    const std::vector<std::uint8_t> short_mask(3, 0);
    CHECK_THROWS_AS(dict::match_features(wide, narrow, {.skip_wide = short_mask}), mint::shape_error);
  }
}

TEST_CASE("match_features agrees with a brute-force argmax on random decoders, across blocks") {
  mint::rng r(11);
  mint::matrixd wide(300, 16), narrow(70, 16);
  for (mint::index i = 0; i < wide.size(); ++i) wide.data()[i] = r.normal();
  for (mint::index i = 0; i < narrow.size(); ++i) narrow.data()[i] = r.normal();
  const auto m = dict::match_features(wide, narrow, {.min_cosine = 0.0});
  mint::index split = 0;
  std::vector<mint::index> children(70, 0);
  for (mint::index i = 0; i < 300; ++i) {
    mint::index best = 0;
    double top = -2;
    for (mint::index j = 0; j < 70; ++j) {
      const double c = wide.row(i).dot(narrow.row(j)) / (wide.row(i).norm() * narrow.row(j).norm());
      if (c > top) top = c, best = j;
    }
    CHECK(m.best[std::size_t(i)] == best);
    CHECK(m.cosine[std::size_t(i)] == doctest::Approx(top).epsilon(1e-12));
    if (top >= 0) ++children[std::size_t(best)];
  }
  for (auto c : children) split += c >= 2;
  CHECK(m.split == split);
  CHECK(m.children == children);
}

TEST_CASE("a width sweep on synthetic features: FVU falls with width, progress and per-width results") {
  // 48 true features in 24 dimensions, about 2 active per row; TopK SAEs (k = 3) of 8 to 64 latents.
  const dict::synthetic_features truth({.features = 48, .dims = 24, .firing_probability = 0.04, .seed = 5});
  mint::rng r(6);
  mint::matrixf train, eval;
  truth.sample(r, 8000, train);
  truth.sample(r, 2000, eval);
  dict::width_sweep_options<float> o{.widths = {8, 16, 32, 64},
                                     .sae = {.architecture = dict::sae_architecture::topk, .k = 3},
                                     .seed = 7,
                                     .train = {.batch_size = 128, .steps = 300, .adam = {.lr = 5e-3, .warmup = 10}}};
  o.train.dead_after_tokens = 4000;
  std::vector<std::string> tasks;
  std::vector<mint::index> seen;
  o.progress = [&](const mint::progress& p) { tasks.push_back(std::string(p.task)); };
  o.train.progress_interval = 1e9;  // only the last step of each training reports
  o.on_width = [&](const dict::width_result<float>& w) { seen.push_back(w.width); };
  const auto sweep = dict::width_sweep(train, eval, o, 8);
  REQUIRE(sweep.size() == 4);
  CHECK(seen == o.widths);
  for (std::size_t i = 0; i < sweep.size(); ++i) {
    const auto& w = sweep[i];
    MESSAGE("width ", w.width, ": L0 ", w.metrics.l0, ", FVU ", w.metrics.reconstruction.fvu, ", dead ",
            w.metrics.dead_fraction, ", split ", w.matching.split, ", mean cosine ", w.matching.mean_cosine);
    CHECK(w.sae.d_sae() == w.width);
    CHECK(w.metrics.rows == 2000);
    CHECK(w.metrics.l0 <= 3.0);
    // More latents never reconstruct worse by more than training noise (0.01 of the variance);
    // here they reconstruct clearly better: 8 latents cannot cover 48 features.
    if (i > 0) {
      CHECK(w.metrics.reconstruction.fvu <= sweep[i - 1].metrics.reconstruction.fvu + 0.01);
      CHECK(w.matching.best.size() == std::size_t(w.width));
      CHECK(w.matching.children.size() == std::size_t(sweep[i - 1].width));
    } else {
      CHECK(w.matching.best.empty());
    }
  }
  CHECK(sweep.back().metrics.reconstruction.fvu < 0.5 * sweep.front().metrics.reconstruction.fvu);
  // Training reports carry the width; the sweep reports once per width, the last at 4/4.
  REQUIRE(!tasks.empty());
  CHECK(tasks.front() == "width 8 (1/4): train topk");
  CHECK(tasks.back() == "width sweep");
  CHECK(std::count(tasks.begin(), tasks.end(), std::string("width sweep")) == 4);

  // The whole sweep runs once (no SUBCASE, which would rerun it): the checks below go on from here.
  {  // the same seeds give the same SAEs; keep_saes off drops them
    o.widths = {8, 16};
    o.progress = {};
    o.on_width = {};
    o.keep_saes = false;
    const auto again = dict::width_sweep(train, eval, o, 8);
    CHECK(again[1].sae.d_sae() == 0);
    CHECK(again[1].metrics.reconstruction.fvu == sweep[1].metrics.reconstruction.fvu);
    CHECK(again[1].matching.best == sweep[1].matching.best);
  }
  {  // bad widths and shapes are mint errors
    o.widths = {16, 8};
    CHECK_THROWS_AS(dict::width_sweep(train, eval, o), mint::argument_error);
    o.widths = {};
    CHECK_THROWS_AS(dict::width_sweep(train, eval, o), mint::argument_error);
    o.widths = {8};
    CHECK_THROWS_AS(dict::width_sweep(train, mint::matrixf(10, 5), o), mint::shape_error);
  }
}
