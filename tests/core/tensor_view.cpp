#include "mint/core/tensor_view.hpp"

#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"

using core_test::iota;
using mint::tensor_view;

TEST_CASE("a contiguous view has row-major strides and reads its elements") {
  auto data = iota(24);
  tensor_view<float> v(data.data(), {2, 3, 4});
  CHECK(v.rank() == 3);
  CHECK(v.size() == 24);
  CHECK(v.extent(0) == 2);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v.is_contiguous());
  CHECK(v(1, 2, 3) == 23.0f);
  CHECK(v(0, 1, 0) == 4.0f);
  v(1, 0, 0) = -1.0f;
  CHECK(data[12] == -1.0f);
}

TEST_CASE("views of rank 1 and 4 index with their strides") {
  auto data = iota(120);
  tensor_view<float> r4(data.data(), {2, 3, 4, 5});
  CHECK(r4(1, 2, 3, 4) == 119.0f);
  CHECK(r4(1, 0, 2, 1) == float(60 + 10 + 1));
  tensor_view<float> every_third(data.data(), {10}, {3});
  CHECK(every_third(4) == 12.0f);
  CHECK_FALSE(every_third.is_contiguous());
}

TEST_CASE("a default view is empty, rank 1") {
  tensor_view<const double> v;
  CHECK(v.rank() == 1);
  CHECK(v.size() == 0);
  CHECK(v.empty());
  CHECK(v.is_contiguous());
}

TEST_CASE("a view converts to a view of const") {
  auto data = iota(6);
  tensor_view<float> v(data.data(), {2, 3});
  tensor_view<const float> c = v;
  CHECK(c(1, 1) == 4.0f);
  CHECK(c.stride(0) == 3);
  static_assert(!std::is_convertible_v<tensor_view<const float>, tensor_view<float>>);
}

TEST_CASE("subview drops the first axis and slice narrows it") {
  auto data = iota(24);
  tensor_view<float> v(data.data(), {2, 3, 4});
  auto second = v.subview(1);
  CHECK(second.rank() == 2);
  CHECK(second.extent(0) == 3);
  CHECK(second(2, 1) == 21.0f);
  CHECK(v[1][2](1) == 21.0f);

  auto rows = v.subview(0).slice(1, 3);
  CHECK(rows.extent(0) == 2);
  CHECK(rows(0, 0) == 4.0f);
  CHECK(rows(1, 3) == 11.0f);
  CHECK(v.slice(2, 2).empty());
}

TEST_CASE("transposed swaps extents and strides") {
  auto data = iota(6);
  tensor_view<float> v(data.data(), {2, 3});
  auto t = v.transposed();
  CHECK(t.extent(0) == 3);
  CHECK(t(2, 1) == v(1, 2));
  CHECK_FALSE(t.is_contiguous());
}

TEST_CASE("reshape merges and splits contiguous axes without a copy") {
  auto data = iota(24);
  tensor_view<float> v(data.data(), {2, 3, 4});
  auto flat = v.reshape({24});
  CHECK(flat(17) == 17.0f);
  auto m = v.reshape({6, 4});
  CHECK(m(5, 3) == 23.0f);
  auto split = v.reshape({2, 3, 2, 2});
  CHECK(split(1, 2, 1, 0) == 22.0f);
  auto with_ones = v.reshape({1, 6, 1, 4});
  CHECK(with_ones(0, 5, 0, 3) == 23.0f);
}

TEST_CASE("reshape works on a strided view where the merged axes stay adjacent") {
  // Rows 0..3 of a [4, 10] buffer, columns 0..5: each row is contiguous, rows are not.
  auto data = iota(40);
  tensor_view<float> v(data.data(), {4, 6}, {10, 1});
  auto split_columns = v.reshape({4, 2, 3});
  CHECK(split_columns(3, 1, 2) == 35.0f);
  CHECK(split_columns.stride(0) == 10);
  CHECK(split_columns.stride(1) == 3);
  auto split_rows = v.reshape({2, 2, 6});
  CHECK(split_rows(1, 1, 5) == 35.0f);
}

TEST_CASE("reshape refuses a layout that would need a copy, and says why") {
  auto data = iota(40);
  tensor_view<float> v(data.data(), {4, 6}, {10, 1});
  CHECK_THROWS_AS(v.reshape({24}), mint::shape_error);
  try {
    (void)v.reshape({24});
  } catch (const mint::shape_error& e) {
    const std::string message = e.what();
    CHECK(message.find("mint::tensor_view::reshape") == 0);
    CHECK(message.find("[4, 6]") != std::string::npos);
    CHECK(message.find("[10, 1]") != std::string::npos);
    CHECK(message.find("copy") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(v.reshape({5, 5}), doctest::Contains("needs 24"), mint::shape_error);
  CHECK_THROWS_AS(v.transposed().reshape({24}), mint::shape_error);
}

TEST_CASE("reshape of an empty view gives a contiguous empty view") {
  tensor_view<float> v(nullptr, {0, 5});
  auto r = v.reshape({5, 0, 2});
  CHECK(r.size() == 0);
  CHECK(r.rank() == 3);
}

TEST_CASE("bad extents, strides and indices are shape errors with clear messages") {
  float x = 0;
  CHECK_THROWS_WITH_AS(tensor_view<float>(&x, {1, 1, 1, 1, 1}),
                       "mint::tensor_view: extents has rank 5; needs rank 1 to 4", mint::shape_error);
  CHECK_THROWS_WITH_AS(tensor_view<float>(&x, {2, -1}), doctest::Contains("needs extents >= 0"), mint::shape_error);
  CHECK_THROWS_WITH_AS(tensor_view<float>(&x, {2, 2}, {1}), doctest::Contains("needs one per axis (2)"),
                       mint::shape_error);
  CHECK_THROWS_WITH_AS(tensor_view<float>(&x, {2, 2}, {-2, 1}), doctest::Contains("strides >= 0"), mint::shape_error);
  CHECK_THROWS_AS(tensor_view<float>(&x, {mint::index(1) << 40, mint::index(1) << 40}), mint::shape_error);
  // No elements, but the strides of the other axes would overflow.
  CHECK_THROWS_AS(tensor_view<float>(&x, {0, mint::index(1) << 40, mint::index(1) << 40}), mint::shape_error);

  auto data = iota(6);
  tensor_view<float> v(data.data(), {2, 3});
  CHECK(v.at(1, 2) == 5.0f);
  CHECK_THROWS_WITH_AS(v.at(2, 0), doctest::Contains("[2, 0] fall outside [2, 3]"), mint::shape_error);
  CHECK_THROWS_WITH_AS(v.at(1), doctest::Contains("needs one per axis of a rank-2 view"), mint::shape_error);
  CHECK_THROWS_AS(v.subview(2), mint::shape_error);
  CHECK_THROWS_AS(v.subview(0).subview(0), mint::shape_error);
  CHECK_THROWS_WITH_AS(v.slice(1, 3), "mint::tensor_view::slice: range [1, 3) of the first axis; needs 0 <= begin <= end <= 2",
                       mint::shape_error);
  CHECK_THROWS_AS(v.reshape({6}).transposed(), mint::shape_error);
}

TEST_CASE("same_shape compares rank and extents") {
  float a[6], b[6];
  CHECK(mint::same_shape(tensor_view<float>(a, {2, 3}), tensor_view<const float>(b, {2, 3})));
  CHECK_FALSE(mint::same_shape(tensor_view<float>(a, {2, 3}), tensor_view<float>(b, {3, 2})));
  CHECK_FALSE(mint::same_shape(tensor_view<float>(a, {6}), tensor_view<float>(b, {6, 1})));
}
