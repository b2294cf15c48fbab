// What every representation-similarity measure offers, so one driver
// (similarity_matrix, stagewise_similarity) runs any of them: prepare(x) does
// the per-layer work once (means, Gram, whitening, kNN lists), compare(a, b)
// the per-pair work. Each measure's options struct is the measure.
#pragma once

#include <concepts>
#include <string>

#include "mint/core/tensor_view.hpp"

namespace mint {

/// Where an input came from, for error messages: the public function and the argument's name.
struct similarity_context {
  std::string function = "mint::similarity";  ///< e.g. "mint::linear_cka"
  std::string argument = "x";                 ///< e.g. "y" or "layers_b[3]"
};

/// How products of float32 activations are computed (double data always runs in double).
enum class product_precision {
  input,    ///< float32 products within blocks of rows, summed across blocks in double (relative error ~1e-6)
  float64,  ///< double throughout: about twice the time for float32 data
};

/// Which estimator of the Hilbert-Schmidt independence criterion a CKA uses.
enum class hsic_estimator {
  biased,    ///< tr(KHLH) / (n-1)^2 (Gretton et al. 2005): Kornblith et al.'s CKA; biased upwards at small n
  unbiased,  ///< the U-statistic of Song et al. (2012): debiased CKA, near 0 for independent data at any n
};

/// A measure: options with prepare(view, context) -> per-layer state, compare(state, state) -> double,
/// name(), and whether it is a distance (0 = identical) and symmetric in its arguments.
template <class M>
concept similarity_measure = requires(const M& m, const tensor_view<const float>& f, const tensor_view<const double>& d,
                                      const similarity_context& where) {
  { m.compare(m.prepare(f, where), m.prepare(d, where)) } -> std::convertible_to<double>;
  { m.name() } -> std::convertible_to<std::string>;
  { M::is_distance } -> std::convertible_to<bool>;
  { M::is_symmetric } -> std::convertible_to<bool>;
};

}  // namespace mint
