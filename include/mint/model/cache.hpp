// activation_cache: copies of chosen sites' activations (or gradients) from a
// run, in buffers sized before the run, so the hooks never allocate. Padded
// positions are stored as zeros. A run evaluated in chunks (prefill, then one
// token at a time; an RNN step by step) lands at its absolute positions, so the
// cache holds the same [batch, pos, ...] tensors as one full forward.
// run_with_cache is the one-call form.
#pragma once

#include <algorithm>
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
/// Chunks land at their absolute positions ([chunk_begin, chunk_end) of each call), in any order.
template <class T = float>
class activation_cache {
public:
  activation_cache() : state_(std::make_shared<state>()) {}
  // One cache, one storage: copies would alias it, so a cache moves but does not copy.
  activation_cache(const activation_cache&) = delete;
  activation_cache& operator=(const activation_cache&) = delete;
  activation_cache(activation_cache&&) noexcept = default;
  activation_cache& operator=(activation_cache&&) noexcept = default;

  /// A cache of the named sites of a runtime; wrong names are argument_errors naming the nearest.
  activation_cache(const site_table& sites, const std::vector<std::string>& names) : activation_cache() {
    state_->sites = &sites;
    for (const auto& name : names) {
      const site_id id = sites.at(name, "mint::activation_cache");
      if (state_->slot_of.count(id)) continue;
      state_->slot_of.emplace(id, state_->slots.size());
      state_->slots.push_back(slot_t{id, {}, {}, 0, false});
    }
  }

  /// Starts a run of `batch` rows: forgets what was cached and sizes every buffer for `positions`
  /// tokens, so the hooks only copy. A longer run (more chunks) still fits: the buffers grow.
  void reserve(index batch, index positions) {
    if (!state_->sites)
      throw argument_error("mint::activation_cache::reserve", "cache", "was made without a site table",
                           "needs activation_cache(runtime.sites(), names)");
    if (batch < 0 || positions < 0)
      throw shape_error("mint::activation_cache::reserve", "extents", detail::str("are [", batch, ", ", positions, "]"),
                        "needs batch >= 0 and positions >= 0");
    for (auto& s : state_->slots) state_->allocate(s, (*state_->sites)[s.id].extents(batch, positions));
    state_->batch = batch;
    state_->lengths.clear();
  }

  /// Attaches one read hook per cached site. With stop_when_full, the last one stops the pass.
  /// The hooks share the cache's storage: they stay valid if the cache is moved, and keep it alive.
  void attach(hook_set<T>& hooks, bool stop_when_full = false) {
    if (!state_->sites || hooks.sites() != state_->sites)
      throw argument_error("mint::activation_cache::attach", "hooks", "belong to another site table",
                           "needs a hook set made from the same runtime's sites()");
    state_->stop_when_full = stop_when_full;
    for (std::size_t k = 0; k < state_->slots.size(); ++k)
      hooks.add(state_->slots[k].id, [st = state_, k](hook_call<T>& c) { st->store(k, c); });
  }

  /// The cached activation of a site, [batch, pos, ...] as the site's axes say, over the
  /// positions the run reached; valid until the next run. An argument_error if the last run
  /// never reached the site (a hook stopped it, or the site was not called).
  tensor_view<const T> operator[](std::string_view name) const {
    slot_t& s = state_->slots[slot_index(name)];
    if (!s.filled)
      throw argument_error("mint::activation_cache", "name",
                           "'" + std::string(name) + "' was not reached by the run since reserve()",
                           "needs a run that reaches the site (check filled(name) first)");
    state_->compact(s);
    return tensor_view<const T>(s.buffer.data(), s.extents);
  }

