// Plain memory as mint tensors: std::span and std::vector as rank-1 views, and
// mint::view(pointer or range, {extents}) for a contiguous row-major view of any rank.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

template <class T, std::size_t N>
struct tensor_adapter<std::span<T, N>> {
  static tensor_view<T> view(const std::span<T, N>& s) { return tensor_view<T>(s.data(), {index(s.size())}); }
};

template <class T, std::size_t N>
inline constexpr bool enable_borrowed_tensor<std::span<T, N>> = true;

/// std::vector of numbers (not of bool, which has no data()) is a rank-1 tensor.
template <class T, class Allocator>
  requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
struct tensor_adapter<std::vector<T, Allocator>> {
  static tensor_view<T> view(std::vector<T, Allocator>& v) { return tensor_view<T>(v.data(), {index(v.size())}); }
  static tensor_view<const T> view(const std::vector<T, Allocator>& v) {
    return tensor_view<const T>(v.data(), {index(v.size())});
  }
};

/// A contiguous row-major view of `extents` over raw memory.
template <class T>
  requires std::is_arithmetic_v<T>
tensor_view<T> view(T* data, std::initializer_list<index> extents) {
  return tensor_view<T>(data, extents);
}

/// A contiguous row-major view of `extents` over a contiguous range (std::span,
/// std::vector, std::array), which must hold exactly that many elements; not over a temporary
/// container (its view would dangle).
template <std::ranges::contiguous_range R>
  requires std::ranges::sized_range<R> && std::ranges::borrowed_range<R>
auto view(R&& data, std::initializer_list<index> extents) {
  using T = std::remove_reference_t<std::ranges::range_reference_t<R>>;
  tensor_view<T> out(std::ranges::data(data), extents);
  if (out.size() != index(std::ranges::size(data)))
    throw shape_error("mint::view", "extents",
                      detail::str(detail::shape_string(extents), " hold ", out.size(), " elements"),
                      detail::str("needs the range's ", std::ranges::size(data)));
  return out;
}

}  // namespace mint
