// JSON files through nlohmann-json: parsing that reports bad input as a
// mint::format_error naming the file (and rejects duplicate keys, which the
// library would otherwise resolve silently), and an atomic writer. Used for
// safetensors headers and SAELens cfg.json files. O(bytes).
#pragma once

#include <cstddef>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/bytes.hpp"
#include "mint/io/mapped_file.hpp"

namespace mint {

/// nlohmann-json's value type, as mint's readers return it.
using json = nlohmann::json;

/// nlohmann's NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE (every listed field to and from a JSON object,
/// found by ADL), as templates over the JSON type: only the units that convert a Type compile
/// them. Use in Type's namespace.
#define MINT_JSON_FIELDS(Type, ...)                                                  \
  template <class Json>                                                              \
  void to_json(Json& nlohmann_json_j, const Type& nlohmann_json_t) {                 \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_TO, __VA_ARGS__))         \
  }                                                                                  \
  template <class Json>                                                              \
  void from_json(const Json& nlohmann_json_j, Type& nlohmann_json_t) {               \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_FROM, __VA_ARGS__))       \
  }

namespace detail {

/// T, named through C: a type that depends on a template argument, so calls on it in a template's
/// body bind (and instantiate what they call) only when that template is instantiated. Compilers
/// instantiate the function templates a template's non-dependent calls name wherever its
/// definition is seen, here nlohmann-json's whole parser.
template <class C, class T>
struct dependent_type {
  using type = T;
};

/// parse_json, read_json and write_json. A template (C is always char) so only the units that
/// call them compile nlohmann-json's parser and printer, and a program may compile them once.
template <class C>
struct json_core {
  static json parse(std::string_view text, std::string_view name, const char* function, int max_depth);
  static json read(const std::string& path);
  static void write(const std::string& path, const json& value, int indent);
};

#if MINT_CORE_BODIES
template <class C>
json json_core<C>::parse(std::string_view text, std::string_view name, const char* function, int max_depth) {
  using J = typename dependent_type<C, json>::type;
  std::vector<std::set<std::string>> open;  // the keys seen in each open object
  std::string duplicate;
  bool too_deep = false;
  const typename J::parser_callback_t check = [&](int depth, typename J::parse_event_t event, J& parsed) {
    if (depth > max_depth) too_deep = true;
    if (event == J::parse_event_t::object_start) open.emplace_back();
    else if (event == J::parse_event_t::object_end && !open.empty()) open.pop_back();
    else if (event == J::parse_event_t::key && !open.empty() && duplicate.empty() &&
             !open.back().insert(parsed.template get<std::string>()).second)
      duplicate = parsed.template get<std::string>();
    return true;
  };
  J out;
  try {
    out = J::parse(text.begin(), text.end(), check, /*allow_exceptions=*/true);
  } catch (const typename J::exception& e) {
    format_fail(function, name, str("is not valid JSON (", e.what(), ")"), "needs valid UTF-8 JSON");
  }
  if (too_deep) format_fail(function, name, str("nests JSON deeper than ", max_depth, " levels"), "needs a flatter document");
  if (!duplicate.empty())
    format_fail(function, name, str("holds the key '", duplicate, "' twice in one object"), "needs unique keys");
  return out;
}

template <class C>
json json_core<C>::read(const std::string& path) {
  const auto file = mapped_file::open(path);
  const auto bytes = file->bytes();
  return parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path, "mint::read_json", 64);
}

template <class C>
void json_core<C>::write(const std::string& path, const json& value, int indent) {
  atomic_file out(path);
  const typename dependent_type<C, json>::type& v = value;
  out.write(v.dump(indent));
  out.write("\n");
  out.commit();
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Parses JSON text; a format_error (naming `name`, the function and the position) when it is not
/// valid JSON, holds a key twice in one object, or nests deeper than `max_depth`.
template <class C = char>  // a template only so units that never parse JSON compile no parser
json parse_json(std::string_view text, std::string_view name, const char* function = "mint::parse_json",
                int max_depth = 64) {
  return detail::json_core<C>::parse(text, name, function, max_depth);
}

/// Reads a JSON file (checked as parse_json does).
template <class C = char>
json read_json(const std::string& path) {
  return detail::json_core<C>::read(path);
}

/// Writes a JSON value to a file atomically, indented by `indent` spaces (-1: one line).
template <class C = char>
void write_json(const std::string& path, const json& value, int indent = 2) {
  detail::json_core<C>::write(path, value, indent);
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_JSON(CORE) CORE(struct mint::detail::json_core<char>)
MINT_CORES_IO_JSON(MINT_CORE)
