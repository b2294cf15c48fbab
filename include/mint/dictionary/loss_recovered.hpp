// Cross-entropy loss recovered: how much of a model's loss survives when an SAE's
// reconstruction replaces the activation at its site, between zero-ablating the site
// (0) and the clean model (1): (CE_zero - CE_sae) / (CE_zero - CE_clean), as SAELens and
// SAEBench report it. Cost: three forward passes plus the SAE on every valid position.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/runtime.hpp"

namespace mint::dictionary {

/// The metric (by default next-token cross-entropy) with the site clean, spliced, and zeroed.
struct loss_recovered_result {
  double clean = 0;          ///< the model as it is
  double spliced = 0;        ///< the SAE's reconstruction in place of the activation
  double zero_ablation = 0;  ///< the activation set to zero
  /// (zero_ablation - spliced) / (zero_ablation - clean): 1 when splicing costs nothing.
  double recovered() const noexcept { return (zero_ablation - spliced) / (zero_ablation - clean); }
};

}  // namespace mint::dictionary

namespace mint::detail {

/// Applies f to the [valid rows, d] matrix of an activation [batch, pos, d] (or [batch, pos, heads,
/// d_head], heads folded into d), writing the result back. Padded positions are left alone.
template <class T, class F>
void transform_valid_rows(hook_call<T>& call, F&& f, const char* fn) {
  const tensor_view<T> a = call.activation;
  if (a.rank() < 3)
    throw shape_error(fn, "site", "'" + call.site.name + "' has rank " + std::to_string(a.rank()),
                      "needs [batch, pos, ...] activations");
  const auto valid = [&](index b) {
    return std::clamp<index>(call.lengths[std::size_t(b)] - call.first_position, 0, a.extent(1));
  };
  index rows = 0;
  for (index b = 0; b < a.extent(0); ++b) rows += valid(b);
  const index width = a.size() / (a.extent(0) * a.extent(1));
  matrix<T> x(rows, width);
  const auto each = [&](auto&& visit) {
    index r = 0;
    for (index b = 0; b < a.extent(0); ++b)
      for (index p = 0; p < valid(b); ++p, ++r) {
        const tensor_view<T> row = a.subview(b).subview(p);
        index k = 0;
        if (row.rank() == 1)
          for (index j = 0; j < row.extent(0); ++j) visit(r, k++, row.at(j));
        else
          for (index h = 0; h < row.extent(0); ++h)
            for (index j = 0; j < row.extent(1); ++j) visit(r, k++, row.at(h, j));
      }
  };
  each([&](index r, index k, T& v) { x(r, k) = v; });
  const matrix<T> y = f(x);
  each([&](index r, index k, T& v) { v = y(r, k); });
}

}  // namespace mint::detail

namespace mint::dictionary {

/// Runs `model` on `tokens` three times and scores it with `metric` (lower is better, as a
/// loss): clean, with `sae`'s reconstruction spliced in at `site`, and with the site zeroed.
/// The site must allow writes; its last axis (or its heads x d_head) must be the SAE's d_in.
template <runtime R, class T, class M = cross_entropy>
  requires metric<M, scalar_t<R>>
loss_recovered_result loss_recovered(R& model, const basic_sae<T>& sae, std::string_view site, const token_batch& tokens,
                                     const M& loss = M{}) {
  using S = scalar_t<R>;
  constexpr const char* fn = "mint::dictionary::loss_recovered";
  const auto score = [&](hook_set<S>& hooks) {
    const tensor_view<const S> logits = model.forward(tokens, hooks);
    if (logits.size() == 0) throw argument_error(fn, "model", "stopped before its logits", "needs a full forward pass");
    return loss.value(logits, tokens);
  };
  loss_recovered_result out;
  hook_set<S> none;
  out.clean = score(none);

  hook_set<S> splice(model.sites());
  splice.add(site, [&](hook_call<S>& call) {
    detail::transform_valid_rows(call, [&](const matrix<S>& x) -> matrix<S> {
      if (x.cols() != sae.d_in())
        throw shape_error(fn, "site", "'" + call.site.name + "' has rows of " + std::to_string(x.cols()) + " values",
                          "needs the SAE's d_in = " + std::to_string(sae.d_in()));
      return sae.forward(x).template cast<S>();
    }, fn);
  }, {.needs = access::write});
  out.spliced = score(splice);

  hook_set<S> zero(model.sites());
  zero.add(site, [](hook_call<S>& call) {
    detail::transform_valid_rows(call, [](const matrix<S>& x) -> matrix<S> { return matrix<S>::Zero(x.rows(), x.cols()); }, fn);
  }, {.needs = access::write});
  out.zero_ablation = score(zero);
  return out;
}

}  // namespace mint::dictionary
