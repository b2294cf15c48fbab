// The feature browser: a self-contained HTML page that embeds every feature, cannot be broken
// by token strings, refuses foreign reports and is written atomically; nearest_features
// against a brute-force cosine computation.
#include "mint/dictionary/feature_browser.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"

namespace feature_browser_test {

namespace dict = mint::dictionary;
using ojson = nlohmann::ordered_json;

/// A small report by hand, in the schema of docs/sae_analysis.md.
inline ojson small_report() {
  const std::vector<std::string> vocab = {"the", " cat", "</script><b>", "\xff" "bad", "<!--", "dog"};
  ojson features = ojson::array();
  for (int j = 0; j < 3; ++j) {
    ojson examples = ojson::array();
    for (int e = 0; e < 2; ++e) {
      const std::vector<std::int64_t> tokens = {0, 1 + j, 2, 5};
      std::vector<std::string> strings;
      for (auto t : tokens) strings.push_back(vocab[std::size_t(t)]);
      examples.push_back({{"activation", 2.0 - e * 0.5}, {"example", 10 * j + e}, {"position", 3}, {"context_start", 1},
                          {"token_index", 2}, {"tokens", tokens}, {"strings", strings}});
    }
    ojson f = {{"index", 4 * j + 1},
               {"fires", 7 + j},
               {"density", 0.07 + 0.01 * j},
               {"mean_activation", 1.25},
               {"histogram", {{"top", 2.0}, {"counts", {1, 2, 3, 1}}}},
               {"top_examples", examples},
               {"boosted_tokens", {{{"token", 3}, {"logit", 0.5}, {"string", vocab[3]}}}},
               {"suppressed_tokens", {{{"token", 4}, {"logit", -0.5}, {"string", vocab[4]}}}}};
    if (j == 1) f["interpretability_score"] = 0.75;
    features.push_back(f);
  }
  return {{"format", "mint.feature_analysis"}, {"version", 1},
          {"metadata", {{"model", "toy<model>"}, {"hook_name", "blocks.0.hook_resid_post"}}},
          {"sae", nullptr}, {"rows", 100}, {"latents", 12}, {"top_n", 2},
          {"context", {{"before", 1}, {"after", 1}}}, {"features", features}};
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The text between <script type="application/json" id="mint-report"> and its </script>.
inline std::string embedded_report(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"mint-report\">";
  const auto start = page.find(open);
  REQUIRE(start != std::string::npos);
  const auto end = page.find("</script>", start + open.size());
  REQUIRE(end != std::string::npos);
  return page.substr(start + open.size(), end - start - open.size());
}

TEST_CASE("the feature browser is one self-contained page that embeds every feature and survives hostile token strings") {
  const auto folder = dictionary_test::temp_folder("feature_browser");
  const auto path = folder / "browser.html";
  auto report = small_report();
  dict::add_nearest_features(report, dict::nearest_lists(12, {{5, 0.5}, {9, -0.25}}));
  dict::write_feature_browser(report, path.string(), {.unit_name = "latent"});
  const std::string page = slurp(path);

  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("http://") == std::string::npos);
  CHECK(page.find("https://") == std::string::npos);
  CHECK(page.find("src=") == std::string::npos);
  CHECK(page.find("<link") == std::string::npos);
  CHECK(page.find("@import") == std::string::npos);
  CHECK(page.find("url(") == std::string::npos);
  // The hostile token string never appears raw: not in the data, not anywhere.
  CHECK(page.find("</script><b>") == std::string::npos);
  CHECK(page.find("<!--") == std::string::npos);
  // Title escaped as HTML; the default title is "<model> <unit>s".
  CHECK(page.find("<title>toy&lt;model&gt; latents</title>") != std::string::npos);
  // Exactly the closing tags of the three scripts.
  std::size_t closes = 0;
  for (auto at = page.find("</script"); at != std::string::npos; at = page.find("</script", at + 1)) ++closes;
  CHECK(closes == 3);

  // The embedded data parses back to the report (bad UTF-8 replaced by U+FFFD).
  const auto data = ojson::parse(embedded_report(page));
  CHECK(data["format"] == "mint.feature_analysis");
  REQUIRE(data["features"].size() == 3);
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(data["features"][j]["index"] == report["features"][j]["index"]);
    CHECK(data["features"][j]["top_examples"].size() == 2);
    CHECK(data["features"][j]["nearest"][0]["index"] == 5);
    CHECK(data["features"][j]["nearest"][1]["cosine"] == doctest::Approx(-0.25));
  }
  CHECK(data["features"][0]["top_examples"][0]["strings"][2] == "</script><b>");
  CHECK(data["features"][0]["boosted_tokens"][0]["string"] == "\xef\xbf\xbd" "bad");
  CHECK(data["features"][1]["interpretability_score"] == doctest::Approx(0.75));
  CHECK(std::filesystem::exists(path));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(folder)) ++files;
  CHECK(files == 1);  // no temporary left beside it

  // An explicit title; options are checked.
  dict::write_feature_browser(report, path.string(), {.title = "GPT-2 layer 3 MLP", .unit_name = "neuron"});
  CHECK(slurp(path).find("<title>GPT-2 layer 3 MLP</title>") != std::string::npos);
  CHECK_THROWS_WITH_AS(dict::write_feature_browser(report, path.string(), {.unit_name = ""}),
                       doctest::Contains("options.unit_name"), mint::argument_error);
  CHECK_THROWS_WITH_AS(dict::write_feature_browser(report, path.string(), {.page_size = 0}),
                       doctest::Contains("options.page_size"), mint::argument_error);
}

