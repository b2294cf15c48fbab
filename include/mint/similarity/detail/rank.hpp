// Internals of rank correlations over long vectors (the n(n-1)/2 entries of a
// dissimilarity matrix): an LSD radix sort of indices by key (linear time: a
// comparison sort of 5e7 keys takes seconds), average ranks for Spearman, dense
// ranks and Knight's (1966) O(N log N) count of discordant pairs for Kendall's tau-b.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint::detail {

/// Unsigned keys that sort like the floating-point values (negatives flipped, sign bit set on positives).
template <class S>
auto ordered_key(S value) {
  using K = std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>;
  constexpr K sign = K(1) << (8 * sizeof(S) - 1);
  const K bits = std::bit_cast<K>(value == S(0) ? S(0) : value);  // -0 sorts with +0
  return (bits & sign) ? K(~bits) : K(bits | sign);
}

/// Keys sorted ascending (stable) with the permutation that sorts them; `bits` is how many low
/// bits the keys use. Keys travel with their indices, so every pass reads sequentially.
template <class K>
struct sorted_keys {
  std::vector<K> keys;
  std::vector<std::uint32_t> order;
};

template <class K>
sorted_keys<K> radix_sort(std::vector<K> keys, int bits = 8 * int(sizeof(K))) {
  constexpr int digit = 11;
  constexpr std::size_t buckets = std::size_t(1) << digit;
  const std::size_t n = keys.size();
  sorted_keys<K> out{std::move(keys), std::vector<std::uint32_t>(n)};
  for (std::size_t i = 0; i < n; ++i) out.order[i] = std::uint32_t(i);
  std::vector<K> spare_keys(n);
  std::vector<std::uint32_t> spare_order(n);
  std::vector<std::size_t> count(buckets);
  for (int shift = 0; shift < bits; shift += digit) {
    std::fill(count.begin(), count.end(), 0);
    for (const K key : out.keys) ++count[(key >> shift) & (buckets - 1)];
    if (*std::max_element(count.begin(), count.end()) == n) continue;  // one digit everywhere: nothing moves
    std::size_t running = 0;
    for (auto& c : count) running += std::exchange(c, running);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t to = count[(out.keys[i] >> shift) & (buckets - 1)]++;
      spare_keys[to] = out.keys[i];
      spare_order[to] = out.order[i];
    }
    out.keys.swap(spare_keys);
    out.order.swap(spare_order);
  }
  return out;
}

/// The permutation that sorts `keys` ascending, stable.
template <class K>
std::vector<std::uint32_t> radix_order(const std::vector<K>& keys, int bits = 8 * int(sizeof(K))) {
  return radix_sort(keys, bits).order;
}

template <class S>
auto ordered_keys(const std::vector<S>& values) {
  std::vector<decltype(ordered_key(S{}))> keys(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) keys[i] = ordered_key(values[i]);
  return keys;
}

/// The k-th smallest value (0-based), by one histogram pass over the top 16 bits of the keys and a
/// selection among the values that share the k-th's top bits: two passes over the data, however long.
template <class S>
S kth_smallest(const std::vector<S>& values, std::size_t k) {
  using K = decltype(ordered_key(S{}));
  constexpr int shift = 8 * int(sizeof(K)) - 16;
  std::vector<std::size_t> count(std::size_t(1) << 16, 0);
  for (const S v : values) ++count[std::size_t(ordered_key(v) >> shift)];
  std::size_t bucket = 0, below = 0;
  while (below + count[bucket] <= k) below += count[bucket++];
  std::vector<S> same;
  same.reserve(count[bucket]);
  for (const S v : values)
    if (std::size_t(ordered_key(v) >> shift) == bucket) same.push_back(v);
  std::nth_element(same.begin(), same.begin() + std::ptrdiff_t(k - below), same.end());
  return same[k - below];
}

