// libFuzzer harness for the SAELens folder reader: cfg.json (every config rule: pre-6
// renames, legacy TopK, versions, normalization names) and sae_weights.safetensors (the
// tensors each architecture needs, their shapes), then a forward pass of what loaded.
// An input is [2 bytes: cfg.json's length, little-endian][cfg.json][sae_weights.safetensors].
#include <mint/adapters/eigen.hpp>
#include <mint/dictionary/saelens.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace {

const std::filesystem::path& folder() {
  static const std::filesystem::path f = [] {
    auto p = std::filesystem::temp_directory_path() / ("mint-fuzz-saelens-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p;
  }();
  return f;
}

void write(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t cfg = std::min<std::size_t>(std::size_t(data[0]) | std::size_t(data[1]) << 8, size - 2);
  write(folder() / "cfg.json", data + 2, cfg);
  write(folder() / "sae_weights.safetensors", data + 2 + cfg, size - 2 - cfg);
  try {
    const auto loaded = mint::dictionary::read_saelens<float>(folder());
    // Small SAEs only: a forward pass over a few rows of what loaded.
    if (loaded.sae.d_in() * loaded.sae.d_sae() <= (1 << 16)) {
      const mint::matrixf x = mint::matrixf::Ones(3, loaded.sae.d_in());
      (void)loaded.sae.forward(x).sum();
    }
  } catch (const mint::error&) {
  }
  return 0;
}
