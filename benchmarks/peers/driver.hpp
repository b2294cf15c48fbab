// What the mint sides of the peer benchmarks share: timing a call, and writing token batches
// and id lists as .npy for the Python side to read.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <mint/io/npy.hpp>
#include <mint/model/runtime.hpp>

namespace peer_driver {

/// Seconds per call of f over n calls.
template <class F>
double seconds_per_call(long n, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / double(n);
}

/// A token batch as int32 [batch, positions].
inline void write_tokens(const std::string& path, const mint::token_batch& t) {
  std::vector<mint::token> ids;
  for (mint::index b = 0; b < t.batch(); ++b)
    for (mint::index p = 0; p < t.positions(); ++p) ids.push_back(t(b, p));
  mint::write_npy(path, mint::array_ref(mint::dtype::int32, {t.batch(), t.positions()}, ids.data()));
}

/// Token ids as int32 [n].
inline void write_ids(const std::string& path, const std::vector<mint::token>& ids) {
  mint::write_npy(path, mint::array_ref(mint::dtype::int32, {mint::index(ids.size())}, ids.data()));
}

/// Serves timing requests on stdin, one a line, so the peer script can interleave repetitions:
/// "NAME N" prints the seconds per call of calls[NAME] over N calls; "quit" ends. Each call
/// returns a number, summed so the timed work stays alive.
inline void serve(const std::string& program, const std::map<std::string, std::function<double()>>& calls) {
  std::string command;
  long n = 0;
  double sink = 0;
  while (std::cin >> command) {
    if (command == "quit") break;
    if (!(std::cin >> n) || n < 1) throw std::runtime_error(program + ": a command needs a count >= 1");
    const auto call = calls.find(command);
    if (call == calls.end()) throw std::runtime_error(program + ": unknown command '" + command + "'");
    std::printf("%.9g\n", seconds_per_call(n, [&] { sink += call->second(); }));
    std::fflush(stdout);
  }
  if (sink == 12345.678) std::printf("\n");
}

}  // namespace peer_driver
