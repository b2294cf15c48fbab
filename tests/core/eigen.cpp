// The view -> Eigen bridge: maps with the view's strides, no copies.
#include "mint/core/eigen.hpp"

#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"

#include "mint/adapters/eigen.hpp"

using core_test::iota;

TEST_CASE("as_matrix maps a strided view without a copy") {
  auto data = iota(40);
  mint::tensor_view<float> v(data.data(), {3, 4}, {10, 2});
  auto m = mint::as_matrix(v);
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 4);
  CHECK(m(2, 3) == 26.0f);
  m(1, 1) = -1.0f;
  CHECK(data[12] == -1.0f);
}

TEST_CASE("as_matrix merges the leading axes of rank 3 and 4") {
  auto data = iota(24);
  mint::tensor_view<const float> v(data.data(), {2, 3, 4});
  auto m = mint::as_matrix(v);
  CHECK(m.rows() == 6);
  CHECK(m(5, 3) == 23.0f);
  mint::tensor_view<const float> rank1(data.data(), {24});
  CHECK_THROWS_WITH_AS(mint::as_matrix(rank1), "mint::as_matrix: x has rank 1; needs rank 2 or more (rows x columns)",
                       mint::shape_error);
  // Rows of a [2, 3, 4] slab taken out of a wider buffer cannot merge into one stride.
  mint::tensor_view<const float> gappy(data.data(), {2, 2, 4}, {12, 4, 1});
  CHECK_THROWS_AS(mint::as_matrix(gappy), mint::shape_error);
}

TEST_CASE("as_vector maps rank 1 and flattens contiguous views") {
  auto data = iota(12);
  mint::tensor_view<float> column(data.data() + 2, {4}, {3});
  CHECK(mint::as_vector(column).sum() == 2.0f + 5 + 8 + 11);
  CHECK(mint::as_vector(mint::tensor_view<float>(data.data(), {3, 4})).size() == 12);
}

TEST_CASE("visit_matrix hands a unit-stride map for row- and column-major layouts") {
  Eigen::MatrixXf column_major = Eigen::MatrixXf::Random(5, 3);
  mint::matrixf row_major = column_major;
  int calls = 0;
  auto check = [&](const auto& m) {
    using M = std::decay_t<decltype(m)>;
    CHECK(M::InnerStrideAtCompileTime == 1);
    CHECK(m.isApprox(column_major, 0.0f));
    ++calls;
  };
  mint::visit_matrix(column_major, check);
  mint::visit_matrix(row_major, check);
  CHECK(calls == 2);
  // A fully strided view falls back to the general map, with the same numbers.
  auto data = iota(40);
  mint::tensor_view<float> strided(data.data(), {3, 4}, {10, 2});
  const float sum = mint::visit_matrix(strided, [](const auto& m) { return m.sum(); });
  CHECK(sum == mint::as_matrix(strided).sum());
}

TEST_CASE("to_matrix copies into an owned row-major matrix, converting the type") {
  Eigen::MatrixXf m(2, 2);
  m << 1, 2, 3, 4;
  mint::matrixd d = mint::to_matrix<double>(m);
  CHECK(d(1, 0) == 3.0);
  m(1, 0) = 30.0f;
  CHECK(d(1, 0) == 3.0);  // a copy, not a map
  auto same_type = mint::to_matrix(m);
  static_assert(std::is_same_v<decltype(same_type), mint::matrixf>);
  // A broadcast view (strides 0) of 2^41 elements: the copy would take 8 TiB, more than the
  // machine has, so it is a mint error naming the size before any allocation, not a bare
  // std::bad_alloc.
  const float one = 1.0f;
  const mint::index extents[] = {mint::index(1) << 20, mint::index(1) << 21}, strides[] = {0, 0};
  const mint::tensor_view<const float> huge(&one, extents, strides);
  CHECK_THROWS_WITH_AS(mint::to_matrix(huge), doctest::Contains("x would take 8192 GiB"), mint::argument_error);
}
