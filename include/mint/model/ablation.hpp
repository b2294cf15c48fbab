// What replaces an activation when a method takes it away: zero, the mean over a reference
// batch (per position or pooled), a resample from other inputs, another run's value (the
// corrupted input), or a given tensor. One type, shared by integrated gradients' baselines,
// feature ablation, activation patching and circuit discovery, so a user learns it once.
// ablation_values() turns one into the replacement for a site and a batch: O(one forward of the
// reference batch, stopped at the site) plus O(site size).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"

namespace mint {

/// What replaces an activation. Make one with the named constructors.
struct ablation {
  enum class kind : std::uint8_t {
    zero,      ///< every element 0
    mean,      ///< the mean activation over a reference batch (per position, or pooled over positions)
    resample,  ///< the activation of a reference row drawn at random per row (seeded; `draws` draws)
    run,       ///< the activation of another input of the same shape (the corrupted run)
    tensor,    ///< given values
  };

  kind what = kind::zero;
  token_batch reference{};    ///< mean, resample: the reference inputs; run: the other input
  bool per_position = true;   ///< mean: average each position over the rows (true) or pool every valid token
  int draws = 1;              ///< resample: how many draws a method averages over
  std::uint64_t seed = 0;     ///< resample: draw d of row b comes from rng(seed, d)
  array<double> values{};     ///< tensor: the site's extents for the batch, or those without the batch axis (shared by rows)

