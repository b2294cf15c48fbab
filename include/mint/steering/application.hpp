// Applying steering during a run: hooks that add a scaled vector, clamp the projection on a
// direction, or remove it (directional ablation), at chosen sites and positions. Positions
// are absolute, so the result is the same whether the runtime evaluates a sequence at once, in
// chunks, or token by token with a KV cache (mint::generate). The hooks hold everything they
// need and do not allocate per call. Cost per call: O(rows x positions x d).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/site.hpp"
#include "mint/model/site_values.hpp"
#include "mint/steering/reading.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// Which positions a steering hook changes.
enum class steer_positions : std::uint8_t {
  all,        ///< every valid position
  prompt,     ///< positions before the row's prompt length (the prompt)
  generated,  ///< positions at or after the row's prompt length (tokens generate() added)
  given       ///< the absolute positions in position_policy::given
};

/// Where a steering hook acts. Positions are absolute: position p of row b is a prompt token
/// when p < prompt_lengths[b]. Padding (p >= a row's length) is never changed.
struct position_policy {
  steer_positions positions = steer_positions::all;
  /// For prompt and generated: where each row's prompt ends; one value for every row, or one
  /// per row (e.g. generation_result::prompt_lengths, or the prompts' lengths()).
  std::vector<index> prompt_lengths{};
  /// For given: the absolute positions changed, in any order.
  std::vector<index> given{};
};

/// The prompt positions of rows with these prompt lengths (one per row, or one for all).
inline position_policy prompt_positions(std::span<const index> prompt_lengths) {
  return {steer_positions::prompt, {prompt_lengths.begin(), prompt_lengths.end()}, {}};
}
/// The positions after the prompt (what generate() adds) of rows with these prompt lengths.
inline position_policy generated_positions(std::span<const index> prompt_lengths) {
  return {steer_positions::generated, {prompt_lengths.begin(), prompt_lengths.end()}, {}};
}

namespace detail {

/// A position_policy checked and ready for per-position tests without allocating.
class position_test {
public:
  position_test(position_policy p, const char* function) : p_(std::move(p)) {
    const bool needs_lengths = p_.positions == steer_positions::prompt || p_.positions == steer_positions::generated;
    if (needs_lengths && p_.prompt_lengths.empty())
      throw argument_error(function, "policy.prompt_lengths", "is empty",
                           "needs where each row's prompt ends for steer_positions::prompt or generated");
    for (index n : p_.prompt_lengths)
      if (n < 0) throw argument_error(function, "policy.prompt_lengths", detail::str("holds ", n), "needs lengths >= 0");
    if (p_.positions == steer_positions::given && p_.given.empty())
      throw argument_error(function, "policy.given", "is empty", "needs the positions for steer_positions::given");
    for (index t : p_.given)
      if (t < 0) throw argument_error(function, "policy.given", detail::str("holds ", t), "needs positions >= 0");
    std::sort(p_.given.begin(), p_.given.end());
    function_ = function;
  }

  /// Checks a call's rows against prompt_lengths (one for all rows, or one per row).
  template <class T>
  void check_rows(const hook_call<T>& c) const {
    const bool by_row = p_.positions == steer_positions::prompt || p_.positions == steer_positions::generated;
    if (by_row && p_.prompt_lengths.size() != 1 && index(p_.prompt_lengths.size()) != c.activation.extent(0))
      throw argument_error(function_, "policy.prompt_lengths", detail::str("has ", p_.prompt_lengths.size(), " entries"),
                           detail::str("needs one per row of the run (", c.activation.extent(0), " at '", c.site.name,
                                       "'), or one for all"));
  }

  /// Whether view index i of row b in call c is changed (after check_rows(c)).
  template <class T>
  bool operator()(const hook_call<T>& c, index b, index i) const {
    if (!c.valid(b, i)) return false;
    const index t = c.position(i);
    switch (p_.positions) {
      case steer_positions::all: return true;
      case steer_positions::prompt: return t < prompt_length(b);
      case steer_positions::generated: return t >= prompt_length(b);
      case steer_positions::given: return std::binary_search(p_.given.begin(), p_.given.end(), t);
    }
    return false;
  }

private:
  index prompt_length(index b) const { return p_.prompt_lengths[p_.prompt_lengths.size() == 1 ? 0 : std::size_t(b)]; }

