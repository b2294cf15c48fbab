// Writes a feature browser over random sparse codes, for tests/dictionary/browser_check.py:
// `write_browser_sample OUT.html [features]` (default 2000 features). The report goes through
// the real pipeline: feature_collector (with histograms), tokens and vocabulary strings (a
// few of them hostile to HTML), logit effects, nearest features, and a made-up
// "interpretability_score" per feature so the page's sort by it shows.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/core/random.hpp"
#include "mint/dictionary/feature_analysis.hpp"
#include "mint/dictionary/feature_browser.hpp"

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.html [features]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const mint::index latents = argc > 2 ? std::atol(argv[2]) : 2000;
  const mint::index examples = 300, positions = 16, d_model = 32, vocab_size = 600, active = 12;
  mint::rng r(17);

  // A vocabulary of made-up words with a leading space, plus pieces that must not break a page.
  const char* syllables[] = {"ka", "lo", "mi", "ter", "vu", "an", "sel", "or", "pi", "dre", "nu", "qua"};
  std::vector<std::string> vocab;
  for (mint::index v = 0; v < vocab_size; ++v) {
    std::string w = v % 3 == 0 ? "" : " ";
    for (int s = 0; s < 1 + int(v % 3); ++s) w += syllables[(v * 7 + s * 5 + v / 12) % 12];
    vocab.push_back(w);
  }
  vocab[1] = "</script><b>";
  vocab[2] = "\n";
  vocab[3] = "&amp;";
  vocab[4] = "<!--";

  mint::matrix<std::int64_t> tokens(examples, positions);
  for (mint::index e = 0; e < examples; ++e)
    for (mint::index t = 0; t < positions; ++t) tokens(e, t) = std::int64_t(r.below(std::uint64_t(vocab_size)));

  // Each row fires `active` random latents; a latent's codes grow with the token it sits on,
  // so its top examples share tokens.
  dict::feature_collector collector(latents, {.top_n = 10, .histogram_bins = 32});
  const mint::index batch = 4 * positions;
  for (mint::index first = 0; first < examples; first += batch / positions) {
    const mint::index n = std::min(batch / positions, examples - first);
    mint::matrix<float> codes = mint::matrix<float>::Zero(n * positions, latents);
    std::vector<dict::example_ref> refs;
    for (mint::index i = 0; i < n * positions; ++i) {
      const mint::index e = first + i / positions, t = i % positions;
      refs.push_back({e, t});
      for (mint::index a = 0; a < active; ++a) {
        const mint::index j = mint::index(r.below(std::uint64_t(latents)));
        codes(i, j) = float(r.uniform(0.1, 1.0) * (1.0 + double((tokens(e, t) + j) % 7) / 2.0));
      }
    }
    collector.add(codes, refs);
  }

  mint::matrix<float> decoder(latents, d_model), unembedding(d_model, vocab_size);
  r.fill_normal(decoder);
  r.fill_normal(unembedding);
  const auto effects = dict::logit_effects(decoder, unembedding, 8);
  auto report = dict::feature_report(collector, {.tokens = dict::tokens_from(tokens),
                                                 .vocab = vocab,
                                                 .context_before = 8,
                                                 .context_after = 3,
                                                 .logit_effects = effects,
                                                 .metadata = {{"model", "sample"},
                                                              {"hook_name", "blocks.0.hook_resid_post"},
                                                              {"data", "random sparse codes"}},
                                                 .sae = nullptr,
                                                 .skip_dead = false});
  dict::add_nearest_features(report, dict::nearest_features(decoder, 8));
  for (auto& f : report["features"]) f["interpretability_score"] = r.uniform();  // made up
  dict::write_feature_browser(report, path, {.title = "", .unit_name = "feature", .page_size = 100});
  std::printf("%s\n", path.c_str());
}
