// SAEs in SAELens's folder layout, by SAELens 6.18's rules: cfg.json and
// sae_weights.safetensors (and sparsity.safetensors when present), v6 configs with a
// metadata object and the flat configs written before v6. Every SAELens architecture;
// mint's BatchTopK is written as JumpReLU with its global threshold. Unknown config
// keys are kept.
// Cost: one read or write of the weights.
#pragma once

#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mint/adapters/eigen.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/io/json.hpp"
#include "mint/io/safetensors.hpp"

namespace mint::dictionary {

/// An SAE read from a SAELens folder, with the config it came with.
template <class T = float>
struct saelens_sae {
  basic_sae<T> sae;
  /// cfg.json in SAELens v6's layout (a flat pre-6 config is renamed into it); keys mint does
  /// not use are kept, and write_saelens writes them back.
  json config;
  /// log10(firing frequency + 1e-10) per latent, from sparsity.safetensors (empty when absent).
  std::vector<float> log_sparsity;

  /// The hook the SAE was trained on (metadata.hook_name; "" when the config has none).
  std::string hook_name() const {
    const auto m = config.find("metadata");
    if (m == config.end() || !m->is_object()) return "";
    const auto h = m->find("hook_name");
    return h != m->end() && h->is_string() ? h->template get<std::string>() : "";
  }
};

namespace detail {

inline constexpr const char* saelens_read_fn = "mint::dictionary::read_saelens";
inline constexpr const char* saelens_write_fn = "mint::dictionary::write_saelens";

/// Keys that v6 keeps under "metadata" and pre-6 configs keep at the top level.
inline const std::vector<std::string>& saelens_metadata_keys() {
  static const std::vector<std::string> keys = {
      "sae_lens_version", "sae_lens_training_version", "model_name", "hook_name", "hook_head_index",
      "hook_layer", "context_size", "prepend_bos", "dataset_path", "dataset_trust_remote_code",
      "model_class_name", "model_from_pretrained_kwargs", "seqpos_slice", "exclude_special_tokens",
      "neuronpedia_id"};
  return keys;
}

/// The major version in "6.12.1" (0 when absent or unreadable).
inline int saelens_major_version(const json& version) {
  if (!version.is_string()) return 0;
  const std::string s = version.get<std::string>();
  int major = 0;
  std::size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9' && i < 6; ++i) major = major * 10 + (s[i] - '0');
  return i == 0 ? 0 : major;
}

/// The version SAELens reads a config as: the top-level sae_lens_version, else metadata's
/// (SAELens 6.18's handle_config_defaulting). Null when neither is set.
inline json saelens_version(const json& cfg) {
  const auto set = [](const json& v) { return !v.is_null() && v != json("") && v != json(false); };
  const json top = cfg.value("sae_lens_version", json());
  if (set(top)) return top;
  const auto m = cfg.find("metadata");
  if (m != cfg.end() && m->is_object()) {
    const json nested = m->value("sae_lens_version", json());
    if (set(nested)) return nested;
  }
  return json();
}

/// A pre-6 flat config renamed into v6's layout (SAELens 6.18's conversion rules).
inline json saelens_upgrade(json cfg, const std::string& where) {
  const auto rename = [&](const char* from, const char* to) {
    if (cfg.contains(from)) {
      if (!cfg.contains(to)) cfg[to] = cfg[from];
      cfg.erase(from);
    }
  };
  rename("hook_point", "hook_name");
  rename("hook_point_head_index", "hook_head_index");
  rename("hook_point_layer", "hook_layer");
  rename("activation_fn_str", "activation_fn");
  // A topk activation makes a TopK SAE whether or not architecture is present: SAELens 4.x
  // wrote TopK SAEs as architecture "standard" with activation_fn_str "topk" (converted by
  // SAELens since 6.12.3, "properly convert old SAELens TopK SAEs").
  if (cfg.value("activation_fn", json()) == json("topk")) {
    const auto kwargs = cfg.value("activation_fn_kwargs", json::object());
    if (!kwargs.is_object() || !kwargs.contains("k") || kwargs["k"].is_null())
      throw format_error(saelens_read_fn, where, "has a topk activation_fn without activation_fn_kwargs.k",
                         "needs k for a topk SAE");
    cfg["architecture"] = "topk";
    cfg["k"] = kwargs["k"];
  }
  if (!cfg.contains("architecture")) cfg["architecture"] = "standard";
  if (!cfg.contains("apply_b_dec_to_input")) cfg["apply_b_dec_to_input"] = true;
  if (cfg.contains("normalize_activations") && cfg["normalize_activations"].is_boolean())
    cfg["normalize_activations"] = cfg["normalize_activations"].get<bool>() ? "expected_average_only_in" : "none";
  if (cfg.value("normalize_activations", json()).is_null()) cfg["normalize_activations"] = "none";
  json metadata = cfg.value("metadata", json::object());
  if (!metadata.is_object()) metadata = json::object();
  for (const auto& key : saelens_metadata_keys())
    if (cfg.contains(key)) {
      if (!metadata.contains(key)) metadata[key] = cfg[key];
      cfg.erase(key);
    }
  cfg["metadata"] = std::move(metadata);
  return cfg;
}

inline index saelens_size(const json& cfg, const char* key, const std::string& where) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || !it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > (index(1) << 31))
    throw format_error(saelens_read_fn, where, mint::detail::str("has ", key, " = ", it == cfg.end() ? std::string("nothing") : it->dump()),
                       "needs a positive integer");
  return index(it->get<std::int64_t>());
}

