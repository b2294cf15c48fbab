// Writing similarity results: a matrix as CSV, a heatmap as SVG (layer x layer
// similarity matrices) and a line plot as SVG (stage-wise diffing: one line per
// layer across checkpoints). Files are written whole or not at all.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/markup.hpp"

namespace mint {

/// Labels and scale of a heatmap.
struct heatmap_options {
  std::string title{};                   ///< above the plot
  std::string row_title = "layer of A";  ///< along the rows (left)
  std::string column_title = "layer of B";
  std::vector<std::string> row_labels{};     ///< one per row; default 0, 1, 2...
  std::vector<std::string> column_labels{};  ///< one per column; default 0, 1, 2...
  double minimum = std::numeric_limits<double>::quiet_NaN();  ///< colour scale; NaN: the smallest value
  double maximum = std::numeric_limits<double>::quiet_NaN();  ///< NaN: the largest value
  bool show_values = true;  ///< print each value in its cell when cells are large enough
};

/// Labels and scale of a line plot.
struct line_plot_options {
  std::string title{};
  std::string x_title = "checkpoint";
  std::string y_title = "similarity to the final model";
  std::vector<double> x{};                    ///< one per point; default 0, 1, 2...
  std::vector<std::string> series_labels{};   ///< one per line; default "layer 0", "layer 1"...
  double minimum = std::numeric_limits<double>::quiet_NaN();  ///< y range; NaN: from the data
  double maximum = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// Writes text through io's atomic_file: the old file or the new one, never half of one.
inline void write_text_file(const std::filesystem::path& path, std::string_view text) {
  atomic_file file(path.string());
  file.write(text);
  file.commit();
}

inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

inline std::string number(double value, const char* format = "%.10g") {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

/// Labels given, or 0, 1, 2... (with a prefix); a wrong count is an argument_error.
inline std::vector<std::string> labels_or_indices(const std::vector<std::string>& given, index count,
                                                  const char* function, const char* name, const std::string& prefix = "") {
  if (given.empty()) {
    std::vector<std::string> out;
    for (index i = 0; i < count; ++i) out.push_back(prefix + std::to_string(i));
    return out;
  }
  if (index(given.size()) != count)
    throw argument_error(function, name, str("holds ", given.size(), " labels"), str("needs ", count, ", one per ", prefix.empty() ? "row or column" : "line"));
  return given;
}

/// Viridis, sampled at nine points and interpolated linearly: t in [0, 1] -> "#rrggbb".
inline std::string viridis(double t) {
  static constexpr unsigned char anchors[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                                   {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                                   {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  if (!std::isfinite(t)) return "#cccccc";
  t = std::clamp(t, 0.0, 1.0) * 8.0;
  const int i = std::min(int(t), 7);
  const double f = t - i;
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", int(std::lround(anchors[i][0] + f * (anchors[i + 1][0] - anchors[i][0]))),
                int(std::lround(anchors[i][1] + f * (anchors[i + 1][1] - anchors[i][1]))),
                int(std::lround(anchors[i][2] + f * (anchors[i + 1][2] - anchors[i][2]))));
  return text;
}

/// The scale of a plot: the given bounds, or the finite values' extremes where a bound is NaN.
MINT_LAZY std::pair<double, double> value_range(const matrixd& values, double low, double high) {
  const auto finite = values.array().isFinite();
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(low)) low = finite.any() ? finite.select(values.array(), inf).minCoeff() : 0.0;
  if (std::isnan(high)) high = finite.any() ? finite.select(values.array(), -inf).maxCoeff() : 1.0;
  if (!(high > low)) high = low + 1.0;
  return {low, high};
}

MINT_LAZY void require_plottable(const matrixd& values, const char* function) {
  if (values.size() == 0)
    throw shape_error(function, "values", detail::str("has extents [", values.rows(), ", ", values.cols(), "]"),
                      "needs at least one value");
}

}  // namespace detail

/// Writes a matrix as CSV: a header row of column labels, then one row per row label.
MINT_LAZY void write_csv(const std::filesystem::path& path, const matrixd& values,
                      const std::vector<std::string>& row_labels = {},
                      const std::vector<std::string>& column_labels = {}) {
  const char* function = "mint::write_csv";
  const auto rows = detail::labels_or_indices(row_labels, values.rows(), function, "row_labels");
  const auto columns = detail::labels_or_indices(column_labels, values.cols(), function, "column_labels");
  std::string text;
  // (text += ','; text += field: "," + field trips GCC 12's -Wrestrict false positive at -O3.)
  for (const auto& c : columns) {
    text += ',';
    text += detail::csv_field(c);
  }
  text += "\n";
  for (index i = 0; i < values.rows(); ++i) {
    text += detail::csv_field(rows[std::size_t(i)]);
    for (index j = 0; j < values.cols(); ++j) {
      text += ',';
      text += detail::number(values(i, j));
    }
    text += "\n";
  }
  detail::write_text_file(path, text);
}

/// Writes a matrix as an SVG heatmap (viridis), row 0 at the top, with a colour bar.
MINT_LAZY void write_heatmap_svg(const std::filesystem::path& path, const matrixd& values, const heatmap_options& options = {}) {
  const char* function = "mint::write_heatmap_svg";
  detail::require_plottable(values, function);
  const auto rows = detail::labels_or_indices(options.row_labels, values.rows(), function, "row_labels");
  const auto columns = detail::labels_or_indices(options.column_labels, values.cols(), function, "column_labels");
  const auto [low, high] = detail::value_range(values, options.minimum, options.maximum);
  const double cell = std::clamp(520.0 / double(std::max(values.rows(), values.cols())), 10.0, 56.0);
  const double left = 110, top = 56, width = cell * double(values.cols()), height = cell * double(values.rows());
  const double total_width = left + width + 100, total_height = top + height + 70;
  using detail::number;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(total_width, "%.0f") + "\" height=\"" +
                    number(total_height, "%.0f") + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(left + width / 2, "%.1f") + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
         detail::markup_escaped(options.title) + "</text>\n";
  const double label_size = std::min(12.0, cell * 0.8);
  for (index i = 0; i < values.rows(); ++i) {
    const double y = top + cell * double(i);
    svg += "<text x=\"" + number(left - 6, "%.1f") + "\" y=\"" + number(y + cell / 2 + label_size / 3, "%.1f") +
           "\" text-anchor=\"end\" font-size=\"" + number(label_size, "%.1f") + "\">" + detail::markup_escaped(rows[std::size_t(i)]) + "</text>\n";
    for (index j = 0; j < values.cols(); ++j) {
      const double v = values(i, j), t = (v - low) / (high - low);
      const double x = left + cell * double(j);
      svg += "<rect x=\"" + number(x, "%.1f") + "\" y=\"" + number(y, "%.1f") + "\" width=\"" + number(cell, "%.1f") +
             "\" height=\"" + number(cell, "%.1f") + "\" fill=\"" + detail::viridis(t) + "\"><title>" +
             detail::markup_escaped(rows[std::size_t(i)] + " / " + columns[std::size_t(j)]) + ": " + number(v, "%.4f") + "</title></rect>\n";
      if (options.show_values && cell >= 30 && std::isfinite(v))
        svg += "<text x=\"" + number(x + cell / 2, "%.1f") + "\" y=\"" + number(y + cell / 2 + 4, "%.1f") +
               "\" text-anchor=\"middle\" font-size=\"10\" fill=\"" + (t > 0.6 ? "black" : "white") + "\">" +
               number(v, "%.2f") + "</text>\n";
    }
  }
  for (index j = 0; j < values.cols(); ++j) {
    const double x = left + cell * (double(j) + 0.5), y = top + height + 14;
    svg += "<text x=\"" + number(x, "%.1f") + "\" y=\"" + number(y, "%.1f") + "\" text-anchor=\"middle\" font-size=\"" +
           number(label_size, "%.1f") + "\">" + detail::markup_escaped(columns[std::size_t(j)]) + "</text>\n";
  }
  svg += "<text x=\"" + number(left + width / 2, "%.1f") + "\" y=\"" + number(top + height + 40, "%.1f") +
         "\" text-anchor=\"middle\">" + detail::markup_escaped(options.column_title) + "</text>\n";
  svg += "<text transform=\"translate(" + number(24.0, "%.1f") + "," + number(top + height / 2, "%.1f") +
         ") rotate(-90)\" text-anchor=\"middle\">" + detail::markup_escaped(options.row_title) + "</text>\n";
  // Colour bar, high at the top.
  const double bar_x = left + width + 24, steps = 32;
  for (int s = 0; s < int(steps); ++s)
    svg += "<rect x=\"" + number(bar_x, "%.1f") + "\" y=\"" + number(top + height * s / steps, "%.2f") +
           "\" width=\"16\" height=\"" + number(height / steps + 0.5, "%.2f") + "\" fill=\"" +
           detail::viridis(1.0 - (s + 0.5) / steps) + "\"/>\n";
  svg += "<text x=\"" + number(bar_x + 22, "%.1f") + "\" y=\"" + number(top + 10, "%.1f") + "\">" + number(high, "%.3g") + "</text>\n";
  svg += "<text x=\"" + number(bar_x + 22, "%.1f") + "\" y=\"" + number(top + height, "%.1f") + "\">" + number(low, "%.3g") + "</text>\n";
  svg += "</svg>\n";
  detail::write_text_file(path, svg);
}

/// Writes an SVG line plot: column s of `series` is one line, row i its value at x[i].
MINT_LAZY void write_line_plot_svg(const std::filesystem::path& path, const matrixd& series, const line_plot_options& options = {}) {
  const char* function = "mint::write_line_plot_svg";
  detail::require_plottable(series, function);
  const auto labels = detail::labels_or_indices(options.series_labels, series.cols(), function, "series_labels", "layer ");
  std::vector<double> x = options.x;
  if (x.empty())
    for (index i = 0; i < series.rows(); ++i) x.push_back(double(i));
  if (index(x.size()) != series.rows())
    throw argument_error(function, "x", detail::str("holds ", x.size(), " values"), detail::str("needs ", series.rows(), ", one per point"));
  // Plain variables, not a structured binding: clang 14 cannot capture bindings in lambdas.
  const auto range = detail::value_range(series, options.minimum, options.maximum);
  const double low = range.first, high = range.second;
  const double x_low = *std::min_element(x.begin(), x.end());
  double x_high = *std::max_element(x.begin(), x.end());
  if (!(x_high > x_low)) x_high = x_low + 1.0;
  const double left = 70, top = 44, width = 520, height = 300;
  const auto px = [&](double v) { return left + width * (v - x_low) / (x_high - x_low); };
  const auto py = [&](double v) { return top + height * (1.0 - (v - low) / (high - low)); };
  static constexpr const char* palette[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  using detail::number;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(left + width + 150, "%.0f") +
                    "\" height=\"" + number(top + height + 60, "%.0f") + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(left + width / 2, "%.1f") + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
         detail::markup_escaped(options.title) + "</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = low + (high - low) * t / 4.0, y = py(v);
    svg += "<line x1=\"" + number(left, "%.1f") + "\" x2=\"" + number(left + width, "%.1f") + "\" y1=\"" + number(y, "%.1f") +
           "\" y2=\"" + number(y, "%.1f") + "\" stroke=\"#e0e0e0\"/>\n";
    svg += "<text x=\"" + number(left - 6, "%.1f") + "\" y=\"" + number(y + 4, "%.1f") + "\" text-anchor=\"end\">" + number(v, "%.3g") + "</text>\n";
  }
  for (std::size_t i = 0; i < x.size(); ++i)
    svg += "<text x=\"" + number(px(x[i]), "%.1f") + "\" y=\"" + number(top + height + 16, "%.1f") + "\" text-anchor=\"middle\">" +
           number(x[i], "%g") + "</text>\n";
  svg += "<rect x=\"" + number(left, "%.1f") + "\" y=\"" + number(top, "%.1f") + "\" width=\"" + number(width, "%.1f") +
         "\" height=\"" + number(height, "%.1f") + "\" fill=\"none\" stroke=\"#444\"/>\n";
  svg += "<text x=\"" + number(left + width / 2, "%.1f") + "\" y=\"" + number(top + height + 40, "%.1f") +
         "\" text-anchor=\"middle\">" + detail::markup_escaped(options.x_title) + "</text>\n";
  svg += "<text transform=\"translate(18," + number(top + height / 2, "%.1f") + ") rotate(-90)\" text-anchor=\"middle\">" +
         detail::markup_escaped(options.y_title) + "</text>\n";
  for (index s = 0; s < series.cols(); ++s) {
    const char* colour = palette[s % 10];
    std::string points;
    for (index i = 0; i < series.rows(); ++i)
      if (std::isfinite(series(i, s))) points += number(px(x[std::size_t(i)]), "%.1f") + "," + number(py(series(i, s)), "%.1f") + " ";
    svg += std::string("<polyline fill=\"none\" stroke=\"") + colour + "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
    for (index i = 0; i < series.rows(); ++i)
      if (std::isfinite(series(i, s)))
        svg += "<circle cx=\"" + number(px(x[std::size_t(i)]), "%.1f") + "\" cy=\"" + number(py(series(i, s)), "%.1f") +
               "\" r=\"3\" fill=\"" + colour + "\"><title>" + detail::markup_escaped(labels[std::size_t(s)]) + ": " +
               number(series(i, s), "%.4f") + "</title></circle>\n";
    const double ly = top + 10 + 18.0 * double(s);
    svg += std::string("<line x1=\"") + number(left + width + 14, "%.1f") + "\" x2=\"" + number(left + width + 34, "%.1f") +
           "\" y1=\"" + number(ly, "%.1f") + "\" y2=\"" + number(ly, "%.1f") + "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + number(left + width + 40, "%.1f") + "\" y=\"" + number(ly + 4, "%.1f") + "\">" +
           detail::markup_escaped(labels[std::size_t(s)]) + "</text>\n";
  }
  svg += "</svg>\n";
  detail::write_text_file(path, svg);
}

}  // namespace mint
