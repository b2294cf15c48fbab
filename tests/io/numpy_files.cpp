// Files NumPy wrote (make_numpy_files.py, run by meson before this test): every
// dtype in both byte orders, Fortran order, scalars, empty arrays, format
// versions 2.0 and 3.0, and ml_dtypes-style bfloat16.
#include "mint/io/npy.hpp"

#include <doctest/doctest.h>

#include <string>

#include "common.hpp"

TEST_CASE("npy files written by NumPy read with the right values") {
  const std::string folder = io_test::numpy_folder();
  REQUIRE_MESSAGE(!folder.empty(), "MINT_NUMPY_FILES is unset: run through meson test, with python3-numpy installed");
  int files = 0;
  for (const auto d : mint::all_dtypes) {
    if (d == mint::dtype::bfloat16) continue;
    for (const std::string order : {"le", "be"}) {
      const std::string path = folder + "/" + std::string(mint::dtype_name(d)) + "_" + order + ".npy";
      const auto h = mint::read_npy_header(path);
      CHECK(h.type == d);
      CHECK(h.shape == mint::shape_t{3, 4});
      const auto a = mint::read_npy<double>(path, {.convert = true});
      for (mint::index k = 0; k < 12; ++k) CHECK(a.values()[std::size_t(k)] == io_test::rule(d, k));
      if (order == "le" || mint::dtype_size(d) == 1) {
        mint::detail::visit_dtype(d, [&](auto x) { CHECK(mint::map_npy<decltype(x)>(path).size() == 12); });
      }
      ++files;
    }
  }
  CHECK(files == 24);

  const auto f = mint::map_npy<float>(folder + "/fortran.npy");
  CHECK(f.shape() == mint::shape_t{3, 4, 2});
  CHECK(f.view()(2, 3, 1) == float(io_test::rule(mint::dtype::float32, 2 * 8 + 3 * 2 + 1)));
  CHECK(mint::read_npy<double>(folder + "/scalar.npy").values()[0] == 2.5);
  CHECK(mint::read_npy<float>(folder + "/empty.npy").shape() == mint::shape_t{0, 5});
  const auto r4 = mint::map_npy<float>(folder + "/rank4.npy");
  CHECK(r4.view()(1, 2, 3, 4) == float(io_test::rule(mint::dtype::float32, 119)));
  for (const std::string v : {"2", "3"}) {
    const auto h = mint::read_npy_header(folder + "/version" + v + ".npy");
    CHECK(h.major_version == std::stoi(v));
    CHECK(mint::read_npy<float>(folder + "/version" + v + ".npy").values()[7] == float(io_test::rule(mint::dtype::float32, 7)));
  }
  const auto b = mint::read_npy<float>(folder + "/bfloat16.npy", {.convert = true});
  CHECK(mint::read_npy_header(folder + "/bfloat16.npy").type == mint::dtype::bfloat16);
  CHECK(b.view()(2, 3) == float(io_test::rule(mint::dtype::float32, 11)));
}