  /// Valid rows only: [valid positions, features], rows in (batch, pos) order; the site's axes must start with batch, pos.
  matrix<T> rows(std::string_view name) const {
    const slot_t& s = state_->slots[slot_index(name)];
    const site_info& info = (*state_->sites)[s.id];
    if (info.axes.size() < 2 || info.axes[0] != axis::batch || info.axes[1] != axis::pos)
      throw argument_error("mint::activation_cache::rows", "name", "'" + info.name + "' is not [batch, pos, ...]",
                           "needs a site whose first axes are batch and pos");
    const auto v = (*this)[name];
    const index batch = v.extent(0), positions = v.extent(1);
    const index features = v.size() / std::max<index>(batch * positions, 1);
    index valid = 0;
    for (index b = 0; b < batch; ++b) valid += valid_length(b, positions);
    matrix<T> out(valid, features);
    const auto all = as_matrix(v.reshape({batch * positions, features}));
    index r = 0;
    for (index b = 0; b < batch; ++b)
      for (index t = 0; t < valid_length(b, positions); ++t) out.row(r++) = all.row(b * positions + t);
    return out;
  }

  bool contains(std::string_view name) const {
    return state_->sites && state_->sites->find(name) && state_->slot_of.count(*state_->sites->find(name));
  }
  /// True once the run since reserve() reached the site.
  bool filled(std::string_view name) const { return state_->slots[slot_index(name)].filled; }
  /// Positions the run reached at the site (the end of the furthest chunk stored).
  index positions(std::string_view name) const { return state_->slots[slot_index(name)].end; }
  /// Valid positions per row, absolute, as the last call reported them.
  std::span<const index> lengths() const noexcept { return state_->lengths; }

private:
  struct slot_t {
    site_id id;
    std::vector<T> buffer;
    std::vector<index> extents;  ///< of the buffer; the pos (and key_pos) extent is its capacity
    index end;                   ///< positions stored so far
    bool filled;
  };

  struct state {
    const site_table* sites = nullptr;
    std::vector<slot_t> slots;
    std::unordered_map<site_id, std::size_t> slot_of;
    std::vector<index> lengths;
    index batch = 0;
    bool stop_when_full = false;

    const site_info& info(const slot_t& s) const { return (*sites)[s.id]; }

    void allocate(slot_t& s, std::vector<index> extents) {
      const tensor_view<T> check(nullptr, extents);  // validates rank and extents
      s.buffer.assign(std::size_t(check.size()), T(0));
      s.extents = std::move(extents);
      s.end = 0;
      s.filled = false;
    }

    /// Capacity along the position axes (pos and key_pos) grows to at least `needed`, keeping what is stored.
    void grow(slot_t& s, index needed) {
      const site_info& in = info(s);
      std::vector<index> bigger = s.extents;
      for (std::size_t a = 0; a < bigger.size(); ++a)
        if (in.axes[a] == axis::pos || in.axes[a] == axis::key_pos) bigger[a] = std::max(needed, 2 * bigger[a]);
      slot_t grown{s.id, {}, {}, 0, false};
      allocate(grown, bigger);
      if (s.end > 0) mint::copy(stored(s), stored_region(grown, s.end));
      grown.end = s.end;
      grown.filled = s.filled;
      s = std::move(grown);
    }

    /// The region [0, end) of the position axes in a slot's buffer.
    tensor_view<T> stored_region(slot_t& s, index end) {
      tensor_view<T> v(s.buffer.data(), s.extents);
      const site_info& in = info(s);
      for (std::size_t a = 0; a < in.axes.size(); ++a)
        if (in.axes[a] == axis::pos || in.axes[a] == axis::key_pos) v = v.narrow(int(a), 0, end);
      return v;
    }
    tensor_view<const T> stored(slot_t& s) { return stored_region(s, s.end); }

