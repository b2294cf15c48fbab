// Eigen dense types as views: row- and column-major, Map, Ref, blocks, arrays, vectors.
#include "mint/adapters/eigen.hpp"

#include <doctest/doctest.h>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {
template <class M>
M counting(Eigen::Index rows, Eigen::Index cols) {
  M m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = float(10 * i + j);
  return m;
}

template <class V, class M>
void check_same_elements(const V& v, const M& m) {
  REQUIRE(v.rank() == 2);
  REQUIRE(v.extent(0) == m.rows());
  REQUIRE(v.extent(1) == m.cols());
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) CHECK(v(i, j) == m(i, j));
}
}  // namespace

TEST_CASE("a column-major matrix views with strides (1, rows)") {
  auto m = counting<Eigen::MatrixXf>(3, 4);
  auto v = mint::view(m);
  CHECK(v.stride(0) == 1);
  CHECK(v.stride(1) == 3);
  check_same_elements(v, m);
  v(2, 1) = -5.0f;
  CHECK(m(2, 1) == -5.0f);
}

TEST_CASE("a row-major matrix views contiguously") {
  auto m = counting<RowMatrix>(3, 4);
  auto v = mint::view(m);
  CHECK(v.stride(0) == 4);
  CHECK(v.stride(1) == 1);
  CHECK(v.is_contiguous());
  check_same_elements(v, m);
}

TEST_CASE("blocks, maps and refs keep their parent's strides") {
  auto m = counting<Eigen::MatrixXf>(6, 5);
  auto block = m.block(1, 2, 3, 2);
  check_same_elements(mint::view(block), block);
  CHECK(mint::view(block).stride(1) == 6);

  auto row_major = counting<RowMatrix>(6, 5);
  auto row_block = row_major.middleRows(2, 3);
  check_same_elements(mint::view(row_block), row_block);

  Eigen::Map<const Eigen::MatrixXf, 0, Eigen::OuterStride<>> every_other_column(m.data(), 6, 2, Eigen::OuterStride<>(12));
  auto mv = mint::view(every_other_column);
  static_assert(std::is_same_v<decltype(mv), mint::tensor_view<const float>>);
  check_same_elements(mv, every_other_column);

  Eigen::Ref<Eigen::MatrixXf> ref = m;
  check_same_elements(mint::view(ref), m);
  const Eigen::Ref<const RowMatrix> cref = row_major;
  check_same_elements(mint::view(cref), row_major);

  auto transposed = m.transpose();
  check_same_elements(mint::view(transposed), transposed);
}

TEST_CASE("arrays and a strided map with both strides set") {
  Eigen::ArrayXXd a = Eigen::ArrayXXd::Random(4, 3);
  auto v = mint::view(a);
  CHECK(v(3, 2) == a(3, 2));

  float buffer[40];
  for (int i = 0; i < 40; ++i) buffer[i] = float(i);
  // 3 x 4 matrix taking every other element of rows 10 apart.
  Eigen::Map<RowMatrix, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> strided(buffer, 3, 4,
                                                                                Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(10, 2));
  auto sv = mint::view(strided);
  CHECK(sv.stride(0) == 10);
  CHECK(sv.stride(1) == 2);
  check_same_elements(sv, strided);
}

TEST_CASE("vectors known at compile time give rank-1 views") {
  Eigen::VectorXf column = Eigen::VectorXf::LinSpaced(5, 0, 4);
  CHECK(mint::view(column).rank() == 1);
  CHECK(mint::view(column)(3) == 3.0f);
  Eigen::MatrixXf m = counting<Eigen::MatrixXf>(3, 4);
  auto row = m.row(1);  // a row of a column-major matrix: stride 3
  auto rv = mint::view(row);
  CHECK(rv.rank() == 1);
  CHECK(rv.stride(0) == 3);
  CHECK(rv(2) == 12.0f);
  // A dynamic matrix with one column stays rank 2.
  const Eigen::MatrixXf one_column(4, 1);
  CHECK(mint::view(one_column).rank() == 2);
}

// The view of a temporary matrix would dangle: mint::view and as_matrix refuse one at compile
// time, and take temporaries of the types that point elsewhere (maps, blocks, refs, views).
template <class X>
constexpr bool viewable_call = requires(X&& x) { mint::view(std::forward<X>(x)); };
template <class X>
constexpr bool as_matrix_call = requires(X&& x) { mint::as_matrix(std::forward<X>(x)); };
static_assert(!viewable_call<Eigen::MatrixXf> && !viewable_call<const Eigen::MatrixXf> && !viewable_call<mint::matrixd>);
static_assert(!as_matrix_call<Eigen::MatrixXf> && !viewable_call<mint::array<float>>);
static_assert(viewable_call<Eigen::MatrixXf&> && viewable_call<const Eigen::MatrixXf&> && as_matrix_call<Eigen::MatrixXf&>);
static_assert(viewable_call<Eigen::Map<Eigen::MatrixXf>> && viewable_call<Eigen::Block<Eigen::MatrixXf>> &&
              viewable_call<Eigen::Ref<Eigen::MatrixXf>> && viewable_call<mint::tensor_view<float>>);
static_assert(as_matrix_call<Eigen::Map<Eigen::MatrixXf>>);

TEST_CASE("round trip: Eigen -> view -> Eigen map equals the original") {
  Eigen::MatrixXd m = Eigen::MatrixXd::Random(7, 5);
  auto map = mint::as_matrix(mint::view(m));
  CHECK(map == m);
  auto block = m.block(2, 1, 4, 3);
  CHECK(mint::as_matrix(block) == block);
}
