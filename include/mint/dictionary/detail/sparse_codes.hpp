// Internals of the SAE step: sparse codes as compressed rows (a few latents per
// example), their products with the decoder, and the selections that make them
// (k largest per row; k x n largest over a batch). O(n k d) per product.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "mint/core/eigen.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint::detail {

/// Latents chosen per row: entries [start[i], start[i+1]) of `latent`, with a value
/// (the code z) and a gradient slot. `by_latent` lists the same entries grouped by
/// latent (rows ascending), for per-latent sums that need no atomics.
template <class T>
struct sparse_codes {
  std::vector<index> start;      // rows + 1
  std::vector<index> latent;     // entries
  std::vector<T> value;          // z at each entry
  std::vector<T> grad;           // dL/dpre at each entry
  std::vector<index> latent_start;  // latents + 1
  std::vector<index> by_latent;  // entry numbers grouped by latent

  void reserve(index rows, index entries, index latents) {
    start.reserve(std::size_t(rows + 1));
    latent.reserve(std::size_t(entries));
    value.reserve(std::size_t(entries));
    grad.reserve(std::size_t(entries));
    latent_start.reserve(std::size_t(latents + 1));
    by_latent.reserve(std::size_t(entries));
  }
  void clear() {
    start.assign(1, 0);
    latent.clear();
    value.clear();
    grad.clear();
  }
  index rows() const { return index(start.size()) - 1; }
  index entries() const { return index(latent.size()); }

  /// Fills latent_start/by_latent (a counting sort: deterministic, rows ascending within a latent).
  void group_by_latent(index latents) {
    latent_start.assign(std::size_t(latents + 1), 0);
    for (index e : latent) ++latent_start[std::size_t(e + 1)];
    for (index j = 0; j < latents; ++j) latent_start[std::size_t(j + 1)] += latent_start[std::size_t(j)];
    by_latent.resize(latent.size());
    fill_.assign(latent_start.begin(), latent_start.end() - 1);
    for (index e = 0; e < entries(); ++e) by_latent[std::size_t(fill_[std::size_t(latent[std::size_t(e)])]++)] = e;
  }

  /// The row of each entry (kept for per-latent loops).
  std::vector<index> row_of;
  void index_rows() {
    row_of.resize(latent.size());
    for (index i = 0; i < rows(); ++i)
      for (index e = start[std::size_t(i)]; e < start[std::size_t(i + 1)]; ++e) row_of[std::size_t(e)] = i;
  }

private:
  std::vector<index> fill_;
};

/// out[i] += sum over the entries of row i of value * W[latent] (W: [latents, d], row-major).
template <class T, class W, class Out>
void add_decoded(const sparse_codes<T>& codes, const std::vector<T>& values, const W& dec, Out& out) {
  const index n = codes.rows();
  MINT_PARALLEL_FOR(double(codes.entries()) * double(dec.cols()))
  for (index i = 0; i < n; ++i)
    for (index e = codes.start[std::size_t(i)]; e < codes.start[std::size_t(i + 1)]; ++e)
      out.row(i) += values[std::size_t(e)] * dec.row(codes.latent[std::size_t(e)]);
}

/// result[e] = G[row(e)] . W[latent(e)].
template <class T, class G, class W>
void dot_entries(const sparse_codes<T>& codes, const G& g, const W& dec, std::vector<T>& result) {
  const index n = codes.rows();
  result.resize(codes.latent.size());
  MINT_PARALLEL_FOR(double(codes.entries()) * double(dec.cols()))
  for (index i = 0; i < n; ++i)
    for (index e = codes.start[std::size_t(i)]; e < codes.start[std::size_t(i + 1)]; ++e)
      result[std::size_t(e)] = g.row(i).dot(dec.row(codes.latent[std::size_t(e)]));
}

/// out[j] += sum over entries of latent j of values[e] * source[row(e)], and sums[j] += values[e]
/// (sums may be null). Needs group_by_latent and index_rows. One thread per latent: no races.
template <class T, class S, class Out>
void add_outer(const sparse_codes<T>& codes, const std::vector<T>& values, const S& source, Out& out, T* sums) {
  const index m = index(codes.latent_start.size()) - 1;
  MINT_PARALLEL_FOR(double(codes.entries()) * double(source.cols()))
  for (index j = 0; j < m; ++j) {
    T total = 0;
    for (index p = codes.latent_start[std::size_t(j)]; p < codes.latent_start[std::size_t(j + 1)]; ++p) {
      const index e = codes.by_latent[std::size_t(p)];
      out.row(j) += values[std::size_t(e)] * source.row(codes.row_of[std::size_t(e)]);
      total += values[std::size_t(e)];
    }
    if (sums) sums[j] += total;
  }
}