    /// Moves the stored positions to the front of the buffer and sets the extents to them, so the
    /// view is contiguous. In row-major order every element moves to a lower or equal offset,
    /// so copying in order never overwrites what is still to be read.
    void compact(slot_t& s) {
      std::vector<index> tight = s.extents;
      const site_info& in = info(s);
      for (std::size_t a = 0; a < tight.size(); ++a)
        if (in.axes[a] == axis::pos || in.axes[a] == axis::key_pos) tight[a] = s.end;
      if (tight == s.extents) return;
      const auto from = stored(s);
      mint::copy(from, tensor_view<T>(s.buffer.data(), tight));
      s.extents = std::move(tight);
    }

    void store(std::size_t k, hook_call<T>& c) {
      slot_t& s = slots[k];
      const site_info& in = c.site;
      const int p_axis = in.axis_of(axis::pos), k_axis = in.axis_of(axis::key_pos), b_axis = in.axis_of(axis::batch);
      const auto src = c.activation;
      if (b_axis >= 0 && src.extent(b_axis) != extent_of(s, b_axis))
        throw shape_error("mint::activation_cache", "activation",
                          detail::str("at '", in.name, "' has ", src.extent(b_axis), " batch rows"),
                          detail::str("needs ", extent_of(s, b_axis), " as reserved; call reserve() for this run"));
      index end = 0;
      if (p_axis >= 0) end = std::max(c.chunk_end, k_axis >= 0 ? src.extent(k_axis) : 0);
      if (p_axis >= 0 && end > extent_of(s, p_axis)) grow(s, end);
      tensor_view<T> dst(s.buffer.data(), s.extents);
      if (p_axis >= 0) dst = dst.narrow(p_axis, c.chunk_begin, c.chunk_end);
      if (k_axis >= 0) dst = dst.narrow(k_axis, 0, src.extent(k_axis));
      if (!same_shape(src, dst))
        throw shape_error("mint::activation_cache", "activation",
                          "at '" + in.name + "' has extents " + detail::shape_string(src.extents()),
                          "needs " + detail::shape_string(dst.extents()) + " (the site's extents as reserved)");
      mint::copy(src, dst);
      lengths.assign(c.lengths.begin(), c.lengths.end());
      zero_padding(in, dst, c.chunk_begin);
      s.end = std::max(s.end, p_axis >= 0 ? c.chunk_end : 0);
      s.filled = true;
      if (stop_when_full) {
        bool all = true;
        for (const auto& other : slots) all = all && other.filled;
        if (all) c.stop();
      }
    }

    static index extent_of(const slot_t& s, int axis_index) { return s.extents[std::size_t(axis_index)]; }

    /// Zeros the positions of a chunk (starting at absolute `first`) that are padding.
    void zero_padding(const site_info& in, tensor_view<T> dst, index first) const {
      const int b_axis = in.axis_of(axis::batch), p_axis = in.axis_of(axis::pos);
      if (b_axis < 0 || p_axis < 0 || lengths.empty()) return;
      for (index b = 0; b < dst.extent(b_axis); ++b) {
        const auto row = dst.select(b_axis, b);
        const int p = p_axis > b_axis ? p_axis - 1 : p_axis;
        const index valid = std::clamp<index>(lengths[std::size_t(b)] - first, 0, row.extent(p));
        if (valid < row.extent(p)) mint::fill(row.narrow(p, valid, row.extent(p)), T(0));
      }
    }
  };

  index valid_length(index b, index positions) const {
    return state_->lengths.empty() ? positions : std::min(positions, state_->lengths[std::size_t(b)]);
  }

  std::size_t slot_index(std::string_view name) const {
    if (!state_->sites)
      throw argument_error("mint::activation_cache", "name", "'" + std::string(name) + "' was asked of an empty cache",
                           "needs a cache made with the runtime's sites");
    const site_id id = state_->sites->at(name, "mint::activation_cache");
    const auto it = state_->slot_of.find(id);
    if (it == state_->slot_of.end())
      throw argument_error("mint::activation_cache", "name", "'" + std::string(name) + "' was not cached",
                           "needs a site named when the cache was made");
    return it->second;
  }

  std::shared_ptr<state> state_;
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
