// Feature analysis: the streaming top-n against a brute-force sort, firing density,
// logit effects on a hand-built unembedding, and the JSON report on disk.
#include "mint/dictionary/feature_analysis.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/adapters/span.hpp"

namespace dict = mint::dictionary;

namespace {

// Codes with ties: each entry is 0 with probability 0.6, else one of 8 levels (0.25 .. 2).
mint::matrixf tied_codes(std::uint64_t seed, mint::index rows, mint::index latents) {
  mint::rng r(seed);
  mint::matrixf z(rows, latents);
  for (mint::index i = 0; i < z.size(); ++i) z.data()[i] = r.uniform() < 0.6 ? 0.0f : 0.25f * float(1 + r.below(8));
  return z;
}

// Rows in a scrambled example order, so that ties are not settled by arrival order.
std::vector<dict::example_ref> scrambled_refs(std::uint64_t seed, mint::index rows) {
  std::vector<dict::example_ref> refs;
  for (mint::index i = 0; i < rows; ++i) refs.push_back({i / 5, i % 5});
  mint::rng(seed).shuffle(refs.begin(), refs.end());
  return refs;
}

}  // namespace

TEST_CASE("the streaming top-n equals a brute-force sort, ties by example then position") {
  const mint::index rows = 600, latents = 70, top_n = 6;
  const mint::matrixf z = tied_codes(1, rows, latents);
  const auto refs = scrambled_refs(2, rows);
  dict::feature_collector c(latents, {.top_n = top_n});
  // Three uneven batches.
  for (auto [a, b] : {std::pair<mint::index, mint::index>{0, 150}, {150, 151}, {151, rows}})
    c.add(mint::view(z).slice(a, b), std::span(refs).subspan(std::size_t(a), std::size_t(b - a)));
  CHECK(c.rows() == rows);
  for (mint::index j = 0; j < latents; ++j) {
    std::vector<dict::top_activation> all;
    double sum = 0;
    for (mint::index i = 0; i < rows; ++i)
      if (z(i, j) > 0) {
        all.push_back({double(z(i, j)), refs[std::size_t(i)]});
        sum += z(i, j);
      }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.value != b.value ? a.value > b.value
                                : std::pair(a.where.example, a.where.position) < std::pair(b.where.example, b.where.position);
    });
    all.resize(std::min<std::size_t>(all.size(), top_n));
    const auto kept = c.top(j);
    REQUIRE(kept.size() == all.size());
    for (std::size_t e = 0; e < all.size(); ++e) {
      CHECK(kept[e].value == all[e].value);
      CHECK(kept[e].where == all[e].where);
    }
    const auto fired = std::count_if(z.col(j).begin(), z.col(j).end(), [](float v) { return v > 0; });
    CHECK(c.fires(j) == fired);
    CHECK(c.density(j) == doctest::Approx(double(fired) / double(rows)));
    CHECK(c.mean_activation(j) == doctest::Approx(fired ? sum / double(fired) : 0.0));
  }

  // A pass split in two collectors and merged gives the same lists and counts.
  dict::feature_collector left(latents, {.top_n = top_n}), right(latents, {.top_n = top_n});
  left.add(mint::view(z).slice(0, 300), std::span(refs).first(300));
  right.add(mint::view(z).slice(300, rows), std::span(refs).subspan(300));
  left.merge(right);
  CHECK(left.rows() == rows);
  for (mint::index j = 0; j < latents; ++j) {
    CHECK(left.fires(j) == c.fires(j));
    const auto a = left.top(j), b = c.top(j);
    REQUIRE(a.size() == b.size());
    for (std::size_t e = 0; e < a.size(); ++e) CHECK((a[e].value == b[e].value && a[e].where == b[e].where));
  }
  CHECK_THROWS_AS(left.merge(dict::feature_collector(latents, {.top_n = 3})), mint::argument_error);
  {  // merging a collector into itself counts its rows twice; each top example then appears twice
    dict::feature_collector twice = c;
    twice.merge(twice);
    CHECK(twice.rows() == 2 * rows);
    CHECK(twice.fires(0) == 2 * c.fires(0));
    const auto a = twice.top(0), b = c.top(0);
    for (std::size_t e = 0; e < a.size(); ++e) CHECK(a[e].where == b[e / 2].where);
  }
  CHECK_THROWS_AS(c.add(z, std::span(refs).first(10)), mint::shape_error);
  CHECK_THROWS_AS(c.add(mint::matrixf(3, 5), std::span(refs).first(3)), mint::shape_error);
  CHECK_THROWS_AS(c.top(latents), mint::argument_error);
  CHECK_THROWS_AS(dict::feature_collector(0), mint::argument_error);
}

