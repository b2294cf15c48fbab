// Writes one SAELens folder per mint architecture (and a scaled one, a layer-normed one, and
// a pre-6 folder read and written back) with mint's own codes and reconstructions of some
// inputs beside it, for check_saelens_folders.py to load by SAELens's rules and compare.
// Usage: dictionary_write_saelens OUT
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/saelens.hpp"
#include "mint/io/npy.hpp"

namespace dict = mint::dictionary;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: dictionary_write_saelens OUT\n";
    return 2;
  }
  const std::filesystem::path out = argv[1];
  mint::rng r(2026);
  mint::matrixf x(16, 12);
  r.fill_normal(mint::view(x));
  const struct {
    const char* name;
    dict::sae_options options;
  } cases[] = {
      {"relu", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::relu}},
      {"topk", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::topk, .k = 6}},
      {"batchtopk", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::batchtopk, .k = 6}},
      {"jumprelu", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::jumprelu}},
      {"gated", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::gated}},
      {"relu_scaled", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::relu,
                       .normalize_activations = dict::normalization::expected_average_only_in}},
      {"topk_layer_norm", {.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::topk, .k = 6,
                           .normalize_activations = dict::normalization::layer_norm}},
  };
  for (const auto& c : cases) {
    dict::basic_sae<float> sae(c.options, 17);
    for (auto& v : sae.parameters().flat()) v += float(0.2 * r.normal());
    if (c.options.architecture == dict::sae_architecture::jumprelu)
      for (auto& t : sae.threshold()) t = float(0.05 + 0.4 * r.uniform());
    if (c.options.architecture == dict::sae_architecture::batchtopk) sae.set_batch_threshold(0.3f);
    if (c.options.normalize_activations == dict::normalization::expected_average_only_in) sae.set_scaling_factor(3.0f);
    const auto folder = out / c.name;
    dict::write_saelens(folder, sae, {{"metadata", {{"hook_name", "blocks.1.hook_resid_post"}, {"model_name", "mint-toy"}}}});
    mint::write_npy((folder / "x.npy").string(), x);
    mint::write_npy((folder / "mint_z.npy").string(), sae.encode(x));
    mint::write_npy((folder / "mint_x_hat.npy").string(), sae.forward(x));
  }
  {
    // A pre-6 flat folder (SAELens 2.x's version, 4.x's TopK spelling: architecture "standard"
    // with a topk activation) read and written back: the round trip must leave a folder that
    // SAELens reads as v6, TopK, with its metadata and its sparsity.
    dict::basic_sae<float> sae({.d_in = 12, .d_sae = 40, .architecture = dict::sae_architecture::topk, .k = 6}, 19);
    for (auto& v : sae.parameters().flat()) v += float(0.2 * r.normal());
    const auto source = std::filesystem::temp_directory_path() / "mint_saelens_legacy_source";
    std::filesystem::remove_all(source);
    dict::write_saelens(source, sae);
    const mint::json flat = {{"d_in", 12}, {"d_sae", 40}, {"dtype", "torch.float32"}, {"device", "cpu"},
                             {"architecture", "standard"}, {"activation_fn_str", "topk"},
                             {"activation_fn_kwargs", {{"k", 6}}}, {"hook_point", "blocks.1.hook_resid_post"},
                             {"hook_point_layer", 1}, {"model_name", "mint-toy"}, {"normalize_activations", false},
                             {"context_size", 128}, {"sae_lens_version", "2.1.3"}};
    mint::write_json((source / "cfg.json").string(), flat);
    std::vector<float> sparsity(40);
    for (std::size_t j = 0; j < sparsity.size(); ++j) sparsity[j] = -1.0f - 0.05f * float(j);
    mint::write_safetensors((source / "sparsity.safetensors").string(),
                            {{"sparsity", mint::array_ref(mint::dtype::float32, {40}, sparsity.data())}});
    const auto loaded = dict::read_saelens<float>(source);
    const auto folder = out / "legacy_round_trip";
    dict::write_saelens(folder, loaded);
    mint::write_npy((folder / "x.npy").string(), x);
    mint::write_npy((folder / "mint_z.npy").string(), loaded.sae.encode(x));
    mint::write_npy((folder / "mint_x_hat.npy").string(), loaded.sae.forward(x));
    std::filesystem::remove_all(source);
  }
  std::cout << "wrote " << std::size(cases) + 1 << " SAELens folders under " << out.string() << "\n";
}
