// A feature browser: one self-contained HTML file (CSS, script and the report inline; no
// network, fonts or images) that lists the features of a feature report
// (docs/sae_analysis.md, "format": "mint.feature_analysis"), searches and sorts them, and
// shows one feature's statistics, activation histogram, logit effects, nearest features
// and top examples as shaded token strips. The page renders 100 rows of the list at a time
// and a feature's detail only when it is selected, so it stays fast with tens of thousands
// of features. Also nearest_features(): each decoder row's top-k neighbours by cosine,
// which add_nearest_features() writes into a report for the browser to show.
// Cost: O(bytes of the report) for the page; O(m^2 d) for nearest_features over m latents.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/detail/markup.hpp"

namespace mint::dictionary {

/// Knobs of write_feature_browser().
struct feature_browser_options {
  std::string title = "";              ///< the page's title; empty: "<model> <unit_name>s" ("mint <unit_name>s" without a model)
  std::string unit_name = "feature";   ///< what a row is called on the page: "feature", "latent", "neuron", ...
  index page_size = 100;               ///< list rows rendered at a time ("show more" adds as many)
};

/// Per latent, its nearest other latents by decoder cosine: (index, cosine), largest first.
using nearest_lists = std::vector<std::vector<std::pair<index, double>>>;

}  // namespace mint::dictionary

namespace mint::detail {

/// nearest_features over float and double decoders (mint/core/compiled.hpp).
template <class T>
struct nearest_features_core {
  static dictionary::nearest_lists run(const tensor_view<const T>& decoder, index k);
};

/// The browser page and the report edits, which have no scalar type: a core over the JSON
/// type, so nlohmann-json's printer compiles only in the units that call them.
template <class Json = nlohmann::ordered_json>
struct feature_browser_core {
  static void check_report(const Json& report, const char* fn);
  static std::string page(const Json& report, const dictionary::feature_browser_options& options);
  static void write(const Json& report, const std::string& path, const dictionary::feature_browser_options& options);
  static void add_nearest(Json& report, const dictionary::nearest_lists& lists);
};

}  // namespace mint::detail

namespace mint::dictionary {

/// Each row of `decoder` ([latents, d], e.g. an SAE's W_dec or an MLP's W_out) with its k
/// most similar other rows by cosine, largest first (ties: smaller index); a latent is never
/// its own neighbour and a zero row has cosine 0 with everything. k is capped at latents - 1.
/// The cosines are products of the row-normalized decoder, in blocks of about 64 MiB.
template <tensor D>
nearest_lists nearest_features(const D& decoder, index k) {
  return detail::nearest_features_core<value_t<const D>>::run(mint::view(decoder), k);
}

/// Writes each feature's "nearest" key ([{"index": j, "cosine": c}, ...]) from
/// `lists[feature's index]` (nearest_features() of the report's decoder) into a report.
inline void add_nearest_features(nlohmann::ordered_json& report, const nearest_lists& lists) {
  detail::feature_browser_core<>::add_nearest(report, lists);
}

/// Writes the feature browser of `report` (feature_report(), or a report file read back) to
/// `path`: one HTML file with everything inline, written atomically (a temporary beside it,
/// then a rename). Refuses a report whose "format" is not "mint.feature_analysis" or whose
/// "version" is newer than 1.
inline void write_feature_browser(const nlohmann::ordered_json& report, const std::string& path,
                                  const feature_browser_options& options = {}) {
  detail::feature_browser_core<>::write(report, path, options);
}

}  // namespace mint::dictionary

