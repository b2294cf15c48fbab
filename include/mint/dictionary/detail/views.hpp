// The views the dictionary cores take: arguments whose element type differs from the one an
// algorithm computes in are copied into it here, in the caller's unit, so each core exists for
// float and double only (mint/core/compiled.hpp). The copy is the conversion the algorithms made
// anyway (a cast of every element), made one step earlier.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint::detail {

/// v's values as a view of T: v itself when it holds T, else a copy in `storage` with v's
/// extents. Callers check ranks before they read the view, so the copy's layout never shows.
template <class T, class V>
tensor_view<const T> view_as(const tensor_view<V>& v, std::vector<T>& storage) {
  if constexpr (std::is_same_v<std::remove_const_t<V>, T>) {
    return v;
  } else {
    storage.resize(std::size_t(v.size()));
    const tensor_view<T> out(storage.data(), v.extents());
    mint::copy(v, out);
    return out;
  }
}

/// v as as_matrix reads it (ranks 3 and 4 merge their leading axes into rows, with as_matrix's
/// errors), as a [rows, columns] view of T; a copy in `storage` when v holds another type.
template <class T, class V>
tensor_view<const T> rows_as(const tensor_view<V>& v, std::vector<T>& storage) {
  return view_as<T>(detail::as_rank2(v, "mint::as_matrix"), storage);
}

}  // namespace mint::detail