/// select_topk's per-thread space, kept between calls so a training step allocates nothing.
template <class T>
struct topk_scratch {
  std::vector<index> found;  ///< a row's candidate latents
  std::vector<T> maxima;     ///< a row's block maxima, and a copy to rank
};

/// The k largest entries of each row of `pre` (among latents where `allowed` is nonzero when
/// given), as codes with value relu(pre): SAELens's order, k chosen on the raw value first.
/// Ties go to the lower latent; NaN ranks below every number. Entries are in ascending latent order within a row.
/// Per row: the maxima of about 4k blocks (vectorized); the k-th largest of them is a floor
/// the k-th largest entry reaches (k distinct entries do), so only entries at or above it in
/// blocks whose maximum reaches it are candidates, about k of them, ranked exactly. O(m) a row.
template <class T, class P>
void select_topk(const P& pre, index k, const std::uint8_t* allowed, sparse_codes<T>& codes, topk_scratch<T>& scratch) {
  const index n = pre.rows(), m = pre.cols();
  index candidates = m;
  if (allowed) candidates = index(std::count_if(allowed, allowed + m, [](std::uint8_t a) { return a != 0; }));
  const index kk = std::min(k, candidates);
  codes.clear();
  codes.start.resize(std::size_t(n + 1));
  for (index i = 0; i <= n; ++i) codes.start[std::size_t(i)] = i * kk;
  codes.latent.resize(std::size_t(n * kk));
  codes.value.resize(std::size_t(n * kk));
  if (kk == 0) return;
  const double work = double(n) * double(m) * 4;
  const std::size_t threads = work >= parallel_threshold ? std::size_t(thread_count()) : 1;
  // About 4k blocks: fewer leave more candidates to rank, more make the floor costlier to find.
  const index width = std::clamp<index>(m / (4 * kk), 1, 64), blocks = (m + width - 1) / width;
  scratch.found.resize(threads * std::size_t(m));
  scratch.maxima.resize(threads * std::size_t(2 * blocks));
  MINT_PARALLEL_FOR(work)
  for (index i = 0; i < n; ++i) {
    const std::size_t t = std::size_t(thread_index());
    index* found = scratch.found.data() + t * std::size_t(m);
    T* maxima = scratch.maxima.data() + t * std::size_t(2 * blocks);
    T* ranked = maxima + blocks;
    const T* row = &pre(i, 0);  // row-major: the row is contiguous
    constexpr T lowest = -std::numeric_limits<T>::infinity();
    for (index b = 0; b < blocks; ++b) {
      const index begin = b * width, end = std::min(m, begin + width);
      T top = lowest;
      if (allowed) {
        for (index c = begin; c < end; ++c)
          if (allowed[c] && row[c] > top) top = row[c];
      } else {
        top = Eigen::Map<const vector<T>>(row + begin, end - begin).template maxCoeff<Eigen::PropagateNumbers>();
        if (!(top >= lowest)) top = lowest;  // a block of NaN only: never a candidate
      }
      maxima[b] = ranked[b] = top;
    }
    std::nth_element(ranked, ranked + kk - 1, ranked + blocks, std::greater<T>());
    const T floor = ranked[kk - 1];
    index count = 0;
    for (index b = 0; b < blocks; ++b) {
      if (!(maxima[b] >= floor)) continue;
      const index end = std::min(m, (b + 1) * width);
      for (index c = b * width; c < end; ++c)
        if (row[c] >= floor && (!allowed || allowed[c])) found[count++] = c;
    }
    // NaN never passes `>= floor`, so the candidates order strictly. Fewer than kk only when
    // NaN fills the row: the lowest NaN latents make up the count, unranked.
    for (index c = 0; c < m && count < kk; ++c)
      if ((!allowed || allowed[c]) && !(row[c] >= floor)) found[count++] = c;
    auto better = [row](index a, index b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
    if (count > kk) std::nth_element(found, found + kk - 1, found + count, better);
    std::sort(found, found + kk);
    for (index e = 0; e < kk; ++e) {
      codes.latent[std::size_t(i * kk + e)] = found[e];
      codes.value[std::size_t(i * kk + e)] = std::max(row[found[e]], T(0));
    }
  }
}

/// Every entry of `pre` where keep(latent, value) holds, as codes with value = pre. Two passes
/// (count, then fill), rows split across threads.
template <class T, class P, class Keep>
void select_where(const P& pre, sparse_codes<T>& codes, std::vector<index>& counts, Keep keep) {
  const index n = pre.rows(), m = pre.cols();
  counts.assign(std::size_t(n), 0);
  MINT_PARALLEL_FOR(double(n) * double(m))
  for (index i = 0; i < n; ++i) {
    const T* row = &pre(i, 0);
    index c = 0;
    for (index j = 0; j < m; ++j) c += keep(j, row[j]);
    counts[std::size_t(i)] = c;
  }
  codes.clear();
  codes.start.resize(std::size_t(n + 1));
  for (index i = 0; i < n; ++i) codes.start[std::size_t(i + 1)] = codes.start[std::size_t(i)] + counts[std::size_t(i)];
  codes.latent.resize(std::size_t(codes.start[std::size_t(n)]));
  codes.value.resize(codes.latent.size());
  MINT_PARALLEL_FOR(double(n) * double(m))
  for (index i = 0; i < n; ++i) {
    const T* row = &pre(i, 0);
    index e = codes.start[std::size_t(i)];
    for (index j = 0; j < m; ++j)
      if (keep(j, row[j])) {
        codes.latent[std::size_t(e)] = j;
        codes.value[std::size_t(e)] = row[j];
        ++e;
      }
  }
}

/// The k_total largest positive entries of the whole matrix (BatchTopK), ties broken in
/// row-major order. Returns the smallest kept value (0 when fewer positives than k_total).
/// A 2^16-bucket histogram of the values' top float bits finds the boundary in two passes.
template <class T, class P>
T select_batch_topk(const P& pre, index k_total, sparse_codes<T>& codes, std::vector<T>& boundary,
                    std::vector<std::int64_t>& histogram) {
  const index n = pre.rows(), m = pre.cols();
  auto bucket = [](T v) { return std::bit_cast<std::uint32_t>(float(v)) >> 16; };  // v > 0: monotone
  histogram.assign(1 << 16, 0);
  for (index i = 0; i < n; ++i)
    for (index j = 0; j < m; ++j)
      if (pre(i, j) > T(0)) ++histogram[bucket(pre(i, j))];
  // Walk down from the largest bucket until k_total values are covered.
  std::int64_t above = 0;
  std::int64_t b = (1 << 16) - 1;
  for (; b >= 0; --b) {
    if (above + histogram[std::size_t(b)] >= k_total) break;
    above += histogram[std::size_t(b)];
  }
  T threshold = T(0);  // keep values > threshold, plus `ties` values == threshold
  std::int64_t ties = 0;
  if (b >= 0) {
    boundary.clear();
    for (index i = 0; i < n; ++i)
      for (index j = 0; j < m; ++j)
        if (pre(i, j) > T(0) && bucket(pre(i, j)) == std::uint32_t(b)) boundary.push_back(pre(i, j));
    const std::int64_t need = k_total - above;  // >= 1, <= boundary.size()
    std::nth_element(boundary.begin(), boundary.begin() + (need - 1), boundary.end(), std::greater<T>());
    threshold = boundary[std::size_t(need - 1)];
    const std::int64_t greater = std::count_if(boundary.begin(), boundary.end(), [&](T v) { return v > threshold; });
    ties = need - greater;
  }
  codes.clear();
  codes.start.resize(std::size_t(n + 1));
  for (index i = 0; i < n; ++i) {
    for (index j = 0; j < m; ++j) {
      const T v = pre(i, j);
      if (v > threshold || (ties > 0 && v == threshold && v > T(0))) {
        if (!(v > threshold)) --ties;
        codes.latent.push_back(j);
        codes.value.push_back(v);
      }
    }
    codes.start[std::size_t(i + 1)] = codes.entries();
  }
  return threshold;
}

/// The buffers the selections above reuse from batch to batch.
template <class T>
struct selection_buffers {
  topk_scratch<T> topk;
  std::vector<T> boundary;
  std::vector<std::int64_t> histogram;
  std::vector<index> row_counts;
};

}  // namespace mint::detail
