// A folder of .npy activation files read as one stream of float rows, for
// training on more activations than fit in memory: files are memory-mapped one
// at a time and read in order, and a seeded shuffle buffer of B rows mixes
// them (each output row is drawn uniformly from the buffer and replaced by the
// next row of the stream). Batches fill a caller-owned [n, d] view, allocating
// nothing. Deterministic for a seed; seek() resumes a run exactly. O(d) per row.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mint/core/compiled.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/mapped_file.hpp"
#include "mint/io/npy.hpp"

namespace mint {

/// Knobs of an activation_shards stream.
struct shard_options {
  /// Rows held for shuffling (B); 0 or 1 reads rows in file order. Memory: B x d floats.
  index shuffle_buffer_rows = 1 << 16;
  /// Seed of the shuffle; epoch e draws from rng(seed, e).
  std::uint64_t seed = 0;
  /// Also visit the files in a shuffled order each epoch (when shuffling).
  bool shuffle_files = true;
};

namespace detail {

/// activation_shards. A template (C is always char) so only the units that stream shards compile
/// it, and a program may compile it once (mint/core/compiled.hpp).
template <class C>
class basic_activation_shards {
public:
  /// Every *.npy file in `folder`, in name order.
  explicit basic_activation_shards(const std::string& folder, const shard_options& options = {})
      : basic_activation_shards(list_folder(folder), options) {}

  /// The given .npy files, in this order.
  basic_activation_shards(std::vector<std::string> files, const shard_options& options);

  /// Every *.npy file in `folder`, in name order (what the folder constructor reads).
  static std::vector<std::string> list_folder(const std::string& folder);

  /// Values per row (d).
  index dim() const noexcept { return dim_; }
  /// Rows in all files: one epoch.
  index rows() const noexcept { return rows_; }
  /// The files, in the order given.
  const std::vector<std::string>& files() const noexcept { return files_; }
  /// The current epoch.
  std::uint64_t epoch() const noexcept { return epoch_; }
  /// Rows handed out in the current epoch.
  std::uint64_t rows_read() const noexcept { return delivered_; }

  /// Starts epoch `e` from its first row (files and buffer reshuffled from rng(seed, e)).
  void start_epoch(std::uint64_t e);
  /// Fills the first rows of `batch` ([n, d] floats, any strides) and returns how many it filled:
  /// n until the epoch runs out, then fewer, then 0. Allocates nothing.
  index next(const tensor_view<float>& batch);
  template <mutable_tensor X>
    requires(!a_tensor_view<X> && std::same_as<value_t<X>, float>)
  index next(X&& batch) {
    return next(mint::view(batch));
  }

  /// Puts the stream where it was after `rows` rows of epoch `e`, as if read from the start (for
  /// resuming from a checkpoint): replays the shuffle without data, then loads the buffer's rows.
  void seek(std::uint64_t e, std::uint64_t rows);
private:
  struct shard {
    index rows;
    npy_header header;
  };

  bool shuffling() const noexcept { return options_.shuffle_buffer_rows > 1; }

  float* row_buffer(const tensor_view<float>& row) {
    if (row.stride(0) == 1) return row.data();
    buffer_.resize(std::size_t(dim_));
    return buffer_.data();
  }

  void copy_out(const float* src, const tensor_view<float>& row) const {
    if (row.stride(0) == 1) std::copy_n(src, dim_, row.data());
    else
      for (index k = 0; k < dim_; ++k) row(k) = src[k];
  }

  /// Reads stream row `r` (in this epoch's file order) into dst, then into `row` if dst is a scratch buffer.
  void load(std::uint64_t r, float* dst, const tensor_view<float>& row = {});
  std::vector<std::string> files_;
  shard_options options_;
  std::vector<shard> shards_;
  index dim_ = 0;
  index rows_ = 0;

