// CSV and SVG output: the content, labels, escaping, and whole-or-nothing writes.
#include "mint/similarity/plot.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {
std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path scratch(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / "mint_similarity_tests";
  std::filesystem::create_directories(dir);
  return dir / name;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("write_csv writes labels and full-precision values") {
  mint::matrixd m(2, 3);
  m << 1.0, 0.5, 1.0 / 3, -2, 0, 1e-12;
  const auto path = scratch("m.csv");
  mint::write_csv(path, m, {"a", "b,c"}, {"x", "y", "z\"q"});
  CHECK(read(path) == ",x,y,\"z\"\"q\"\na,1,0.5,0.3333333333\n\"b,c\",-2,0,1e-12\n");
  mint::write_csv(path, m);
  CHECK(read(path).substr(0, 7) == ",0,1,2\n");
  CHECK_THROWS_WITH_AS(mint::write_csv(path, m, {"only one"}), "mint::write_csv: row_labels holds 1 labels; needs 2, one per row or column",
                       mint::argument_error);
}

TEST_CASE("write_heatmap_svg draws one cell per value with escaped labels and a colour bar") {
  mint::matrixd m(3, 2);
  m << 0.1, 0.9, 0.5, 0.4, 1.0, 0.0;
  const auto path = scratch("m.svg");
  mint::write_heatmap_svg(path, m, {.title = "CKA <A & B>", .row_labels = {"l0", "l1", "l2"}});
  const std::string svg = read(path);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<title>") == 6);
  CHECK(svg.find("CKA &lt;A &amp; B&gt;") != std::string::npos);
  CHECK(svg.find("#fde725") != std::string::npos);  // the maximum gets viridis' top colour
  CHECK(svg.find("#440154") != std::string::npos);  // the minimum its bottom colour
}

TEST_CASE("write_line_plot_svg draws one line per series") {
  mint::matrixd series(4, 2);
  series << 0.2, 0.1, 0.5, 0.3, 0.8, 0.6, 1.0, 1.0;
  const auto path = scratch("lines.svg");
  mint::write_line_plot_svg(path, series, {.title = "diff", .x = {100, 200, 300, 400}});
  const std::string svg = read(path);
  CHECK(count(svg, "<polyline") == 2);
  CHECK(count(svg, "<circle") == 8);
  CHECK(svg.find("layer 1") != std::string::npos);
  CHECK_THROWS_AS(mint::write_line_plot_svg(path, series, {.x = {1, 2}}), mint::argument_error);
}

TEST_CASE("a file that cannot be written is an error, and nothing half-written is left") {
  const auto dir = scratch("").parent_path();
  CHECK_THROWS_AS(mint::write_csv(dir / "no_such_folder" / "m.csv", mint::matrixd::Ones(2, 2)), mint::argument_error);
  mint::write_csv(dir / "whole.csv", mint::matrixd::Ones(2, 2));
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}