  position_policy p_;
  const char* function_ = "";
};

/// Calls f(x, offset) with the features at view index i of row b as Eigen vector maps, x the
/// features from `offset` on: one map when they are contiguous, else one per row of the last axis.
template <class T, class F>
void with_features(const tensor_view<T>& activation, index b, index i, F&& f) {
  const tensor_view<T> v = activation.subview(b).subview(i);
  using map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>, Eigen::Unaligned, Eigen::InnerStride<>>;
  if (v.is_contiguous()) {  // the usual case: one vectorised map over all features
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> m(v.data(), v.size());
    f(m, index(0));
    return;
  }
  if (v.rank() == 1) {
    map m(v.data(), v.extent(0), Eigen::InnerStride<>(v.stride(0)));
    f(m, index(0));
    return;
  }
  // [heads, d_head] and the like: one row of the last axis at a time, at its offset in the direction.
  const index inner = v.extent(v.rank() - 1);
  index offset = 0;
  std::array<index, 4> outer{};
  std::copy(v.extents().begin(), v.extents().end() - 1, outer.begin());
  detail::for_each_index(std::span<const index>(outer.data(), std::size_t(v.rank() - 1)), [&](const auto& k) {
    T* p = v.data();
    for (int a = 0; a + 1 < v.rank(); ++a) p += k[std::size_t(a)] * v.stride(a);
    map m(p, inner, Eigen::InnerStride<>(v.stride(v.rank() - 1)));
    f(m, offset);
    offset += inner;
  });
}

/// The site of `name` in the hook set's table, checked as [batch, pos, ...] of `features` features.
template <class T>
site_id steering_site(const hook_set<T>& hooks, const std::string& name, index features, const char* function) {
  if (!hooks.sites())
    throw argument_error(function, "hooks", "were made without a site table", "needs hook_set(runtime.sites())");
  const site_id id = hooks.sites()->at(name, function);
  const index need = site_features((*hooks.sites())[id], function);
  if (need != features)
    throw shape_error(function, "vector", detail::str("has a direction of length ", features, " at '", name, "'"),
                      detail::str("needs the site's ", need, " features"));
  return id;
}

template <class T, class U>
Eigen::Matrix<T, Eigen::Dynamic, 1> direction_as(const std::vector<U>& d, double scale, const char* function,
                                                 const std::string& site) {
  Eigen::Matrix<T, Eigen::Dynamic, 1> out(Eigen::Index(d.size()));
  for (std::size_t i = 0; i < d.size(); ++i) {
    const T x = T(scale * double(d[i]));
    if (!std::isfinite(double(x)))
      throw argument_error(function, "vector", detail::str("times the scale holds ", x, " at '", site, "' (index ", i, ")"),
                           "needs finite values in the activation's type (and a finite scale)");
    out(Eigen::Index(i)) = x;
  }
  return out;
}

/// The vector with each direction at unit length; a zero or non-finite direction is an
/// argument_error naming `function`.
template <class U>
steering_vector<U> unit_directions(const steering_vector<U>& v, const char* function) {
  if (v.empty()) throw argument_error(function, "vector", "has no directions", "needs at least one site");
  for (const auto& [site, d] : v.directions) {
    const double n = direction_norm(d);
    if (!(n > 0) || !std::isfinite(n))
      throw argument_error(function, "vector", detail::str("has norm ", n, " at '", site, "'"),
                           "needs a finite non-zero direction at every site");
  }
  return normalized(v);
}

}  // namespace detail

/// Adds scale x the vector's direction at each of its sites, at the positions `at` chooses: the
/// steering of contrastive activation addition and of llama.cpp's control vectors. Needs `add`
/// access at each site; each direction's length must be the site's features per position.
template <class T, class U>
void add_steering(hook_set<T>& hooks, const steering_vector<U>& vector, double scale = 1.0,
                  const position_policy& at = {}) {
  const char* fn = "mint::add_steering";
  if (vector.empty()) throw argument_error(fn, "vector", "has no directions", "needs at least one site");
  const auto test = std::make_shared<const detail::position_test>(at, fn);
  for (const auto& [site, direction] : vector.directions) {
    const site_id id = detail::steering_site(hooks, site, index(direction.size()), fn);
    hooks.add(
        id,
        [test, w = detail::direction_as<T>(direction, scale, fn, site)](hook_call<T>& c) {
          test->check_rows(c);
          for (index b = 0; b < c.activation.extent(0); ++b)
            for (index i = 0; i < c.activation.extent(1); ++i)
              if ((*test)(c, b, i))
                detail::with_features(c.activation, b, i, [&](auto& x, index o) { x += w.segment(o, x.size()); });
        },
        {access::add, {}});
  }
}

