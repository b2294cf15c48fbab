// The IOI-like circuit of a toy transformer, found by patching. A 2-layer attention-only model
// learns mint::toy::ioi_task (two names in the first half, one of them again in the second, and
// after END the answer is the name seen once). Then, on clean prompts and corrupt ones whose
// repeated name is swapped so that the answer flips:
//   1. activation patching of every layer's residual stream by position (layer x position),
//   2. activation patching of every head's output, all positions at once (layer x head),
//   3. path patching of each head straight into the logits (resid_final), and of each layer-0
//      head into the final layer's heads' queries, keys and values,
//   4. the attention of every head from END, to see what the heads found above look at.
// Each result is printed as a table and written as an SVG heatmap to argv[1] (default
// ioi_patching_out/).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <mint/patching.hpp>
#include <mint/similarity/plot.hpp>
#include <mint/toy/tasks.hpp>
#include <mint/toy/train.hpp>
#include <mint/toy/transformer.hpp>

namespace {

// Prints a matrix as a table and writes it as a heatmap. The colour scale is 0 to 1 unless a
// value goes well outside, so the same colour means the same share in every file.
void report(const std::filesystem::path& file, const mint::matrixd& values, mint::heatmap_options options) {
  options.minimum = values.minCoeff() < -0.05 ? values.minCoeff() : 0.0;
  options.maximum = values.maxCoeff() > 1.05 ? values.maxCoeff() : 1.0;
  std::printf("%s\n  %-8s", options.title.c_str(), "");
  for (const auto& c : options.column_labels) std::printf(" %6s", c.c_str());
  std::printf("\n");
  for (mint::index i = 0; i < values.rows(); ++i) {
    std::printf("  %-8s", options.row_labels[std::size_t(i)].c_str());
    for (mint::index j = 0; j < values.cols(); ++j) std::printf(" %6.2f", std::abs(values(i, j)) < 0.005 ? 0.0 : values(i, j));
    std::printf("\n");
  }
  mint::write_heatmap_svg(file, values, options);
  std::printf("  -> %s\n\n", file.string().c_str());
}

std::string head_name(int layer, int head) { return "L" + std::to_string(layer) + "H" + std::to_string(head); }

}  // namespace