TEST_CASE("the feature browser refuses a foreign format or a newer version, by name, and writes nothing") {
  const auto folder = dictionary_test::temp_folder("feature_browser_refuse");
  const auto path = folder / "browser.html";
  auto report = small_report();
  report["format"] = "sae_vis";
  CHECK_THROWS_WITH_AS(dict::write_feature_browser(report, path.string()),
                       doctest::Contains("mint::dictionary::write_feature_browser"), mint::argument_error);
  report = small_report();
  report["version"] = 2;
  CHECK_THROWS_WITH_AS(dict::write_feature_browser(report, path.string()),
                       doctest::Contains("mint::dictionary::write_feature_browser"), mint::argument_error);
  CHECK_THROWS_WITH_AS(dict::write_feature_browser(report, path.string()), doctest::Contains("version"), mint::argument_error);
  report = small_report();
  report.erase("format");
  CHECK_THROWS_AS(dict::write_feature_browser(report, path.string()), mint::argument_error);
  report = small_report();
  report["features"] = 3;
  CHECK_THROWS_AS(dict::write_feature_browser(report, path.string()), mint::argument_error);
  CHECK_THROWS_AS(dict::write_feature_browser(ojson::array(), path.string()), mint::argument_error);
  CHECK(!std::filesystem::exists(path));

  // A missing folder is an argument_error and leaves no file.
  const auto missing = folder / "no_such_folder" / "browser.html";
  CHECK_THROWS_AS(dict::write_feature_browser(small_report(), missing.string()), mint::argument_error);
  CHECK(!std::filesystem::exists(missing.parent_path()));
  CHECK(std::filesystem::is_empty(folder));

  // add_nearest_features checks the report and that every feature has a list.
  report = small_report();
  CHECK_THROWS_WITH_AS(dict::add_nearest_features(report, dict::nearest_lists(5)), doctest::Contains("feature 5"),
                       mint::argument_error);
  report["format"] = "other";
  CHECK_THROWS_WITH_AS(dict::add_nearest_features(report, dict::nearest_lists(12)),
                       doctest::Contains("mint::dictionary::add_nearest_features"), mint::argument_error);
}

