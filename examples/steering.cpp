// Steering a model between two behaviours. A small transformer is trained on sequences
// [mode, s_1 .. s_n, SEP, output]: after PLAIN it copies s, after UPPER it writes s in upper
// case (each symbol's upper-case token). Prompts that differ only in the mode token give a
// steering vector (mean difference, compared with repeng's two PCA variants); a layer sweep on
// held-out pairs scores how well each layer separates the modes; a strength sweep at each layer
// shows the upper-case probability and the fluency cost against the scale (table and SVG);
// generation with the vector turns PLAIN prompts upper case, depending on where it is added
// (every position, the prompt, the generated tokens); directional ablation of the mode
// direction at every residual site equals orthogonalising the weights; and the vector is
// written as a llama.cpp control-vector file.
//   usage: steering [output directory, default "steering_out"]
#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <mint/io/control_vector.hpp>
#include <mint/model/generation.hpp>
#include <mint/model/metrics.hpp>
#include <mint/similarity/plot.hpp>
#include <mint/steering.hpp>
#include <mint/toy/orthogonalize.hpp>
#include <mint/toy/train.hpp>

namespace {

constexpr int symbols = 8, length = 5;
// Tokens: lower-case symbols [0, 8), their upper-case forms [8, 16), the two modes, SEP.
constexpr mint::token plain_mode = 2 * symbols, upper_mode = 2 * symbols + 1, separator = 2 * symbols + 2;
constexpr int vocab = 2 * symbols + 3, context = 2 * length + 2;

// [mode, s_1 .. s_n, SEP, o_1 .. o_n] with o = s or s in upper case; every output position is scored.
struct plain_or_upper_task {
  mint::toy::labelled_batch sample(mint::rng& r, mint::index batch) const {
    mint::toy::labelled_batch out{mint::token_batch(batch, context), {}, {}, {}};
    for (mint::index b = 0; b < batch; ++b) {
      const bool upper = r.below(2) == 1;
      out.tokens(b, 0) = upper ? upper_mode : plain_mode;
      for (int k = 1; k <= length; ++k) out.tokens(b, k) = mint::token(r.below(symbols));
      out.tokens(b, length + 1) = separator;
      for (int k = 0; k < length; ++k) {
        const mint::token o = out.tokens(b, 1 + k) + (upper ? symbols : 0);
        out.tokens(b, length + 2 + k) = o;
        out.label(b, length + 1 + k, o);
      }
    }
    return out;
  }
};

// Prompts [mode, s, SEP] for random s, one per row, from a fixed seed.
std::vector<std::vector<mint::token>> random_strings(std::uint64_t seed, int count) {
  mint::rng r(seed);
  std::vector<std::vector<mint::token>> out;
  for (int i = 0; i < count; ++i) {
    std::vector<mint::token> s;
    for (int k = 0; k < length; ++k) s.push_back(mint::token(r.below(symbols)));
    out.push_back(s);
  }
  return out;
}

mint::token_batch prompts(const std::vector<std::vector<mint::token>>& strings, mint::token mode) {
  std::vector<std::vector<mint::token>> rows;
  for (const auto& s : strings) {
    std::vector<mint::token> row{mode};
    row.insert(row.end(), s.begin(), s.end());
    row.push_back(separator);
    rows.push_back(row);
  }
  return mint::token_batch::from_rows(rows);
}

// The fraction of rows whose whole generated output is s (or s in upper case).
double fraction(const mint::generation_result& g, const std::vector<std::vector<mint::token>>& strings, bool upper) {
  int hits = 0;
  for (std::size_t b = 0; b < strings.size(); ++b) {
    bool all = true;
    for (int k = 0; k < length; ++k)
      all = all && g.tokens(mint::index(b), length + 2 + k) == strings[b][std::size_t(k)] + (upper ? symbols : 0);
    hits += all;
  }
  return double(hits) / double(strings.size());
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path out = argc > 1 ? argv[1] : "steering_out";
  std::filesystem::create_directories(out);

  // 1. Train: three layers with MLPs; a few seconds on two cores.
  mint::toy::transformer<float> model({.vocab = vocab, .context = context, .d_model = 64, .layers = 3, .heads = 4,
                                       .d_head = 16, .d_mlp = 128});
  model.initialize(1);
  auto start = std::chrono::steady_clock::now();
  mint::toy::trainer trainer(model, plain_or_upper_task{}, {.steps = 1500, .batch = 64, .optimizer = {.lr = 3e-3}});
  const auto report = trainer.run();
  const auto held_out = plain_or_upper_task{}.sample(*std::make_unique<mint::rng>(99), 512);
  const auto eval = mint::toy::evaluate(model, held_out);
  std::printf("trained %lld steps in %.1f s: held-out loss %.4f, accuracy %.4f\n\n", (long long)report.steps,
              seconds_since(start), eval.loss, eval.accuracy);

  // 2. Contrastive pairs: the same string after UPPER (positive) and PLAIN (negative), read at SEP.
  std::vector<std::string> sites;
  for (int l = 0; l < 3; ++l) sites.push_back("blocks." + std::to_string(l) + ".hook_resid_post");
  const auto train_strings = random_strings(7, 64), test_strings = random_strings(8, 64);
  const auto train = mint::read_contrastive(model, prompts(train_strings, upper_mode), prompts(train_strings, plain_mode),
                                            {.sites = sites});
  const auto test = mint::read_contrastive(model, prompts(test_strings, upper_mode), prompts(test_strings, plain_mode),
                                           {.sites = sites});
  const auto mean_vector = mint::extract_vector(train, mint::extraction_method::mean_difference);
  const auto pca_diff = mint::cosine_similarity(mean_vector, mint::extract_vector(train, mint::extraction_method::pca_difference));
  const auto pca_center = mint::cosine_similarity(mean_vector, mint::extract_vector(train, mint::extraction_method::pca_center));
  std::printf("cosine of the mean difference with PCA (repeng's pca_diff, pca_center), per site:\n");
  for (const auto& site : sites) std::printf("  %-26s %8.4f %8.4f\n", site.c_str(), pca_diff.at(site), pca_center.at(site));

  // 3. The layer sweep on held-out pairs.
  const auto sweep = mint::layer_sweep(mean_vector, test);
  std::printf("\nlayer sweep (held-out pairs):\n  %-26s %14s %10s %12s\n", "site", "pair accuracy", "mean gap", "effect size");
  for (const auto& s : sweep.sites)
    std::printf("  %-26s %14.3f %10.3f %12.2f\n", s.site.c_str(), s.pair_accuracy, s.mean_gap, s.effect_size);
  std::printf("best separation: %s\n\n", sweep.best().site.c_str());

  // 4. The strength sweep at each site, on PLAIN prompts: the probability of the upper-case first
  // output, and the KL to the unsteered model on neutral text. Each vector is norm-matched, so a
  // scale is a fraction of the site's typical norm.
  const auto plain_prompts = prompts(test_strings, plain_mode);
  std::vector<mint::token> upper_first;
  for (const auto& s : test_strings) upper_first.push_back(s.front() + symbols);
  const mint::token_probability upper_answer{upper_first};
  // Neutral text: mode and string without SEP, whose next tokens the mode does not decide.
  auto neutral_rows = random_strings(9, 32);
  for (std::size_t i = 0; i < neutral_rows.size(); ++i) neutral_rows[i].insert(neutral_rows[i].begin(), i % 2 ? upper_mode : plain_mode);
  const auto neutral = mint::token_batch::from_rows(neutral_rows);
  const auto norms = mint::typical_norms(model, neutral, sites);
  std::vector<double> scales;
  for (int i = 0; i <= 8; ++i) scales.push_back(0.25 * i);
  mint::matrixd series(mint::index(scales.size()), mint::index(sites.size()));
  std::vector<std::vector<mint::strength_point>> by_site;
  start = std::chrono::steady_clock::now();
  for (const auto& site : sites) {
    const auto unit = mint::match_norm(mint::steering_vector<float>{{site, mean_vector[site]}}, norms);
    by_site.push_back(mint::strength_sweep(model, unit, plain_prompts, upper_answer, neutral, {.scales = scales}));
  }
  std::printf("strength sweep (%.0f ms): P(upper-case first output | PLAIN prompt) / KL on neutral text\n  %6s",
              1e3 * seconds_since(start), "scale");
  for (const auto& site : sites) std::printf(" %26s", site.c_str());
  std::printf("\n");
  std::size_t best_site = 0, best_scale = 0;
  for (std::size_t i = 0; i < scales.size(); ++i) {
    std::printf("  %6.2f", scales[i]);
    for (std::size_t s = 0; s < sites.size(); ++s) {
      const auto& p = by_site[s][i];
      std::printf("          %7.3f / %7.3f", p.behaviour, p.fluency_kl);
      series(mint::index(i), mint::index(s)) = p.behaviour;
      if (p.behaviour > by_site[best_site][best_scale].behaviour) best_site = s, best_scale = i;
    }
    std::printf("\n");
  }
  mint::write_line_plot_svg(out / "strength_sweep.svg", series,
                            {.title = "Steering PLAIN prompts towards UPPER", .x_title = "scale (fraction of the typical norm)",
                             .y_title = "P(upper-case first output)", .x = scales, .series_labels = sites});
  const std::string site = sites[best_site];
  const double scale = scales[best_scale];
  const auto vector = mint::match_norm(mint::steering_vector<float>{{site, mean_vector[site]}}, norms);
  std::printf("steering at %s, scale %.2f (the sweep's best)\n", site.c_str(), scale);

  // 5. Generation: unsteered, steered at every position, steered at the prompt only.
  const mint::generation_options greedy{.max_new_tokens = length};
  const auto unsteered = mint::generate(model, plain_prompts, greedy);
  mint::hook_set<float> all_positions(model.sites());
  mint::add_steering(all_positions, vector, scale);
  const auto steered_all = mint::generate(model, plain_prompts, greedy, all_positions);
  mint::hook_set<float> prompt_only(model.sites());
  mint::add_steering(prompt_only, vector, scale,
                     {.positions = mint::steer_positions::prompt, .prompt_lengths = {plain_prompts.positions()}});
  const auto steered_prompt = mint::generate(model, plain_prompts, greedy, prompt_only);
  mint::hook_set<float> generated_only(model.sites());
  mint::add_steering(generated_only, vector, scale,
                     {.positions = mint::steer_positions::generated, .prompt_lengths = {plain_prompts.positions()}});
  const auto steered_generated = mint::generate(model, plain_prompts, greedy, generated_only);
  std::printf("\ngeneration from 64 PLAIN prompts (KV cache, greedy): whole outputs\n  %-30s %10s %12s\n", "", "as is",
              "upper case");
  const auto row = [&](const char* name, const mint::generation_result& g) {
    std::printf("  %-30s %10.3f %12.3f\n", name, fraction(g, test_strings, false), fraction(g, test_strings, true));
  };
  row("unsteered", unsteered);
  row("steered, all positions", steered_all);
  row("steered, prompt only", steered_prompt);
  row("steered, generated only", steered_generated);
  std::printf("  first row: prompt");
  for (mint::index t = 0; t < plain_prompts.positions(); ++t) std::printf(" %d", plain_prompts(0, t));
  std::printf(" -> unsteered");
  for (int k = 0; k < length; ++k) std::printf(" %d", unsteered.tokens(0, length + 2 + k));
  std::printf(", steered");
  for (int k = 0; k < length; ++k) std::printf(" %d", steered_all.tokens(0, length + 2 + k));
  std::printf("\n");

  // 6. Directional ablation of the mode direction at every residual site, and the same by weights.
  const auto direction = mint::normalized(vector)[site];
  mint::hook_set<float> ablate(model.sites());
  mint::add_directional_ablation(ablate, mint::at_sites(direction, mint::residual_stream_sites(model.sites())));
  const auto ablated = mint::array<float>::copy_of(model.forward(held_out.tokens, ablate));
  const double ablated_accuracy = mint::toy::accuracy(ablated.view(), held_out);
  auto orthogonal = model;
  mint::toy::orthogonalize_writes(orthogonal, direction);
  mint::hook_set<float> none;
  const auto by_weights = orthogonal.forward(held_out.tokens, none);
  double worst = 0;
  for (mint::index b = 0; b < by_weights.extent(0); ++b)
    for (mint::index t = 0; t < by_weights.extent(1); ++t)
      for (mint::index j = 0; j < by_weights.extent(2); ++j)
        worst = std::max(worst, std::abs(double(by_weights(b, t, j)) - double(ablated(b, t, j))));
  std::printf("\ndirectional ablation of the mode direction at all %zu residual sites: accuracy %.4f -> %.4f;\n"
              "weight orthogonalisation gives the same logits to %.2e (largest difference)\n",
              mint::residual_stream_sites(model.sites()).size(), eval.accuracy, ablated_accuracy, worst);

  // 7. The mean differences as a llama.cpp control vector: blocks.N.hook_resid_post is direction.N,
  // for the blocks llama.cpp steers (N >= 1; it never steers block 0's output).
  mint::steering_vector<float> file_vector;
  file_vector.model_hint = "mint-toy";
  for (const auto& [name, d] : mean_vector.directions)
    if (name != "blocks.0.hook_resid_post") file_vector.directions[name] = d;
  const auto control = mint::to_control_vector(file_vector, model.sites());
  const std::string path = (out / "upper.gguf").string();
  mint::write_control_vector(path, control);
  const auto back = mint::read_control_vector(path);
  std::printf("\nwrote %s: directions for layers", path.c_str());
  for (const auto& [layer, d] : back.directions) std::printf(" %d", layer);
  std::printf(", n_embd %lld (llama.cpp: --control-vector %s)\n", (long long)back.n_embd(), path.c_str());
  std::printf("wrote %s\n", (out / "strength_sweep.svg").string().c_str());
  return 0;
}
