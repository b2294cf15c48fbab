#include <mint/mint.hpp>

double sum_in_unit_b() {
  mint::matrixf m = mint::matrixf::Ones(3, 2);
  std::ostringstream sink;
  mint::progress_reporter(mint::print_progress(sink), "unit b", 1, 0.0).report(1);
  return double(mint::as_matrix(mint::view(m)).sum());
}
