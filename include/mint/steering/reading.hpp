// Reading activations for steering: each row's activation at one token, at many sites, in one
// pass per batch of rows (the pass stops after the last site read), for contrastive pairs of
// prompts; and the typical activation norm at a site (from a run or a cache), which norm
// matching scales to. Cost: one forward (up to the last site read) per max_batch rows; memory
// rows x d per site.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// Which sites and which token of each row a reading takes.
struct reading_options {
  std::vector<std::string> sites{};  ///< the sites read (required); each [batch, pos, ...]
  /// The position read in each row: >= 0 an absolute position; < 0 counted from the row's end
  /// (-1 its last valid token, -2 the one before, where CAA's prompts hold the answer letter).
  /// Empty: -1 for every row; one value: that for every row; else one per row.
  std::vector<index> positions{};
  index max_batch = 0;  ///< rows per forward; 0: all rows in one forward
};

/// Activations at the read token of positive and negative prompts, pair by pair.
template <class T>
struct contrastive_activations {
  std::vector<std::string> sites;
  std::vector<matrix<T>> positive, negative;  ///< per site (in `sites` order): [pairs, features]

  index pairs() const noexcept { return positive.empty() ? 0 : index(positive.front().rows()); }
  /// The index of a site in `sites`; an argument_error otherwise.
  std::size_t site_index(std::string_view site) const {
    for (std::size_t s = 0; s < sites.size(); ++s)
      if (sites[s] == site) return s;
    throw argument_error("mint::contrastive_activations", "site", "'" + std::string(site) + "' was not read",
                         "needs one of the sites given to read_contrastive");
  }
};

namespace detail {

/// Features per position of a [batch, pos, ...] site: the product of its other extents.
inline index site_features(const site_info& info, const char* function) {
  if (info.axes.size() < 3 || info.axes[0] != axis::batch || info.axes[1] != axis::pos)
    throw argument_error(function, "site", "'" + info.name + "' is not [batch, pos, features...]",
                         "needs a site whose first axes are batch and pos, with features after them (a residual "
                         "stream, an MLP or head output)");
  index n = 1;
  for (std::size_t a = 2; a < info.axes.size(); ++a) n *= info.sizes[a];
  return n;
}

/// The absolute position each row reads, from reading_options::positions.
inline std::vector<index> read_positions(const token_batch& tokens, const std::vector<index>& positions,
                                         const char* function) {
  const index B = tokens.batch();
  if (positions.size() > 1 && index(positions.size()) != B)
    throw shape_error(function, "options.positions", detail::str("has ", positions.size(), " entries"),
                      detail::str("needs none, one, or one per row (", B, ")"));
  std::vector<index> out(static_cast<std::size_t>(B));
  for (index b = 0; b < B; ++b) {
    const index given = positions.empty() ? -1 : positions[positions.size() == 1 ? 0 : std::size_t(b)];
    const index L = tokens.length(b), p = given >= 0 ? given : L + given;
    if (p < 0 || p >= L)
      throw argument_error(function, "options.positions", detail::str("read position ", given, " of row ", b),
                           detail::str("needs a valid token of that row (length ", L, ")"));
    out[std::size_t(b)] = p;
  }
  return out;
}

/// Checks that pairs hold, per site, a positive and a negative matrix of one shape with at least
/// `min_pairs` rows and one feature.
template <class T>
void check_pairs(const contrastive_activations<T>& pairs, index min_pairs, const char* function, const char* argument) {
  if (pairs.sites.empty() || pairs.positive.size() != pairs.sites.size() || pairs.negative.size() != pairs.sites.size())
    throw argument_error(function, argument,
                         detail::str("hold ", pairs.sites.size(), " sites, ", pairs.positive.size(), " positive and ",
                                     pairs.negative.size(), " negative matrices"),
                         "needs one positive and one negative matrix per site, for at least one site (read_contrastive makes them)");
  for (std::size_t s = 0; s < pairs.sites.size(); ++s) {
    const auto &p = pairs.positive[s], &n = pairs.negative[s];
    if (p.rows() != n.rows() || p.cols() != n.cols() || p.rows() < min_pairs || p.cols() < 1)
      throw shape_error(function, argument,
                        detail::str("hold [", p.rows(), ", ", p.cols(), "] positive and [", n.rows(), ", ", n.cols(),
                                    "] negative rows at '", pairs.sites[s], "'"),
                        detail::str("needs equal shapes of at least one feature, with at least ", min_pairs, " pairs"));
  }
}

/// Rows [begin, end) of a token batch.
inline token_batch batch_rows(const token_batch& tokens, index begin, index end) {
  token_batch out(end - begin, tokens.positions());
  for (index b = begin; b < end; ++b) {
    for (index t = 0; t < tokens.positions(); ++t) out(b - begin, t) = tokens(b, t);
    out.set_length(b - begin, tokens.length(b));
  }
  return out;
}

}  // namespace detail