namespace mint::detail {
#if MINT_CORE_BODIES

template <class T>
dictionary::nearest_lists nearest_features_core<T>::run(const tensor_view<const T>& dv, index k) {
  const char* fn = "mint::dictionary::nearest_features";
  if (dv.rank() != 2) throw shape_error(fn, "decoder", detail::str("has rank ", dv.rank()), "needs rank 2 [latents, d]");
  if (k < 1) throw argument_error(fn, "k", detail::str("is ", k), "needs >= 1");
  const index m = dv.extent(0);
  matrix<T> unit = as_matrix(dv);
  for (index i = 0; i < m; ++i) {
    const T norm = unit.row(i).norm();
    if (norm > 0) unit.row(i) /= norm;  // a zero row stays zero: cosine 0 with everything
  }
  const index keep = std::min(k, std::max<index>(0, m - 1));
  dictionary::nearest_lists out(static_cast<std::size_t>(m));
  if (keep == 0) return out;
  const index block = std::max<index>(1, std::min<index>(m, index((std::size_t(64) << 20) / sizeof(T)) / m));
  matrix<T> cosines;
  for (index start = 0; start < m; start += block) {
    const index rows = std::min(block, m - start);
    cosines.resize(rows, m);
    cosines.noalias() = unit.middleRows(start, rows) * unit.transpose();
    // A NaN cosine (a non-finite decoder row) ranks last, so the order stays a strict weak one.
    MINT_PARALLEL_FOR(double(rows) * double(m) * 8)
    for (index r = 0; r < rows; ++r) {
      const index i = start + r;
      auto key = [&](index j) {
        const T c = cosines(r, j);
        return std::isnan(c) ? -std::numeric_limits<T>::infinity() : c;
      };
      std::vector<index> order;
      order.reserve(std::size_t(m - 1));
      for (index j = 0; j < m; ++j)
        if (j != i) order.push_back(j);
      const auto before = [&](index a, index b) {
        const T ka = key(a), kb = key(b);
        return ka != kb ? ka > kb : a < b;
      };
      std::partial_sort(order.begin(), order.begin() + keep, order.end(), before);
      auto& list = out[std::size_t(i)];
      list.reserve(std::size_t(keep));
      for (index t = 0; t < keep; ++t) list.emplace_back(order[std::size_t(t)], double(cosines(r, order[std::size_t(t)])));
    }
  }
  return out;
}

template <class Json>
void feature_browser_core<Json>::check_report(const Json& report, const char* fn) {
  if (!report.is_object())
    throw argument_error(fn, "report", detail::str("is a JSON ", report.type_name()), "needs a feature report object (feature_report())");
  const auto format = report.find("format");
  if (format == report.end() || !format->is_string() || format->template get<std::string>() != "mint.feature_analysis")
    throw argument_error(fn, "report[\"format\"]",
                         format == report.end() ? std::string("is missing") : "is " + format->dump(-1, ' ', false, Json::error_handler_t::replace),
                         "needs \"mint.feature_analysis\"");
  const auto version = report.find("version");
  if (version == report.end() || !version->is_number_integer() || version->template get<std::int64_t>() < 1 ||
      version->template get<std::int64_t>() > 1)
    throw argument_error(fn, "report[\"version\"]", version == report.end() ? std::string("is missing") : "is " + version->dump(),
                         "needs 1 (a newer version is not understood by this mint)");
  const auto features = report.find("features");
  if (features == report.end() || !features->is_array())
    throw argument_error(fn, "report[\"features\"]", features == report.end() ? "is missing" : detail::str("is a JSON ", features->type_name()),
                         "needs an array of feature objects");
  for (const auto& f : *features)
    if (!f.is_object() || !f.contains("index") || !f["index"].is_number_integer())
      throw argument_error(fn, "report[\"features\"]", "has an entry without an integer \"index\"",
                           "needs one object with \"index\" per feature");
}

template <class Json>
void feature_browser_core<Json>::add_nearest(Json& report, const dictionary::nearest_lists& lists) {
  const char* fn = "mint::dictionary::add_nearest_features";
  check_report(report, fn);
  for (auto& f : report["features"]) {
    const std::int64_t j = f["index"].template get<std::int64_t>();
    if (j < 0 || j >= std::int64_t(lists.size()))
      throw argument_error(fn, "lists", detail::str("has ", lists.size(), " entries"),
                           detail::str("needs one per latent, including the report's feature ", j));
    Json near = Json::array();
    for (const auto& [other, cosine] : lists[std::size_t(j)]) near.push_back(Json{{"index", other}, {"cosine", cosine}});
    f["nearest"] = std::move(near);
  }
}

/// JSON text that can sit inside a <script> element: every '<' (only ever inside strings)
/// becomes \u003c, so no "</script>" or "<!--" can end or confuse the element.
template <class Json>
std::string script_safe_json(const Json& value) {
  const std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 64);
  for (const char c : text) {
    if (c == '<') out += "\\u003c";
    else out += c;
  }
  return out;
}

