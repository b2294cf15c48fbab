// A first look at mint: the same activations held by Eigen (column-major) and
// by xtensor (row-major) enter mint as views, and mint reads both the same way.
// We find the top principal direction of the activations by power iteration,
// reporting progress through mint's progress hook.
#include <cstdio>
#include <iostream>

#include <xtensor/xarray.hpp>

#include <mint/mint.hpp>

namespace {

void describe(const char* name, const mint::tensor_view<const float>& v) {
  std::printf("%-22s extents %s  strides %s  contiguous %s\n", name, mint::detail::shape_string(v.extents()).c_str(),
              mint::detail::shape_string(v.strides()).c_str(), v.is_contiguous() ? "yes" : "no");
}

// Top principal direction of the rows of x (centred), by power iteration on X^T X.
template <mint::tensor X>
mint::vectord top_direction(const X& x, int iterations, const mint::progress_callback& on_progress) {
  const mint::matrixd centred = [&] {
    mint::matrixd m = mint::to_matrix<double>(x);
    return mint::matrixd(m.rowwise() - m.colwise().mean());
  }();
  const mint::matrixd gram = centred.transpose() * centred;
  mint::vectord v = mint::vectord::Ones(gram.cols()).normalized();
  mint::progress_reporter progress(on_progress, "power iteration", iterations, 0.0);
  for (int step = 1; step <= iterations; ++step) {
    const mint::vectord next = (gram * v).normalized();
    const double change = (next - v).norm();
    v = next;
    progress.report(step, {{"change", change}, {"eigenvalue", v.dot(gram * v)}});
  }
  return v;
}

}  // namespace

int main() {
  // 200 examples of a 6-dimensional activation with most variance along one direction.
  const mint::index n = 200, d = 6;
  mint::rng rng(2026);
  Eigen::VectorXf direction(d);
  direction << 3, -1, 0, 2, 0.5f, 1;
  direction.normalize();
  Eigen::MatrixXf eigen_acts(n, d);  // column-major, as Eigen stores by default
  rng.fill_normal(eigen_acts, 0.0, 0.3);
  for (mint::index i = 0; i < n; ++i) eigen_acts.row(i) += float(rng.normal(0.0, 2.0)) * direction.transpose();

  xt::xarray<float> xt_acts = xt::zeros<float>({std::size_t(n), std::size_t(d)});  // row-major
  mint::copy(eigen_acts, xt_acts);

  std::printf("The same activations, two layouts:\n");
  describe("Eigen::MatrixXf", mint::view(std::as_const(eigen_acts)));
  describe("xt::xarray<float>", mint::view(std::as_const(xt_acts)));
  describe("a block of 3 rows", mint::view(std::as_const(eigen_acts).middleRows(10, 3)));
  describe("xtensor, reshaped", mint::view(std::as_const(xt_acts)).reshape({4, 50, 6}));

  std::printf("\nTop principal direction, from each:\n");
  const mint::vectord from_eigen = top_direction(eigen_acts, 8, mint::print_progress(std::cout));
  const mint::vectord from_xtensor = top_direction(xt_acts, 8, {});
  const double agreement = std::abs(from_eigen.dot(from_xtensor));
  const double recovered = std::abs(from_eigen.dot(direction.cast<double>()));
  std::printf("\n|cos(from Eigen, from xtensor)| = %.12f\n", agreement);
  std::printf("|cos(found, planted direction)|  = %.4f\n", recovered);
  return agreement > 1 - 1e-9 && recovered > 0.99 ? 0 : 1;
}
