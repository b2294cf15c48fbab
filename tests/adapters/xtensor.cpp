// xtensor containers, adaptors and strided views as mint tensors.
#include "mint/adapters/xtensor.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>
#include <vector>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xfixed.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "mint/adapters/eigen.hpp"
#include "mint/core/eigen.hpp"

TEST_CASE("a row-major xarray views contiguously") {
  xt::xarray<float> a = {{1, 2, 3}, {4, 5, 6}};
  auto v = mint::view(a);
  CHECK(v.rank() == 2);
  CHECK(v.is_contiguous());
  CHECK(v(1, 2) == 6.0f);
  v(0, 0) = 9.0f;
  CHECK(a(0, 0) == 9.0f);
}

TEST_CASE("a column-major xtensor views with column-major strides") {
  xt::xtensor<double, 2, xt::layout_type::column_major> a = {{1, 2, 3}, {4, 5, 6}};
  auto v = mint::view(a);
  CHECK(v.stride(0) == 1);
  CHECK(v.stride(1) == 2);
  CHECK(v(1, 0) == 4.0);
  CHECK(v(0, 2) == 3.0);
}

TEST_CASE("rank 3 and 4 xtensor, a fixed-size tensor, and a const one") {
  xt::xtensor<float, 4> a = xt::zeros<float>({2, 3, 4, 5});
  a(1, 2, 3, 4) = 7.0f;
  CHECK(mint::view(a)(1, 2, 3, 4) == 7.0f);
  xt::xtensor_fixed<float, xt::xshape<2, 2>> f = {{1, 2}, {3, 4}};
  CHECK(mint::view(f)(1, 0) == 3.0f);
  const xt::xarray<int> c = {1, 2, 3};
  auto cv = mint::view(c);
  static_assert(std::is_same_v<decltype(cv), mint::tensor_view<const int>>);
  CHECK(cv(2) == 3);
}

TEST_CASE("xt::adapt over a std::vector and over a raw pointer") {
  std::vector<float> data = {0, 1, 2, 3, 4, 5};
  std::vector<std::size_t> shape = {3, 2};
  auto adapted = xt::adapt(data, shape);
  CHECK(mint::view(adapted)(2, 1) == 5.0f);
  auto from_pointer = xt::adapt(data.data(), data.size(), xt::no_ownership(), std::vector<std::size_t>{2, 3});
  auto pv = mint::view(from_pointer);
  CHECK(pv(1, 0) == 3.0f);
  pv(1, 0) = 30.0f;
  CHECK(data[3] == 30.0f);
}

TEST_CASE("strided xt::view slices keep their offsets and strides") {
  xt::xarray<float> a = xt::arange<float>(40);
  a.reshape({4, 10});
  auto columns = xt::view(a, xt::range(1, 3), xt::range(2, 8, 2));
  auto v = mint::view(columns);
  REQUIRE(v.extent(0) == 2);
  REQUIRE(v.extent(1) == 3);
  CHECK(v.stride(0) == 10);
  CHECK(v.stride(1) == 2);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(v(mint::index(i), mint::index(j)) == columns(i, j));
  auto row = xt::view(a, 2, xt::all());
  CHECK(mint::view(row).rank() == 1);
  CHECK(mint::view(row)(4) == 24.0f);
}

TEST_CASE("a scalar xarray or a reversed view is refused with a message") {
  xt::xarray<float> scalar = 3.0f;
  CHECK_THROWS_WITH_AS(mint::view(scalar), "mint::view: xtensor expression has rank 0; needs rank 1 to 4",
                       mint::shape_error);
  xt::xarray<float> a = xt::arange<float>(5);
  auto reversed = xt::view(a, xt::range(4, xt::placeholders::_, -1));
  CHECK_THROWS_AS(mint::view(reversed), mint::shape_error);
}

TEST_CASE("round trip: xtensor -> view -> Eigen -> view -> xtensor") {
  xt::xarray<double> a = {{1.5, -2, 3}, {4, 5, 6.25}};
  Eigen::MatrixXd eigen = mint::to_matrix(a);  // column-major copy of a row-major source
  CHECK(eigen(1, 2) == 6.25);
  xt::xarray<double> back = xt::zeros<double>({2, 3});
  mint::copy(eigen, back);
  CHECK(back == a);

  xt::xtensor<double, 2, xt::layout_type::column_major> colmajor = xt::zeros<double>({2, 3});
  mint::copy(a, colmajor);
  CHECK(mint::as_matrix(colmajor) == mint::as_matrix(a));
}
