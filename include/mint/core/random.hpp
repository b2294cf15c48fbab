// mint::rng: a seeded random stream that gives the same numbers on every
// platform. The standard distributions (std::normal_distribution and friends)
// differ between standard libraries, so mint draws its own from xoshiro256**
// (Blackman and Vigna 2018), seeded through splitmix64. Cost: a few ns a draw.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// A deterministic random stream; also a UniformRandomBitGenerator for std algorithms.
class rng {
public:
  using result_type = std::uint64_t;

  /// Streams with different (seed, stream) pairs are independent for practical purposes.
  explicit rng(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept {
    // splitmix64 spreads any seed (0 included) over the whole 256-bit state.
    std::uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (auto& word : state_) {
      x += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      word = z ^ (z >> 31);
    }
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// 64 uniformly random bits.
  result_type operator()() noexcept {
    const std::uint64_t out = std::rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = std::rotl(state_[3], 45);
    return out;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return double((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform float in [0, 1) with 24 random bits.
  float uniform_float() noexcept { return float((*this)() >> 40) * 0x1.0p-24f; }

  /// Uniform in [low, high).
  double uniform(double low, double high) noexcept { return low + (high - low) * uniform(); }

  /// Uniform integer in [0, n), without modulo bias; n must be > 0.
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) throw argument_error("mint::rng::below", "n", "is 0", "needs n > 0");
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: draws below it would bias the result
    for (;;) {
      const std::uint64_t x = (*this)();
      if (x >= threshold) return x % n;
    }
  }

  /// Standard normal, by Marsaglia's polar method (pairs; the second is kept for the next call).
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * factor;
    has_spare_ = true;
    return u * factor;
  }

  /// Normal with the given mean and standard deviation.
  double normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }

  /// Fisher-Yates shuffle (std::shuffle's order differs between standard libraries).
  template <std::random_access_iterator It>
  void shuffle(It first, It last) {
    using std::swap;
    for (auto n = last - first; n > 1; --n) swap(first[n - 1], first[std::ptrdiff_t(below(std::uint64_t(n)))]);
  }

  /// An independent stream derived from this one (advances this stream once).
  rng split() noexcept { return rng((*this)(), 0x5EED); }

  /// Fills a tensor with Uniform[low, high).
  template <mutable_tensor X>
  void fill_uniform(X&& x, double low = 0.0, double high = 1.0) {
    for_each(mint::view(x), [&](auto& e) { e = static_cast<std::remove_reference_t<decltype(e)>>(uniform(low, high)); });
  }

  /// Fills a tensor with Normal(mean, stddev).
  template <mutable_tensor X>
  void fill_normal(X&& x, double mean = 0.0, double stddev = 1.0) {
    for_each(mint::view(x), [&](auto& e) { e = static_cast<std::remove_reference_t<decltype(e)>>(normal(mean, stddev)); });
  }

private:
  // Row-major order, so a fill gives the same numbers whatever the strides.
  template <class T, class F>
  static void for_each(const tensor_view<T>& v, F&& f) {
    if (v.rank() == 1) {
      for (index i = 0; i < v.extent(0); ++i) f(v(i));
    } else {
      for (index i = 0; i < v.extent(0); ++i) for_each(v.subview(i), f);
    }
  }

  std::uint64_t state_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace mint
