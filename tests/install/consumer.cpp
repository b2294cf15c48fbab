// A program that uses an installed mint, built by scripts/check-install.
#include <mint/mint.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  Eigen::MatrixXf m = Eigen::MatrixXf::Identity(3, 3);
  const auto v = mint::view(m);
  std::printf("consumer: mint sees a %td x %td view, trace %.0f\n", v.extent(0), v.extent(1),
              double(mint::as_matrix(v).trace()));
  // mint/io needs zlib (npz CRCs) and nlohmann-json (safetensors headers) from the package's dependencies.
  const auto folder = std::filesystem::temp_directory_path();
  const std::string npz = (folder / "mint-consumer.npz").string(), st = (folder / "mint-consumer.safetensors").string();
  mint::write_npz(npz, {{"m", m}});
  mint::write_safetensors(st, {{"m", m}});
  const float sum = mint::npz_file(npz).read<float>("m").view()(2, 2) + mint::safetensors_file(st).map<float>("m").view()(1, 1);
  std::filesystem::remove(npz);
  std::filesystem::remove(st);
  return mint::as_matrix(v).trace() == 3.0f && sum == 2.0f ? 0 : 1;
}
