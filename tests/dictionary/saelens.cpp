// SAELens folders: what Python code following SAELens's layout writes loads in mint and
// gives SAELens's codes and reconstructions (tests/dictionary/make_saelens_folders.py); mint's
// folders round-trip, keep unknown keys, and bad folders are clear errors.
#include "mint/dictionary/saelens.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "mint/adapters/eigen.hpp"
#include "mint/io/npy.hpp"

namespace dict = mint::dictionary;
namespace fs = std::filesystem;
using dict::sae_architecture;

namespace {

fs::path python_folders() {
  const char* folder = std::getenv("MINT_SAELENS_FOLDERS");
  REQUIRE_MESSAGE(folder != nullptr, "MINT_SAELENS_FOLDERS is unset: run through meson test, with python3-numpy installed");
  return folder;
}

mint::matrixd read_matrix(const fs::path& path) {
  const auto a = mint::read_npy<double>(path.string(), {.convert = true});
  return mint::to_matrix<double>(a);
}

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("mint_saelens_" + name);
  fs::remove_all(p);
  return p;
}

}  // namespace

TEST_CASE("folders written by Python code following SAELens's layout load and run as SAELens runs them") {
  const fs::path root = python_folders();
  const struct {
    const char* folder;
    sae_architecture arch;
  } cases[] = {{"standard", sae_architecture::relu},     {"topk", sae_architecture::topk},
               {"topk_rescaled", sae_architecture::topk}, {"jumprelu", sae_architecture::jumprelu},
               {"gated", sae_architecture::gated},       {"no_b_dec_input", sae_architecture::relu},
               {"constant_norm_rescale", sae_architecture::jumprelu},
               {"layer_norm", sae_architecture::relu},    {"expected_average", sae_architecture::relu},
               {"bf16", sae_architecture::relu},          {"legacy_flat", sae_architecture::topk},
               {"legacy_topk_standard", sae_architecture::topk}};
  for (const auto& c : cases) {
    CAPTURE(c.folder);
    const auto loaded = dict::read_saelens<float>(root / c.folder);
    CHECK(loaded.sae.architecture() == c.arch);
    CHECK(loaded.sae.d_in() == 12);
    CHECK(loaded.sae.d_sae() == 40);
    const auto x = read_matrix(root / c.folder / "x.npy").cast<float>().eval();
    const auto z_ref = read_matrix(root / c.folder / "z.npy");
    const auto x_hat_ref = read_matrix(root / c.folder / "x_hat.npy");
    // float32 products of 12 terms of size ~1 against float64: ~1e-6 absolute; 1e-4 leaves room
    // for the normalizations' divisions.
    const mint::matrixd z = loaded.sae.encode(x).cast<double>();
    const mint::matrixd x_hat = loaded.sae.forward(x).cast<double>();
    CHECK((z - z_ref).cwiseAbs().maxCoeff() < 1e-4);
    CHECK((x_hat - x_hat_ref).cwiseAbs().maxCoeff() < 1e-4);
    CHECK(((z.array() > 0) == (z_ref.array() > 0)).all());  // the same latents fire
  }
}

TEST_CASE("a pre-6 flat config is read in v6's layout, and its metadata moves under metadata") {
  const auto loaded = dict::read_saelens<float>(python_folders() / "legacy_flat");
  CHECK(loaded.sae.options().k == 7);
  CHECK(loaded.hook_name() == "blocks.5.hook_resid_post");
  CHECK(loaded.config["metadata"]["hook_layer"] == 5);
  CHECK(loaded.config["metadata"]["model_name"] == "gpt2-small");
  CHECK(loaded.config["normalize_activations"] == "none");
  CHECK(!loaded.config.contains("hook_point"));
  CHECK(loaded.config["finetuning_scaling_factor"] == false);  // a key mint does not use, kept
}

TEST_CASE("a legacy TopK config with architecture \"standard\" loads as TopK, as SAELens 6.12.3 on converts it") {
  // SAELens 4.x wrote TopK SAEs as architecture "standard" with activation_fn_str "topk" and
  // activation_fn_kwargs.k; SAELens's pre-6 conversion makes them TopK even though
  // architecture is present. Read as ReLU, every latent with a positive pre-activation fires.
  const auto loaded = dict::read_saelens<float>(python_folders() / "legacy_topk_standard");
  REQUIRE(loaded.sae.architecture() == sae_architecture::topk);
  CHECK(loaded.sae.options().k == 6);
  CHECK(loaded.config["architecture"] == "topk");
  CHECK(loaded.config["k"] == 6);
  CHECK(loaded.hook_name() == "blocks.2.hook_resid_post");
  // Written back, it stays TopK in v6's layout, with a version SAELens reads as v6.
  const fs::path folder = scratch("legacy_topk");
  dict::write_saelens(folder, loaded);
  const auto written = mint::read_json((folder / "cfg.json").string());
  CHECK(written["architecture"] == "topk");
  CHECK(written["k"] == 6);
  CHECK(mint::detail::saelens_major_version(written["metadata"]["sae_lens_version"]) >= 6);
  CHECK(dict::read_saelens<float>(folder).sae.architecture() == sae_architecture::topk);
  fs::remove_all(folder);
}

