// Stage-wise diffing with crosscoders: across the checkpoints of a training run (or any sequence
// of models read on the same tokens), one crosscoder per pair of neighbouring checkpoints (or per
// checkpoint against a reference), and what each pair's latents say: how many exist only in the
// earlier model, only in the later one, or in both. A step where the later checkpoint gains many
// exclusive latents is where the model learned something new (the induction bump). Pairs the
// similarity measures (mint::stagewise_similarity, CKA) with a dictionary's view. Cost: one
// crosscoder training per pair.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/diffing/crosscoder.hpp"

namespace mint::diffing {

/// Which pairs checkpoint_crosscoders compares.
enum class checkpoint_pairs : std::uint8_t {
  consecutive,  ///< (0, 1), (1, 2), ...: what each stretch of training changed
  to_last,      ///< (0, last), (1, last), ...: how far each checkpoint is from the final model
};

/// How checkpoint_crosscoders trains and reads each pair's crosscoder.
struct checkpoint_diff_options {
  checkpoint_pairs pairs = checkpoint_pairs::consecutive;
  crosscoder_options crosscoder{};      ///< d_sae and architecture (d_in and models are set from the data)
  dictionary::sae_train_options train{};  ///< each pair's training (its seed is offset by the pair's index)
  double threshold = 0.1;               ///< exclusive when r < threshold or r > 1 - threshold
  std::uint64_t seed = 0;               ///< each crosscoder's initial decoder (offset by the pair's index)
};

/// One pair's crosscoder, read.
struct checkpoint_diff {
  index from = 0, to = 0;       ///< the checkpoints compared (model A = from, model B = to)
  index only_from = 0;          ///< latents exclusive to `from` (r < threshold)
  index only_to = 0;            ///< latents exclusive to `to` (r > 1 - threshold)
  index shared = 0;             ///< live latents in between
  index dead = 0;
  double mean_relative_norm = 0;  ///< mean r over live latents (0.5: balanced)
  /// Fraction of the inputs' variance the crosscoder leaves unexplained, per model, on the
  /// training rows: sum ||x - xhat||^2 / sum ||x - mean x||^2 (in each model's own units).
  double unexplained_from = 0, unexplained_to = 0;
};

/// Trains a crosscoder per pair of `checkpoints` (each [rows, d_in], the same tokens in the same
/// row order at every checkpoint) and reads it. Needs two checkpoints or more.
template <tensor X>
std::vector<checkpoint_diff> checkpoint_crosscoders(const std::vector<X>& checkpoints, const checkpoint_diff_options& options) {
  const char* fn = "mint::diffing::checkpoint_crosscoders";
  if (checkpoints.size() < 2)
    throw argument_error(fn, "checkpoints", detail::str("holds ", checkpoints.size()), "needs two checkpoints or more");
  if (!(options.threshold > 0 && options.threshold < 0.5))
    throw argument_error(fn, "options.threshold", detail::str("is ", options.threshold), "needs 0 < threshold < 0.5");
  const auto first = mint::view(checkpoints[0]);
  if (first.rank() != 2 || first.extent(0) < 1)
    throw shape_error(fn, "checkpoints[0]", "has extents " + detail::shape_string(first.extents()), "needs [rows >= 1, d_in]");
  for (std::size_t c = 1; c < checkpoints.size(); ++c) {
    const auto v = mint::view(checkpoints[c]);
    if (v.rank() != 2 || v.extent(0) != first.extent(0) || v.extent(1) != first.extent(1))
      throw shape_error(fn, detail::str("checkpoints[", c, "]"), "has extents " + detail::shape_string(v.extents()),
                        "needs " + detail::shape_string(first.extents()) + ", as checkpoints[0]");
  }
  using T = std::remove_const_t<value_t<const X>>;
  using C = basic_crosscoder<std::conditional_t<std::is_same_v<T, double>, double, float>>;
  const index n = index(checkpoints.size());
  std::vector<checkpoint_diff> out;
  for (index p = 0; p + 1 < n; ++p) {
    const index a = p, b = options.pairs == checkpoint_pairs::consecutive ? p + 1 : n - 1;
    crosscoder_options shape = options.crosscoder;
    shape.d_in = first.extent(1);
    shape.models = 2;
    C coder(shape, options.seed + std::uint64_t(p));
    dictionary::sae_train_options train = options.train;
    train.seed += std::uint64_t(p);
    const std::vector<tensor_view<const T>> pair{mint::view(checkpoints[std::size_t(a)]), mint::view(checkpoints[std::size_t(b)])};
    coder.train(pair, train);

    checkpoint_diff d{a, b};
    const auto kinds = coder.exclusive_latents(options.threshold);
    d.only_from = index(kinds.only_a.size()), d.only_to = index(kinds.only_b.size());
    d.shared = index(kinds.shared.size()), d.dead = index(kinds.dead.size());
    const auto r = coder.relative_norms();
    index live = 0;
    for (const auto* list : {&kinds.only_a, &kinds.only_b, &kinds.shared})
      for (index j : *list) d.mean_relative_norm += double(r(j)), ++live;
    d.mean_relative_norm = live > 0 ? d.mean_relative_norm / double(live) : 0.5;
    const auto xhat = coder.reconstruct(pair);
    for (int m = 0; m < 2; ++m) {
      const Eigen::MatrixXd x = as_matrix(pair[std::size_t(m)]).template cast<double>();
      const double total = (x.rowwise() - x.colwise().mean()).squaredNorm();
      const double left = (x - xhat[std::size_t(m)].template cast<double>()).squaredNorm();
      (m == 0 ? d.unexplained_from : d.unexplained_to) = total > 0 ? left / total : 0.0;
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace mint::diffing
