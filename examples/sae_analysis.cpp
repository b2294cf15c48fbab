// A width sweep and a feature report on synthetic data with known features: TopK SAEs
// of 16 to 128 latents on 48 true features in 24 dimensions, with per width L0, FVU,
// dead fraction, MMCS and how the latents of each width split those of the one before.
// Then the widest SAE's feature report: each row's "tokens" are the true features active
// in it and the "unembedding" is the true dictionary, so a latent's boosted token names the
// feature it learned. The same report, with each latent's nearest latents by decoder cosine,
// goes into a feature browser (one HTML file) next to the JSON. Usage: sae_analysis [report.json]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/feature_analysis.hpp"
#include "mint/dictionary/feature_browser.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/dictionary/width_sweep.hpp"

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "sae_features.json";
  const dict::synthetic_features truth({.features = 48, .dims = 24, .firing_probability = 0.04, .seed = 5});
  mint::rng r(6);
  mint::matrixf train, eval, coefficients;
  truth.sample(r, 20000, train);
  truth.sample(r, 4000, eval, coefficients);

  dict::width_sweep_options<float> o{.widths = {16, 32, 64, 128},
                                     .sae = {.architecture = dict::sae_architecture::topk, .k = 3},
                                     .seed = 7,
                                     .train = {.batch_size = 128, .steps = 1500, .adam = {.lr = 3e-3, .warmup = 20}}};
  o.train.dead_after_tokens = 5000;
  o.progress = [](const mint::progress& p) {
    if (p.task == "width sweep") std::fprintf(stderr, "  width %lld/%lld done\n", (long long)p.step, (long long)p.total);
  };
  const auto sweep = dict::width_sweep(train, eval, o);

  std::printf("48 true features in 24 dimensions, expected L0 %.2f; TopK SAEs, k = 3\n\n", truth.expected_l0());
  std::printf("%6s %6s %7s %6s %6s %6s %6s %6s %8s\n", "width", "L0", "FVU", "dead", "MMCS", "split", "kept", "new", "cos");
  for (const auto& w : sweep) {
    std::printf("%6td %6.2f %7.4f %6.3f %6.3f", w.width, w.metrics.l0, w.metrics.reconstruction.fvu, w.metrics.dead_fraction,
                dict::mmcs(w.sae.W_dec(), truth.dictionary()));
    if (w.matching.best.empty()) std::printf(" %6s %6s %6s %8s\n", "-", "-", "-", "-");
    else std::printf(" %6td %6td %6td %8.3f\n", w.matching.split, w.matching.kept, w.matching.new_latents, w.matching.mean_cosine);
  }

  // The report: example i is eval row i; its tokens are its active true features, strongest first.
  const auto& sae = sweep.back().sae;
  dict::feature_collector collector(sae.d_sae(), {.top_n = 5});
  std::vector<dict::example_ref> refs;
  for (mint::index i = 0; i < eval.rows(); ++i) refs.push_back({i, 0});
  collector.add(sae, eval, refs);
  std::vector<std::string> vocab;
  for (mint::index f = 0; f < truth.options().features; ++f) vocab.push_back("feature " + std::to_string(f));
  const mint::matrixf unembedding = truth.dictionary().transpose();  // [d_model, "vocab"]
  const auto effects = dict::logit_effects(sae.W_dec(), unembedding, 3);
  dict::feature_report_options report{
      .tokens =
          [&](std::int64_t example) {
            // The row's active features, the activating one (position 0) first.
            std::vector<std::int64_t> active;
            for (mint::index f = 0; f < coefficients.cols(); ++f)
              if (coefficients(example, f) > 0) active.push_back(f);
            std::sort(active.begin(), active.end(), [&](auto a, auto b) { return coefficients(example, a) > coefficients(example, b); });
            return active;
          },
      .vocab = vocab,
      .context_before = 0,
      .context_after = 4,
      .logit_effects = effects,
      .metadata = {{"data", "synthetic: 48 features in 24 dimensions"}, {"example", "sae_analysis"}},
      .sae = dict::describe(sae),
      .skip_dead = true};
  dict::write_feature_report(path, collector, report, 1);

  std::printf("\nwidest SAE: the first 4 live latents\n");
  int shown = 0;
  for (mint::index j = 0; j < sae.d_sae() && shown < 4; ++j) {
    if (collector.fires(j) == 0) continue;
    ++shown;
    const auto top = collector.top(j);
    std::printf("latent %3td  density %.4f  boosts %-11s (%.2f)  top example %lld (activation %.2f)\n", j, collector.density(j),
                vocab[std::size_t(effects[std::size_t(j)].boosted[0].token)].c_str(), effects[std::size_t(j)].boosted[0].value,
                (long long)top[0].where.example, top[0].value);
  }

  // The browser: the report plus nearest latents, one self-contained page beside the JSON.
  std::filesystem::path page(path);
  page.replace_extension(page.extension() == ".html" ? ".browser.html" : ".html");  // never over the JSON
  const std::string browser = page.string();
  auto json = dict::feature_report(collector, report);
  dict::add_nearest_features(json, dict::nearest_features(sae.W_dec(), 5));
  dict::write_feature_browser(json, browser, {.title = "sae_analysis: widest SAE", .unit_name = "latent"});
  std::printf("\nwrote %s\nwrote %s (open it in a browser)\n", path.c_str(), browser.c_str());
}
