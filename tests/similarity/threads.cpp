// With several Eigen threads the Gram products take another route (a full product, which Eigen
// splits across threads, instead of a one-thread symmetric rank-k update): the same values.
#include <doctest/doctest.h>

#include "common.hpp"
#include "mint/similarity/cca.hpp"
#include "mint/similarity/kernel_cka.hpp"
#include "mint/similarity/linear_cka.hpp"

using namespace similarity_test;

TEST_CASE("the threaded and one-thread product routes give the same values") {
  const mint::matrixf x = gaussian(700, 40, 191).cast<float>(), y = gaussian(700, 30, 192).cast<float>();
  const mint::matrixf wide = gaussian(50, 80, 193).cast<float>();
  const auto values = [&] {
    return std::vector<double>{mint::linear_cka(x, y), mint::debiased_linear_cka(x, y), mint::mean_cca(x, y),
                               mint::linear_cka(wide, wide.leftCols(30)), mint::kernel_cka(x, y)};
  };
  const int before = Eigen::nbThreads();
  Eigen::setNbThreads(1);
  const auto one = values();
  Eigen::setNbThreads(2);
  const auto two = values();
  Eigen::setNbThreads(before);
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(two[i] == doctest::Approx(one[i]).epsilon(1e-6));  // float products, summed in another order
}
