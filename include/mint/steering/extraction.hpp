// Steering vectors from contrastive data. Mean difference (contrastive activation addition,
// Rimsky et al. 2023); PCA of the pair differences or of the pair-centred activations (repeng's
// pca_diff and pca_center: scikit-learn's PCA, which centres its input first); ActAdd (Turner et
// al. 2023), the difference of two prompts position by position. PCA directions are exact
// eigenvectors (mint::symmetric_eigen of the smaller of the covariance and the Gram matrix,
// products in a fixed order: the same bits on any thread count) with unit norm and the sign
// fixed by repeng's majority rule: positives must project above their negatives in more pairs
// than not (on a tie repeng keeps scikit-learn's sign; mint takes the sign of the mean gap, then
// makes the largest component positive). Cost per site: n d min(n, d) for the product and
// min(n, d)^3 for the eigensolver (n the rows PCA sees: pairs, or twice that for pca_center).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/products.hpp"
#include "mint/core/symmetric_eigen.hpp"
#include "mint/model/runtime.hpp"
#include "mint/steering/reading.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// How extract_vector turns pairs into a direction.
enum class extraction_method : std::uint8_t {
  mean_difference,  ///< mean over pairs of positive - negative (CAA); keeps its length
  pca_difference,   ///< first principal component of the differences (repeng's pca_diff); unit length
  pca_center        ///< first principal component of each activation minus its pair's mean (pca_center); unit length
};

