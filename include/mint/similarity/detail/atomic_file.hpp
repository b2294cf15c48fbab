// Internals: writes a text file so that a crash never leaves a half-written
// file in place: the text goes to a temporary file in the same folder, which is
// flushed, closed and renamed over the target.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include "mint/core/error.hpp"

namespace mint::detail {

inline void write_file_atomically(const std::filesystem::path& path, std::string_view text, const char* function) {
  const auto fail = [&](const std::string& why) {
    throw argument_error(function, "path", "\"" + path.string() + "\" cannot be written (" + why + ")",
                         "needs a path in a folder that exists and is writable");
  };
  if (path.empty() || !path.has_filename()) fail("it names no file");
  // A name no other writer picks: the target's name, the process's address space and a random tag.
  std::random_device entropy;
  std::filesystem::path temporary = path;
  temporary += ".tmp-" + std::to_string(entropy()) + std::to_string(reinterpret_cast<std::uintptr_t>(&text));
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot create a file there");
    out.write(text.data(), std::streamsize(text.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      fail("writing failed");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    fail(error.message());
  }
}

}  // namespace mint::detail
