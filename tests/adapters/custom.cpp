// A tensor type mint has never seen, adapted with one specialization, then used
// by mint functions. This is the example docs/adapters.md quotes.
#include <doctest/doctest.h>

#include <vector>

#include "mint/mint.hpp"

// --- the user's code: a type and its adapter (12 lines) ---
struct my_tensor {
  std::vector<float> values;
  std::vector<mint::index> shape;  // row-major
};

template <>
struct mint::tensor_adapter<my_tensor> {
  static mint::tensor_view<float> view(my_tensor& t) { return {t.values.data(), t.shape}; }
  static mint::tensor_view<const float> view(const my_tensor& t) { return {t.values.data(), t.shape}; }
};
// --- end of the user's code ---

static_assert(mint::tensor<my_tensor>);
static_assert(mint::mutable_tensor<my_tensor>);
static_assert(!mint::mutable_tensor<const my_tensor>);

TEST_CASE("a user's own tensor type works with mint functions after one specialization") {
  const my_tensor x{{1, 2, 3, 4, 5, 6}, {2, 3}};
  CHECK(mint::view(x).extent(1) == 3);

  // Through the Eigen bridge: an owned row-major copy, in double.
  const mint::matrixd m = mint::to_matrix<double>(x);
  CHECK(m(1, 0) == 4.0);
  CHECK(m.sum() == 21.0);

  // Written to by mint: a fill from the seeded stream, then copied out.
  my_tensor y{std::vector<float>(6), {3, 2}};
  mint::rng(7).fill_normal(y);
  Eigen::MatrixXf out(3, 2);
  mint::copy(y, out);
  CHECK(out(2, 1) == y.values[5]);
  CHECK(out.norm() > 0.0f);
}
