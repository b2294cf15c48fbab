// A read-only file as bytes: memory-mapped (POSIX mmap, pages read on first
// touch, so a header can be parsed without reading the data behind it), or an
// in-memory buffer under a name. Arrays mapped from a file share ownership of
// the mapping, so it lives as long as any of them. Opening costs O(1).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mint/core/error.hpp"
#include "mint/io/detail/bytes.hpp"

namespace mint {

/// The bytes of a file, memory-mapped read-only, or of a buffer; shared by the arrays mapped from it.
class mapped_file {
public:
  /// Maps the file at `path`; a format_error names the file when it cannot be opened or mapped.
  static std::shared_ptr<const mapped_file> open(const std::string& path) {
    constexpr const char* function = "mint::mapped_file::open";
    auto out = std::shared_ptr<mapped_file>(new mapped_file());
    out->name_ = path;
    out->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (out->fd_ < 0) detail::format_fail(function, path, "cannot be opened", std::strerror(errno));
    struct stat info {};
    if (::fstat(out->fd_, &info) != 0) detail::format_fail(function, path, "cannot be examined", std::strerror(errno));
    if (!S_ISREG(info.st_mode)) detail::format_fail(function, path, "is not a regular file", "needs a file");
    out->size_ = std::size_t(info.st_size);
    if (out->size_ > 0) {
      void* p = ::mmap(nullptr, out->size_, PROT_READ, MAP_PRIVATE, out->fd_, 0);
      if (p == MAP_FAILED) detail::format_fail(function, path, "cannot be memory-mapped", std::strerror(errno));
      out->data_ = static_cast<const std::byte*>(p);
      out->mapped_ = true;
    }
    return out;
  }

  /// Wraps bytes already in memory (a download, a fuzzer's input) under a name used in errors.
  static std::shared_ptr<const mapped_file> from_bytes(std::string name, std::vector<std::byte> bytes) {
    auto out = std::shared_ptr<mapped_file>(new mapped_file());
    out->name_ = std::move(name);
    out->buffer_ = std::move(bytes);
    out->data_ = out->buffer_.data();
    out->size_ = out->buffer_.size();
    return out;
  }

  static std::shared_ptr<const mapped_file> from_bytes(std::string name, std::span<const std::byte> bytes) {
    return from_bytes(std::move(name), std::vector<std::byte>(bytes.begin(), bytes.end()));
  }

  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (mapped_) ::munmap(const_cast<std::byte*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }

  /// The path (or the name given to a buffer), as errors show it.
  const std::string& name() const noexcept { return name_; }
  /// Size in bytes.
  std::uint64_t size() const noexcept { return size_; }
  /// All bytes; touching a page of a mapping reads it from disk.
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  /// True when the bytes come from mmap (rather than a buffer).
  bool is_mapped() const noexcept { return mapped_; }

  /// Copies n bytes at `offset` into dst with read(2) (no page faults), or from the buffer.
  /// The range must have been checked against size() already.
  void read_at(std::uint64_t offset, void* dst, std::size_t n) const {
    if (fd_ < 0) {
      if (n) std::memcpy(dst, data_ + offset, n);
      return;
    }
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd_, out, std::min<std::size_t>(n, std::size_t(1) << 30), off_t(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0)
        detail::format_fail("mint::mapped_file::read_at", name_, "could not be read", got < 0 ? std::strerror(errno) : "ended early");
      out += got;
      offset += std::uint64_t(got);
      n -= std::size_t(got);
    }
  }

  /// Tells the kernel the range will be read in order (a hint for streaming readers).
  void advise_sequential() const noexcept {
    if (mapped_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_SEQUENTIAL);
  }

private:
  mapped_file() = default;

  std::string name_;
  int fd_ = -1;
  bool mapped_ = false;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::byte> buffer_;
};

/// A shared, read-only file.
using file_ptr = std::shared_ptr<const mapped_file>;

}  // namespace mint