/// Each row's activation at its read position, per site of options.sites (in that order):
/// [rows, features], features the product of the site's extents after batch and pos.
template <runtime R>
std::vector<matrix<scalar_t<R>>> read_activations(R& model, const token_batch& tokens, const reading_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::read_activations";
  if (options.sites.empty()) throw argument_error(fn, "options.sites", "is empty", "needs at least one site");
  if (tokens.batch() < 1 || tokens.positions() < 1)
    throw shape_error(fn, "tokens", detail::str("are [", tokens.batch(), ", ", tokens.positions(), "]"),
                      "needs at least one row and one position");
  if (options.max_batch < 0)
    throw argument_error(fn, "options.max_batch", detail::str("is ", options.max_batch), "needs >= 0 (0 for all rows)");
  const site_table& table = model.sites();
  std::vector<site_id> ids;
  std::vector<matrix<T>> out;
  site_id last = -1;
  for (const auto& name : options.sites) {
    const site_id id = table.at(name, fn);
    ids.push_back(id);
    out.push_back(matrix<T>::Zero(tokens.batch(), detail::site_features(table[id], fn)));
    last = std::max(last, id);
  }
  const std::vector<index> at = detail::read_positions(tokens, options.positions, fn);
  std::vector<index> filled(ids.size(), 0);  // rows read per site

  const index step = options.max_batch > 0 ? options.max_batch : tokens.batch();
  for (index r0 = 0; r0 < tokens.batch(); r0 += step) {
    const index r1 = std::min(tokens.batch(), r0 + step);
    // The pass may stop once the last site has seen the furthest position read (a runtime may
    // call a site once per chunk of positions).
    const index furthest = *std::max_element(at.begin() + r0, at.begin() + r1);
    hook_set<T> hooks(table);
    for (std::size_t s = 0; s < ids.size(); ++s)
      hooks.add(ids[s], [&, s, r0, furthest, stop = ids[s] == last](hook_call<T>& c) {
        for (index b = 0; b < c.activation.extent(0); ++b) {
          const index p = at[std::size_t(r0 + b)];
          if (p < c.first_position || p >= c.first_position + c.activation.extent(1)) continue;
          const tensor_view<const T> src = c.activation.subview(b).subview(p - c.first_position);
          mint::copy(src, tensor_view<T>(out[s].row(r0 + b).data(), src.extents()));
          ++filled[s];
        }
        if (stop && c.chunk_end > furthest) c.stop();
      });
    model.forward(detail::batch_rows(tokens, r0, r1), hooks);
  }
  for (std::size_t s = 0; s < ids.size(); ++s)
    if (filled[s] != tokens.batch())
      throw argument_error(fn, "options.sites", detail::str("'", options.sites[s], "' was called for ", filled[s], " of ",
                                                           tokens.batch(), " rows' read positions"),
                           "needs sites the forward pass reaches at every position read");
  return out;
}