inline normalization saelens_normalization(const json& value, const std::string& where) {
  if (value.is_null()) return normalization::none;
  if (value.is_string()) {
    const auto s = value.get<std::string>();
    if (s == "none") return normalization::none;
    if (s == "expected_average_only_in") return normalization::expected_average_only_in;
    if (s == "constant_norm_rescale") return normalization::constant_norm_rescale;
    if (s == "layer_norm") return normalization::layer_norm;
  }
  throw format_error(saelens_read_fn, where, "has normalize_activations = " + value.dump(),
                     "needs \"none\", \"expected_average_only_in\", \"constant_norm_rescale\" or \"layer_norm\"");
}

inline const char* saelens_normalization_name(normalization n) {
  switch (n) {
    case normalization::none: return "none";
    case normalization::expected_average_only_in: return "expected_average_only_in";
    case normalization::constant_norm_rescale: return "constant_norm_rescale";
    case normalization::layer_norm: return "layer_norm";
  }
  return "none";
}

/// Copies a tensor of the weights file into a parameter of the SAE, checking its shape.
template <class T>
void saelens_load_tensor(const safetensors_file& file, const std::string& name, tensor_view<T> into,
                         const std::string& where) {
  if (!file.contains(name))
    throw format_error(saelens_read_fn, where, "has no tensor '" + name + "'", "needs it for this architecture");
  const auto a = file.read<T>(name, {.convert = true});
  const auto& shape = a.shape();
  const bool same = index(shape.size()) == into.rank() && [&] {
    for (std::size_t i = 0; i < shape.size(); ++i)
      if (shape[i] != into.extent(index(i))) return false;
    return true;
  }();
  if (!same)
    throw format_error(saelens_read_fn, where, "has tensor '" + name + "' of shape " + mint::detail::shape_string(std::span<const index>(shape)),
                       "needs " + mint::detail::shape_string(into.extents()) + " for the config's d_in and d_sae");
  mint::copy(mint::view(a), into);
}

}  // namespace detail