/// Ranks 1..N with ties sharing their average rank (as scipy.stats.rankdata's default).
template <class S, class R = S>
std::vector<R> average_ranks(const std::vector<S>& values) {
  const auto sorted = radix_sort(ordered_keys(values));
  std::vector<R> ranks(values.size());
  for (std::size_t begin = 0; begin < sorted.keys.size();) {
    std::size_t end = begin + 1;
    while (end < sorted.keys.size() && sorted.keys[end] == sorted.keys[begin]) ++end;
    const R rank = R(0.5 * double(begin + 1 + end));
    for (std::size_t k = begin; k < end; ++k) ranks[sorted.order[k]] = rank;
    begin = end;
  }
  return ranks;
}

/// Dense ranks 0, 1, 2... (ties equal) and the number of tied pairs sum t(t-1)/2.
struct dense_ranks {
  std::vector<std::uint32_t> rank;
  std::uint32_t levels = 0;
  double tied_pairs = 0.0;
};

template <class S>
dense_ranks dense_ranking(const std::vector<S>& values) {
  const auto sorted = radix_sort(ordered_keys(values));
  dense_ranks out;
  out.rank.resize(values.size());
  for (std::size_t begin = 0; begin < sorted.keys.size();) {
    std::size_t end = begin + 1;
    while (end < sorted.keys.size() && sorted.keys[end] == sorted.keys[begin]) ++end;
    for (std::size_t k = begin; k < end; ++k) out.rank[sorted.order[k]] = out.levels;
    const double t = double(end - begin);
    out.tied_pairs += 0.5 * t * (t - 1.0);
    ++out.levels;
    begin = end;
  }
  return out;
}

/// Number of pairs i < j with a[i] > a[j], by a bottom-up merge sort (a is reordered).
MINT_LAZY double count_inversions(std::vector<std::uint32_t>& a) {
  const std::size_t n = a.size();
  std::vector<std::uint32_t> spare(n);
  double inversions = 0.0;
  for (std::size_t width = 1; width < n; width *= 2) {
    for (std::size_t left = 0; left < n; left += 2 * width) {
      const std::size_t mid = std::min(left + width, n), right = std::min(left + 2 * width, n);
      std::size_t i = left, j = mid, k = left;
      while (i < mid && j < right) {
        if (a[j] < a[i]) {
          inversions += double(mid - i);
          spare[k++] = a[j++];
        } else {
          spare[k++] = a[i++];
        }
      }
      while (i < mid) spare[k++] = a[i++];
      while (j < right) spare[k++] = a[j++];
    }
    a.swap(spare);
  }
  return inversions;
}

/// Kendall's tau-b of two rankings of the same items (Knight's algorithm).
MINT_LAZY double kendall_tau_b(const dense_ranks& x, const dense_ranks& y) {
  const std::size_t n = x.rank.size();
  const int bits_y = std::max(1, int(std::bit_width(y.levels)));
  const int bits = std::max(1, int(std::bit_width(x.levels))) + bits_y;
  // Sort by (x, y); pairs tied in x are then in y order and count as no inversion.
  std::vector<std::uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = (std::uint64_t(x.rank[i]) << bits_y) | y.rank[i];
  const auto sorted = radix_sort(std::move(keys), bits);
  std::vector<std::uint32_t> ys(n);
  double joint_ties = 0.0;
  for (std::size_t begin = 0; begin < n;) {
    std::size_t end = begin + 1;
    while (end < n && sorted.keys[end] == sorted.keys[begin]) ++end;
    const double t = double(end - begin);
    joint_ties += 0.5 * t * (t - 1.0);
    begin = end;
  }
  const std::uint64_t mask = (std::uint64_t(1) << bits_y) - 1;
  for (std::size_t k = 0; k < n; ++k) ys[k] = std::uint32_t(sorted.keys[k] & mask);
  const double discordant = count_inversions(ys);
  const double pairs = 0.5 * double(n) * double(n - 1);
  const double numerator = pairs - x.tied_pairs - y.tied_pairs + joint_ties - 2.0 * discordant;
  return numerator / std::sqrt((pairs - x.tied_pairs) * (pairs - y.tied_pairs));
}

}  // namespace mint::detail
