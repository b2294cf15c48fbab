// Shared by the dictionary tests: random dictionaries of unit rows and exactly
// sparse codes, drawn from mint::rng so every platform sees the same numbers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/random.hpp"

namespace dictionary_test {

/// An empty folder under the system's temporary directory, fresh for each call.
inline std::filesystem::path temp_folder(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("mint_dictionary_test_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

/// [atoms, dims] with Gaussian entries, each row scaled to unit norm.
template <class T = float>
mint::matrix<T> unit_dictionary(mint::index atoms, mint::index dims, std::uint64_t seed) {
  mint::matrix<T> d(atoms, dims);
  mint::rng(seed).fill_normal(d);
  d.rowwise().normalize();
  return d;
}

/// [n, atoms] codes with exactly k non-zeros a row, magnitudes in [0.5, 1.5), random signs.
template <class T = float>
mint::matrix<T> sparse_codes(mint::index n, mint::index atoms, mint::index k, std::uint64_t seed) {
  mint::rng r(seed);
  mint::matrix<T> c = mint::matrix<T>::Zero(n, atoms);
  std::vector<mint::index> order(static_cast<std::size_t>(atoms));
  for (mint::index i = 0; i < n; ++i) {
    for (mint::index j = 0; j < atoms; ++j) order[std::size_t(j)] = j;
    r.shuffle(order.begin(), order.end());
    for (mint::index j = 0; j < k; ++j)
      c(i, order[std::size_t(j)]) = T((r.uniform() < 0.5 ? -1 : 1) * r.uniform(0.5, 1.5));
  }
  return c;
}

}  // namespace dictionary_test
