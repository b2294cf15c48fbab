// The geometric median of a set of rows (Weiszfeld's iteration from the mean): the point
// minimizing the summed distance to the rows, robust to outliers. The SAE trainer starts
// b_dec there. O(iterations n d).
#pragma once

#include <cmath>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"

namespace mint::detail {

/// geometric_median over float and double rows (mint/core/compiled.hpp).
template <class T>
struct geometric_median_core {
  static vectord run(const tensor_view<const T>& x, int iterations, double tolerance);
};

#if MINT_CORE_BODIES
template <class T>
vectord geometric_median_core<T>::run(const tensor_view<const T>& x, int iterations, double tolerance) {
  const auto m = as_matrix(x);
  if (m.rows() < 1) throw shape_error("mint::dictionary::geometric_median", "x", "has no rows", "needs at least one");
  const matrixd data = m.template cast<double>();
  for (index i = 0; i < data.rows(); ++i)
    if (!data.row(i).allFinite())
      throw numeric_error("mint::dictionary::geometric_median", "x", detail::str("holds a NaN or infinity in row ", i),
                          "needs finite rows");
  vectord y = data.colwise().mean().transpose();
  vectord next(y.size());
  for (int it = 0; it < iterations; ++it) {
    next.setZero();
    double weights = 0;
    for (index i = 0; i < data.rows(); ++i) {
      const double dist = (data.row(i).transpose() - y).norm();
      const double w = 1.0 / std::max(dist, 1e-12);  // a row at y pulls hard but finitely
      next += w * data.row(i).transpose();
      weights += w;
    }
    next /= weights;
    const double moved = (next - y).norm();
    y.swap(next);
    if (moved <= tolerance * std::max(1.0, y.norm())) break;
  }
  return y;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// The geometric median of the rows of x (Weiszfeld's iteration from the mean): the point
/// minimizing the summed distance to the rows, robust to outliers. O(iterations n d).
template <tensor X>
vectord geometric_median(const X& x, int iterations = 100, double tolerance = 1e-7) {
  return detail::geometric_median_core<value_t<const X>>::run(mint::view(x), iterations, tolerance);
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_GEOMETRIC_MEDIAN(CORE) MINT_CORE_FD(CORE, mint::detail::geometric_median_core)
MINT_CORES_DICTIONARY_GEOMETRIC_MEDIAN(MINT_CORE)
