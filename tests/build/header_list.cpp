// Checks that include/mint/meson.build lists every header on disk (so each one
// is installed and compiled alone) and nothing that is not there.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::filesystem::path root = argv[1];
  std::set<std::string> listed(argv + 2, argv + argc), on_disk;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
    if (entry.path().extension() == ".hpp") on_disk.insert(entry.path().lexically_relative(root).generic_string());
  int missing = 0;
  for (const auto& h : on_disk)
    if (!listed.count(h)) std::printf("not listed in include/mint/meson.build: %s\n", h.c_str()), ++missing;
  for (const auto& h : listed)
    if (!on_disk.count(h)) std::printf("listed but not on disk: %s\n", h.c_str()), ++missing;
  std::printf("%zu headers listed, %d mismatches\n", listed.size(), missing);
  return missing == 0 ? 0 : 1;
}