template <class Json>
std::string feature_browser_core<Json>::page(const Json& report, const dictionary::feature_browser_options& options) {
  const char* fn = "mint::dictionary::write_feature_browser";
  check_report(report, fn);
  if (options.unit_name.empty())
    throw argument_error(fn, "options.unit_name", "is empty", "needs a name for a row, e.g. \"feature\", \"latent\" or \"neuron\"");
  if (options.page_size < 1)
    throw argument_error(fn, "options.page_size", detail::str("is ", options.page_size), "needs >= 1");
  std::string title = options.title;
  if (title.empty()) {
    const auto meta = report.find("metadata");
    std::string model = "mint";
    if (meta != report.end() && meta->is_object() && meta->contains("model") && (*meta)["model"].is_string())
      model = (*meta)["model"].template get<std::string>();
    title = model + " " + options.unit_name + "s";
  }
  const Json config{{"title", title}, {"unit", options.unit_name}, {"page_size", options.page_size}};

  static constexpr std::string_view head = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="mint::dictionary::write_feature_browser">
)HTML";
  static constexpr std::string_view style = R"CSS(<style>
:root { --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --soft: #f5f6f9; --accent: #2f6fde; --hot: 222, 85, 34; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff;
       display: flex; flex-direction: column; }
header { padding: 10px 18px; border-bottom: 1px solid var(--line); background: var(--soft); }
header h1 { margin: 0 0 2px; font-size: 18px; font-weight: 600; }
#meta { color: var(--muted); font-size: 13px; }
#meta b { color: var(--fg); font-weight: 600; }
#meta span { margin-right: 16px; white-space: nowrap; }
#layout { flex: 1; display: flex; min-height: 0; }
#side { width: 340px; flex: none; display: flex; flex-direction: column; border-right: 1px solid var(--line); min-height: 0; }
#controls { padding: 10px 12px 8px; border-bottom: 1px solid var(--line); }
#search { width: 100%; padding: 6px 8px; font: inherit; border: 1px solid #c9ced8; border-radius: 5px; }
#controls .row { display: flex; align-items: center; gap: 8px; margin-top: 7px; font-size: 13px; color: var(--muted); }
#sort { font: inherit; padding: 2px 4px; }
#count { margin-left: auto; }
#list { flex: 1; overflow-y: auto; min-height: 0; }
.item, #list-head { display: grid; grid-template-columns: 60px 1fr 84px; gap: 6px; align-items: center; padding: 5px 12px;
        border-bottom: 1px solid #f0f1f4; font-variant-numeric: tabular-nums; }
.item { cursor: pointer; }
#list-head { padding: 4px 12px; font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
             border-bottom: 1px solid var(--line); background: #fff; }
