// The toy transformer on disk, as safetensors: every weight under its
// TransformerLens name and shape (so Python reads it with safetensors.numpy
// or torch), the config as JSON in the metadata under "mint.toy.config".
// Checkpoints add Adam's moments and step, so a training run resumes exactly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mint/core/adam.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/json.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/toy/transformer.hpp"

namespace mint::toy {

// The config's JSON: every field under its own name, the activation by name (ADL, so
// json(config) and j.get<transformer_config>() work in any unit that includes this header).
NLOHMANN_JSON_SERIALIZE_ENUM(activation_fn, {{activation_fn::gelu, "gelu"},
                                             {activation_fn::gelu_tanh, "gelu_tanh"},
                                             {activation_fn::relu, "relu"}})
MINT_JSON_FIELDS(transformer_config, vocab, context, d_model, layers, heads, kv_heads, d_head, d_mlp, activation,
                 layer_norm, split_qkv_input, layer_norm_eps)

}  // namespace mint::toy

namespace mint::detail {

template <class T>
std::vector<std::pair<std::string, array_ref>> weight_refs(const toy::transformer<T>& model) {
  std::vector<std::pair<std::string, array_ref>> out;
  const auto& p = model.parameters();
  for (const auto& e : p.entries()) out.emplace_back(e.name, array_ref(p.view_of(e)));
  return out;
}

#if MINT_CORE_BODIES  // used only by the cores' bodies
template <class T>
void read_weights(const safetensors_file& file, const std::string& path, toy::transformer<T>& model) {
  auto& p = model.parameters();
  for (const auto& e : p.entries()) {
    if (!file.contains(e.name))
      throw format_error("mint::toy::load_transformer", "file '" + path + "'", "has no tensor '" + e.name + "'",
                         "needs every weight of the model its config describes");
    const auto a = file.read<T>(e.name, {.convert = true});
    if (a.shape() != e.extents)
      throw format_error("mint::toy::load_transformer", "file '" + path + "'",
                         "holds '" + e.name + "' with shape " + detail::shape_string(std::span<const index>(a.shape())),
                         "needs " + detail::shape_string(std::span<const index>(e.extents)));
    std::copy(a.values().begin(), a.values().end(), p.view_of(e).data());
  }
}
#endif  // MINT_CORE_BODIES

/// The toy transformer's files: its config as JSON, models and checkpoints read back. A template
/// (C is always char) so only the units that read or write files compile it (and nlohmann-json's
/// parser and printer), and a program may compile it once (mint/core/compiled.hpp).
template <class C>
struct transformer_files {
  static json config_to_json(const toy::transformer_config& c);
  /// The config as the one-line JSON save() stores.
  static std::string config_text(const toy::transformer_config& c);
  static toy::transformer_config config_from_json(const std::string& text, const std::string& path);
  static toy::transformer<float> load(const std::string& path);
  static void load_checkpoint(const std::string& path, toy::transformer<float>& model, adam<float>& optimizer);
};

#if MINT_CORE_BODIES
template <class C>
json transformer_files<C>::config_to_json(const toy::transformer_config& c) {
  return json(c);
}

template <class C>
std::string transformer_files<C>::config_text(const toy::transformer_config& c) {
  return config_to_json(c).dump();
}

template <class C>
toy::transformer_config transformer_files<C>::config_from_json(const std::string& text, const std::string& path) {
  const json j = parse_json<C>(text, path, "mint::toy::load_transformer");
  try {
    auto c = j.template get<toy::transformer_config>();
    // An unknown name reads as the first activation (nlohmann's enum rule): refuse it instead.
    if (json(c.activation) != j.at("activation"))
      throw format_error("mint::toy::load_transformer", "file '" + path + "'", "names activation " + j.at("activation").dump(),
                         "needs \"gelu\", \"gelu_tanh\" or \"relu\"");
    return c;
  } catch (const json::exception& e) {
    throw format_error("mint::toy::load_transformer", "file '" + path + "'",
                       std::string("has a config that does not parse (") + e.what() + ")",
                       "needs the mint.toy.config metadata save() writes");
  }
}

template <class C>
toy::transformer<float> transformer_files<C>::load(const std::string& path) {
  const safetensors_file file(path);
  const auto it = file.metadata().find("mint.toy.config");
  if (it == file.metadata().end())
    throw format_error("mint::toy::load_transformer", "file '" + path + "'", "has no 'mint.toy.config' metadata",
                       "needs a file written by mint::toy::save");
  toy::transformer<float> model(config_from_json(it->second, path));
  read_weights(file, path, model);
  return model;
}

template <class C>
void transformer_files<C>::load_checkpoint(const std::string& path, toy::transformer<float>& model, adam<float>& optimizer) {
  const char* fn = "mint::toy::load_checkpoint";
  const safetensors_file file(path);
  const auto& meta = file.metadata();
  if (!meta.count("mint.toy.config") || !meta.count("mint.optimizer.step"))
    throw format_error(fn, "file '" + path + "'", "lacks mint.toy.config or mint.optimizer.step metadata",
                       "needs a file written by mint::toy::save_checkpoint");
  const auto config = config_from_json(meta.at("mint.toy.config"), path);
  if (config_to_json(config) != config_to_json(model.config()))
    throw argument_error(fn, "model", "has config " + config_text(model.config()), "needs the checkpoint's, " + config_text(config));
  read_weights(file, path, model);
  for (const auto& [name, moment] : {std::pair{"optimizer.m", optimizer.first_moment()},
                                     std::pair{"optimizer.v", optimizer.second_moment()}}) {
    if (!file.contains(name)) throw format_error(fn, "file '" + path + "'", std::string("has no '") + name + "'", "needs Adam's moments");
    const auto a = file.template read<double>(name);
    if (a.size() != index(moment.size()))
      throw format_error(fn, "file '" + path + "'", detail::str("holds ", a.size(), " values in '", name, "'"),
                         detail::str("needs ", moment.size(), ", one per parameter"));
    std::copy(a.values().begin(), a.values().end(), moment.begin());
  }
  try {
    optimizer.set_steps(std::stoll(meta.at("mint.optimizer.step")));
  } catch (const std::exception&) {
    throw format_error(fn, "file '" + path + "'", "has step '" + meta.at("mint.optimizer.step") + "'", "needs an integer");
  }
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::toy {

/// Writes the model's weights and config to a safetensors file, atomically.
template <class T>
void save(const transformer<T>& model, const std::string& path) {
  write_safetensors(path, detail::weight_refs(model),
                    {{"mint.toy.config", detail::transformer_files<char>::config_text(model.config())}});
}

/// A model read from a file save() or save_checkpoint() wrote (F16/BF16/F64 weights convert to float).
/// (load_transformer and load_checkpoint are templates, C always char, so only the units that call
/// them compile them.)
template <class C = char>
transformer<float> load_transformer(const std::string& path) {
  return detail::transformer_files<C>::load(path);
}

/// Writes weights, config, and Adam's moments and step (tensors optimizer.m, optimizer.v).
template <class T>
void save_checkpoint(const transformer<T>& model, const adam<T>& optimizer, const std::string& path) {
  auto tensors = detail::weight_refs(model);
  const auto n = index(optimizer.first_moment().size());
  tensors.emplace_back("optimizer.m", array_ref(dtype::float64, {n}, optimizer.first_moment().data()));
  tensors.emplace_back("optimizer.v", array_ref(dtype::float64, {n}, optimizer.second_moment().data()));
  write_safetensors(path, tensors,
                    {{"mint.toy.config", detail::transformer_files<char>::config_text(model.config())},
                     {"mint.optimizer.step", std::to_string(optimizer.steps())}});
}

/// Restores weights and Adam's state from save_checkpoint(); the model's shape must match the file's.
template <class C = char>
void load_checkpoint(const std::string& path, transformer<float>& model, adam<float>& optimizer) {
  detail::transformer_files<C>::load_checkpoint(path, model, optimizer);
}

}  // namespace mint::toy

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_TOY_FILES(CORE) CORE(struct mint::detail::transformer_files<char>)
MINT_CORES_TOY_FILES(MINT_CORE)
