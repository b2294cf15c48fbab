// The xtensor adapter recognizes xtensor types by their members, without xtensor's headers:
// no Eigen, standard or mint type may match it (each has its own adapter, or none).
#include "mint/adapters/xtensor.hpp"

#include <array>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/adapters/eigen.hpp"
#include "mint/adapters/span.hpp"
#include "mint/io/ndarray.hpp"

namespace {
template <class E>
constexpr bool detected = mint::detail::xtensor_strided<E> || mint::detail::xtensor_strided<const E>;
}  // namespace

static_assert(!detected<Eigen::MatrixXf>);
static_assert(!detected<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>);
static_assert(!detected<Eigen::ArrayXXd>);
static_assert(!detected<Eigen::VectorXf>);
static_assert(!detected<Eigen::Map<Eigen::MatrixXf>>);
static_assert(!detected<Eigen::Ref<const Eigen::MatrixXd>>);
static_assert(!detected<decltype(std::declval<Eigen::MatrixXf&>().block(0, 0, 1, 1))>);
static_assert(!detected<std::vector<float>>);
static_assert(!detected<std::span<float>>);
static_assert(!detected<std::span<const double, 3>>);
static_assert(!detected<std::array<float, 4>>);
static_assert(!detected<std::string>);
static_assert(!detected<mint::tensor_view<float>>);
static_assert(!detected<mint::ndarray<float>>);
static_assert(!detected<mint::mapped_array<float>>);
