// Whole-site activations as plain arrays, and the element loops the attribution and
// patching methods run over them: a site's activation for a batch is an array shaped as the
// site's axes say ([batch, pos, ...]); a hook call covers some rows and a window of positions
// of it. Elements are visited in index order, so results do not depend on threads.
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// What the methods that compare a clean and a corrupt run return: the metric on both runs and
/// one entry per site (each with a `site` name), found by name with operator[].
template <class Entry>
struct clean_corrupt_result {
  double clean_value = 0, corrupt_value = 0;
  std::vector<Entry> sites;

  /// The entry of a site by name; an argument_error otherwise.
  const Entry& operator[](std::string_view name) const {
    for (const auto& e : sites)
      if (e.site == name) return e;
    throw argument_error("mint::clean_corrupt_result", "name", "'" + std::string(name) + "' is not in the result",
                         "needs one of the sites the call was given");
  }
};

}  // namespace mint

namespace mint::detail {

/// Calls f(i) for every multi-index i (rank 1 to 4) of `extents`, last axis fastest.
template <class F>
void for_each_index(std::span<const index> extents, F&& f) {
  const int rank = int(extents.size());
  for (index e : extents)
    if (e == 0) return;
  std::array<index, 4> i{};
  for (;;) {
    f(i);
    int a = rank - 1;
    while (a >= 0 && ++i[std::size_t(a)] == extents[std::size_t(a)]) i[std::size_t(a--)] = 0;
    if (a < 0) return;
  }
}

/// The element of a view at a multi-index of its rank.
template <class T>
T& element_at(const tensor_view<T>& v, const std::array<index, 4>& i) {
  switch (v.rank()) {
    case 1: return v(i[0]);
    case 2: return v(i[0], i[1]);
    case 3: return v(i[0], i[1], i[2]);
    default: return v(i[0], i[1], i[2], i[3]);
  }
}

/// The site's activation for a batch needs a batch axis first: attribution and patching work row by row.
inline void require_batch_first(const site_info& info, const char* function) {
  if (info.axes.empty() || info.axes.front() != axis::batch)
    throw argument_error(function, "site", "'" + info.name + "' has no batch axis first",
                         "needs a site whose first axis is the batch");
}

/// Row b of a whole-site array `full` ([B, P, ...]) over the positions [begin, end) a hook call
/// covers (the whole row at a site without a position axis).
template <class T>
tensor_view<T> row_window(tensor_view<T> full, const site_info& info, index b, index begin, index end) {
  tensor_view<T> row = full.subview(b);
  if (const int p = info.axis_of(axis::pos); p >= 0) row = row.narrow(p - 1, begin, end);
  return row;
}

/// `copies` copies of every row of `tokens`, one copy after another: copy k's row b is row k * batch + b.
inline token_batch repeat_rows(const token_batch& tokens, index copies) {
  token_batch out(tokens.batch() * copies, tokens.positions());
  for (index k = 0; k < copies; ++k)
    for (index b = 0; b < tokens.batch(); ++b) {
      const index r = k * tokens.batch() + b;
      for (index t = 0; t < tokens.positions(); ++t) out(r, t) = tokens(b, t);
      out.set_length(r, tokens.length(b));
    }
  return out;
}

/// Checks a token batch a method runs on.
inline void require_tokens(const token_batch& tokens, const char* function) {
  if (tokens.batch() == 0 || tokens.positions() == 0)
    throw shape_error(function, "tokens", detail::str("are [", tokens.batch(), ", ", tokens.positions(), "]"),
                      "needs at least one row and one position");
}

/// Throws a named error when a tensor holds NaN or infinity.
template <class T>
void require_finite(const tensor_view<const T>& v, const char* function, const char* argument) {
  bool finite = true;
  for_each_index(v.extents(), [&](const auto& i) { finite = finite && std::isfinite(double(element_at(v, i))); });
  if (!finite) throw argument_error(function, argument, "holds NaN or infinity", "needs finite values");
}

}  // namespace mint::detail
