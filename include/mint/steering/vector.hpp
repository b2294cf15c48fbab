// Steering vectors: one direction per site (usually each layer's residual stream), and their
// arithmetic. A site a vector does not name holds the zero direction, so sums and differences
// of vectors over different sites are their union, as llama.cpp sums control vectors. Norms
// and dot products run in double. Cost O(sites x d) per operation.
#pragma once

#include <cmath>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// A direction per site, by site name ("blocks.3.hook_resid_post"). Sizes are checked against
/// the runtime's sites when the vector is applied.
template <class T = float>
struct steering_vector {
  using scalar_type = T;
  /// Site name -> direction; a site with no entry holds the zero direction.
  std::map<std::string, std::vector<T>, std::less<>> directions;
  /// The model family it was made for, carried into llama.cpp files (controlvector.model_hint).
  std::string model_hint;

  steering_vector() = default;
  steering_vector(std::initializer_list<std::pair<const std::string, std::vector<T>>> entries,
                  std::string hint = {})
      : directions(entries), model_hint(std::move(hint)) {}

  /// The direction at a site; an argument_error naming the sites it has otherwise.
  const std::vector<T>& operator[](std::string_view site) const {
    const auto it = directions.find(site);
    if (it == directions.end())
      throw argument_error("mint::steering_vector", "site", "'" + std::string(site) + "' has no direction",
                           "needs one of its sites: " + site_list());
    return it->second;
  }
  bool contains(std::string_view site) const { return directions.find(site) != directions.end(); }
  std::size_t size() const noexcept { return directions.size(); }
  bool empty() const noexcept { return directions.empty(); }

  /// "'a', 'b'": the sites, for messages.
  std::string site_list() const {
    std::string out;
    for (const auto& [name, d] : directions) out += (out.empty() ? "'" : ", '") + name + "'";
    return out.empty() ? "(none)" : out;
  }
};

/// Directions that change with position, as ActAdd makes them: per site a [positions, features]
/// matrix whose row i is added at absolute position first_position + i.
template <class T = float>
struct steering_sequence {
  std::map<std::string, matrix<T>, std::less<>> directions;
  index first_position = 0;
  index positions() const noexcept { return directions.empty() ? 0 : index(directions.begin()->second.rows()); }
};

/// The same direction at each of several sites (directional ablation at every layer uses one
/// direction everywhere).
template <class T>
steering_vector<T> at_sites(const std::vector<T>& direction, const std::vector<std::string>& sites, std::string hint = {}) {
  steering_vector<T> out;
  out.model_hint = std::move(hint);
  for (const auto& s : sites) out.directions[s] = direction;
  return out;
}

namespace detail {

template <class T>
Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> direction_map(const std::vector<T>& d) {
  return {d.data(), Eigen::Index(d.size())};
}

template <class T>
double direction_dot(const std::vector<T>& a, const std::vector<T>& b) {
  return direction_map(a).template cast<double>().dot(direction_map(b).template cast<double>());
}

template <class T>
double direction_norm(const std::vector<T>& a) {
  return direction_map(a).template cast<double>().norm();
}

inline void require_same_length(std::size_t a, std::size_t b, std::string_view site, const char* function) {
  if (a != b)
    throw shape_error(function, "vectors",
                      site.empty() ? detail::str("have lengths ", a, " and ", b)
                                   : detail::str("have directions of length ", a, " and ", b, " at '", site, "'"),
                      "needs one length per site");
}

/// a + s * b over the union of sites.
template <class T>
steering_vector<T> add_scaled(const steering_vector<T>& a, const steering_vector<T>& b, double s, const char* function) {
  steering_vector<T> out = a;
  if (out.model_hint.empty()) out.model_hint = b.model_hint;
  for (const auto& [site, d] : b.directions) {
    auto [it, fresh] = out.directions.try_emplace(site, d.size(), T(0));
    require_same_length(it->second.size(), d.size(), site, function);
    for (std::size_t i = 0; i < d.size(); ++i) it->second[i] = T(double(it->second[i]) + s * double(d[i]));
  }
  return out;
}

}  // namespace detail

/// a + b: the union of their sites, summed where both have one (lengths must agree there).
template <class T>
steering_vector<T> operator+(const steering_vector<T>& a, const steering_vector<T>& b) {
  return detail::add_scaled(a, b, 1.0, "mint::steering_vector operator+");
}

/// a - b: the union of their sites.
template <class T>
steering_vector<T> operator-(const steering_vector<T>& a, const steering_vector<T>& b) {
  return detail::add_scaled(a, b, -1.0, "mint::steering_vector operator-");
}

