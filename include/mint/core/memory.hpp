// Sizes no machine can hold, said as such: a request beyond this machine's memory is an
// argument_error naming the bytes before anything is allocated, and an allocation that fails
// anyway (std::bad_alloc, std::length_error) becomes the same error rather than escaping bare.
#pragma once

#include <new>
#include <stdexcept>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "mint/core/error.hpp"

namespace mint::detail {

/// Bytes of physical memory (0 when the system does not say).
inline double memory_bytes() noexcept {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return double(pages) * double(page);
#endif
  return 0;
}

/// make(), which allocates about `bytes`: refused up front when that is more than this machine
/// has, and a failed allocation reported as an argument_error of `function` naming `argument`.
template <class F>
decltype(auto) allocating(const char* function, const char* argument, double bytes, F&& make) {
  const double have = memory_bytes();
  auto refuse = [&] {
    return argument_error(function, argument, str("would take ", bytes / double(1ULL << 30), " GiB"),
                          have > 0 ? str("needs sizes that fit in memory (this machine has ", have / double(1ULL << 30), " GiB)")
                                   : std::string("needs sizes that fit in memory"));
  };
  if (have > 0 && bytes > have) throw refuse();
  try {
    return make();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  throw refuse();
}

}  // namespace mint::detail