/// Reads a SAELens folder (cfg.json, sae_weights.safetensors, optional sparsity.safetensors).
/// Weights in BF16/F16/F64 convert to T. A TopK SAE with rescale_acts_by_decoder_norm has the
/// decoder norms folded into its weights (the same map from inputs to reconstructions); a
/// folder's "expected_average_only_in" needs no factor (SAELens folds it into the weights).
template <class T = float>
saelens_sae<T> read_saelens(const std::filesystem::path& folder) {
  const std::string cfg_path = (folder / "cfg.json").string();
  const std::string weights_path = (folder / "sae_weights.safetensors").string();
  if (!std::filesystem::is_regular_file(cfg_path) || !std::filesystem::is_regular_file(weights_path))
    throw argument_error(detail::saelens_read_fn, "folder", "'" + folder.string() + "' lacks cfg.json or sae_weights.safetensors",
                         "needs a SAELens folder holding both");
  json cfg = read_json(cfg_path);
  const std::string where = "file '" + cfg_path + "'";
  if (!cfg.is_object()) throw format_error(detail::saelens_read_fn, where, "is not a JSON object", "needs SAELens's cfg.json");
  if (detail::saelens_major_version(detail::saelens_version(cfg)) < 6) cfg = detail::saelens_upgrade(std::move(cfg), where);

  sae_options options;
  options.d_in = detail::saelens_size(cfg, "d_in", where);
  options.d_sae = detail::saelens_size(cfg, "d_sae", where);
  const json arch = cfg.value("architecture", json("standard"));
  if (arch == "standard") options.architecture = sae_architecture::relu;
  else if (arch == "topk") options.architecture = sae_architecture::topk;
  else if (arch == "jumprelu") options.architecture = sae_architecture::jumprelu;
  else if (arch == "gated") options.architecture = sae_architecture::gated;
  else
    throw format_error(detail::saelens_read_fn, where, "has architecture " + arch.dump(),
                       "needs \"standard\", \"topk\", \"jumprelu\" or \"gated\"");
  if (options.architecture == sae_architecture::topk) {
    options.k = detail::saelens_size(cfg, "k", where);
    if (options.k > options.d_sae)
      throw format_error(detail::saelens_read_fn, where, mint::detail::str("has k = ", options.k), mint::detail::str("needs k <= d_sae = ", options.d_sae));
  }
  const json apply = cfg.value("apply_b_dec_to_input", json(true));
  if (!apply.is_boolean())
    throw format_error(detail::saelens_read_fn, where, "has apply_b_dec_to_input = " + apply.dump(), "needs true or false");
  options.apply_b_dec_to_input = apply.get<bool>();
  options.normalize_activations = detail::saelens_normalization(cfg.value("normalize_activations", json()), where);

  saelens_sae<T> out{basic_sae<T>(options), std::move(cfg), {}};
  const safetensors_file weights(weights_path);
  const std::string weights_where = "file '" + weights_path + "'";
  for (const auto& e : out.sae.parameters().entries())
    detail::saelens_load_tensor(weights, e.name, out.sae.parameters().view_of(e), weights_where);
  if (weights.contains("scaling_factor")) {
    // SAELens v1/v2 stored a per-latent scaling_factor of ones; anything else has no v6 meaning.
    const auto s = weights.read<double>("scaling_factor", {.convert = true});
    for (index i = 0; i < s.size(); ++i)
      if (s.data()[i] != 1.0)
        throw format_error(detail::saelens_read_fn, weights_where, "has a scaling_factor tensor that is not all ones",
                           "needs the ones older SAELens versions wrote (or none)");
  }
  if (options.architecture == sae_architecture::topk && out.config.value("rescale_acts_by_decoder_norm", false) == true) {
    // Selecting on pre_j ||W_dec[j]|| and decoding with unit rows is the same map as scaling
    // encoder column j and b_enc[j] by ||W_dec[j]|| and decoder row j by its inverse.
    auto enc = out.sae.W_enc();
    auto dec = out.sae.W_dec();
    auto b = out.sae.b_enc();
    for (index j = 0; j < options.d_sae; ++j) {
      const T norm = dec.row(j).norm();
      if (!(norm > 0)) continue;
      enc.col(j) *= norm;
      b(j) *= norm;
      dec.row(j) /= norm;
    }
    out.config["rescale_acts_by_decoder_norm"] = false;
  }
  const auto sparsity_path = folder / "sparsity.safetensors";
  if (std::filesystem::is_regular_file(sparsity_path)) {
    const safetensors_file sparsity(sparsity_path.string());
    out.log_sparsity.resize(std::size_t(options.d_sae));
    detail::saelens_load_tensor(sparsity, "sparsity", tensor_view<float>(out.log_sparsity.data(), {options.d_sae}),
                                "file '" + sparsity_path.string() + "'");
  }
  return out;
}

