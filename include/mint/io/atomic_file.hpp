// Writing a file so that a crash leaves the old file or the new one, never half
// of one: the bytes go to a temporary file in the same folder, which commit()
// flushes to disk (fsync) and renames over the target; a writer destroyed
// without commit() (an exception) removes its temporary. A process killed mid-write
// cannot: its temporary, named ".<target>.tmp-<pid>-<n>", is removed by the next
// writer of the same target once it is older than that writer and its process is
// gone, so kills do not pile up files; a live writer's temporary is never touched.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "mint/core/error.hpp"

namespace mint {

/// A file written through a temporary in the same folder and renamed into place by commit().
class atomic_file {
public:
  /// Creates the temporary next to `path`; an error (argument_error) when the folder is not writable.
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    const auto started = std::filesystem::file_time_type::clock::now();
    const std::filesystem::path target(path_);
    const std::string prefix =
        (target.has_parent_path() ? target.parent_path() / "" : std::filesystem::path()).string() + "." +
        target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-";
    // O_EXCL on a fresh name, created 0666 so the umask applies as for any new file (mkstemp gives 0600).
    static std::atomic<std::uint64_t> counter{0};
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
      const std::uint64_t tag = (std::uint64_t(::getpid()) << 32) ^ std::uint64_t(counter++) ^
                                std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
      temp_ = prefix + std::to_string(tag % 1000000007u);
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0)
      throw argument_error("mint::atomic_file", detail::str("path '", path_, "'"),
                           detail::str("cannot get a temporary file beside it (", std::strerror(errno), ")"),
                           "needs a writable folder");
    buffer_.reserve(buffer_capacity);
    remove_stale_temporaries(target, started);
  }

  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  /// Without commit(), the temporary is removed and the target is left as it was.
  ~atomic_file() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(temp_.c_str());
    }
  }

  /// Appends bytes (buffered; large writes go straight to the file).
  void write(const void* data, std::size_t n) {
    const auto* p = static_cast<const char*>(data);
    if (buffer_.size() + n <= buffer_capacity) {
      buffer_.insert(buffer_.end(), p, p + n);
    } else {
      flush_buffer();
      if (n < buffer_capacity) buffer_.insert(buffer_.end(), p, p + n);
      else write_all(p, n);
    }
    written_ += n;
  }
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  void write(std::span<const std::byte> bytes) { write(bytes.data(), bytes.size()); }

  /// Appends n zero bytes.
  void write_zeros(std::size_t n) {
    static constexpr char zeros[64] = {};
    while (n > 0) {
      const std::size_t chunk = n < sizeof(zeros) ? n : sizeof(zeros);
      write(zeros, chunk);
      n -= chunk;
    }
  }

  /// Bytes written so far.
  std::uint64_t size() const noexcept { return written_; }
  /// The file this writer replaces.
  const std::string& path() const noexcept { return path_; }

  /// Flushes, syncs and renames the temporary over the target; after this the writer is done.
  void commit() {
    if (fd_ < 0) throw argument_error("mint::atomic_file::commit", "writer", "was committed already", "needs one commit");
    flush_buffer();
    if (::fsync(fd_) != 0) fail("cannot be flushed to disk");
    if (::close(fd_) != 0) {
      fd_ = -1;
      ::unlink(temp_.c_str());
      fail("cannot be closed");
    }
    fd_ = -1;
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
      const int saved = errno;
      ::unlink(temp_.c_str());
      errno = saved;
      fail("cannot be renamed into place");
    }
    // Make the rename itself durable: sync the folder's entry too (best effort).
    const std::filesystem::path folder = std::filesystem::path(path_).parent_path();
    const int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }

private:
  static constexpr std::size_t buffer_capacity = std::size_t(1) << 20;

  // Temporaries of this target left by killed writers: ".<name>.tmp-<pid>-<n>" from another
  // process that no longer exists, last written before this writer started. Best effort:
  // anything unreadable is left alone.
  static void remove_stale_temporaries(const std::filesystem::path& target,
                                       std::filesystem::file_time_type started) {
    namespace fs = std::filesystem;
    std::string prefix(1, '.');  // appended piece by piece: GCC 12 warns falsely on "." + string
    prefix += target.filename().string();
    prefix += ".tmp-";
    std::error_code ec;
    fs::directory_iterator it(target.has_parent_path() ? target.parent_path() : fs::path("."), ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::size_t dash = name.find('-', prefix.size());
      if (dash == std::string::npos || dash == prefix.size()) continue;
      long long pid = 0;
      for (std::size_t i = prefix.size(); i < dash; ++i) {
        if (name[i] < '0' || name[i] > '9' || pid > (1LL << 40)) { pid = 0; break; }
        pid = pid * 10 + (name[i] - '0');
      }
      std::error_code time_error;
      const auto written = fs::last_write_time(it->path(), time_error);
      const bool gone = pid > 0 && pid != ::getpid() && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
      if (gone && !time_error && written < started && it->is_regular_file(time_error)) fs::remove(it->path(), time_error);
    }
  }

  void flush_buffer() {
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

  void write_all(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t done = ::write(fd_, p, n < (std::size_t(1) << 30) ? n : (std::size_t(1) << 30));
      if (done < 0 && errno == EINTR) continue;
      if (done <= 0) fail("cannot be written");
      p += done;
      n -= std::size_t(done);
    }
  }

  [[noreturn]] void fail(const char* what) const {
    throw argument_error("mint::atomic_file", detail::str("file '", path_, "'"),
                         detail::str(what, " (", std::strerror(errno), ")"), "needs a writable disk with space");
  }

  std::string path_;
  std::string temp_;
  int fd_ = -1;
  std::vector<char> buffer_;
  std::uint64_t written_ = 0;
};

}  // namespace mint