TEST_CASE("a pre-6 folder written back carries a v6 version, so SAELens keeps its metadata") {
  // legacy_flat says sae_lens_version 3.4.0. Written back in v6's nested layout with that
  // version, SAELens would take its pre-6 path, which rebuilds metadata from top-level keys
  // only, and lose hook_name and model_name. (check_saelens_folders.py reads such a round
  // trip by SAELens's rules.)
  const auto loaded = dict::read_saelens<float>(python_folders() / "legacy_flat");
  CHECK(loaded.config["metadata"]["sae_lens_version"] == "3.4.0");  // as read: the folder's own
  const fs::path folder = scratch("legacy_round_trip");
  dict::write_saelens(folder, loaded);
  const auto written = mint::read_json((folder / "cfg.json").string());
  CHECK(written["metadata"]["sae_lens_version"] == "6.0.0");
  CHECK(!written.contains("sae_lens_version"));
  CHECK(written["metadata"]["hook_name"] == "blocks.5.hook_resid_post");
  CHECK(written["metadata"]["model_name"] == "gpt2-small");
  CHECK(written["metadata"]["sae_lens_training_version"] == "3.4.0");  // other metadata kept
  // A config that already says 6.x keeps its version.
  auto v6 = loaded.config;
  v6["metadata"]["sae_lens_version"] = "6.18.0";
  dict::write_saelens(folder, loaded.sae, v6);
  CHECK(mint::read_json((folder / "cfg.json").string())["metadata"]["sae_lens_version"] == "6.18.0");
  fs::remove_all(folder);
}

TEST_CASE("sparsity.safetensors is read when present") {
  const auto loaded = dict::read_saelens<float>(python_folders() / "standard");
  REQUIRE(loaded.log_sparsity.size() == 40);
  for (const float s : loaded.log_sparsity) CHECK((s <= 0.0f && s >= -7.0f));
  CHECK(dict::read_saelens<float>(python_folders() / "topk").log_sparsity.empty());
}

TEST_CASE("a folder read and written back keeps its sparsity.safetensors") {
  const auto loaded = dict::read_saelens<float>(python_folders() / "standard");
  REQUIRE(loaded.log_sparsity.size() == 40);
  const fs::path folder = scratch("sparsity_round_trip");
  dict::write_saelens(folder, loaded);
  REQUIRE(fs::exists(folder / "sparsity.safetensors"));
  const auto back = dict::read_saelens<float>(folder);
  CHECK(back.log_sparsity == loaded.log_sparsity);
  CHECK(back.hook_name() == loaded.hook_name());
  // Without sparsity, none is written (and a stale file from an earlier write is removed).
  auto without = loaded;
  without.log_sparsity.clear();
  dict::write_saelens(folder, without);
  CHECK(!fs::exists(folder / "sparsity.safetensors"));
  CHECK(dict::read_saelens<float>(folder).log_sparsity.empty());
  fs::remove_all(folder);
}

TEST_CASE("a folder mint writes reads back to the same SAE, with unknown keys and sparsity kept") {
  for (const auto arch : {sae_architecture::relu, sae_architecture::topk, sae_architecture::jumprelu, sae_architecture::gated}) {
    CAPTURE(dict::to_string(arch));
    dict::basic_sae<float> sae({.d_in = 6, .d_sae = 10, .architecture = arch, .k = 3}, 7);
    mint::rng r(3);
    for (auto& v : sae.parameters().flat()) v += float(0.1 * r.normal());
    const fs::path folder = scratch(std::string(dict::to_string(arch)));
    auto from_python = dict::read_saelens<float>(python_folders() / "bf16").config;
    std::vector<float> sparsity(10, -2.5f);
    dict::write_saelens(folder, sae, from_python, sparsity);
    const auto back = dict::read_saelens<float>(folder);
    CHECK(back.sae.architecture() == arch);
    CHECK(back.sae.parameters().flat().size() == sae.parameters().flat().size());
    for (std::size_t i = 0; i < sae.parameters().flat().size(); ++i)
      REQUIRE(back.sae.parameters().flat()[i] == sae.parameters().flat()[i]);  // float32 stored exactly
    CHECK(back.config["my_own_key"]["kept"] == mint::json::array({1, 2, 3}));
    CHECK(back.hook_name() == "blocks.3.hook_resid_pre");
    CHECK(back.config["dtype"] == "float32");  // what the file now holds, not the BF16 it came from
    CHECK(back.log_sparsity == sparsity);
    fs::remove_all(folder);
  }
}