namespace detail {

#if MINT_CORE_BODIES  // used only by the cores' bodies
/// The first principal component of the rows of x (centred here, as scikit-learn's PCA does),
/// unit length, from whichever of x^T x and x x^T is smaller. A template (M is matrixd) so only
/// the units that extract compile the eigensolver.
template <class M>
Eigen::VectorXd first_principal_component(M x, const std::string& site) {
  const char* fn = "mint::extract_vector";
  x.rowwise() -= x.colwise().mean();
  const index n = x.rows(), d = x.cols();
  Eigen::VectorXd v;
  if (n <= d) {
    matrixd gram(n, n);
    detail::fixed_order_product(x, x.transpose(), gram);
    const auto e = symmetric_eigen(Eigen::MatrixXd(gram));
    v = x.transpose() * e.vectors.col(n - 1);
  } else {
    matrixd cov(d, d);
    detail::fixed_order_product(x.transpose(), x, cov);
    v = symmetric_eigen(Eigen::MatrixXd(cov)).vectors.col(d - 1);
  }
  const double norm = v.norm();
  if (!(norm > 0) || !std::isfinite(norm))
    throw numeric_error(fn, "activations", "have no variance at '" + site + "'",
                        "needs pairs that differ (the principal component of constant rows is undefined)");
  return v / norm;
}

/// repeng's sign rule: flip v when more pairs project with the positive below the negative than above.
template <class M>
void orient(Eigen::VectorXd& v, const M& positive, const M& negative) {
  const Eigen::VectorXd gap = (positive - negative) * v;
  const index above = (gap.array() > 0).count(), below = (gap.array() < 0).count();
  bool flip = below > above;
  if (below == above) {
    const double mean_gap = gap.sum();
    if (mean_gap != 0) flip = mean_gap < 0;
    else {
      Eigen::Index largest = 0;
      v.cwiseAbs().maxCoeff(&largest);
      flip = v(largest) < 0;
    }
  }
  if (flip) v = -v;
}
#endif  // MINT_CORE_BODIES

/// extract_vector's work, compiled once per scalar type (mint/core/compiled.hpp).
template <class T>
struct extraction_core {
  static steering_vector<T> extract(const contrastive_activations<T>& pairs, extraction_method method);
};

#if MINT_CORE_BODIES
template <class T>
steering_vector<T> extraction_core<T>::extract(const contrastive_activations<T>& pairs, extraction_method method) {
  const char* fn = "mint::extract_vector";
  check_pairs(pairs, method == extraction_method::mean_difference ? 1 : 2, fn, "pairs");
  steering_vector<T> out;
  for (std::size_t s = 0; s < pairs.sites.size(); ++s) {
    const matrixd positive = pairs.positive[s].template cast<double>(), negative = pairs.negative[s].template cast<double>();
    if (!positive.allFinite() || !negative.allFinite())
      throw numeric_error(fn, "pairs", "hold NaN or infinity at '" + pairs.sites[s] + "'", "needs finite activations");
    Eigen::VectorXd v;
    switch (method) {
      case extraction_method::mean_difference: v = (positive - negative).colwise().mean().transpose(); break;
      case extraction_method::pca_difference:
        v = detail::first_principal_component(matrixd(positive - negative), pairs.sites[s]);
        break;
      case extraction_method::pca_center: {
        const matrixd center = 0.5 * (positive + negative);
        matrixd both(2 * positive.rows(), positive.cols());
        both.topRows(positive.rows()) = positive - center;
        both.bottomRows(positive.rows()) = negative - center;
        v = detail::first_principal_component(std::move(both), pairs.sites[s]);
        break;
      }
    }
    if (method != extraction_method::mean_difference) detail::orient(v, positive, negative);
    std::vector<T>& d = out.directions[pairs.sites[s]];
    d.resize(std::size_t(v.size()));
    for (index i = 0; i < v.size(); ++i) d[std::size_t(i)] = T(v(i));
  }
  return out;
}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// One direction per site of the pairs, by `method`. Needs at least one pair (two for PCA).
template <class T>
steering_vector<T> extract_vector(const contrastive_activations<T>& pairs,
                                  extraction_method method = extraction_method::mean_difference) {
  return detail::extraction_core<T>::extract(pairs, method);
}

namespace detail {

/// Every valid position of row 0 of `tokens` at each site: [length, features] per site, one forward.
template <runtime R>
std::vector<matrix<scalar_t<R>>> read_row(R& model, const token_batch& tokens, const std::vector<std::string>& sites,
                                          const char* function) {
  using T = scalar_t<R>;
  const site_table& table = model.sites();
  const index n = tokens.length(0);
  std::vector<matrix<T>> out;
  out.reserve(sites.size());  // the hooks keep references to the matrices
  std::vector<index> filled(sites.size(), 0);
  hook_set<T> hooks(table);
  for (std::size_t s = 0; s < sites.size(); ++s) {
    const site_id id = table.at(sites[s], function);
    out.push_back(matrix<T>::Zero(n, site_features(table[id], function)));
    hooks.add(id, [&m = out.back(), &count = filled[s]](hook_call<T>& c) {
      for (index i = 0; i < c.activation.extent(1); ++i) {
        if (!c.valid(0, i)) continue;
        const tensor_view<const T> src = c.activation.subview(0).subview(i);
        mint::copy(src, tensor_view<T>(m.row(c.position(i)).data(), src.extents()));
        ++count;
      }
    });
  }
  model.forward(tokens, hooks);
  for (std::size_t s = 0; s < sites.size(); ++s)
    if (filled[s] != n)
      throw argument_error(function, "sites", detail::str("'", sites[s], "' was called for ", filled[s], " of ", n, " positions"),
                           "needs sites the forward pass reaches at every position");
  return out;
}

}  // namespace detail

/// ActAdd: the activations of `positive` minus those of `negative` (one row each, of one length
/// n: pad the shorter prompt, as Turner et al. pad with spaces) at each site, position by
/// position, to be added at positions [first_position, first_position + n) of the steered run.
/// Two forwards.
template <runtime R>
steering_sequence<scalar_t<R>> act_add(R& model, const token_batch& positive, const token_batch& negative,
                                       const std::vector<std::string>& sites, index first_position = 0) {
  using T = scalar_t<R>;
  const char* fn = "mint::act_add";
  if (positive.batch() != 1 || negative.batch() != 1 || positive.length(0) != negative.length(0) || positive.length(0) < 1)
    throw shape_error(fn, "prompts",
                      detail::str("are ", positive.batch(), " and ", negative.batch(), " rows of lengths ",
                                  positive.batch() ? positive.length(0) : 0, " and ", negative.batch() ? negative.length(0) : 0),
                      "needs one row each, of one non-zero length (pad the shorter prompt)");
  if (sites.empty()) throw argument_error(fn, "sites", "are empty", "needs at least one site");
  if (first_position < 0) throw argument_error(fn, "first_position", detail::str("is ", first_position), "needs >= 0");
  const auto p = detail::read_row(model, positive, sites, fn);
  const auto q = detail::read_row(model, negative, sites, fn);
  steering_sequence<T> out;
  out.first_position = first_position;
  for (std::size_t s = 0; s < sites.size(); ++s) out.directions[sites[s]] = p[s] - q[s];
  return out;
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_STEERING_EXTRACTION(CORE) MINT_CORE_FD(CORE, mint::detail::extraction_core)
MINT_CORES_STEERING_EXTRACTION(MINT_CORE)
