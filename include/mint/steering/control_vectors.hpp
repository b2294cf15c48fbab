// Steering vectors to and from llama.cpp control vectors. llama.cpp adds direction.N (times
// its scale) to the output of block N, counted from 0: TransformerLens's
// blocks.N.hook_resid_post, which is also blocks.(N+1).hook_resid_pre. Block 0's output is
// never steered (N >= 1). Sites are matched by role and layer, so any runtime whose sites say
// so converts. Write the file with mint::write_control_vector (mint/io/control_vector.hpp).
#pragma once

#include <string>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/io/control_vector.hpp"
#include "mint/model/site.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// The llama.cpp layer a site steers: N for blocks.N.hook_resid_post, N - 1 for
/// blocks.N.hook_resid_pre; an argument_error for other sites and for block 0's output.
inline int control_vector_layer(const site_table& sites, const std::string& site) {
  const char* fn = "mint::to_control_vector";
  const site_info& info = sites[sites.at(site, fn)];
  int layer = -1;
  if (info.role == site_role::resid_post) layer = info.layer;
  else if (info.role == site_role::resid_pre) layer = info.layer - 1;
  else
    throw argument_error(fn, "vector", "has a direction at '" + site + "'",
                         "needs residual-stream sites between blocks (hook_resid_post, or hook_resid_pre after block 0): "
                         "llama.cpp adds direction.N to block N's output");
  if (layer < 1)
    throw argument_error(fn, "vector", "has a direction at '" + site + "' (block 0's output or before)",
                         "needs the output of block 1 or later: llama.cpp never steers block 0's output");
  return layer;
}

/// The vector as llama.cpp's control vector for a model with these sites: each direction as
/// direction.N of the block whose output its site is. Two sites naming one block (its
/// resid_post and the next block's resid_pre) are summed, as llama.cpp sums what it loads.
template <class T>
control_vector to_control_vector(const steering_vector<T>& vector, const site_table& sites) {
  const char* fn = "mint::to_control_vector";
  if (vector.empty()) throw argument_error(fn, "vector", "has no directions", "needs at least one site");
  control_vector out;
  out.model_hint = vector.model_hint;
  for (const auto& [site, d] : vector.directions) {
    const int layer = control_vector_layer(sites, site);
    auto [it, fresh] = out.directions.try_emplace(layer, d.size(), 0.0f);
    detail::require_same_length(it->second.size(), d.size(), site, fn);
    for (std::size_t i = 0; i < d.size(); ++i) it->second[i] += float(d[i]);
  }
  return out;
}

/// A control vector as a steering vector at blocks.N.hook_resid_post (found by role and layer
/// in `sites`); a direction for a block the runtime lacks is an argument_error (llama.cpp drops
/// it silently), as is a length other than the site's.
template <class T = float>
steering_vector<T> from_control_vector(const control_vector& file, const site_table& sites) {
  const char* fn = "mint::from_control_vector";
  steering_vector<T> out;
  out.model_hint = file.model_hint;
  for (const auto& [layer, d] : file.directions) {
    const site_info* found = nullptr;
    for (const auto& s : sites)
      if (s.role == site_role::resid_post && s.layer == layer) found = &s;
    if (!found)
      throw argument_error(fn, "file", detail::str("has direction.", layer),
                           "needs a runtime with that block's hook_resid_post (llama.cpp drops directions past its layers)");
    index features = 1;
    for (std::size_t a = 2; a < found->sizes.size(); ++a) features *= found->sizes[a];
    if (index(d.size()) != features)
      throw shape_error(fn, "file", detail::str("has direction.", layer, " of length ", d.size()),
                        detail::str("needs '", found->name, "''s ", features, " features"));
    out.directions[found->name].assign(d.begin(), d.end());
  }
  return out;
}

}  // namespace mint