  static ablation zero() { return {}; }
  static ablation mean(token_batch reference, bool per_position = true) {
    ablation a;
    a.what = kind::mean, a.reference = std::move(reference), a.per_position = per_position;
    return a;
  }
  static ablation resample(token_batch reference, int draws = 1, std::uint64_t seed = 0) {
    ablation a;
    a.what = kind::resample, a.reference = std::move(reference), a.draws = draws, a.seed = seed;
    return a;
  }
  static ablation run(token_batch other) {
    ablation a;
    a.what = kind::run, a.reference = std::move(other);
    return a;
  }
  template <mint::tensor X>
  static ablation tensor(const X& values) {
    ablation a;
    a.what = kind::tensor;
    a.values = array<double>(mint::view(values).extents());
    mint::copy(values, a.values);
    return a;
  }
};

inline std::string_view to_string(ablation::kind k) noexcept {
  switch (k) {
    case ablation::kind::zero: return "zero";
    case ablation::kind::mean: return "mean";
    case ablation::kind::resample: return "resample";
    case ablation::kind::run: return "run";
    case ablation::kind::tensor: return "tensor";
  }
  return "unknown";
}

/// The values that replace `site`'s activation for `tokens` under `a`, shaped as the site's
/// activation for that batch ([batch, pos, ...]); for resample, those of draw `draw`. Padded
/// positions hold zeros for mean, resample and run.
template <runtime R>
array<scalar_t<R>> ablation_values(R& model, std::string_view site, const token_batch& tokens, const ablation& a,
                                   int draw = 0) {
  using T = scalar_t<R>;
  const char* fn = "mint::ablation_values";
  const site_info& info = model.sites()[model.sites().at(site, fn)];
  detail::require_batch_first(info, fn);
  const std::vector<index> extents = info.extents(tokens.batch(), tokens.positions());
  array<T> out(extents);
  out.fill(T(0));
  const int pos = info.axis_of(axis::pos);
  const std::string name = info.name;

  // A site's activation over another batch; `positions` of it must cover the batch's positions.
  const auto reference_run = [&](const token_batch& ref, const char* what) {
    if (ref.batch() == 0)
      throw argument_error(fn, "ablation.reference", "is empty", detail::str("needs ", what));
    if (pos >= 0 && ref.positions() < tokens.positions())
      throw shape_error(fn, "ablation.reference", detail::str("has ", ref.positions(), " positions"),
                        detail::str("needs at least the batch's ", tokens.positions()));
    return run_with_cache(model, ref, {name}, /*stop_early=*/true);
  };
  // Row b of the reference's site activation, cut to the batch's positions.
  const auto reference_row = [&](const tensor_view<const T>& ref, index b) {
    tensor_view<const T> row = ref.subview(b);
    return pos >= 0 ? row.narrow(pos - 1, 0, tokens.positions()) : row;
  };

  switch (a.what) {
    case ablation::kind::zero: break;
    case ablation::kind::run: {
      if (a.reference.batch() != tokens.batch() || a.reference.positions() != tokens.positions())
        throw shape_error(fn, "ablation.reference",
                          detail::str("is [", a.reference.batch(), ", ", a.reference.positions(), "]"),
                          detail::str("needs the batch's shape, [", tokens.batch(), ", ", tokens.positions(), "]"));
      const auto run = reference_run(a.reference, "the other input");
      mint::copy(run.cache[name], out);
      break;
    }
    case ablation::kind::resample: {
      if (a.draws < 1)
        throw argument_error(fn, "ablation.draws", detail::str("is ", a.draws), "needs at least 1");
      if (draw < 0 || draw >= a.draws)
        throw argument_error(fn, "draw", detail::str("is ", draw), detail::str("needs a draw in [0, ", a.draws, ")"));
      const auto run = reference_run(a.reference, "rows to draw from");
      rng r(a.seed, std::uint64_t(draw));
      for (index b = 0; b < tokens.batch(); ++b)
        mint::copy(reference_row(run.cache[name], index(r.below(std::uint64_t(a.reference.batch())))), out.view().subview(b));
      break;
    }
    case ablation::kind::mean: {
      const auto run = reference_run(a.reference, "rows to average");
      const tensor_view<const T> ref = run.cache[name];
      // Sums in double per element of one row, with the number of valid rows per position.
      const std::vector<index> row_extents(extents.begin() + 1, extents.end());
      array<double> sum(row_extents);
      sum.fill(0.0);
      std::vector<double> count(std::size_t(pos >= 0 ? tokens.positions() : 1), 0.0);
      for (index b = 0; b < a.reference.batch(); ++b) {
        const tensor_view<const T> row = reference_row(ref, b);
        detail::for_each_index(row.extents(), [&](const auto& i) {
          const index t = pos >= 0 ? i[std::size_t(pos - 1)] : 0;
          if (pos >= 0 && t >= a.reference.length(b)) return;
          detail::element_at(sum.view(), i) += double(detail::element_at(row, i));
        });
        if (pos < 0) count[0] += 1;
        else
          for (index t = 0; t < std::min(tokens.positions(), a.reference.length(b)); ++t) count[std::size_t(t)] += 1;
      }
      if (pos >= 0 && !a.per_position) {  // pool every valid token: one mean for all positions
        double total = 0;
        for (double c : count) total += c;
        array<double> pooled(row_extents);
        pooled.fill(0.0);
        detail::for_each_index(row_extents, [&](const auto& i) {
          auto j = i;
          j[std::size_t(pos - 1)] = 0;
          detail::element_at(pooled.view(), j) += detail::element_at(sum.view(), i);
        });
        detail::for_each_index(row_extents, [&](const auto& i) {
          auto j = i;
          j[std::size_t(pos - 1)] = 0;
          detail::element_at(sum.view(), i) = detail::element_at(pooled.view(), j);
        });
        std::fill(count.begin(), count.end(), total);
      }
      for (std::size_t t = 0; t < count.size(); ++t)
        if (count[t] == 0)
          throw argument_error(fn, "ablation.reference", detail::str("has no row reaching position ", t),
                               "needs rows at least as long as the positions averaged");
      for (index b = 0; b < tokens.batch(); ++b)
        detail::for_each_index(row_extents, [&](const auto& i) {
          const index t = pos >= 0 ? i[std::size_t(pos - 1)] : 0;
          if (pos >= 0 && t >= tokens.length(b)) return;
          detail::element_at(out.view().subview(b), i) = T(detail::element_at(sum.view(), i) / count[std::size_t(t)]);
        });
      break;
    }
    case ablation::kind::tensor: {
      const auto given = a.values.extents();
      const bool whole = std::ranges::equal(given, extents);
      const bool per_row = std::ranges::equal(given, std::span<const index>(extents).subspan(1));
      if (a.values.size() == 0 || (!whole && !per_row))
        throw shape_error(fn, "ablation.values", "has extents " + detail::shape_string(given),
                          "needs the site's extents for the batch, " + detail::shape_string(std::span<const index>(extents)) +
                              ", or those without the batch axis");
      detail::require_finite(tensor_view<const double>(a.values.view()), fn, "ablation.values");
      if (whole) mint::copy(a.values, out);
      else
        for (index b = 0; b < tokens.batch(); ++b) mint::copy(a.values.view(), out.view().subview(b));
      break;
    }
  }
  return out;
}

namespace detail {

/// The replacement values of a site, one array per draw (one unless resampling).
template <runtime R>
std::vector<array<scalar_t<R>>> draws_of(R& model, const std::string& site, const token_batch& tokens, const ablation& a) {
  std::vector<array<scalar_t<R>>> out;
  const int draws = a.what == ablation::kind::resample ? a.draws : 1;
  for (int d = 0; d < draws; ++d) out.push_back(ablation_values(model, site, tokens, a, d));
  return out;
}

}  // namespace detail

}  // namespace mint
