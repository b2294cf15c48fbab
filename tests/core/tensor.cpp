// The tensor concept: what it accepts, what it rejects, and mint::copy over it.
#include "mint/core/tensor.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>
#include <list>
#include <string>
#include <vector>
#include <xtensor/xarray.hpp>

#include "mint/adapters/eigen.hpp"
#include "mint/adapters/span.hpp"
#include "mint/adapters/xtensor.hpp"

// Positive checks: every shipped adapter yields a tensor of the right element type.
static_assert(mint::tensor<mint::tensor_view<float>>);
static_assert(mint::tensor<Eigen::MatrixXf>);
static_assert(mint::tensor<const Eigen::MatrixXd>);
static_assert(mint::tensor<Eigen::Map<const Eigen::MatrixXf>>);
static_assert(mint::tensor<Eigen::Ref<const Eigen::MatrixXf>>);
static_assert(mint::tensor<Eigen::Block<Eigen::MatrixXf>>);
static_assert(mint::tensor<Eigen::ArrayXXf>);
static_assert(mint::tensor<Eigen::VectorXf>);
static_assert(mint::tensor<xt::xarray<float>>);
static_assert(mint::tensor<std::vector<double>>);
static_assert(mint::tensor<std::span<const float>>);
static_assert(mint::tensor_of<Eigen::MatrixXd, double>);
static_assert(mint::tensor_of<const Eigen::MatrixXd, double>);
static_assert(std::is_same_v<mint::view_t<const Eigen::MatrixXf>, mint::tensor_view<const float>>);
static_assert(std::is_same_v<mint::view_t<Eigen::MatrixXf>, mint::tensor_view<float>>);
static_assert(mint::mutable_tensor<Eigen::MatrixXf>);
static_assert(mint::mutable_tensor<mint::tensor_view<float>>);

// Negative checks: the concepts reject what they should.
static_assert(!mint::tensor<int>);
static_assert(!mint::tensor<float*>);
static_assert(!mint::tensor<std::string>);
static_assert(!mint::tensor<std::list<float>>);
static_assert(!mint::tensor<std::vector<std::string>>);
static_assert(!mint::tensor<std::vector<bool>>);
static_assert(!mint::tensor<decltype(Eigen::MatrixXf() + Eigen::MatrixXf())>);  // an expression owns no memory
static_assert(!mint::tensor<decltype(Eigen::MatrixXf() * 2.0f)>);
static_assert(!mint::tensor<decltype(xt::xarray<float>() + xt::xarray<float>())>);
static_assert(!mint::mutable_tensor<const Eigen::MatrixXf>);
static_assert(!mint::mutable_tensor<Eigen::Map<const Eigen::MatrixXf>>);
static_assert(!mint::mutable_tensor<mint::tensor_view<const float>>);
static_assert(!mint::mutable_tensor<const std::vector<float>>);
static_assert(!mint::tensor_of<Eigen::MatrixXf, double>);

TEST_CASE("mint::copy converts between layouts and element types") {
  Eigen::MatrixXd column_major(2, 3);
  column_major << 1, 2, 3, 4, 5, 6;
  Eigen::Matrix<float, 2, 3, Eigen::RowMajor> row_major;
  mint::copy(column_major, row_major);
  CHECK(row_major(1, 2) == 6.0f);
  CHECK(row_major(0, 1) == 2.0f);

  xt::xarray<double> three = xt::xarray<double>::from_shape({2, 2, 3});
  std::vector<double> flat(12);
  for (std::size_t i = 0; i < 12; ++i) three.data()[i] = double(i);
  mint::copy(three, mint::view(flat, {2, 2, 3}));
  CHECK(flat[11] == 11.0);
}

TEST_CASE("mint::copy refuses mismatched extents") {
  Eigen::MatrixXf a(2, 3), b(3, 2);
  CHECK_THROWS_WITH_AS(mint::copy(a, b), "mint::copy: dst has extents [3, 2]; needs the extents of src, [2, 3]",
                       mint::shape_error);
}
