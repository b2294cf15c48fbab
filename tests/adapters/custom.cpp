// A tensor type mint has never seen, adapted with one specialization, then used
// by mint functions. This is the example docs/adapters.md quotes.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
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

// A user's shape of std::size_t (as std::vector::size() gives), not mint::index.
struct sized_tensor {
  std::vector<double> values;
  std::array<std::size_t, 2> shape;
};

template <>
struct mint::tensor_adapter<sized_tensor> {
  static mint::tensor_view<double> view(sized_tensor& t) { return {t.values.data(), t.shape}; }
  static mint::tensor_view<const double> view(const sized_tensor& t) { return {t.values.data(), t.shape}; }
};

TEST_CASE("extents and strides of any integer type, each checked to fit") {
  const sized_tensor x{{1, 2, 3, 4, 5, 6}, {3, 2}};
  CHECK(mint::to_matrix<double>(x)(2, 1) == 6.0);
  std::vector<double> data(6);
  const std::vector<int> extents = {2, 3}, strides = {1, 2};  // column-major
  const mint::tensor_view<double> v(data.data(), extents, strides);
  CHECK(v.stride(1) == 2);
  const std::array<std::uint64_t, 1> huge = {std::uint64_t(1) << 63};
  CHECK_THROWS_WITH_AS(mint::tensor_view<double>(data.data(), huge), doctest::Contains("needs values that fit"),
                       mint::shape_error);
  const std::vector<unsigned> five = {1, 1, 1, 1, 1};
  CHECK_THROWS_WITH_AS(mint::tensor_view<double>(data.data(), five), doctest::Contains("needs 1 to 4"), mint::shape_error);
  const std::vector<int> negative = {2, -1};
  CHECK_THROWS_AS(mint::tensor_view<double>(data.data(), negative), mint::shape_error);
}
