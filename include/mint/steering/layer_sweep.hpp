// Choosing the layer from data: each site's direction scored by how well it separates held-out
// pairs. For pair i the gap is (positive_i - negative_i) . r with r the unit direction; a site
// scores its pair accuracy (the fraction of gaps above zero, ties counting half), the mean gap
// and the effect size (mean gap over the gaps' standard deviation). Per-pair gaps are kept: a
// vector can steer the wrong way on many inputs while its mean looks fine (Tan et al. 2024).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/steering/extraction.hpp"
#include "mint/steering/reading.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// One site's separation of held-out pairs.
struct site_separation {
  std::string site;
  double pair_accuracy = 0;  ///< fraction of pairs whose positive projects above its negative
  double mean_gap = 0;       ///< mean of (positive - negative) . r, r the unit direction
  double effect_size = 0;    ///< mean_gap / standard deviation of the gaps (0 when they do not vary)
  std::vector<double> gaps;  ///< per pair
};

/// Every site's separation, in the held-out pairs' site order; best() picks the layer.
struct layer_sweep_result {
  std::vector<site_separation> sites;
  /// The site with the highest pair accuracy (ties: the larger effect size, then the earlier site).
  const site_separation& best() const {
    if (sites.empty()) throw argument_error("mint::layer_sweep_result::best", "sites", "are empty", "needs a sweep of some site");
    const site_separation* top = &sites.front();
    for (const auto& s : sites)
      if (s.pair_accuracy > top->pair_accuracy || (s.pair_accuracy == top->pair_accuracy && s.effect_size > top->effect_size))
        top = &s;
    return *top;
  }
};

/// Scores each direction of `vector` on the held-out pairs at the same site (sites of the pairs
/// the vector lacks are an argument_error).
template <class T>
layer_sweep_result layer_sweep(const steering_vector<T>& vector, const contrastive_activations<T>& held_out) {
  const char* fn = "mint::layer_sweep";
  detail::check_pairs(held_out, 1, fn, "held_out");
  layer_sweep_result out;
  for (std::size_t s = 0; s < held_out.sites.size(); ++s) {
    const std::string& site = held_out.sites[s];
    if (!vector.contains(site))
      throw argument_error(fn, "vector", "has no direction at '" + site + "'", "needs one at every site of held_out");
    const std::vector<T>& d = vector[site];
    const matrix<T>& pos = held_out.positive[s];
    const matrix<T>& neg = held_out.negative[s];
    if (pos.cols() != index(d.size()))
      throw shape_error(fn, "held_out", detail::str("holds rows of ", pos.cols(), " features at '", site, "'"),
                        detail::str("needs the direction's length, ", d.size()));
    const double norm = detail::direction_norm(d);
    if (!(norm > 0)) throw argument_error(fn, "vector", "has a zero direction at '" + site + "'", "needs non-zero directions");
    const Eigen::VectorXd r = detail::direction_map(d).template cast<double>() / norm;
    const Eigen::VectorXd gap = (pos.template cast<double>() - neg.template cast<double>()) * r;
    site_separation e;
    e.site = site;
    const index n = gap.size();
    double above = 0;
    for (index i = 0; i < n; ++i) above += gap(i) > 0 ? 1.0 : gap(i) == 0 ? 0.5 : 0.0;
    e.pair_accuracy = above / double(n);
    e.mean_gap = gap.mean();
    const double sd = n > 1 ? std::sqrt((gap.array() - e.mean_gap).square().sum() / double(n - 1)) : 0.0;
    e.effect_size = sd > 0 ? e.mean_gap / sd : 0.0;
    e.gaps.assign(gap.data(), gap.data() + n);
    out.sites.push_back(std::move(e));
  }
  return out;
}

/// Extracts a vector from `train` by `method` and scores it on `held_out`: one call per layer choice.
template <class T>
layer_sweep_result layer_sweep(const contrastive_activations<T>& train, const contrastive_activations<T>& held_out,
                               extraction_method method = extraction_method::mean_difference) {
  return layer_sweep(extract_vector(train, method), held_out);
}

}  // namespace mint