  std::uint64_t epoch_ = 0;
  std::uint64_t delivered_ = 0;
  rng random_;
  std::vector<std::size_t> order_;      // files in this epoch's order
  std::vector<std::uint64_t> starts_;   // first stream row of each file in that order
  std::uint64_t next_row_ = 0;          // next stream row to read
  std::vector<float> buffer_;           // B x d rows of the shuffle buffer
  std::vector<std::uint64_t> slots_;    // the stream row held in each buffer slot
  file_ptr current_;
  std::size_t current_index_ = 0;
};


#if MINT_CORE_BODIES
template <class C>
basic_activation_shards<C>::basic_activation_shards(std::vector<std::string> files, const shard_options& options)
    : files_(std::move(files)), options_(options) {
  constexpr const char* function = "mint::activation_shards";
  if (files_.empty()) throw argument_error(function, "files", "is empty", "needs at least one .npy file");
  if (options_.shuffle_buffer_rows < 0)
    throw argument_error(function, "options.shuffle_buffer_rows", str("is ", options_.shuffle_buffer_rows), "needs >= 0");
  for (const auto& path : files_) {
    const npy_header h = read_npy_header(path);
    if (h.shape.size() < 2)
      format_fail(function, path, str("holds an array of rank ", h.shape.size()),
                          "needs rank 2 or more: [rows, d] or [batch, pos, d]");
    if (h.fortran_order && h.shape.size() > 1 && h.size() > 0)
      format_fail(function, path, "holds a Fortran-ordered array", "needs C order (np.ascontiguousarray before saving)");
    const index d = h.shape.back();
    if (dim_ == 0 && d > 0) dim_ = d;
    if (d != dim_ || d == 0)
      format_fail(function, path, str("holds rows of ", d, " values"),
                          str("needs ", dim_ == 0 ? index(1) : dim_, dim_ == 0 ? " or more" : ", as the files before it"));
    shards_.push_back({h.size() / d, h});
    rows_ += h.size() / d;
  }
  start_epoch(0);

}

template <class C>
void basic_activation_shards<C>::start_epoch(std::uint64_t e) {
  epoch_ = e;
  delivered_ = 0;
  random_ = rng(options_.seed, e);
  order_.resize(shards_.size());
  for (std::size_t k = 0; k < order_.size(); ++k) order_[k] = k;
  if (shuffling() && options_.shuffle_files) random_.shuffle(order_.begin(), order_.end());
  starts_.assign(order_.size() + 1, 0);
  for (std::size_t k = 0; k < order_.size(); ++k) starts_[k + 1] = starts_[k] + std::uint64_t(shards_[order_[k]].rows);
  next_row_ = 0;
  slots_.clear();
  if (!shuffling()) return;
  const auto capacity = std::size_t(std::min<index>(options_.shuffle_buffer_rows, rows_));
  buffer_.resize(capacity * std::size_t(dim_));
  while (slots_.size() < capacity) {
    slots_.push_back(next_row_);
    load(next_row_++, buffer_.data() + (slots_.size() - 1) * std::size_t(dim_));
  }

}

template <class C>
index basic_activation_shards<C>::next(const tensor_view<float>& batch) {
  constexpr const char* function = "mint::activation_shards::next";
  if (batch.rank() != 2 || batch.extent(1) != dim_)
    throw shape_error(function, "batch", "has extents " + shape_string(batch.extents()),
                      str("needs [n, ", dim_, "], rows of the shards' width"));
  index filled = 0;
  for (; filled < batch.extent(0); ++filled) {
    const tensor_view<float> row = batch.subview(filled);
    if (!shuffling()) {
      if (next_row_ >= std::uint64_t(rows_)) break;
      load(next_row_++, row_buffer(row), row);
    } else {
      if (slots_.empty()) break;
      const auto j = std::size_t(random_.below(slots_.size()));
      float* slot = buffer_.data() + j * std::size_t(dim_);
      copy_out(slot, row);
      if (next_row_ < std::uint64_t(rows_)) {
        slots_[j] = next_row_;
        load(next_row_++, slot);
      } else {  // the stream is spent: the last slot takes j's place
        const std::size_t last = slots_.size() - 1;
        if (j != last) {
          std::copy_n(buffer_.data() + last * std::size_t(dim_), dim_, slot);
          slots_[j] = slots_[last];
        }
        slots_.pop_back();
      }
    }
    ++delivered_;
  }
  return filled;

}

template <class C>
void basic_activation_shards<C>::seek(std::uint64_t e, std::uint64_t rows) {
  if (rows > std::uint64_t(rows_))
    throw argument_error("mint::activation_shards::seek", "rows", str("is ", rows), str("needs <= ", rows_, ", one epoch"));
  if (!shuffling()) {
    start_epoch(e);
    next_row_ = delivered_ = rows;
    return;
  }
  // Replay the draws on row numbers only, then read each slot's row once.
  epoch_ = e;
  delivered_ = 0;
  random_ = rng(options_.seed, e);
  for (std::size_t k = 0; k < order_.size(); ++k) order_[k] = k;
  if (options_.shuffle_files) random_.shuffle(order_.begin(), order_.end());
  for (std::size_t k = 0; k < order_.size(); ++k) starts_[k + 1] = starts_[k] + std::uint64_t(shards_[order_[k]].rows);
  const auto capacity = std::size_t(std::min<index>(options_.shuffle_buffer_rows, rows_));
  slots_.clear();
  for (next_row_ = 0; slots_.size() < capacity;) slots_.push_back(next_row_++);
  for (; delivered_ < rows; ++delivered_) {
    const auto j = std::size_t(random_.below(slots_.size()));
    if (next_row_ < std::uint64_t(rows_)) slots_[j] = next_row_++;
    else {
      slots_[j] = slots_.back();
      slots_.pop_back();
    }
  }
  std::vector<std::size_t> by_row(slots_.size());
  for (std::size_t k = 0; k < by_row.size(); ++k) by_row[k] = k;
  std::sort(by_row.begin(), by_row.end(), [&](std::size_t a, std::size_t b) { return slots_[a] < slots_[b]; });
  for (const std::size_t k : by_row) load(slots_[k], buffer_.data() + k * std::size_t(dim_));

}

template <class C>
std::vector<std::string> basic_activation_shards<C>::list_folder(const std::string& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec))
    if (entry.path().extension() == ".npy" && entry.is_regular_file()) out.push_back(entry.path().string());
  if (ec)
    throw argument_error("mint::activation_shards", str("folder '", folder, "'"), str("cannot be listed (", ec.message(), ")"),
                         "needs a readable folder of .npy files");
  if (out.empty())
    throw argument_error("mint::activation_shards", str("folder '", folder, "'"), "holds no .npy files", "needs at least one");
  std::sort(out.begin(), out.end());
  return out;

}