TEST_CASE("density counts: a never-firing latent, an always-firing one, negative and NaN codes") {
  mint::matrixf z(4, 3);
  z << 1, 0, -1,  //
      2, 0, NAN,  //
      3, 0, 0.5,  //
      4, 0, 0;
  dict::feature_collector c(3, {.top_n = 2});
  const auto refs = dict::sequence_refs(10, 2, 2);
  CHECK(refs[3] == dict::example_ref{11, 1});
  c.add(z, refs);
  CHECK(c.fires(0) == 4);
  CHECK(c.density(0) == 1.0);
  CHECK(c.fires(1) == 0);
  CHECK(c.top(1).empty());
  CHECK(c.mean_activation(1) == 0.0);
  CHECK(c.fires(2) == 1);  // -1 and NaN do not fire
  CHECK(c.density(2) == 0.25);
  REQUIRE(c.top(0).size() == 2);
  CHECK(c.top(0)[0].value == 4);
  CHECK(c.top(0)[0].where == dict::example_ref{11, 1});
  CHECK(c.top(0)[1].where == dict::example_ref{11, 0});
}

TEST_CASE("an SAE pass collects what its codes give") {
  dict::sae s({.d_in = 6, .d_sae = 12, .architecture = dict::sae_architecture::topk, .k = 3}, 4);
  mint::rng r(5);
  mint::matrixf x(50, 6);
  r.fill_normal(mint::view(x));
  const auto refs = dict::sequence_refs(0, 10, 5);
  dict::feature_collector from_sae(12, {.top_n = 4}), from_codes(12, {.top_n = 4});
  from_sae.add(s, x, refs, 7);  // batches of 7 rows
  from_codes.add(s.encode(x), refs);
  for (mint::index j = 0; j < 12; ++j) {
    CHECK(from_sae.fires(j) == from_codes.fires(j));
    const auto a = from_sae.top(j), b = from_codes.top(j);
    REQUIRE(a.size() == b.size());
    for (std::size_t e = 0; e < a.size(); ++e) CHECK(a[e].where == b[e].where);
  }
  // The same rows as a [10, 5, 6] cache.
  dict::feature_collector from_cache(12, {.top_n = 4});
  from_cache.add(s, mint::view(x).reshape({10, 5, 6}), refs);
  CHECK(from_cache.rows() == 50);
  for (mint::index j = 0; j < 12; ++j) CHECK(from_cache.fires(j) == from_codes.fires(j));
  CHECK_THROWS_AS(from_sae.add(s, mint::matrixf(50, 5), refs), mint::shape_error);
  CHECK_THROWS_AS(dict::feature_collector(11).add(s, x, refs), mint::shape_error);
}

TEST_CASE("logit effects: boosted and suppressed tokens of decoder directions through a hand-built W_U") {
  // d_model 3, vocab 6. Latent 0 points along axis 0, latent 1 along axis 1 + axis 2.
  mint::matrixf dec(2, 3);
  dec << 1, 0, 0,  //
      0, 1, 1;
  mint::matrixf wu(3, 6);
  wu << 0.5, -2, 3, 0.5, 0, -1,  //
      1, 1, 1, 1, 1, 1,           //
      0, 2, -4, 1, 0, 0;
  // Latent 0 logits: 0.5 -2 3 0.5 0 -1; latent 1: 1 3 -3 2 1 1.
  const auto e = dict::logit_effects(dec, wu, 3);
  REQUIRE(e.size() == 2);
  auto tokens = [](const std::vector<dict::token_score>& s) {
    std::vector<std::int64_t> t;
    for (const auto& x : s) t.push_back(x.token);
    return t;
  };
  CHECK(tokens(e[0].boosted) == std::vector<std::int64_t>{2, 0, 3});  // 3, then the tie 0.5 at 0 and 3
  CHECK(tokens(e[0].suppressed) == std::vector<std::int64_t>{1, 5, 4});
  CHECK(e[0].boosted[0].value == doctest::Approx(3.0));
  CHECK(e[0].suppressed[0].value == doctest::Approx(-2.0));
  CHECK(tokens(e[1].boosted) == std::vector<std::int64_t>{1, 3, 0});  // 3, 2, then 1 at tokens 0, 4, 5
  CHECK(tokens(e[1].suppressed) == std::vector<std::int64_t>{2, 0, 4});
  // An lm_head-style [vocab, d_model] weight, transposed as a view, gives the same.
  const mint::matrixf head = wu.transpose();
  const auto t = dict::logit_effects(dec, mint::view(head).transposed(), 3);
  CHECK(tokens(t[1].boosted) == tokens(e[1].boosted));
  // top_n above the vocabulary keeps every token.
  CHECK(dict::logit_effects(dec, wu, 10)[0].boosted.size() == 6);
  CHECK_THROWS_AS(dict::logit_effects(dec, head), mint::shape_error);
  CHECK_THROWS_AS(dict::logit_effects(dec, wu, 0), mint::argument_error);
  mint::matrixf bad = wu;
  bad(2, 4) = NAN;
  CHECK_THROWS_AS(dict::logit_effects(dec, bad), mint::numeric_error);
}