int main(int argc, char** argv) {
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path out = argc > 1 ? argv[1] : "ioi_patching_out";
  std::filesystem::create_directories(out);
#if defined(_OPENMP)
  // Every step here is small (768 rows of 64): one thread is nearly as fast as two on a quiet
  // machine and many times faster on a busy one, where each parallel region waits for a free core.
  omp_set_num_threads(1);
#endif

  const mint::toy::ioi_task task{};  // 8 names, 8 fillers, 12 positions
  const int layers = 2, heads = 4;
  // split_qkv_input: each head's q/k/v input is its own site, so the model has an edge graph for path patching.
  mint::toy::transformer<float> model({.vocab = task.vocab(), .context = task.context(), .d_model = 64, .layers = layers,
                                       .heads = heads, .d_head = 16, .split_qkv_input = true});
  model.initialize(1);
  mint::toy::trainer trainer(model, task, {.steps = 300, .batch = 64, .optimizer = {.lr = 3e-3, .warmup = 50}, .seed = 3});
  const auto trained = trainer.run();
  mint::rng held_out(2026);
  const auto test = mint::toy::evaluate(model, task.sample(held_out, 1024));
  std::printf("trained a %d-layer attention-only transformer (%d heads a layer) on the IOI task: %ld steps, %.1f s\n",
              layers, heads, long(trained.steps), trained.seconds);
  std::printf("held-out accuracy %.2f%% (chance %.1f%%), loss %.4f\n\n", 100 * test.accuracy, 100.0 / task.names, test.loss);

  // The prompts: one template from the task (where the names and fillers sit), filled with every
  // ordered pair of names. Rows share their positions, so a sweep over positions means one thing.
  mint::rng r(7);
  const auto sampled = task.sample(r, 1);
  mint::index io_pos = -1;         // the answer, named A below (IO in the IOI paper)
  std::vector<mint::index> s_pos;  // the repeated name B's two positions (S1, S2)
  for (mint::index t = 0; t + 1 < task.length; ++t) {
    const mint::token x = sampled.tokens(0, t);
    if (x == sampled.targets[0]) io_pos = t;
    else if (x < task.names) s_pos.push_back(t);
  }
  std::vector<std::string> tokens;  // column labels: A, B, fillers as f0.., END
  for (mint::index t = 0; t < task.length; ++t) {
    const mint::token x = sampled.tokens(0, t);
    tokens.push_back(t == io_pos ? "A" : x < task.names ? "B" : x == task.end_token() ? "END" : "f" + std::to_string(x - task.names));
  }
  std::printf("prompt:");
  for (const auto& s : tokens) std::printf(" %s", s.c_str());
  std::printf("   (A and B: every ordered pair of the %d names; the answer is A)\n", task.names);

  std::vector<std::vector<mint::token>> clean_rows, corrupt_rows;
  std::vector<mint::token> correct, wrong;
  for (mint::token a = 0; a < task.names; ++a)
    for (mint::token b = 0; b < task.names; ++b) {
      if (a == b) continue;
      std::vector<mint::token> row;
      for (mint::index t = 0; t < task.length; ++t) row.push_back(sampled.tokens(0, t));
      row[std::size_t(io_pos)] = a;
      for (mint::index t : s_pos) row[std::size_t(t)] = b;
      clean_rows.push_back(row);
      // Corrupt: the second B becomes A, so A is the repeated name and the answer flips to B.
      // One token differs, so whatever moves the metric starts at that position.
      row[std::size_t(s_pos[1])] = a;
      corrupt_rows.push_back(row);
      correct.push_back(a);
      wrong.push_back(b);
    }
  const auto clean = mint::token_batch::from_rows(clean_rows);
  const auto corrupt = mint::token_batch::from_rows(corrupt_rows);
  // Per row logit(A) - logit(B) at END, the mean over rows: positive on clean prompts, negative on corrupt ones.
  const mint::logit_difference metric{correct, wrong};

  std::vector<std::string> resid_sites, z_sites, pattern_sites, layer_labels, head_labels, all_heads, early_heads;
  for (int l = 0; l < layers; ++l) {
    const std::string block = "blocks." + std::to_string(l);
    resid_sites.push_back(block + ".hook_resid_pre");
    z_sites.push_back(block + ".attn.hook_z");
    pattern_sites.push_back(block + ".attn.hook_pattern");
    layer_labels.push_back("layer " + std::to_string(l));
    for (int h = 0; h < heads; ++h) {
      all_heads.push_back(head_name(l, h));
      if (l + 1 < layers) early_heads.push_back(all_heads.back());
    }
  }
  for (int h = 0; h < heads; ++h) head_labels.push_back("H" + std::to_string(h));

  // 1. Denoising (the corrupt run with one clean activation): 0 is the corrupt run's logit
  // difference, 1 the clean run's. The residual stream, one position at a time.
  const auto resid = mint::activation_patching(model, clean, corrupt, metric, {.sites = resid_sites});
  std::printf("logit difference A - B at END: clean %.3f, corrupt %.3f (mean over %ld prompts)\n\n", resid.clean_value,
              resid.corrupt_value, long(clean.batch()));
  mint::matrixd resid_map(layers, task.length);
  for (int l = 0; l < layers; ++l)
    for (mint::index t = 0; t < task.length; ++t) resid_map(l, t) = resid[resid_sites[std::size_t(l)]].values(t);
  report(out / "resid_pre_by_position.svg", resid_map,
         {.title = "patching resid_pre by position", .row_title = "resid_pre of", .column_title = "position (the answer is A)",
          .row_labels = layer_labels, .column_labels = tokens});

  // 2. Each head's output (hook_z), every position at once.
  const auto z = mint::activation_patching(model, clean, corrupt, metric, {.sites = z_sites, .by = {mint::axis::head}});
  mint::matrixd z_map(layers, heads);
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) z_map(l, h) = z[z_sites[std::size_t(l)]].values(h);
  report(out / "head_output.svg", z_map,
         {.title = "patching each head's output (hook_z)", .row_title = "layer", .column_title = "head",
          .row_labels = layer_labels, .column_labels = head_labels});

  // 3. Path patching runs the clean prompts with one sender's corrupt output reaching only the
  // receivers: its value is 1 when the path carries nothing, so 1 - value is the share of the
  // clean-corrupt gap that flows along those edges. Into resid_final: each head's direct effect.
  const auto graph = model.graph();
  const auto direct = mint::path_patching(model, graph, clean, corrupt, metric, {.receivers = {"resid_final"}, .senders = all_heads});
  mint::matrixd direct_map(layers, heads);
  for (std::size_t i = 0; i < all_heads.size(); ++i) direct_map(mint::index(i) / heads, mint::index(i) % heads) = 1 - direct.values[i];
  report(out / "path_to_logits.svg", direct_map,
         {.title = "path patching: head -> logits", .row_title = "layer", .column_title = "head",
          .row_labels = layer_labels, .column_labels = head_labels});

  // Into the final layer's heads: each earlier head's edges into all their queries, keys or values.
  const std::vector<std::string> inputs{"q", "k", "v"};
  mint::matrixd into_final(3, mint::index(early_heads.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::vector<std::string> receivers;
    for (int h = 0; h < heads; ++h) receivers.push_back(head_name(layers - 1, h) + "." + inputs[i]);
    const auto p = mint::path_patching(model, graph, clean, corrupt, metric, {.receivers = receivers, .senders = early_heads});
    for (std::size_t s = 0; s < early_heads.size(); ++s) into_final(mint::index(i), mint::index(s)) = 1 - p.values[s];
  }
  report(out / "path_to_final_heads.svg", into_final,
         {.title = "path patching: head -> final heads", .row_title = "final heads' input", .column_title = "sender",
          .row_labels = inputs, .column_labels = early_heads});
  // One sender at a time leaves the others to carry the name, so the rows sum to less than the whole.
  std::vector<std::string> final_queries;
  for (int h = 0; h < heads; ++h) final_queries.push_back(head_name(layers - 1, h) + ".q");
  const double together = mint::path_patch(model, graph, clean, corrupt, metric, early_heads, final_queries);
  std::printf("every earlier head -> the final heads' queries at once: %.2f of the effect\n\n",
              (resid.clean_value - together) / (resid.clean_value - resid.corrupt_value));

  // 4. What the heads read at END, on the clean prompts: the mean attention over rows.
  auto run = mint::run_with_cache(model, clean, pattern_sites);
  mint::matrixd attention = mint::matrixd::Zero(layers * heads, task.length);
  for (int l = 0; l < layers; ++l) {
    const auto pattern = run.cache[pattern_sites[std::size_t(l)]];  // [batch, head, query, key]
    for (int h = 0; h < heads; ++h)
      for (mint::index b = 0; b < clean.batch(); ++b)
        for (mint::index t = 0; t < task.length; ++t)
          attention(l * heads + h, t) += pattern(b, h, task.length - 1, t) / double(clean.batch());
  }
  report(out / "attention_from_end.svg", attention,
         {.title = "attention from END (clean prompts)", .row_title = "head", .column_title = "key position",
          .row_labels = all_heads, .column_labels = tokens});

  std::printf("total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
