// Writes .npy/.npz files of every dtype and layout for check_mint_files.py,
// which loads them with NumPy. Element k (row-major) = k * 0.5 - 3 for floats,
// k % 100 for integers (minus 50 for signed ones), k % 3 == 0 for bool, the
// rule of make_numpy_files.py. Usage: io_write_samples FOLDER
#include <mint/io/npy.hpp>
#include <mint/io/npz.hpp>

#include <cstdio>
#include <string>

namespace {

template <class T>
mint::ndarray<T> sample(mint::shape_t shape) {
  auto a = mint::ndarray<T>::uninitialized(std::move(shape));
  for (mint::index k = 0; k < a.size(); ++k) {
    if constexpr (std::is_same_v<T, bool>) a.data()[k] = k % 3 == 0;
    else if constexpr (std::is_same_v<T, mint::float16>) a.data()[k] = T(float(k) * 0.5f - 3);
    else if constexpr (std::is_floating_point_v<T>) a.data()[k] = T(double(k) * 0.5 - 3);
    else a.data()[k] = T(k % 100 - (std::is_signed_v<T> ? 50 : 0));
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: io_write_samples FOLDER\n"), 2;
  const std::string folder = argv[1];
  for (const auto d : mint::all_dtypes) {
    if (d == mint::dtype::bfloat16) continue;  // NumPy has no bfloat16
    mint::detail::visit_dtype(d, [&](auto x) {
      mint::write_npy(folder + "/" + std::string(mint::dtype_name(d)) + ".npy", sample<decltype(x)>({3, 4}));
    });
  }
  const auto a = sample<float>({3, 4}), wide = sample<float>({4, 6}), f = sample<float>({3, 4});
  // A Fortran-ordered [4, 3] array: the transpose of a row-major [3, 4] whose element (j, i) is k(i, j).
  auto columns = mint::ndarray<float>::uninitialized({3, 4});
  for (mint::index i = 0; i < 4; ++i)
    for (mint::index j = 0; j < 3; ++j) columns.view()(j, i) = float(i * 3 + j) * 0.5f - 3;
  mint::write_npy(folder + "/fortran.npy", columns.view().transposed());
  mint::write_npy(folder + "/strided.npy", mint::tensor_view<const float>(wide.data(), {4, 3}, {6, 2}));
  mint::write_npz(folder + "/arrays.npz", {{"a", a}, {"b", sample<std::int64_t>({5})}, {"t", f.view().transposed()}});
  return 0;
}