/// Every direction times s.
template <class T>
steering_vector<T> operator*(double s, steering_vector<T> v) {
  for (auto& [site, d] : v.directions)
    for (T& x : d) x = T(s * double(x));
  return v;
}
template <class T>
steering_vector<T> operator*(const steering_vector<T>& v, double s) {
  return s * v;
}

/// The mean of several vectors: their sum over the union of sites divided by their count.
template <class T>
steering_vector<T> mean(std::span<const steering_vector<T>> vectors) {
  const char* fn = "mint::mean";
  if (vectors.empty()) throw argument_error(fn, "vectors", "are empty", "needs at least one steering vector");
  steering_vector<T> sum;
  for (const auto& v : vectors) sum = detail::add_scaled(sum, v, 1.0, fn);
  return (1.0 / double(vectors.size())) * sum;
}
template <class T>
steering_vector<T> mean(const std::vector<steering_vector<T>>& vectors) {
  return mean(std::span<const steering_vector<T>>(vectors));
}

/// Cosine similarity of two directions (0 when either is zero).
template <class T>
double cosine_similarity(const std::vector<T>& a, const std::vector<T>& b) {
  detail::require_same_length(a.size(), b.size(), "", "mint::cosine_similarity");
  const double na = detail::direction_norm(a), nb = detail::direction_norm(b);
  return na > 0 && nb > 0 ? detail::direction_dot(a, b) / (na * nb) : 0.0;
}

/// Cosine similarity per site, for the sites both vectors have.
template <class T>
std::map<std::string, double, std::less<>> cosine_similarity(const steering_vector<T>& a, const steering_vector<T>& b) {
  std::map<std::string, double, std::less<>> out;
  for (const auto& [site, d] : a.directions)
    if (const auto it = b.directions.find(site); it != b.directions.end()) out[site] = cosine_similarity(d, it->second);
  return out;
}

/// a with its component along b removed at every site both have (one Gram-Schmidt step):
/// a - (a . b / |b|^2) b. Sites where b is absent or zero keep a's direction.
template <class T>
steering_vector<T> project_off(steering_vector<T> a, const steering_vector<T>& b) {
  for (auto& [site, d] : a.directions) {
    const auto it = b.directions.find(site);
    if (it == b.directions.end()) continue;
    detail::require_same_length(d.size(), it->second.size(), site, "mint::project_off");
    const double bb = detail::direction_dot(it->second, it->second);
    if (!(bb > 0)) continue;
    const double c = detail::direction_dot(d, it->second) / bb;
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = T(double(d[i]) - c * double(it->second[i]));
  }
  return a;
}

/// Every direction scaled to unit length; a zero direction is a numeric_error.
template <class T>
steering_vector<T> normalized(steering_vector<T> v) {
  for (auto& [site, d] : v.directions) {
    const double n = detail::direction_norm(d);
    if (!(n > 0) || !std::isfinite(n))
      throw numeric_error("mint::normalized", "vector", detail::str("has norm ", n, " at '", site, "'"),
                          "needs a finite non-zero direction at every site");
    for (T& x : d) x = T(double(x) / n);
  }
  return v;
}

/// The Euclidean norm of each site's direction.
template <class T>
std::map<std::string, double, std::less<>> norms(const steering_vector<T>& v) {
  std::map<std::string, double, std::less<>> out;
  for (const auto& [site, d] : v.directions) out[site] = detail::direction_norm(d);
  return out;
}

/// Each direction scaled so its norm is `fraction` of the typical activation norm at its site
/// (`typical`, site -> norm, e.g. from typical_norms()). A site missing from `typical` or a zero
/// direction is an argument_error.
template <class T>
steering_vector<T> match_norm(steering_vector<T> v, const std::map<std::string, double, std::less<>>& typical,
                              double fraction = 1.0) {
  const char* fn = "mint::match_norm";
  if (!std::isfinite(fraction))
    throw argument_error(fn, "fraction", detail::str("is ", fraction), "needs a finite value");
  for (auto& [site, d] : v.directions) {
    const auto it = typical.find(site);
    if (it == typical.end())
      throw argument_error(fn, "typical", "has no norm for '" + site + "'", "needs a norm for every site of the vector");
    if (!(it->second >= 0) || !std::isfinite(it->second))
      throw argument_error(fn, "typical", detail::str("has norm ", it->second, " for '", site, "'"), "needs finite norms >= 0");
    const double n = detail::direction_norm(d);
    if (!(n > 0))
      throw argument_error(fn, "v", "has a zero direction at '" + site + "'", "needs a non-zero direction to rescale");
    const double s = fraction * it->second / n;
    for (T& x : d) x = T(double(x) * s);
  }
  return v;
}

}  // namespace mint
