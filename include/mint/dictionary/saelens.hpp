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
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/io/json.hpp"
#include "mint/io/safetensors.hpp"

namespace mint::dictionary {

// Normalization modes by SAELens's names (which are mint's), through ADL.
NLOHMANN_JSON_SERIALIZE_ENUM(normalization, {{normalization::none, "none"},
                                             {normalization::expected_average_only_in, "expected_average_only_in"},
                                             {normalization::constant_norm_rescale, "constant_norm_rescale"},
                                             {normalization::layer_norm, "layer_norm"}})

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
  std::string hook_name() const;
};

#if MINT_CORE_BODIES
template <class T>
std::string saelens_sae<T>::hook_name() const {
  const auto m = config.find("metadata");
  if (m == config.end() || !m->is_object()) return "";
  const auto h = m->find("hook_name");
  return h != m->end() && h->is_string() ? h->template get<std::string>() : "";
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::dictionary

namespace mint::detail {

inline constexpr const char* saelens_read_fn = "mint::dictionary::read_saelens";
inline constexpr const char* saelens_write_fn = "mint::dictionary::write_saelens";

/// SAELens's config rules, on JSON alone: a core (mint/core/compiled.hpp) over the JSON type
/// rather than a scalar, so the JSON code depends on a template argument and is compiled once,
/// not in every unit that includes this header (g++ instantiates what a template's
/// non-dependent code calls).
template <class Json = json>
struct saelens_config {
  /// Keys that v6 keeps under "metadata" and pre-6 configs keep at the top level.
  static const std::vector<std::string>& metadata_keys();
  /// The major version in "6.12.1" (0 when absent or unreadable).
  static int major_version(const Json& version);
  /// The version SAELens reads a config as: the top-level sae_lens_version, else metadata's
  /// (SAELens 6.18's handle_config_defaulting). Null when neither is set.
  static Json version(const Json& cfg);
  /// A pre-6 flat config renamed into v6's layout (SAELens 6.18's conversion rules).
  static Json upgrade(Json cfg, const std::string& where);
  /// The SAE's shape and rule from a v6 config.
  static dictionary::sae_options options_of(const Json& cfg, const std::string& where);
  /// Sets the keys of a v6 config that describe an SAE of these options (others are kept).
  static void set_keys(Json& config, const dictionary::sae_options& options);

private:
  static index size(const Json& cfg, const char* key, const std::string& where);
  static dictionary::normalization normalization_of(const Json& value, const std::string& where);
};

/// The major version in "6.12.1" (0 when absent or unreadable).
inline int saelens_major_version(const json& version) { return saelens_config<>::major_version(version); }

#if MINT_CORE_BODIES
template <class Json>
const std::vector<std::string>& saelens_config<Json>::metadata_keys() {
  static const std::vector<std::string> keys = {
      "sae_lens_version", "sae_lens_training_version", "model_name", "hook_name", "hook_head_index",
      "hook_layer", "context_size", "prepend_bos", "dataset_path", "dataset_trust_remote_code",
      "model_class_name", "model_from_pretrained_kwargs", "seqpos_slice", "exclude_special_tokens",
      "neuronpedia_id"};
  return keys;
}

template <class Json>
int saelens_config<Json>::major_version(const Json& version) {
  if (!version.is_string()) return 0;
  const std::string s = version.template get<std::string>();
  int major = 0;
  std::size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9' && i < 6; ++i) major = major * 10 + (s[i] - '0');
  return i == 0 ? 0 : major;
}

template <class Json>
Json saelens_config<Json>::version(const Json& cfg) {
  const auto set = [](const Json& v) { return !v.is_null() && v != Json("") && v != Json(false); };
  const Json top = cfg.value("sae_lens_version", Json());
  if (set(top)) return top;
  const auto m = cfg.find("metadata");
  if (m != cfg.end() && m->is_object()) {
    const Json nested = m->value("sae_lens_version", Json());
    if (set(nested)) return nested;
  }
  return Json();
}

template <class Json>
Json saelens_config<Json>::upgrade(Json cfg, const std::string& where) {
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
  if (cfg.value("activation_fn", Json()) == Json("topk")) {
    const auto kwargs = cfg.value("activation_fn_kwargs", Json::object());
    if (!kwargs.is_object() || !kwargs.contains("k") || kwargs["k"].is_null())
      throw format_error(saelens_read_fn, where, "has a topk activation_fn without activation_fn_kwargs.k",
                         "needs k for a topk SAE");
    cfg["architecture"] = "topk";
    cfg["k"] = kwargs["k"];
  }
  if (!cfg.contains("architecture")) cfg["architecture"] = "standard";
  if (!cfg.contains("apply_b_dec_to_input")) cfg["apply_b_dec_to_input"] = true;
  if (cfg.contains("normalize_activations") && cfg["normalize_activations"].is_boolean())
    cfg["normalize_activations"] = cfg["normalize_activations"].template get<bool>() ? "expected_average_only_in" : "none";
  if (cfg.value("normalize_activations", Json()).is_null()) cfg["normalize_activations"] = "none";
  Json metadata = cfg.value("metadata", Json::object());
  if (!metadata.is_object()) metadata = Json::object();
  for (const auto& key : metadata_keys())
    if (cfg.contains(key)) {
      if (!metadata.contains(key)) metadata[key] = cfg[key];
      cfg.erase(key);
    }
  cfg["metadata"] = std::move(metadata);
  return cfg;
}

template <class Json>
dictionary::sae_options saelens_config<Json>::options_of(const Json& cfg, const std::string& where) {
  dictionary::sae_options options;
  options.d_in = size(cfg, "d_in", where);
  options.d_sae = size(cfg, "d_sae", where);
  const Json arch = cfg.value("architecture", Json("standard"));
  if (arch == "standard") options.architecture = dictionary::sae_architecture::relu;
  else if (arch == "topk") options.architecture = dictionary::sae_architecture::topk;
  else if (arch == "jumprelu") options.architecture = dictionary::sae_architecture::jumprelu;
  else if (arch == "gated") options.architecture = dictionary::sae_architecture::gated;
  else
    throw format_error(saelens_read_fn, where, "has architecture " + arch.dump(),
                       "needs \"standard\", \"topk\", \"jumprelu\" or \"gated\"");
  if (options.architecture == dictionary::sae_architecture::topk) {
    options.k = size(cfg, "k", where);
    if (options.k > options.d_sae)
      throw format_error(saelens_read_fn, where, detail::str("has k = ", options.k), detail::str("needs k <= d_sae = ", options.d_sae));
  }
  const Json apply = cfg.value("apply_b_dec_to_input", Json(true));
  if (!apply.is_boolean())
    throw format_error(saelens_read_fn, where, "has apply_b_dec_to_input = " + apply.dump(), "needs true or false");
  options.apply_b_dec_to_input = apply.template get<bool>();
  options.normalize_activations = normalization_of(cfg.value("normalize_activations", Json()), where);
  return options;
}

template <class Json>
void saelens_config<Json>::set_keys(Json& config, const dictionary::sae_options& options) {
  config["d_in"] = options.d_in;
  config["d_sae"] = options.d_sae;
  config["dtype"] = "float32";
  if (!config.contains("device")) config["device"] = "cpu";
  config["apply_b_dec_to_input"] = options.apply_b_dec_to_input;
  // A folded expected_average_only_in factor leaves nothing to scale: SAELens's
  // fold_activation_norm_scaling_factor sets "none" too.
  const auto mode = options.normalize_activations == dictionary::normalization::expected_average_only_in
                        ? dictionary::normalization::none
                        : options.normalize_activations;
  config["normalize_activations"] = mode;
  switch (options.architecture) {
    case dictionary::sae_architecture::relu: config["architecture"] = "standard"; break;
    case dictionary::sae_architecture::topk: config["architecture"] = "topk"; break;
    case dictionary::sae_architecture::batchtopk:
    case dictionary::sae_architecture::jumprelu: config["architecture"] = "jumprelu"; break;
    case dictionary::sae_architecture::gated: config["architecture"] = "gated"; break;
  }
  if (options.architecture == dictionary::sae_architecture::topk) {
    config["k"] = options.k;
    config["rescale_acts_by_decoder_norm"] = false;
  } else {
    config.erase("k");
    config.erase("rescale_acts_by_decoder_norm");
  }
  if (!config.contains("metadata") || !config["metadata"].is_object()) config["metadata"] = Json::object();
  // The layout is v6's, so the version must be too: SAELens reads a config whose version is
  // below 6.0.0 (a pre-6 folder's own, read and written back) as a flat pre-6 one, rebuilding
  // metadata from top-level keys and losing hook_name and model_name. SAELens reads a
  // top-level sae_lens_version first, so none is left there.
  config.erase("sae_lens_version");
  if (major_version(config["metadata"].value("sae_lens_version", Json())) < 6)
    config["metadata"]["sae_lens_version"] = "6.0.0";
}

template <class Json>
index saelens_config<Json>::size(const Json& cfg, const char* key, const std::string& where) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || !it->is_number_integer() || it->template get<std::int64_t>() < 1 || it->template get<std::int64_t>() > (index(1) << 31))
    throw format_error(saelens_read_fn, where, detail::str("has ", key, " = ", it == cfg.end() ? std::string("nothing") : it->dump()),
                       "needs a positive integer");
  return index(it->template get<std::int64_t>());
}