/// Adds a position-dependent sequence (ActAdd): row k of each site's matrix, times scale, at
/// absolute position sequence.first_position + k of every row (where the row has that position).
template <class T, class U>
void add_steering(hook_set<T>& hooks, const steering_sequence<U>& sequence, double scale = 1.0) {
  const char* fn = "mint::add_steering";
  if (sequence.directions.empty()) throw argument_error(fn, "sequence", "has no directions", "needs at least one site");
  if (sequence.first_position < 0)
    throw argument_error(fn, "sequence.first_position", detail::str("is ", sequence.first_position), "needs >= 0");
  for (const auto& [site, rows] : sequence.directions) {
    const site_id id = detail::steering_site(hooks, site, index(rows.cols()), fn);
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w = (scale * rows.template cast<double>()).template cast<T>();
    if (!w.allFinite())
      throw argument_error(fn, "sequence", "holds NaN or infinity at '" + site + "'", "needs finite values (and a finite scale)");
    hooks.add(
        id,
        [w = std::move(w), first = sequence.first_position](hook_call<T>& c) {
          for (index b = 0; b < c.activation.extent(0); ++b)
            for (index i = 0; i < c.activation.extent(1); ++i) {
              const index k = c.position(i) - first;
              if (k < 0 || k >= w.rows() || !c.valid(b, i)) continue;
              detail::with_features(c.activation, b, i, [&](auto& x, index o) {
                x += w.row(k).segment(o, x.size()).transpose();
              });
            }
        },
        {access::add, {}});
  }
}

namespace detail {

/// The projection on each site's unit direction r set to `value`: a <- a + (value - a.r) r.
template <class T, class U>
void add_projection_hooks(hook_set<T>& hooks, const steering_vector<U>& vector, double value, const position_policy& at,
                          const char* fn) {
  if (!std::isfinite(value)) throw argument_error(fn, "value", detail::str("is ", value), "needs a finite value");
  const auto test = std::make_shared<const position_test>(at, fn);
  for (const auto& [site, direction] : unit_directions(vector, fn).directions) {
    const site_id id = steering_site(hooks, site, index(direction.size()), fn);
    hooks.add(
        id,
        [test, value, r = direction_as<T>(direction, 1.0, fn, site)](hook_call<T>& c) {
          test->check_rows(c);
          for (index b = 0; b < c.activation.extent(0); ++b)
            for (index i = 0; i < c.activation.extent(1); ++i) {
              if (!(*test)(c, b, i)) continue;
              T along = 0;
              with_features(c.activation, b, i, [&](auto& x, index o) { along += x.dot(r.segment(o, x.size())); });
              const T move = T(value) - along;
              with_features(c.activation, b, i, [&](auto& x, index o) { x += move * r.segment(o, x.size()); });
            }
        },
        {access::read | access::write, {}});
  }
}

}  // namespace detail

/// Sets the projection on each site's unit direction r to `value`: a <- a + (value - a.r) r, at
/// the positions `at` chooses. value is in the activation's units along r. Needs read and write.
template <class T, class U>
void add_projection_clamp(hook_set<T>& hooks, const steering_vector<U>& vector, double value,
                          const position_policy& at = {}) {
  detail::add_projection_hooks(hooks, vector, value, at, "mint::add_projection_clamp");
}

/// Directional ablation: removes the component along each site's direction, a <- a - (a.r) r
/// with r the unit direction (the projection clamped to 0), at the positions `at` chooses
/// (Arditi et al.'s refusal-direction ablation with one direction at every residual site:
/// at_sites(r, residual_stream_sites(...))). Needs read and write.
template <class T, class U>
void add_directional_ablation(hook_set<T>& hooks, const steering_vector<U>& vector, const position_policy& at = {}) {
  detail::add_projection_hooks(hooks, vector, 0.0, at, "mint::add_directional_ablation");
}

/// Every residual-stream site of a runtime (hook_resid_pre, hook_resid_mid, hook_resid_post of
/// each block), in table order: where directional ablation at every layer removes a direction.
/// Ablating at all of them equals orthogonalising every matrix that writes into the residual.
inline std::vector<std::string> residual_stream_sites(const site_table& sites) {
  std::vector<std::string> out;
  for (const auto& s : sites)
    if (s.role == site_role::resid_pre || s.role == site_role::resid_mid || s.role == site_role::resid_post)
      out.push_back(s.name);
  return out;
}

}  // namespace mint