/// Activations of contrastive pairs: row i of `positive` and of `negative` form pair i (the two
/// batches need the same rows; their positions may differ). options.positions applies to both.
template <runtime R>
contrastive_activations<scalar_t<R>> read_contrastive(R& model, const token_batch& positive, const token_batch& negative,
                                                      const reading_options& options) {
  if (positive.batch() != negative.batch())
    throw shape_error("mint::read_contrastive", "negative", detail::str("has ", negative.batch(), " rows"),
                      detail::str("needs one per positive row (", positive.batch(), ")"));
  contrastive_activations<scalar_t<R>> out;
  out.sites = options.sites;
  out.positive = read_activations(model, positive, options);
  out.negative = read_activations(model, negative, options);
  return out;
}

/// The mean Euclidean norm of the activation at each site over every valid position of
/// `tokens` (in double): the scale match_norm() measures a vector against. One forward per
/// max_batch rows (0: one forward), stopped after the last site.
template <runtime R>
std::map<std::string, double, std::less<>> typical_norms(R& model, const token_batch& tokens,
                                                         const std::vector<std::string>& sites, index max_batch = 0) {
  using T = scalar_t<R>;
  const char* fn = "mint::typical_norms";
  if (sites.empty()) throw argument_error(fn, "sites", "are empty", "needs at least one site");
  if (max_batch < 0) throw argument_error(fn, "max_batch", detail::str("is ", max_batch), "needs >= 0 (0 for all rows)");
  const site_table& table = model.sites();
  std::vector<site_id> ids;
  site_id last = -1;
  for (const auto& name : sites) {
    ids.push_back(table.at(name, fn));
    detail::site_features(table[ids.back()], fn);
    last = std::max(last, ids.back());
  }
  std::vector<double> sum(ids.size(), 0.0);
  std::vector<index> count(ids.size(), 0);
  const index step = max_batch > 0 ? max_batch : tokens.batch();
  for (index r0 = 0; r0 < tokens.batch(); r0 += step) {
    hook_set<T> hooks(table);
    for (std::size_t s = 0; s < ids.size(); ++s)
      hooks.add(ids[s], [&, s, stop = ids[s] == last](hook_call<T>& c) {
        for (index b = 0; b < c.activation.extent(0); ++b)
          for (index i = 0; i < c.activation.extent(1); ++i) {
            if (!c.valid(b, i)) continue;
            double squares = 0;
            const tensor_view<const T> v = c.activation.subview(b).subview(i);
            detail::for_each_index(v.extents(), [&](const auto& k) {
              const double x = double(detail::element_at(v, k));
              squares += x * x;
            });
            sum[s] += std::sqrt(squares);
            ++count[s];
          }
        if (stop && c.chunk_end >= tokens.positions()) c.stop();
      });
    model.forward(detail::batch_rows(tokens, r0, std::min(tokens.batch(), r0 + step)), hooks);
  }
  std::map<std::string, double, std::less<>> out;
  for (std::size_t s = 0; s < ids.size(); ++s) {
    if (count[s] == 0)
      throw argument_error(fn, "sites", "'" + sites[s] + "' saw no valid position", "needs tokens and sites the pass reaches");
    out[sites[s]] = sum[s] / double(count[s]);
  }
  return out;
}

/// The same from a cache that holds the sites (every valid position it stored).
template <class T>
std::map<std::string, double, std::less<>> typical_norms(const activation_cache<T>& cache,
                                                         const std::vector<std::string>& sites) {
  const char* fn = "mint::typical_norms";
  if (sites.empty()) throw argument_error(fn, "sites", "are empty", "needs at least one site");
  std::map<std::string, double, std::less<>> out;
  for (const auto& site : sites) {
    const matrix<T> rows = cache.rows(site);
    if (rows.rows() == 0) throw argument_error(fn, "cache", "holds no valid position at '" + site + "'", "needs a filled cache");
    out[site] = rows.template cast<double>().rowwise().norm().mean();
  }
  return out;
}

}  // namespace mint