/// Writes `sae` as a SAELens v6 folder (created if needed): cfg.json from `config` (its other
/// keys kept, the SAE's own keys set from the SAE, metadata.sae_lens_version at least 6.0.0)
/// and sae_weights.safetensors in float32, plus sparsity.safetensors when `log_sparsity` is
/// given (without it, a sparsity.safetensors already in the folder is removed). BatchTopK is
/// written as JumpReLU with the global threshold for every latent; an expected_average_only_in
/// factor is folded into the weights and the mode written as "none", as SAELens's own fold
/// does. Each file is written whole or not at all, weights first.
template <class T>
void write_saelens(const std::filesystem::path& folder, const basic_sae<T>& sae, json config = json::object(),
                   std::span<const float> log_sparsity = {}) {
  const char* fn = detail::saelens_write_fn;
  if (!config.is_object()) throw argument_error(fn, "config", "is " + config.dump(), "needs a JSON object (SAELens's cfg.json)");
  if (!log_sparsity.empty() && index(log_sparsity.size()) != sae.d_sae())
    throw shape_error(fn, "log_sparsity", mint::detail::str("has ", log_sparsity.size(), " values"), mint::detail::str("needs one per latent, d_sae = ", sae.d_sae()));
  const index d = sae.d_in(), m = sae.d_sae();
  const auto arch = sae.architecture();
  if (arch == sae_architecture::batchtopk && !(sae.batch_threshold() > 0))
    throw argument_error(fn, "sae", "is a BatchTopK SAE without a global threshold (batch_threshold() is 0)",
                         "needs training (or set_batch_threshold) first: SAELens runs it as JumpReLU with that threshold");

  // Weights in float32, the expected-average factor s folded in: W_enc s, W_dec / s, b_dec / s.
  const double s = sae.options().normalize_activations == normalization::expected_average_only_in ? double(sae.scaling_factor()) : 1.0;
  matrixf W_enc = (sae.W_enc().template cast<double>() * s).template cast<float>();
  matrixf W_dec = (sae.W_dec().template cast<double>() / s).template cast<float>();
  vectorf b_dec = (sae.b_dec().template cast<double>() / s).template cast<float>();
  std::vector<std::pair<std::string, array_ref>> tensors = {{"W_enc", W_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}};
  vectorf b_enc, b_gate, b_mag, r_mag, threshold;
  if (arch == sae_architecture::gated) {
    b_gate = sae.b_gate().template cast<float>();
    b_mag = sae.b_mag().template cast<float>();
    r_mag = sae.r_mag().template cast<float>();
    tensors.insert(tensors.end(), {{"b_gate", b_gate}, {"b_mag", b_mag}, {"r_mag", r_mag}});
  } else {
    b_enc = sae.b_enc().template cast<float>();
    tensors.emplace_back("b_enc", b_enc);
  }
  if (arch == sae_architecture::jumprelu) threshold = sae.threshold().template cast<float>();
  if (arch == sae_architecture::batchtopk) threshold = vectorf::Constant(m, float(sae.batch_threshold()));
  if (threshold.size() > 0) tensors.emplace_back("threshold", threshold);

  config["d_in"] = d;
  config["d_sae"] = m;
  config["dtype"] = "float32";
  if (!config.contains("device")) config["device"] = "cpu";
  config["apply_b_dec_to_input"] = sae.options().apply_b_dec_to_input;
  // A folded expected_average_only_in factor leaves nothing to scale: SAELens's
  // fold_activation_norm_scaling_factor sets "none" too.
  const auto mode = sae.options().normalize_activations == normalization::expected_average_only_in
                        ? normalization::none
                        : sae.options().normalize_activations;
  config["normalize_activations"] = detail::saelens_normalization_name(mode);
  switch (arch) {
    case sae_architecture::relu: config["architecture"] = "standard"; break;
    case sae_architecture::topk: config["architecture"] = "topk"; break;
    case sae_architecture::batchtopk:
    case sae_architecture::jumprelu: config["architecture"] = "jumprelu"; break;
    case sae_architecture::gated: config["architecture"] = "gated"; break;
  }
  if (arch == sae_architecture::topk) {
    config["k"] = sae.options().k;
    config["rescale_acts_by_decoder_norm"] = false;
  } else {
    config.erase("k");
    config.erase("rescale_acts_by_decoder_norm");
  }
  if (!config.contains("metadata") || !config["metadata"].is_object()) config["metadata"] = json::object();
  // The layout is v6's, so the version must be too: SAELens reads a config whose version is
  // below 6.0.0 (a pre-6 folder's own, read and written back) as a flat pre-6 one, rebuilding
  // metadata from top-level keys and losing hook_name and model_name. SAELens reads a
  // top-level sae_lens_version first, so none is left there.
  config.erase("sae_lens_version");
  if (detail::saelens_major_version(config["metadata"].value("sae_lens_version", json())) < 6)
    config["metadata"]["sae_lens_version"] = "6.0.0";

  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error || !std::filesystem::is_directory(folder))
    throw argument_error(fn, "folder", "'" + folder.string() + "' cannot be created (" + error.message() + ")",
                         "needs a path where a folder can be made");
  write_safetensors((folder / "sae_weights.safetensors").string(), tensors);
  const auto sparsity_path = folder / "sparsity.safetensors";
  if (!log_sparsity.empty()) {
    write_safetensors(sparsity_path.string(), {{"sparsity", array_ref(dtype::float32, {m}, log_sparsity.data())}});
  } else {
    // One left by an earlier write would describe other weights.
    std::filesystem::remove(sparsity_path, error);
  }
  write_json((folder / "cfg.json").string(), config);
}

/// Writes what read_saelens read (after any changes to it): its SAE, its config and its sparsity.
template <class T>
void write_saelens(const std::filesystem::path& folder, const saelens_sae<T>& loaded) {
  write_saelens(folder, loaded.sae, loaded.config, std::span<const float>(loaded.log_sparsity));
}

}  // namespace mint::dictionary