TEST_CASE("the JSON report round-trips with the schema's keys; a missing folder is an error and leaves no file") {
  const auto folder = dictionary_test::temp_folder("report");
  // 2 sequences of 6 tokens; 2 latents.
  Eigen::Matrix<std::int32_t, 2, 6, Eigen::RowMajor> tokens;
  tokens << 0, 1, 2, 3, 4, 5,  //
      5, 4, 3, 2, 1, 0;
  const std::vector<std::string> vocab = {"a", " b", "c", "d", "\xe2\x82", "f"};  // token 4: a cut UTF-8 character
  mint::matrixf z = mint::matrixf::Zero(12, 2);
  z(3, 0) = 2.0f;   // sequence 0, position 3
  z(7, 0) = 1.0f;   // sequence 1, position 1
  z(11, 0) = 1.5f;  // sequence 1, position 5 (the last: the window stops there)
  dict::feature_collector c(2, {.top_n = 2});
  c.add(z, dict::sequence_refs(0, 2, 6));
  mint::matrixf dec(2, 3), wu(3, 6);
  dec << 1, 0, 0, 0, 1, 0;
  wu << 0, 1, 2, 3, 4, 5,  //
      5, 4, 3, 2, 1, 0,    //
      0, 0, 0, 0, 0, 0;
  const auto effects = dict::logit_effects(dec, wu, 2);
  dict::sae s({.d_in = 3, .d_sae = 2, .architecture = dict::sae_architecture::topk, .k = 1});
  dict::feature_report_options o{.tokens = dict::tokens_from(tokens),
                                 .vocab = vocab,
                                 .context_before = 2,
                                 .context_after = 1,
                                 .logit_effects = effects,
                                 .metadata = {{"model", "toy"}, {"hook_name", "blocks.0.hook_resid_post"}},
                                 .sae = dict::describe(s)};
  const auto path = (folder / "features.json").string();
  dict::write_feature_report(path, c, o);
  const mint::json j = mint::read_json(path);
  {  // keys in the schema's order, the whole report on one line
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.rfind(R"({"format":"mint.feature_analysis","version":1,"metadata":{)", 0) == 0);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  }
  CHECK(j["format"] == "mint.feature_analysis");
  CHECK(j["version"] == 1);
  CHECK(j["metadata"]["hook_name"] == "blocks.0.hook_resid_post");
  CHECK(j["sae"]["architecture"] == "topk");
  CHECK(j["sae"]["k"] == 1);
  CHECK(j["rows"] == 12);
  CHECK(j["latents"] == 2);
  CHECK(j["top_n"] == 2);
  CHECK(j["context"]["before"] == 2);
  REQUIRE(j["features"].size() == 2);
  const auto& f = j["features"][0];
  for (const char* key : {"index", "fires", "density", "mean_activation", "top_examples", "boosted_tokens", "suppressed_tokens"})
    CHECK(f.contains(key));
  CHECK(f["index"] == 0);
  CHECK(f["fires"] == 3);
  CHECK(f["density"].get<double>() == doctest::Approx(0.25));
  CHECK(f["mean_activation"].get<double>() == doctest::Approx(1.5));
  REQUIRE(f["top_examples"].size() == 2);
  const auto& best = f["top_examples"][0];
  CHECK(best["activation"].get<double>() == 2.0);
  CHECK(best["example"] == 0);
  CHECK(best["position"] == 3);
  CHECK(best["context_start"] == 1);
  CHECK(best["token_index"] == 2);
  CHECK(best["tokens"] == mint::json::array({1, 2, 3, 4}));
  CHECK(best["strings"] == mint::json::array({" b", "c", "d", "\xef\xbf\xbd"}));  // the bad bytes became U+FFFD
  const auto& second = f["top_examples"][1];
  CHECK(second["position"] == 5);
  CHECK(second["tokens"] == mint::json::array({2, 1, 0}));  // positions 3..5: the sequence ends at 5
  CHECK(second["token_index"] == 2);
  CHECK(f["boosted_tokens"][0]["token"] == 5);
  CHECK(f["boosted_tokens"][0]["string"] == "f");
  CHECK(f["boosted_tokens"][0]["logit"].get<double>() == doctest::Approx(5.0));
  CHECK(f["suppressed_tokens"][0]["token"] == 0);
  CHECK(j["features"][1]["top_examples"].empty());
  // The file equals the in-memory report (up to the replaced bytes).
  CHECK(dict::feature_report(c, {.sae = dict::describe(s)})["features"][0]["top_examples"][0].size() == 3);
  CHECK(dict::feature_report(c, {.skip_dead = true})["features"].size() == 1);

  // A folder that does not exist: a mint error, and nothing written there or beside.
  const auto missing = folder / "no_such_folder" / "features.json";
  CHECK_THROWS_AS(dict::write_feature_report(missing.string(), c, o), mint::error);
  CHECK(!std::filesystem::exists(missing.parent_path()));
  CHECK(std::distance(std::filesystem::directory_iterator(folder), std::filesystem::directory_iterator()) == 1);

  // Bad contexts and vocabularies are named errors.
  auto bad = o;
  bad.vocab = std::span(vocab).first(3);
  CHECK_THROWS_AS(dict::feature_report(c, bad), mint::argument_error);
  bad = o;
  bad.tokens = [](std::int64_t) { return std::vector<std::int64_t>{1, 2}; };  // too short for position 3
  CHECK_THROWS_AS(dict::feature_report(c, bad), mint::argument_error);
  bad = o;
  bad.logit_effects = std::span(effects).first(1);
  CHECK_THROWS_AS(dict::feature_report(c, bad), mint::shape_error);
  CHECK_THROWS_AS(dict::tokens_from(tokens)(2), mint::argument_error);
  std::filesystem::remove_all(folder);
}

