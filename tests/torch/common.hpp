// Shared by the torch tests: the example's libtorch transformer made from a toy transformer's
// weights (through the file mint::toy::save writes), and comparisons of mint arrays.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include <doctest/doctest.h>

#include <mint/adapters/torch.hpp>
#include <mint/model/site_values.hpp>
#include <mint/toy.hpp>

#include "torch_transformer.hpp"

// Debian's libtorch logs through glog, whose CHECK macros replace doctest's of the same names
// once torch is included: give doctest's back.
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)
#define CHECK_EQ(...) DOCTEST_CHECK_EQ(__VA_ARGS__)
#define CHECK_NE(...) DOCTEST_CHECK_NE(__VA_ARGS__)
#define CHECK_LT(...) DOCTEST_CHECK_LT(__VA_ARGS__)
#define CHECK_LE(...) DOCTEST_CHECK_LE(__VA_ARGS__)
#define CHECK_GT(...) DOCTEST_CHECK_GT(__VA_ARGS__)
#define CHECK_GE(...) DOCTEST_CHECK_GE(__VA_ARGS__)

namespace torch_test {

template <class T>
using runtime = mint::torch_runtime<torch_example::TransformerImpl, T>;

/// A libtorch model with the toy's weights, in T (float or double).
template <class T>
runtime<T> twin_of(const mint::toy::transformer<T>& toy) {
  static int made = 0;  // one file per call, and per process (suites may run side by side)
  const auto path = (std::filesystem::temp_directory_path() /
                     ("mint_torch_twin_" + std::to_string(::getpid()) + "_" + std::to_string(made++) + ".safetensors"))
                        .string();
  mint::toy::save(toy, path);
  torch_example::Transformer module(toy.config());
  if constexpr (std::is_same_v<T, double>) module->to(torch::kDouble);  // before loading: no float rounding
  module->load(path);
  std::filesystem::remove(path);
  return runtime<T>(module.ptr(), {.vocab = toy.config().vocab, .context = toy.config().context});
}

/// Largest |a - b| over two views of the same shape (infinity when the shapes differ).
template <class A, class B>
double max_difference(const A& a, const B& b) {
  const auto va = mint::view(a);
  const auto vb = mint::view(b);
  if (!std::ranges::equal(va.extents(), vb.extents())) return INFINITY;
  double out = 0;
  mint::detail::for_each_index(va.extents(), [&](const auto& i) {
    out = std::max(out, std::abs(double(mint::detail::element_at(va, i)) - double(mint::detail::element_at(vb, i))));
  });
  return out;
}

/// Largest |a|.
template <class A>
double max_abs(const A& a) {
  const auto v = mint::view(a);
  double out = 0;
  mint::detail::for_each_index(v.extents(), [&](const auto& i) { out = std::max(out, std::abs(double(mint::detail::element_at(v, i)))); });
  return out;
}

}  // namespace torch_test