TEST_CASE("BatchTopK is written as JumpReLU with its global threshold; the expected-average factor is folded in") {
  dict::basic_sae<float> batch({.d_in = 6, .d_sae = 10, .architecture = sae_architecture::batchtopk, .k = 2}, 5);
  const fs::path folder = scratch("batchtopk");
  CHECK_THROWS_WITH_AS(dict::write_saelens(folder, batch),
                       doctest::Contains("mint::dictionary::write_saelens: sae is a BatchTopK SAE without a global threshold"),
                       mint::argument_error);
  CHECK(!fs::exists(folder / "cfg.json"));
  batch.set_batch_threshold(0.25f);
  dict::write_saelens(folder, batch);
  const auto back = dict::read_saelens<float>(folder);
  CHECK(back.sae.architecture() == sae_architecture::jumprelu);
  CHECK((back.sae.threshold().array() == 0.25f).all());
  CHECK(!back.config.contains("k"));
  mint::rng r(11);
  mint::matrixf x(9, 6);
  r.fill_normal(mint::view(x));
  CHECK((back.sae.encode(x) - batch.encode(x)).cwiseAbs().maxCoeff() == 0.0f);

  dict::basic_sae<float> scaled({.d_in = 6, .d_sae = 10, .architecture = sae_architecture::relu,
                                 .normalize_activations = dict::normalization::expected_average_only_in}, 6);
  scaled.b_dec().setConstant(0.3f);
  scaled.set_scaling_factor(2.5f);
  dict::write_saelens(folder, scaled);
  const auto unscaled = dict::read_saelens<float>(folder);
  CHECK(unscaled.sae.scaling_factor() == 1.0f);
  // Folded in, the factor is gone: SAELens's fold_activation_norm_scaling_factor sets "none".
  CHECK(unscaled.config["normalize_activations"] == "none");
  CHECK(unscaled.sae.options().normalize_activations == dict::normalization::none);
  // Folding moves rounding around: float32, a few ulps of values ~1.
  CHECK((unscaled.sae.forward(x) - scaled.forward(x)).cwiseAbs().maxCoeff() < 1e-5f);
  CHECK((unscaled.sae.encode(x) - scaled.encode(x)).cwiseAbs().maxCoeff() < 1e-5f);
  fs::remove_all(folder);
}

TEST_CASE("bad folders are clear errors") {
  const fs::path folder = scratch("bad");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder),
                       doctest::Contains("lacks cfg.json or sae_weights.safetensors"), mint::argument_error);
  dict::basic_sae<float> sae({.d_in = 4, .d_sae = 5, .architecture = sae_architecture::relu}, 1);
  dict::write_saelens(folder, sae);
  const auto rewrite_config = [&](const std::string& text) {
    std::ofstream(folder / "cfg.json") << text;
  };
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "architecture": "mystery", "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has architecture \"mystery\""), mint::format_error);
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "normalize_activations": "unit", "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has normalize_activations = \"unit\""),
                       mint::format_error);
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "normalize_activations": 3, "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has normalize_activations = 3"), mint::format_error);
  rewrite_config(R"({"d_in": 4, "d_sae": 6, "architecture": "standard", "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has tensor 'W_enc' of shape [4, 5]; needs [4, 6]"),
                       mint::format_error);
  rewrite_config(R"({"d_in": -4, "d_sae": 5, "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has d_in = -4; needs a positive integer"),
                       mint::format_error);
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "architecture": "jumprelu", "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has no tensor 'threshold'"), mint::format_error);
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "architecture": "standard", "activation_fn_str": "topk", "activation_fn_kwargs": {}})");
  CHECK_THROWS_WITH_AS(dict::read_saelens<float>(folder), doctest::Contains("has a topk activation_fn without activation_fn_kwargs.k"),
                       mint::format_error);
  // SAELens reads the top-level sae_lens_version before metadata's: 5.0.0 here means a pre-6
  // config, whose topk activation makes a TopK SAE.
  rewrite_config(R"({"d_in": 4, "d_sae": 5, "architecture": "standard", "activation_fn_str": "topk",
                     "activation_fn_kwargs": {"k": 2}, "sae_lens_version": "5.0.0", "metadata": {"sae_lens_version": "6.1.0"}})");
  CHECK(dict::read_saelens<float>(folder).sae.architecture() == sae_architecture::topk);
  rewrite_config("[1, 2]");
  CHECK_THROWS_AS(dict::read_saelens<float>(folder), mint::format_error);
  rewrite_config("{\"d_in\": 4,");
  CHECK_THROWS_AS(dict::read_saelens<float>(folder), mint::format_error);
  fs::remove_all(folder);
}
