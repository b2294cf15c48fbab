// parameter_store<T>: a model's named tensors in one flat buffer. Optimizers
// step the flat buffer in one pass, gradients share its layout, and files map
// names to tensors. Names follow the model's own convention (TransformerLens
// state-dict keys for the toy transformer).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

namespace detail {

/// Storage on 64-byte boundaries. Eigen's vectorized sums start at the first aligned element,
/// so their bits depend on where a buffer sits modulo the vector width; parameters and
/// gradients that always sit on a boundary give the same bits in every process and every run.
template <class T>
struct aligned_allocator {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};
  aligned_allocator() = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) noexcept {}  // NOLINT: rebinding, as allocators do
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
  template <class U>
  bool operator==(const aligned_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace detail

/// Named tensors laid out back to back in one buffer.
template <class T>
class parameter_store {
public:
  struct entry {
    std::string name;
    std::vector<index> extents;
    index offset;
    index size;
  };

  /// Adds a zero tensor; the layout is fixed once the store is in use (adding reallocates).
  void add(std::string name, std::initializer_list<index> extents) {
    add(std::move(name), std::vector<index>(extents));
  }
  void add(std::string name, std::vector<index> extents) {
    if (index_of_.count(name))
      throw argument_error("mint::parameter_store::add", "name", "'" + name + "' is already a parameter",
                           "needs a unique name");
    const tensor_view<T> check(nullptr, extents);  // validates rank and extents
    index_of_.emplace(name, entries_.size());
    entries_.push_back({std::move(name), std::move(extents), index(flat_.size()), check.size()});
    flat_.resize(flat_.size() + std::size_t(check.size()), T(0));
  }

  bool contains(std::string_view name) const { return index_of_.count(std::string(name)) != 0; }

  /// The named tensor; an argument_error listing some names when there is none.
  tensor_view<T> operator[](std::string_view name) { return view_of(find(name)); }
  tensor_view<const T> operator[](std::string_view name) const { return const_cast<parameter_store&>(*this)[name]; }

  const entry& find(std::string_view name) const {
    const auto it = index_of_.find(std::string(name));
    if (it == index_of_.end()) {
      std::string some;
      for (std::size_t i = 0; i < std::min<std::size_t>(entries_.size(), 3); ++i) {
        some += i ? ", '" : "'";
        some += entries_[i].name;
        some += '\'';
      }
      throw argument_error("mint::parameter_store", "name", "'" + std::string(name) + "' is not a parameter",
                           detail::str("needs one of the ", entries_.size(), " names, such as ", some));
    }
    return entries_[it->second];
  }

  tensor_view<T> view_of(const entry& e) { return tensor_view<T>(flat_.data() + e.offset, e.extents); }
  tensor_view<const T> view_of(const entry& e) const { return tensor_view<const T>(flat_.data() + e.offset, e.extents); }

  /// Every parameter, in the order added.
  const std::vector<entry>& entries() const noexcept { return entries_; }
  std::span<T> flat() noexcept { return flat_; }
  std::span<const T> flat() const noexcept { return flat_; }
  index size() const noexcept { return index(flat_.size()); }

  /// A store with the same names and extents, all zero (for gradients and optimizer moments).
  parameter_store zeros_like() const {
    parameter_store out = *this;
    std::fill(out.flat_.begin(), out.flat_.end(), T(0));
    return out;
  }

private:
  std::vector<T, detail::aligned_allocator<T>> flat_;  // on a 64-byte boundary: the same bits everywhere
  std::vector<entry> entries_;
  std::unordered_map<std::string, std::size_t> index_of_;
};

}  // namespace mint