/// Brute force: every pair's cosine by loops, sorted by (cosine desc, index asc).
template <class T>
dict::nearest_lists brute_nearest(const mint::matrix<T>& d, mint::index k) {
  const mint::index m = d.rows();
  dict::nearest_lists out(static_cast<std::size_t>(m));
  for (mint::index i = 0; i < m; ++i) {
    std::vector<std::pair<double, mint::index>> all;
    for (mint::index j = 0; j < m; ++j) {
      if (j == i) continue;
      double dot = 0, ni = 0, nj = 0;
      for (mint::index c = 0; c < d.cols(); ++c) {
        dot += double(d(i, c)) * double(d(j, c));
        ni += double(d(i, c)) * double(d(i, c));
        nj += double(d(j, c)) * double(d(j, c));
      }
      all.push_back({ni > 0 && nj > 0 ? dot / std::sqrt(ni * nj) : 0.0, j});
    }
    std::sort(all.begin(), all.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    for (mint::index t = 0; t < std::min<mint::index>(k, m - 1); ++t) out[std::size_t(i)].push_back({all[std::size_t(t)].second, all[std::size_t(t)].first});
  }
  return out;
}

TEST_CASE_TEMPLATE("nearest_features equals a brute-force cosine ranking", T, float, double) {
  // Random rows at varied scales, a zero row and a duplicated direction (exact tie partners).
  mint::matrix<T> d = dictionary_test::unit_dictionary<T>(40, 12, 3);
  for (mint::index i = 0; i < d.rows(); ++i) d.row(i) *= T(0.5 + 0.1 * double(i));
  d.row(7).setZero();
  d.row(11) = T(3) * d.row(2);
  const mint::index k = 5;
  const auto got = dict::nearest_features(d, k);
  const auto want = brute_nearest(d, k);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;  // stated: float rounding of unit rows
  REQUIRE(got.size() == 40);
  for (std::size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].size() == std::size_t(k));
    for (std::size_t t = 0; t < got[i].size(); ++t) {
      CHECK(std::abs(got[i][t].second - want[i][t].second) <= tol);
      // The same neighbour wherever the ranking has no near-tie (there rounding may swap two).
      const bool clear_above = t == 0 || want[i][t - 1].second - want[i][t].second > 10 * tol;
      const bool clear_below = t + 1 == want[i].size() || want[i][t].second - want[i][t + 1].second > 10 * tol;
      if (clear_above && clear_below) CHECK(got[i][t].first == want[i][t].first);
      CHECK(got[i][t].first != mint::index(i));
    }
    for (std::size_t t = 1; t < got[i].size(); ++t) CHECK(got[i][t - 1].second >= got[i][t].second);
  }
  CHECK(got[2][0].first == 11);  // the duplicated direction
  CHECK(got[11][0].first == 2);
  CHECK(got[2][0].second == doctest::Approx(1.0).epsilon(1e-5));
  // The zero row: cosine 0 with everything, so its list is the first k others by index.
  for (std::size_t t = 0; t < std::size_t(k); ++t) {
    CHECK(got[7][t].first == mint::index(t));
    CHECK(got[7][t].second == 0.0);
  }
  // k past latents - 1 is capped; k < 1 and a wrong rank are errors.
  CHECK(dict::nearest_features(d, 100)[0].size() == 39);
  const mint::matrix<T> one = mint::matrix<T>::Ones(1, 3);
  CHECK(dict::nearest_features(one, 3)[0].empty());
  CHECK_THROWS_WITH_AS(dict::nearest_features(d, 0), doctest::Contains("mint::dictionary::nearest_features"),
                       mint::argument_error);
}

TEST_CASE("nearest_features across product blocks: a decoder larger than one 64 MiB block") {
  // 4200 float latents: a block holds (64 MiB / 4) / 4200 = 3994 rows, so two blocks.
  const mint::index m = 4200;
  mint::matrix<float> d = dictionary_test::unit_dictionary<float>(m, 6, 9);
  const auto got = dict::nearest_features(d, 2);
  for (mint::index i : {mint::index(0), mint::index(3993), mint::index(3994), m - 1}) {
    double best = -2;
    for (mint::index j = 0; j < m; ++j)
      if (j != i) best = std::max(best, double(d.row(i).cast<double>().dot(d.row(j).cast<double>())));
    CHECK(got[std::size_t(i)][0].second == doctest::Approx(best).epsilon(1e-5));
  }
}

}  // namespace feature_browser_test