template <class Json>
dictionary::normalization saelens_config<Json>::normalization_of(const Json& value, const std::string& where) {
  if (value.is_null()) return dictionary::normalization::none;
  const auto mode = value.template get<dictionary::normalization>();
  // An unknown name reads as the first mode (nlohmann's enum rule): refuse it instead.
  if (Json(mode) != value)
    throw format_error(saelens_read_fn, where, "has normalize_activations = " + value.dump(),
                       "needs \"none\", \"expected_average_only_in\", \"constant_norm_rescale\" or \"layer_norm\"");
  return mode;
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
    throw format_error(saelens_read_fn, where, "has tensor '" + name + "' of shape " + detail::shape_string(std::span<const index>(shape)),
                       "needs " + detail::shape_string(into.extents()) + " for the config's d_in and d_sae");
  mint::copy(mint::view(a), into);
}
#endif  // MINT_CORE_BODIES

/// read_saelens and write_saelens over float and double SAEs (mint/core/compiled.hpp).
template <class T>
struct saelens_core {
  static dictionary::saelens_sae<T> read(const std::filesystem::path& folder);
  static void write(const std::filesystem::path& folder, const dictionary::basic_sae<T>& sae, json config,
                    std::span<const float> log_sparsity);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::saelens_sae<T> saelens_core<T>::read(const std::filesystem::path& folder) {
  const std::string cfg_path = (folder / "cfg.json").string();
  const std::string weights_path = (folder / "sae_weights.safetensors").string();
  if (!std::filesystem::is_regular_file(cfg_path) || !std::filesystem::is_regular_file(weights_path))
    throw argument_error(saelens_read_fn, "folder", "'" + folder.string() + "' lacks cfg.json or sae_weights.safetensors",
                         "needs a SAELens folder holding both");
  json cfg = read_json(cfg_path);
  const std::string where = "file '" + cfg_path + "'";
  if (!cfg.is_object()) throw format_error(saelens_read_fn, where, "is not a JSON object", "needs SAELens's cfg.json");
  if (saelens_config<>::major_version(saelens_config<>::version(cfg)) < 6) cfg = saelens_config<>::upgrade(std::move(cfg), where);

  const dictionary::sae_options options = saelens_config<>::options_of(cfg, where);

  dictionary::saelens_sae<T> out{dictionary::basic_sae<T>(options), std::move(cfg), {}};
  const safetensors_file weights(weights_path);
  const std::string weights_where = "file '" + weights_path + "'";
  for (const auto& e : out.sae.parameters().entries())
    saelens_load_tensor(weights, e.name, out.sae.parameters().view_of(e), weights_where);
  if (weights.contains("scaling_factor")) {
    // SAELens v1/v2 stored a per-latent scaling_factor of ones; anything else has no v6 meaning.
    const auto s = weights.read<double>("scaling_factor", {.convert = true});
    for (index i = 0; i < s.size(); ++i)
      if (s.data()[i] != 1.0)
        throw format_error(saelens_read_fn, weights_where, "has a scaling_factor tensor that is not all ones",
                           "needs the ones older SAELens versions wrote (or none)");
  }
  if (options.architecture == dictionary::sae_architecture::topk && out.config.value("rescale_acts_by_decoder_norm", false) == true) {
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
    saelens_load_tensor(sparsity, "sparsity", tensor_view<float>(out.log_sparsity.data(), {options.d_sae}),
                        "file '" + sparsity_path.string() + "'");
  }
  return out;
}

template <class T>
void saelens_core<T>::write(const std::filesystem::path& folder, const dictionary::basic_sae<T>& sae, json config,
                            std::span<const float> log_sparsity) {
  const char* fn = saelens_write_fn;
  if (!config.is_object()) throw argument_error(fn, "config", "is " + config.dump(), "needs a JSON object (SAELens's cfg.json)");
  if (!log_sparsity.empty() && index(log_sparsity.size()) != sae.d_sae())
    throw shape_error(fn, "log_sparsity", detail::str("has ", log_sparsity.size(), " values"), detail::str("needs one per latent, d_sae = ", sae.d_sae()));
  const index m = sae.d_sae();
  const auto arch = sae.architecture();
  if (arch == dictionary::sae_architecture::batchtopk && !(sae.batch_threshold() > 0))
    throw argument_error(fn, "sae", "is a BatchTopK SAE without a global threshold (batch_threshold() is 0)",
                         "needs training (or set_batch_threshold) first: SAELens runs it as JumpReLU with that threshold");

  // Weights in float32, the expected-average factor s folded in: W_enc s, W_dec / s, b_dec / s.
  const double s = sae.options().normalize_activations == dictionary::normalization::expected_average_only_in ? double(sae.scaling_factor()) : 1.0;
  matrixf W_enc = (sae.W_enc().template cast<double>() * s).template cast<float>();
  matrixf W_dec = (sae.W_dec().template cast<double>() / s).template cast<float>();
  vectorf b_dec = (sae.b_dec().template cast<double>() / s).template cast<float>();
  std::vector<std::pair<std::string, array_ref>> tensors = {{"W_enc", W_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}};
  vectorf b_enc, b_gate, b_mag, r_mag, threshold;
  if (arch == dictionary::sae_architecture::gated) {
    b_gate = sae.b_gate().template cast<float>();
    b_mag = sae.b_mag().template cast<float>();
    r_mag = sae.r_mag().template cast<float>();
    tensors.insert(tensors.end(), {{"b_gate", b_gate}, {"b_mag", b_mag}, {"r_mag", r_mag}});
  } else {
    b_enc = sae.b_enc().template cast<float>();
    tensors.emplace_back("b_enc", b_enc);
  }
  if (arch == dictionary::sae_architecture::jumprelu) threshold = sae.threshold().template cast<float>();
  if (arch == dictionary::sae_architecture::batchtopk) threshold = vectorf::Constant(m, float(sae.batch_threshold()));
  if (threshold.size() > 0) tensors.emplace_back("threshold", threshold);

  saelens_config<>::set_keys(config, sae.options());

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
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Reads a SAELens folder (cfg.json, sae_weights.safetensors, optional sparsity.safetensors).
/// Weights in BF16/F16/F64 convert to T. A TopK SAE with rescale_acts_by_decoder_norm has the
/// decoder norms folded into its weights (the same map from inputs to reconstructions); a
/// folder's "expected_average_only_in" needs no factor (SAELens folds it into the weights).
template <class T = float>
saelens_sae<T> read_saelens(const std::filesystem::path& folder) {
  return detail::saelens_core<T>::read(folder);
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
  detail::saelens_core<T>::write(folder, sae, std::move(config), log_sparsity);
}

/// Writes what read_saelens read (after any changes to it): its SAE, its config and its sparsity.
template <class T>
void write_saelens(const std::filesystem::path& folder, const saelens_sae<T>& loaded) {
  write_saelens(folder, loaded.sae, loaded.config, std::span<const float>(loaded.log_sparsity));
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_SAELENS(CORE)                      \
  CORE(struct mint::detail::saelens_config<>)       \
  CORE(struct mint::dictionary::saelens_sae<float>)             \
  CORE(struct mint::dictionary::saelens_sae<double>)            \
  MINT_CORE_FD(CORE, mint::detail::saelens_core)
MINT_CORES_DICTIONARY_SAELENS(MINT_CORE)
