// std::span, std::vector and raw pointers with a shape.
#include "mint/adapters/span.hpp"

#include <doctest/doctest.h>

#include <array>
#include <span>
#include <vector>

TEST_CASE("std::vector and std::span view as rank 1") {
  std::vector<float> v = {1, 2, 3};
  CHECK(mint::view(v).size() == 3);
  mint::view(v)(1) = 20.0f;
  CHECK(v[1] == 20.0f);
  const std::vector<float>& cv = v;
  static_assert(std::is_same_v<decltype(mint::view(cv)), mint::tensor_view<const float>>);
  std::span<const float> s(v);
  CHECK(mint::view(s)(2) == 3.0f);
}

TEST_CASE("a pointer or a range with a shape gives a contiguous row-major view") {
  std::vector<double> data(24);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = double(i);
  auto v = mint::view(data.data(), {2, 3, 4});
  CHECK(v(1, 1, 1) == 17.0);
  CHECK(v.is_contiguous());
  auto w = mint::view(data, {4, 6});
  CHECK(w(3, 5) == 23.0);
  std::array<int, 6> fixed = {0, 1, 2, 3, 4, 5};
  CHECK(mint::view(fixed, {3, 2})(2, 0) == 4);
  CHECK(mint::view(std::span<const double>(data), {6, 4})(5, 3) == 23.0);
}

// A temporary vector's view would dangle: refused at compile time; a temporary span is fine.
template <class X>
constexpr bool span_viewable_call = requires(X&& x) { mint::view(std::forward<X>(x)); };
template <class X>
constexpr bool span_shaped_call = requires(X&& x) { mint::view(std::forward<X>(x), {2, 2}); };
static_assert(!span_viewable_call<std::vector<float>> && span_viewable_call<std::vector<float>&> && span_viewable_call<std::span<float>>);
static_assert(!span_shaped_call<std::vector<float>> && span_shaped_call<std::vector<float>&> && span_shaped_call<std::span<float>>);

TEST_CASE("a shape that does not match the range's size is refused") {
  std::vector<float> data(10);
  CHECK_THROWS_WITH_AS(mint::view(data, {3, 4}), "mint::view: extents [3, 4] hold 12 elements; needs the range's 10",
                       mint::shape_error);
}

TEST_CASE("a strided column of a row-major buffer through explicit strides") {
  std::vector<float> data(12);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = float(i);
  mint::tensor_view<float> column(data.data() + 1, {4}, {3});  // column 1 of a [4, 3] matrix
  CHECK(column(3) == 10.0f);
}
