// JSON through nlohmann-json: errors name the file; duplicate keys are refused.
#include "mint/io/json.hpp"

#include <doctest/doctest.h>

#include "common.hpp"

TEST_CASE("JSON files round trip and bad ones give format errors") {
  io_test::temp_folder tmp;
  const mint::json cfg = {{"d_in", 512}, {"architecture", "topk"}, {"metadata", {{"hook_name", "blocks.3.hook_resid_post"}}}};
  mint::write_json(tmp / "cfg.json", cfg);
  CHECK(mint::read_json(tmp / "cfg.json") == cfg);
  io_test::check_format_error([] { mint::parse_json(R"({"a": 1, "a": 2})", "cfg.json"); }, "file 'cfg.json' holds the key 'a' twice");
  io_test::check_format_error([] { mint::parse_json(R"({"a": {"b": 1, "b": 1}})", "cfg.json"); }, "key 'b' twice");
  CHECK(mint::parse_json(R"({"a": {"b": 1}, "c": {"b": 2}})", "cfg.json")["c"]["b"] == 2);  // same key in two objects
  io_test::check_format_error([] { mint::parse_json("{\"a\": ", "cfg.json"); }, "not valid JSON");
  io_test::check_format_error([] { mint::parse_json("\"\xff\"", "cfg.json"); }, "not valid JSON");
  io_test::check_format_error([] { mint::parse_json(std::string(100, '[') + std::string(100, ']'), "deep.json"); }, "deeper than 64");
}
