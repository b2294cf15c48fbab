// activation_cache: copies of chosen sites' activations (or gradients) from a
// run, in buffers sized before the run, so the hooks never allocate. Padded
// positions are stored as zeros. run_with_cache is the one-call form.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mint/core/array.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// Copies of chosen sites' activations from a run; also works with gradient hook sets.
template <class T = float>
class activation_cache {
public:
  activation_cache() : state_(std::make_unique<state>()) {}

  /// A cache of the named sites of a runtime; wrong names are argument_errors naming the nearest.
  activation_cache(const site_table& sites, const std::vector<std::string>& names) : activation_cache() {
    state_->sites = &sites;
    for (const auto& name : names) {
      const site_id id = sites.at(name, "mint::activation_cache");
      if (state_->slot_of.count(id)) continue;
      state_->slot_of.emplace(id, state_->slots.size());
      state_->slots.push_back({id, array<T>{}, false});
    }
  }

  /// Sizes every buffer for `batch` rows of `positions` tokens, before the run.
  void reserve(index batch, index positions) {
    for (auto& s : state_->slots) {
      const auto extents = (*state_->sites)[s.id].extents(batch, positions);
      s.data.resize(extents);
      s.filled = false;
    }
    state_->batch = batch;
    state_->positions = positions;
  }

  /// Attaches one read hook per cached site. With stop_when_full, the last one stops the pass.
  void attach(hook_set<T>& hooks, bool stop_when_full = false) {
    if (hooks.sites() != state_->sites)
      throw argument_error("mint::activation_cache::attach", "hooks", "belong to another site table",
                           "needs a hook set made from the same runtime's sites()");
    state_->stop_when_full = stop_when_full;
    state* st = state_.get();  // stable across moves of the cache
    for (std::size_t k = 0; k < st->slots.size(); ++k)
      hooks.add(st->slots[k].id, [st, k](hook_call<T>& c) { st->store(k, c); });
  }

  /// The cached activation of a site, [batch, pos, ...] as the site's axes say.
  tensor_view<const T> operator[](std::string_view name) const { return slot(name).data.view(); }

  /// Valid rows only: [valid positions, features], rows in (batch, pos) order; the site's axes must start with batch, pos.
  matrix<T> rows(std::string_view name) const {
    const auto& s = slot(name);
    const site_info& info = (*state_->sites)[s.id];
    if (info.axes.size() < 2 || info.axes[0] != axis::batch || info.axes[1] != axis::pos)
      throw argument_error("mint::activation_cache::rows", "name", "'" + info.name + "' is not [batch, pos, ...]",
                           "needs a site whose first axes are batch and pos");
    const auto v = s.data.view();
    const index features = v.size() / std::max<index>(state_->batch * state_->positions, 1);
    index valid = 0;
    for (index b = 0; b < state_->batch; ++b) valid += state_->lengths[std::size_t(b)];
    matrix<T> out(valid, features);
    const auto all = as_matrix(v.reshape({state_->batch * state_->positions, features}));
    index r = 0;
    for (index b = 0; b < state_->batch; ++b)
      for (index t = 0; t < state_->lengths[std::size_t(b)]; ++t) out.row(r++) = all.row(b * state_->positions + t);
    return out;
  }

  bool contains(std::string_view name) const {
    return state_->sites && state_->sites->find(name) && state_->slot_of.count(*state_->sites->find(name));
  }
  /// True once the run reached the site.
  bool filled(std::string_view name) const { return slot(name).filled; }
  std::span<const index> lengths() const noexcept { return state_->lengths; }

private:
  struct slot_t {
    site_id id;
    array<T> data;
    bool filled;
  };

  struct state {
    const site_table* sites = nullptr;
    std::vector<slot_t> slots;
    std::unordered_map<site_id, std::size_t> slot_of;
    std::vector<index> lengths;
    index batch = 0, positions = 0;
    bool stop_when_full = false;

    void store(std::size_t k, hook_call<T>& c) {
      slot_t& s = slots[k];
      const auto src = c.activation;
      auto dst = s.data.view();
      if (!same_shape(src, dst))
        throw shape_error("mint::activation_cache", "activation",
                          "at '" + c.site.name + "' has extents " + detail::shape_string(src.extents()),
                          "needs " + detail::shape_string(dst.extents()) + " as reserved; call reserve() for this run");
      mint::copy(src, dst);
      lengths.assign(c.lengths.begin(), c.lengths.end());
      zero_padding(c.site, dst);
      s.filled = true;
      if (stop_when_full) {
        bool all = true;
        for (const auto& other : slots) all = all && other.filled;
        if (all) c.stop();
      }
    }

    void zero_padding(const site_info& info, tensor_view<T> dst) const {
      const int b_axis = info.axis_of(axis::batch), p_axis = info.axis_of(axis::pos);
      if (b_axis < 0 || p_axis < 0 || lengths.empty()) return;
      for (index b = 0; b < dst.extent(b_axis); ++b) {
        const auto row = dst.select(b_axis, b);
        const int p = p_axis > b_axis ? p_axis - 1 : p_axis;
        const index len = lengths[std::size_t(b)];
        if (len >= row.extent(p)) continue;
        fill_zero(row.narrow(p, len, row.extent(p)));
      }
    }

    static void fill_zero(tensor_view<T> v) {
      if (v.rank() == 1) {
        for (index i = 0; i < v.extent(0); ++i) v(i) = T(0);
      } else {
        for (index i = 0; i < v.extent(0); ++i) fill_zero(v.subview(i));
      }
    }
  };

  const slot_t& slot(std::string_view name) const {
    if (!state_->sites)
      throw argument_error("mint::activation_cache", "name", "'" + std::string(name) + "' was asked of an empty cache",
                           "needs a cache made with the runtime's sites");
    const site_id id = state_->sites->at(name, "mint::activation_cache");
    const auto it = state_->slot_of.find(id);
    if (it == state_->slot_of.end())
      throw argument_error("mint::activation_cache", "name", "'" + std::string(name) + "' was not cached",
                           "needs a site named when the cache was made");
    return state_->slots[it->second];
  }

  std::unique_ptr<state> state_;
};

/// Logits and cached activations of one forward pass.
template <class T>
struct cached_run {
  array<T> logits;  ///< [batch, pos, vocab]; empty when the pass stopped early
  activation_cache<T> cache;
};

/// Runs `model` on `tokens`, caching the named sites. With stop_early, the pass
/// ends once every cached site is filled (no logits then).
template <runtime R>
cached_run<scalar_t<R>> run_with_cache(R& model, const token_batch& tokens, const std::vector<std::string>& sites,
                                       bool stop_early = false) {
  using T = scalar_t<R>;
  cached_run<T> out{array<T>{}, activation_cache<T>(model.sites(), sites)};
  out.cache.reserve(tokens.batch(), tokens.positions());
  hook_set<T> hooks(model.sites());
  out.cache.attach(hooks, stop_early);
  const tensor_view<const T> logits = model.forward(tokens, hooks);
  if (!logits.empty()) out.logits = array<T>::copy_of(logits);
  return out;
}

}  // namespace mint
