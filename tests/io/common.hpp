// Shared by the io tests: a fresh temporary folder per test, raw file helpers,
// a GGUF byte builder, the value rule of make_numpy_files.py, and a check that a
// call throws a format_error whose message mentions a given text.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "mint/io/detail/bytes.hpp"
#include "mint/io/dtype.hpp"
#include "mint/io/gguf.hpp"
#include "mint/io/mapped_file.hpp"

namespace io_test {

/// A fresh folder under the system's temporary folder, removed at the end of the test.
struct temp_folder {
  std::filesystem::path path;
  temp_folder() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() / ("mint-io-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_folder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  /// Number of entries in the folder (temporaries included).
  std::size_t entries() const {
    return std::size_t(std::distance(std::filesystem::directory_iterator(path), std::filesystem::directory_iterator()));
  }
};

inline std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  for (std::size_t k = 0; k < chars.size(); ++k) out[k] = std::byte(chars[k]);
  return out;
}

inline void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) out[k] = std::byte(static_cast<unsigned char>(s[k]));
  return out;
}

inline mint::file_ptr memory_file(const std::vector<std::byte>& bytes, const std::string& name = "test") {
  return mint::mapped_file::from_bytes(name, bytes);
}

/// Builds GGUF bytes by hand, to write what mint's writer never would (gguf and control-vector tests).
struct gguf_builder {
  std::string out;
  std::uint32_t alignment = 32;
  template <class T>
  gguf_builder& raw(T x) {
    mint::detail::append_le(out, x);
    return *this;
  }
  gguf_builder& string(const std::string& s) {
    raw(std::uint64_t(s.size()));
    out += s;
    return *this;
  }
  gguf_builder& header(std::uint32_t version, std::uint64_t tensors, std::uint64_t kv) {
    return raw(std::uint32_t(0x46554747)).raw(version).raw(tensors).raw(kv);
  }
  gguf_builder& tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t offset) {
    string(name).raw(std::uint32_t(dims.size()));
    for (const auto d : dims) raw(d);
    return raw(type).raw(offset);
  }
  gguf_builder& pad() {
    out.append((alignment - out.size() % alignment) % alignment, '\0');
    return *this;
  }
  gguf_builder& data(std::size_t n) {
    out.append(n, '\0');
    return *this;
  }
  /// Little-endian F32 values (a tensor's data).
  gguf_builder& f32(std::initializer_list<float> values) {
    for (const float v : values) raw(v);
    return *this;
  }
  mint::gguf_file open(const std::string& name = "bad.gguf") const {
    return mint::gguf_file(memory_file(bytes_of(out), name));
  }
};

/// Element k (row-major) of make_numpy_files.py's arrays, as double.
inline double rule(mint::dtype d, std::int64_t k) {
  if (d == mint::dtype::boolean) return k % 3 == 0 ? 1 : 0;
  if (mint::is_floating(d)) return double(k) * 0.5 - 3;
  const bool is_signed = d == mint::dtype::int8 || d == mint::dtype::int16 || d == mint::dtype::int32 || d == mint::dtype::int64;
  return double(k % 100 - (is_signed ? 50 : 0));
}

/// The folder make_numpy_files.py wrote, or empty when NumPy was not found at configure time.
inline std::string numpy_folder() {
  const char* folder = std::getenv("MINT_NUMPY_FILES");
  return folder ? folder : "";
}

/// Runs f and checks it throws mint::format_error with `text` in its message.
template <class F>
void check_format_error(F&& f, const std::string& text) {
  try {
    f();
    FAIL("no format_error; expected one mentioning: " << text);
  } catch (const mint::format_error& e) {
    const std::string message = e.what();
    INFO("message: " << message);
    CHECK(std::string(e.what()).find(text) != std::string::npos);
  }
}

/// Every strict prefix of a valid file must give a format_error (never a crash or a success).
template <class Open>
void check_every_truncation_fails(const std::vector<std::byte>& bytes, Open&& open) {
  int failures = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    try {
      open(memory_file(prefix, "truncated"));
      ++failures;
      INFO("a prefix of " << n << " of " << bytes.size() << " bytes was accepted");
      CHECK(false);
    } catch (const mint::format_error&) {
    }
    if (failures > 3) break;
  }
}

}  // namespace io_test