#list-head span:last-child { text-align: right; }
.item:hover { background: #f3f6fc; }
.item.selected { background: #e4ecfb; }
.item .idx { font-weight: 600; }
.item .lbl { color: var(--muted); font-size: 12px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
.item .num { text-align: right; font-size: 12px; white-space: nowrap; }
#more { margin: 10px 12px; padding: 5px; font: inherit; cursor: pointer; }
#detail { flex: 1; overflow-y: auto; padding: 14px 22px 30px; min-width: 0; }
#detail h2 { margin: 0 0 8px; font-size: 20px; }
#detail h3 { margin: 18px 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.empty { color: var(--muted); padding: 30px 0; }
.stats { display: flex; flex-wrap: wrap; gap: 8px 26px; }
.stat .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .k { font-size: 12px; color: var(--muted); }
.cols { display: flex; flex-wrap: wrap; gap: 10px 34px; align-items: flex-start; }
.effects td { padding: 1px 10px 1px 0; font-variant-numeric: tabular-nums; }
.effects td.logit { text-align: right; color: var(--muted); }
.tok { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; white-space: pre; background: var(--soft);
       border-radius: 3px; padding: 0 3px; }
.up { color: #16794a; } .down { color: #b3261e; }
.near a { display: inline-block; margin: 0 6px 4px 0; padding: 1px 7px; border: 1px solid var(--line); border-radius: 10px;
          color: var(--accent); text-decoration: none; font-variant-numeric: tabular-nums; }
.near a:hover { background: #eef3fd; }
.near a.absent { color: var(--muted); border-style: dashed; }
.examples { border-collapse: collapse; width: 100%; }
.examples td { padding: 4px 8px 4px 0; border-bottom: 1px solid #f0f1f4; vertical-align: top; }
.examples td.act { width: 64px; text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
.examples td.where { width: 96px; color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.strip { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; line-height: 1.9; word-break: break-all; }
.strip span { white-space: pre; border-radius: 2px; padding: 1px 0; margin-right: 2px; }
.strip span.hit { outline: 1px solid rgb(var(--hot)); font-weight: 600; }
svg.hist rect { fill: #8aa9e6; }
svg.hist text { font-size: 11px; fill: var(--muted); }
a { color: var(--accent); }
</style>
)CSS";
  static constexpr std::string_view body = R"HTML(</head>
<body>
<header><h1 id="title"></h1><div id="meta"></div></header>
<div id="layout">
  <nav id="side">
    <div id="controls">
      <input id="search" type="search" autocomplete="off" spellcheck="false">
      <div class="row">
        <label for="sort">sort</label>
        <select id="sort"></select>
        <span id="count"></span>
      </div>
    </div>
    <div id="list-head"><span>#</span><span>top token</span><span id="list-key"></span></div>
    <div id="list"></div>
  </nav>
  <main id="detail"></main>
</div>
<template id="svg-template"><svg class="hist"></svg></template>
)HTML";
  static constexpr std::string_view script = R"JS(<script>
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("mint-config").textContent);
  const report = JSON.parse(document.getElementById("mint-report").textContent);
  const unit = config.unit, Unit = unit.charAt(0).toUpperCase() + unit.slice(1);
  const features = report.features;
  const byIndex = new Map();
  for (const f of features) byIndex.set(f.index, f);
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(x, digits) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2);
    return x.toFixed(digits === undefined ? 3 : digits);
  }
  function maxActivation(f) {
    return f.top_examples && f.top_examples.length ? f.top_examples[0].activation : 0;
  }
  function hasScore(f) { return typeof f.interpretability_score === "number"; }
  function tokenText(s) {  // spaces and line breaks made visible
    return s.replace(/\n/g, "\u21b5").replace(/\t/g, "\u2192").replace(/ /g, "\u00b7");
  }
  function tokenLabel(t) { return typeof t.string === "string" ? tokenText(t.string) : "#" + t.token; }
  function topToken(f) {  // the token of its top example, else its most boosted token
    const e = f.top_examples && f.top_examples[0];
    if (e && e.tokens && e.token_index !== undefined)
      return e.strings ? tokenText(e.strings[e.token_index]) : "#" + e.tokens[e.token_index];
    if (f.boosted_tokens && f.boosted_tokens.length) return tokenLabel(f.boosted_tokens[0]);
    return "";
  }

  // Header: title and the report's facts.
  document.title = config.title;
  $("title").textContent = config.title;
  const meta = $("meta");
  function fact(k, v) {
    const s = el("span");
    s.append(k + " ", el("b", "", String(v)));
    meta.append(s);
  }
  const md = report.metadata && typeof report.metadata === "object" ? report.metadata : {};
  if (md.model !== undefined) fact("model", md.model);
  const hook = md.hook_name !== undefined ? md.hook_name : md.hook;
  if (hook !== undefined) fact("hook", hook);
  fact("rows", report.rows);
  fact(unit + "s", report.latents);
  if (report.sae && report.sae.architecture) fact("architecture", report.sae.architecture + (report.sae.k ? " k=" + report.sae.k : ""));
  for (const k of Object.keys(md))
    if (k !== "model" && k !== "hook_name" && k !== "hook" && (typeof md[k] === "string" || typeof md[k] === "number"))
      fact(k.replace(/_/g, " "), md[k]);

  // Sorting and search.
  const sorts = [["index", "index", (a, b) => a.index - b.index],
                 ["density", "density", (a, b) => b.density - a.density || a.index - b.index],
                 ["max", "max activation", (a, b) => maxActivation(b) - maxActivation(a) || a.index - b.index]];
  if (features.some(hasScore))
    sorts.push(["score", "interpretability", (a, b) =>
      (hasScore(b) ? b.interpretability_score : -Infinity) - (hasScore(a) ? a.interpretability_score : -Infinity) ||
      a.index - b.index]);
  for (const [key, label] of sorts) {
    const o = el("option", "", label);
    o.value = key;
    $("sort").append(o);
  }
  $("search").placeholder = "search: " + unit + " index, token text or id";

  let haystack = null;  // per feature: token strings (lower case) and " id id ... " of its examples and boosted tokens
  function buildHaystack() {
    haystack = new Map();
    for (const f of features) {
      const strings = [], ids = [];
      for (const e of f.top_examples || []) {
        if (e.strings) strings.push(...e.strings);
        if (e.tokens) ids.push(...e.tokens);
      }
      for (const t of f.boosted_tokens || []) {
        if (typeof t.string === "string") strings.push(t.string);
        ids.push(t.token);
      }
      haystack.set(f.index, { text: "\u0000" + strings.join("\u0000").toLowerCase() + "\u0000", ids: " " + ids.join(" ") + " " });
    }
  }
  function matches(query) {
    const q = query.trim();
    if (!q) return features.slice();
    if (!haystack) buildHaystack();
    const lower = q.toLowerCase();
    const number = /^-?\d+$/.test(q) ? Number(q) : null;
    const first = number !== null && byIndex.has(number) ? [byIndex.get(number)] : [];
    const rest = features.filter((f) => {
      if (first.length && f === first[0]) return false;
      const h = haystack.get(f.index);
      return (number !== null && h.ids.includes(" " + number + " ")) || h.text.includes(lower);
    });
    return first.concat(rest);
  }

  // The list: `shown` rows rendered, more on demand.
  let view = [], shown = 0, selected = null;
  const list = $("list");
  const more = el("button", "", "");
  more.id = "more";
  more.addEventListener("click", () => renderRows(config.page_size));
  function lastColumn(f) {  // the sort key's value (density when sorted by index)
    const key = $("sort").value;
    if (key === "score") return hasScore(f) ? fmt(f.interpretability_score, 2) : "–";
    if (key === "max") return fmt(maxActivation(f), 2);
    return fmt(f.density, 4);
  }
  function renderRows(n) {
    const frag = document.createDocumentFragment();
    const end = Math.min(view.length, shown + n);
    for (let i = shown; i < end; ++i) {
      const f = view[i];
      const row = el("div", "item" + (f.index === selected ? " selected" : ""));
      row.dataset.index = f.index;
      row.append(el("span", "idx", "#" + f.index), el("span", "lbl", topToken(f)), el("span", "num", lastColumn(f)));
      frag.append(row);
    }
    shown = end;
    more.remove();
    list.append(frag);
    if (shown < view.length) {
      more.textContent = "show " + Math.min(config.page_size, view.length - shown) + " more (" + (view.length - shown) + " left)";
      list.append(more);
    }
  }
  function refresh() {
    const sort = sorts.find((s) => s[0] === $("sort").value);
    view = matches($("search").value).sort(sort[2]);
    if ($("search").value.trim() && /^-?\d+$/.test($("search").value.trim())) {  // an exact index match stays on top
      const n = Number($("search").value.trim());
      const at = view.findIndex((f) => f.index === n);
      if (at > 0) view.unshift(view.splice(at, 1)[0]);
    }
    $("list-key").textContent = { score: "score", max: "max act." }[sort[0]] || "density";
    const total = features.length;
    $("count").textContent = view.length === total ? total + " " + unit + "s" : view.length + " of " + total + " " + unit + "s";
    list.textContent = "";
    list.scrollTop = 0;
    shown = 0;
    renderRows(config.page_size);
  }
  list.addEventListener("click", (event) => {
    const row = event.target.closest(".item");
    if (row) location.hash = "feature=" + row.dataset.index;
  });
  let timer = 0;
  $("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 120); });
  $("sort").addEventListener("change", refresh);

  // A feature's detail, built when it is selected.
  function stat(box, k, v) {
    const s = el("div", "stat");
    s.append(el("div", "v", v), el("div", "k", k));
    box.append(s);
  }
  function histogram(h) {
    const svg = $("svg-template").content.firstElementChild.cloneNode(true);
    const ns = svg.namespaceURI;  // SVG's, given by the HTML parser (no namespace URL in the page)
    const counts = h.counts, n = counts.length, W = 420, H = 110, pad = 18;
    const top = counts.reduce((a, b) => Math.max(a, b), 1);
    svg.setAttribute("width", W);
    svg.setAttribute("height", H + pad);
    svg.setAttribute("viewBox", "0 0 " + W + " " + (H + pad));
    const bw = (W - 2) / n;
    counts.forEach((c, i) => {
      const r = document.createElementNS(ns, "rect");
      const hgt = c > 0 ? Math.max(1, (H - 14) * c / top) : 0;
      r.setAttribute("x", 1 + i * bw);
      r.setAttribute("y", H - hgt);
      r.setAttribute("width", Math.max(1, bw - 1));
      r.setAttribute("height", hgt);
      const tip = document.createElementNS(ns, "title");
      tip.textContent = "[" + fmt(h.top * i / n) + ", " + fmt(h.top * (i + 1) / n) + "): " + c;
      r.append(tip);
      svg.append(r);
    });
    const label = (x, text, anchor) => {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x);
      t.setAttribute("y", H + 13);
      t.setAttribute("text-anchor", anchor);
      t.textContent = text;
      svg.append(t);
    };
    label(1, "0", "start");
    label(W - 1, fmt(h.top, 2), "end");
    const peak = document.createElementNS(ns, "text");
    peak.setAttribute("x", W - 1);
    peak.setAttribute("y", 10);
    peak.setAttribute("text-anchor", "end");
    peak.textContent = "tallest bin: " + top + " rows";
    svg.append(peak);
    return svg;
  }
  function effects(title, cls, tokens) {
    const box = el("div");
    box.append(el("h3", "", title));
    const table = el("table", "effects");
    for (const t of tokens) {
      const tr = el("tr");
      const tok = el("td");
      tok.append(el("span", "tok", tokenLabel(t)));
      tok.title = "token " + t.token;
      tr.append(tok, el("td", "logit " + cls, (t.logit > 0 ? "+" : "") + fmt(t.logit)));
      table.append(tr);
    }
    box.append(table);
    return box;
  }
  function strip(e, top) {
    const div = el("div", "strip");
    if (!e.tokens) {
      div.append(el("span", "", "example " + e.example + ", position " + e.position));
      return div;
    }
    const level = top > 0 ? Math.max(0, Math.min(1, e.activation / top)) : 0;
    e.tokens.forEach((id, i) => {
      const text = e.strings ? tokenText(e.strings[i]) : String(id);
      const s = el("span", i === e.token_index ? "hit" : "", e.strings ? text : " " + text + " ");
      const hit = i === e.token_index;
      s.style.background = "rgba(var(--hot), " + (hit ? 0.15 + 0.75 * level : 0.05 + 0.07 * level).toFixed(3) + ")";
      s.title = "token " + id + (e.strings ? " " + JSON.stringify(e.strings[i]) : "") +
                ", position " + ((e.context_start || 0) + i) + (hit ? ", activation " + fmt(e.activation) : "");
      div.append(s);
    });
    return div;
  }
  function showDetail(index) {
    const box = $("detail");
    box.textContent = "";
    box.scrollTop = 0;
    const f = byIndex.get(index);
    for (const row of list.querySelectorAll(".item.selected")) row.classList.remove("selected");
    selected = f ? index : null;
    if (!f) {
      box.append(el("div", "empty", index === null ? "Select a " + unit + " from the list, or search by index or token."
                                                    : "No " + unit + " " + index + " in this report."));
      return;
    }
    const row = list.querySelector('.item[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    const h2 = el("h2", "", Unit + " " + f.index);
    h2.id = "detail-title";
    box.append(h2);
    const stats = el("div", "stats");
    stat(stats, "density", fmt(f.density, 5));
    stat(stats, "fires", String(f.fires));
    stat(stats, "mean activation", fmt(f.mean_activation));
    stat(stats, "max activation", fmt(maxActivation(f)));
    if (hasScore(f)) stat(stats, "interpretability score", fmt(f.interpretability_score, 2));
    box.append(stats);

    const cols = el("div", "cols");
    if (f.histogram && f.histogram.counts && f.histogram.counts.length) {
      const h = el("div");
      h.append(el("h3", "", "activation histogram (firing rows)"), histogram(f.histogram));
      cols.append(h);
    }
    if (f.boosted_tokens) cols.append(effects("boosted tokens", "up", f.boosted_tokens));
    if (f.suppressed_tokens) cols.append(effects("suppressed tokens", "down", f.suppressed_tokens));
    if (cols.childNodes.length) box.append(cols);

    if (f.nearest && f.nearest.length) {
      box.append(el("h3", "", "nearest " + unit + "s (decoder cosine)"));
      const near = el("div", "near");
      for (const n of f.nearest) {
        const a = el("a", "", "#" + n.index + "  " + fmt(n.cosine, 2));
        a.href = "#feature=" + n.index;
        if (!byIndex.has(n.index)) {  // e.g. a dead latent left out of the report
          a.className = "absent";
          a.title = "not in this report";
        }
        near.append(a);
      }
      box.append(near);
    }

    const examples = f.top_examples || [];
    box.append(el("h3", "", "top examples (" + examples.length + ")"));
    if (!examples.length) box.append(el("div", "empty", "This " + unit + " never fired."));
    const table = el("table", "examples");
    const top = maxActivation(f);
    for (const e of examples) {
      const tr = el("tr");
      const strips = el("td");
      strips.append(strip(e, top));
      tr.append(el("td", "act", fmt(e.activation, 2)), el("td", "where", "ex " + e.example + " @" + e.position), strips);
      table.append(tr);
    }
    box.append(table);
  }
  function fromHash() {
    const m = /feature=(-?\d+)/.exec(location.hash);
    showDetail(m ? Number(m[1]) : null);
  }
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("keydown", (event) => {  // arrow keys walk the list
    if (event.target === $("search") || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    let at = view.findIndex((f) => f.index === selected);
    at = event.key === "ArrowDown" ? Math.min(view.length - 1, at + 1) : Math.max(0, at - 1);
    if (at >= shown) renderRows(config.page_size);
    if (view[at]) {
      event.preventDefault();
      location.hash = "feature=" + view[at].index;
      const row = list.querySelector('.item[data-index="' + view[at].index + '"]');
      if (row) row.scrollIntoView({ block: "nearest" });
    }
  });
  refresh();
  fromHash();
  const first = list.querySelector(".item.selected");  // a feature named in the address: show its row
  if (first) first.scrollIntoView({ block: "center" });
})();
</script>
</body>
</html>
)JS";

  std::string out;
  const std::string data = script_safe_json(report);
  out.reserve(data.size() + 32768);
  out += head;
  out += "<title>";
  out += markup_escaped(title);
  out += "</title>\n";
  out += style;
  out += body;
  out += "<script type=\"application/json\" id=\"mint-config\">";
  out += script_safe_json(config);
  out += "</script>\n<script type=\"application/json\" id=\"mint-report\">";
  out += data;
  out += "</script>\n";
  out += script;
  return out;
}

template <class Json>
void feature_browser_core<Json>::write(const Json& report, const std::string& path, const dictionary::feature_browser_options& options) {
  const std::string text = page(report, options);
  atomic_file out(path);
  out.write(text);
  out.commit();
}

#endif  // MINT_CORE_BODIES
}  // namespace mint::detail

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_FEATURE_BROWSER(CORE)            \
  MINT_CORE_FD(CORE, mint::detail::nearest_features_core) \
  CORE(struct mint::detail::feature_browser_core<>)
MINT_CORES_DICTIONARY_FEATURE_BROWSER(MINT_CORE)