#if defined(_OPENMP)
TEST_CASE("the collector gives the same lists on 1 and 2 threads (latent blocks split across threads)") {
  // 2000 x 1100 codes: above mint::parallel_threshold, so two threads share the latents.
  const mint::matrixf z = tied_codes(7, 2000, 1100);
  const auto refs = scrambled_refs(8, 2000);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  dict::feature_collector one(1100, {.top_n = 5});
  one.add(z, refs);
  omp_set_num_threads(2);
  dict::feature_collector two(1100, {.top_n = 5});
  two.add(z, refs);
  omp_set_num_threads(saved);
  int differences = 0;
  for (mint::index j = 0; j < 1100; ++j) {
    const auto a = one.top(j), b = two.top(j);
    differences += one.fires(j) != two.fires(j) || a.size() != b.size() || one.top(j).empty();
    for (std::size_t e = 0; e < std::min(a.size(), b.size()); ++e) differences += !(a[e].value == b[e].value && a[e].where == b[e].where);
  }
  CHECK(differences == 0);
}
#endif

TEST_CASE("activation histograms: ranges double by folding bins, passes merge exactly, the report carries them") {
  const auto one_latent = [](std::initializer_list<float> values, std::int64_t first) {
    dict::feature_collector c(1, {.top_n = 2, .histogram_bins = 4});
    mint::matrixf z(mint::index(values.size()), 1);
    std::vector<dict::example_ref> refs;
    mint::index i = 0;
    for (float v : values) z(i++, 0) = v, refs.push_back({first + std::int64_t(refs.size()), 0});
    c.add(z, refs);
    return c;
  };
  // 0.3 sets the range [0, 0.5); 0.6 doubles it to [0, 1), 1.5 to [0, 2): bins of 0.5.
  const auto all = one_latent({0.3f, 0.0f, 0.6f, -1.0f, 1.5f}, 0);
  const auto h = all.histogram(0);
  CHECK(h.top == 2.0);
  CHECK(h.counts == std::vector<std::int64_t>{1, 1, 0, 1});
  // Split across two collectors (the larger range second, then first) and merged: the same counts.
  for (const bool larger_first : {false, true}) {
    auto a = one_latent({0.3f, 0.6f}, 0);
    auto b = one_latent({1.5f}, 2);
    if (larger_first) std::swap(a, b);
    a.merge(b);
    CHECK(a.histogram(0).top == 2.0);
    CHECK(a.histogram(0).counts == std::vector<std::int64_t>{1, 1, 0, 1});
  }
  // An exact power of two lands in the next range: 1 is not in [0, 1).
  const auto edge = one_latent({1.0f}, 0);
  CHECK(edge.histogram(0).top == 2.0);
  CHECK(edge.histogram(0).counts == std::vector<std::int64_t>{0, 0, 1, 0});
  const auto report = dict::feature_report(all);
  CHECK(report["features"][0]["histogram"]["top"] == 2.0);
  CHECK(report["features"][0]["histogram"]["counts"].size() == 4);
  CHECK_FALSE(dict::feature_report(dict::feature_collector(1))["features"][0].contains("histogram"));
  CHECK_THROWS_WITH_AS(dict::feature_collector(1, {.top_n = 2, .histogram_bins = 3}), doctest::Contains("histogram_bins"),
                       mint::argument_error);
  dict::feature_collector other(1, {.top_n = 2, .histogram_bins = 8});
  CHECK_THROWS_WITH_AS(other.merge(all), doctest::Contains("histogram bins"), mint::argument_error);
}
