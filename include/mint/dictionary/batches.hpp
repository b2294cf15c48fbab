// Where SAE training rows come from: a batch_source fills [n, d] float views, from an
// in-memory matrix (a seeded permutation per epoch), .npy activation shards, or a callback
// (a runtime with a cache hook). O(rows d) per batch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/distributed/communicator.hpp"
#include "mint/io/activation_shards.hpp"

namespace mint::dictionary {

/// Where training rows come from: `next` fills the rows of a [n, d] float view and returns how
/// many it filled (n unless the data ran out for good); `seek` puts the stream after a number of
/// rows, for resuming (empty when the source cannot seek).
struct batch_source {
  std::function<index(const tensor_view<float>&)> next;
  std::function<void(std::uint64_t)> seek;
};

}  // namespace mint::dictionary

namespace mint::detail {

/// The batch sources below, over the float rows they fill (mint/core/compiled.hpp).
template <class T>
struct batch_sources {
  static dictionary::batch_source of_matrix(const tensor_view<const T>& data, std::uint64_t seed);
  static dictionary::batch_source of_shards(activation_shards& shards);
  static dictionary::batch_source of_blocks(std::function<dictionary::batch_source(index)> make, index blocks,
                                            distributed::communicator_ref comm);
  static dictionary::batch_source of_shard_blocks(const std::string& folder, const shard_options& options, index blocks,
                                                  distributed::communicator_ref comm);
};

#if MINT_CORE_BODIES
template <class T>
dictionary::batch_source batch_sources<T>::of_matrix(const tensor_view<const T>& v, std::uint64_t seed) {
  struct state {
    tensor_view<const T> rows;
    std::uint64_t seed = 0, epoch = 0;
    index position = 0;
    std::vector<index> order;
    void shuffle() {
      std::iota(order.begin(), order.end(), index(0));
      mint::rng(seed, epoch).shuffle(order.begin(), order.end());
    }
  };
  if (v.rank() != 2 || v.extent(0) < 1)
    throw shape_error("mint::dictionary::matrix_batches", "data", "has extents " + detail::shape_string(v.extents()),
                      "needs a [rows, d] float matrix with at least one row");
  auto s = std::make_shared<state>();
  s->rows = v;
  s->seed = seed;
  s->order.resize(std::size_t(v.extent(0)));
  s->shuffle();
  dictionary::batch_source out;
  out.next = [s](const tensor_view<float>& batch) {
    const index n = batch.extent(0), total = s->rows.extent(0);
    // A row narrower than the batch would be read past its end; a wider one silently cut.
    if (batch.rank() != 2 || batch.extent(1) != s->rows.extent(1))
      throw shape_error("mint::dictionary::matrix_batches", "data",
                        detail::str("has rows of ", s->rows.extent(1), " values"),
                        detail::str("needs rows of the batch's width, ", batch.rank() == 2 ? batch.extent(1) : 0,
                                          " (the SAE's d_in)"));
    for (index i = 0; i < n; ++i) {
      if (s->position == total) {
        ++s->epoch;
        s->position = 0;
        s->shuffle();
      }
      const auto src = s->rows.subview(s->order[std::size_t(s->position++)]);
      auto dst = batch.subview(i);
      for (index j = 0; j < dst.extent(0); ++j) dst(j) = src(j);
    }
    return n;
  };
  out.seek = [s](std::uint64_t rows) {
    const auto total = std::uint64_t(s->rows.extent(0));
    s->epoch = rows / total;
    s->position = index(rows % total);
    s->shuffle();
  };
  return out;
}

template <class T>
dictionary::batch_source batch_sources<T>::of_shards(activation_shards& shards) {
  dictionary::batch_source out;
  out.next = [&shards](const tensor_view<float>& batch) {
    index filled = 0;
    for (int tries = 0; filled < batch.extent(0) && tries < 3; ++tries) {
      const index got = shards.next(batch.slice(filled, batch.extent(0)));
      filled += got;
      if (filled < batch.extent(0)) shards.start_epoch(shards.epoch() + 1);
      if (got > 0) tries = 0;
    }
    return filled;
  };
  out.seek = [&shards](std::uint64_t rows) {
    const auto per_epoch = std::uint64_t(shards.rows());
    shards.seek(rows / per_epoch, rows % per_epoch);
  };
  return out;
}

template <class T>
dictionary::batch_source batch_sources<T>::of_blocks(std::function<dictionary::batch_source(index)> make, index blocks,
                                                     distributed::communicator_ref comm) {
  const char* fn = "mint::dictionary::block_batches";
  const index ranks = comm.size();
  distributed::check_same(comm, fn, "gradient_blocks", detail::str(blocks));  // before a check that differs by rank
  if (blocks < 1 || blocks % ranks != 0)
    throw argument_error(fn, "gradient_blocks", detail::str("is ", blocks),
                         detail::str("needs >= 1 and a multiple of the communicator's ", ranks, " ranks"));
  const index q = blocks / ranks;
  auto sources = std::make_shared<std::vector<dictionary::batch_source>>();
  // A block's source that cannot open (its own files) stops every rank, not just this one.
  std::string problem;
  try {
    for (index b = 0; b < q; ++b) sources->push_back(make(comm.rank() * q + b));
  } catch (const std::exception& e) {
    if (ranks == 1) throw;
    problem = e.what();
  }
  distributed::agree(comm, fn, "make", problem);
  dictionary::batch_source out;
  out.next = [sources, q, fn](const tensor_view<float>& batch) {
    const index n = batch.extent(0);
    if (n % q != 0)
      throw shape_error(fn, "batch", detail::str("has ", n, " rows"), detail::str("needs a multiple of this rank's ", q, " blocks"));
    index filled = 0;
    for (index b = 0; b < q; ++b) filled += (*sources)[std::size_t(b)].next(batch.slice(b * (n / q), (b + 1) * (n / q)));
    return filled;
  };
  const bool seekable = std::all_of(sources->begin(), sources->end(), [](const auto& s) { return bool(s.seek); });
  if (seekable)
    out.seek = [sources, blocks](std::uint64_t rows) {
      for (auto& s : *sources) s.seek(rows / std::uint64_t(blocks));
    };
  return out;
}

template <class T>
dictionary::batch_source batch_sources<T>::of_shard_blocks(const std::string& folder, const shard_options& options, index blocks,
                                                           distributed::communicator_ref comm) {
  const char* fn = "mint::dictionary::shard_block_batches";
  // Every rank lists the folder; a rank that cannot, or sees other files, stops them all.
  std::vector<std::string> files;
  std::string listing, problem;
  try {
    files = activation_shards::list_folder(folder);
    for (const auto& f : files) listing += std::filesystem::path(f).filename().string() + detail::str(" (", std::filesystem::file_size(f), " bytes); ");
  } catch (const std::exception& e) {
    problem = e.what();
  }
  distributed::agree(comm, fn, "folder", problem);
  distributed::check_same(comm, fn, "the folder's files", listing);
  if (index(files.size()) < blocks)
    throw argument_error(fn, "folder", detail::str("holds ", files.size(), " .npy files"),
                         detail::str("needs at least one per gradient block (", blocks, ")"));
  auto make = [files, options, blocks](index b) {
    std::vector<std::string> mine;
    for (std::size_t f = std::size_t(b); f < files.size(); f += std::size_t(blocks)) mine.push_back(files[f]);
    shard_options o = options;
    o.seed = options.seed + std::uint64_t(b);
    auto shards = std::make_shared<activation_shards>(std::move(mine), o);
    dictionary::batch_source s = of_shards(*shards);
    // The source keeps its shards alive.
    return dictionary::batch_source{[shards, next = s.next](const tensor_view<float>& v) { return next(v); },
                                    [shards, seek = s.seek](std::uint64_t rows) { seek(rows); }};
  };
  return of_blocks(make, blocks, comm);
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::detail

namespace mint::dictionary {

/// Rows of an in-memory matrix ([rows, d], kept alive by the caller), in a fresh seeded
/// permutation each epoch (epoch e shuffles with rng(seed, e)), cycling forever.
template <tensor X>
batch_source matrix_batches(const X& data, std::uint64_t seed = 0) {
  const tensor_view<const float> v = mint::view(data);
  return detail::batch_sources<float>::of_matrix(v, seed);
}

/// Rows streamed from .npy shards (their own seeded shuffle buffer), epoch after epoch.
inline batch_source shard_batches(activation_shards& shards) { return detail::batch_sources<float>::of_shards(shards); }

/// The rows this rank trains on, by gradient block (sae_train_options::gradient_blocks, docs/
/// distributed.md): block b's rows come from make(b), a source of its own that does not depend on
/// how many ranks there are, and a rank fills its batch with its blocks' rows in block order
/// (rank r of N holds blocks r q .. r q + q - 1, q = gradient_blocks / N). seek(rows) puts each
/// block's source after rows / gradient_blocks rows. One process (the default) reads every block.
inline batch_source block_batches(std::function<batch_source(index block)> make, index gradient_blocks,
                                  distributed::communicator_ref communicator = {}) {
  return detail::batch_sources<float>::of_blocks(std::move(make), gradient_blocks, communicator);
}

/// .npy shards split by gradient block: block b streams the folder's files b, b + gradient_blocks,
/// ... (in name order) through its own shuffle buffer, seeded options.seed + b, so each rank reads
/// only its blocks' files and N ranks see the rows one process would. Every rank must list the
/// same files (names and sizes), else every rank throws a communication_error saying which differ.
inline batch_source shard_block_batches(const std::string& folder, const shard_options& options, index gradient_blocks,
                                        distributed::communicator_ref communicator = {}) {
  return detail::batch_sources<float>::of_shard_blocks(folder, options, gradient_blocks, communicator);
}

/// Rows from a callback (e.g. a runtime with a cache hook): f(view) fills [n, d] and returns n.
inline batch_source callback_batches(std::function<index(const tensor_view<float>&)> f) {
  return batch_source{std::move(f), {}};
}

}  // namespace mint::dictionary

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_DICTIONARY_BATCHES(CORE) CORE(struct mint::detail::batch_sources<float>)
MINT_CORES_DICTIONARY_BATCHES(MINT_CORE)
