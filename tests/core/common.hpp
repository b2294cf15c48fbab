// Shared by the core tests. (Test files of one executable are compiled together
// as a unity build, so helpers they share live here, not in each file.)
#pragma once

#include <cstddef>
#include <numeric>
#include <vector>

namespace core_test {

/// 0, 1, ..., n - 1 as floats: element values that name their own offset.
inline std::vector<float> iota(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

}  // namespace core_test