template <class C>
void basic_activation_shards<C>::load(std::uint64_t r, float* dst, const tensor_view<float>& row) {
  const auto k = std::size_t(std::upper_bound(starts_.begin(), starts_.end(), r) - starts_.begin() - 1);
  const std::size_t f = order_[k];
  if (!current_ || current_index_ != f) {
    current_ = mapped_file::open(files_[f]);
    current_->advise_sequential();
    current_index_ = f;
    if (current_->size() < shards_[f].header.data_offset + shards_[f].header.data_bytes)
      format_fail("mint::activation_shards::next", files_[f], "changed size since it was opened", "needs files left alone while read");
  }
  const npy_header& h = shards_[f].header;
  const std::size_t width = dtype_size(h.type);
  const std::byte* src = current_->bytes().data() + h.data_offset + (r - starts_[k]) * std::uint64_t(dim_) * width;
  convert_elements(h.type, h.byte_order, src, std::ptrdiff_t(width), dst, std::size_t(dim_));
  if (row.data() != nullptr && dst != row.data()) copy_out(dst, row);

}
#endif  // MINT_CORE_BODIES

}  // namespace detail

/// Activation rows from many .npy files ([rows, d] or [batch, pos, d]: leading axes are rows; any
/// numeric dtype, converted to float), streamed through a seeded shuffle buffer.
using activation_shards = detail::basic_activation_shards<char>;

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_IO_ACTIVATION_SHARDS(CORE) CORE(class mint::detail::basic_activation_shards<char>)
MINT_CORES_IO_ACTIVATION_SHARDS(MINT_CORE)
