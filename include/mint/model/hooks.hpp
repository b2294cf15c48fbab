// Hook sets: callbacks per site that a runtime calls with the activation there.
// A callback may read the view (caching), overwrite it (patching) or add to it
// (steering); it may ask the runtime to stop the pass. A runtime asks wants(id)
// first, so a site nobody hooked costs one branch and no copy. A runtime that
// evaluates in chunks (micro-batches, KV-cached decoding, an RNN step by step)
// says where its slice starts; positions in filters and calls are absolute.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/site.hpp"

namespace mint {

/// Which pass a hook set serves: activations in the forward pass, gradients in the backward pass.
enum class hook_phase : std::uint8_t { forward, backward };

/// Restricts a hook to absolute positions [position_begin, position_end) and heads [head_begin, head_end);
/// -1 means to the end. A call whose slice holds none of the positions does not reach the hook.
struct hook_filter {
  index position_begin = 0;
  index position_end = -1;
  int head_begin = 0;
  int head_end = -1;
};

/// How a hook attaches: what it needs the site to allow, and where it looks.
struct hook_options {
  /// Checked against the site's capabilities when attaching, and a promise: a hook that writes
  /// or adds declares access::write or access::add. Runtimes rely on it (the libtorch runtime
  /// hands only such hooks a copy; a read hook sees the engine's own memory).
  access needs = access::read;
  hook_filter only{};
};

/// What a runtime says of one call beside the view: where its slice sits in the sequence.
struct call_options {
  /// Absolute position of the view's first position: 0 for a whole sequence, t0 for a chunk
  /// [t0, t0 + n) (a micro-batch, a decoding step, one step of an RNN). Sites without a
  /// position axis ignore it; for an attention pattern it is the first query's position.
  index first_position = 0;
  /// An add-only site: the view is a zeroed buffer the runtime adds to the activation after the hooks.
  bool is_delta = false;
};

/// What a callback receives.
template <class T>
struct hook_call {
  hook_call(const site_info& info, site_id site_index, tensor_view<T> view, std::span<const index> row_lengths,
            call_options options = {}) noexcept
      : site(info), id(site_index), activation(view), lengths(row_lengths), first_position(options.first_position),
        chunk_begin(options.first_position),
        chunk_end(options.first_position + (info.axis_of(axis::pos) >= 0 ? view.extent(info.axis_of(axis::pos)) : 0)),
        is_delta(options.is_delta) {}

  const site_info& site;
  site_id id;
  /// The activation (or gradient), narrowed by the hook's filter; axes as site.axes.
  tensor_view<T> activation;
  /// Valid positions per batch row, in absolute positions: position p of row b is padding when p >= lengths[b].
  std::span<const index> lengths;
  /// Absolute position of the narrowed view's first position (view index i is position first_position + i).
  index first_position = 0;
  /// The slice the runtime handed over, before any filter: absolute positions [chunk_begin, chunk_end).
  index chunk_begin = 0, chunk_end = 0;
  /// The narrowed view's first head.
  int first_head = 0;
  /// True at an add-only site: `activation` is a zeroed buffer the runtime adds after the hook.
  bool is_delta = false;

  /// Absolute position of view index i along the position axis.
  index position(index i) const noexcept { return first_position + i; }
  /// Whether view index i of batch row b is a real token (not padding).
  bool valid(index b, index i) const noexcept { return position(i) < lengths[std::size_t(b)]; }
  /// Asks the runtime to stop the pass after this site.
  void stop() noexcept { stop_ = true; }
  bool stop_requested() const noexcept { return stop_; }

private:
  bool stop_ = false;
};

/// Callbacks per site of one runtime's site_table.
template <class T = float>
class hook_set {
public:
  using callback = std::function<void(hook_call<T>&)>;

  /// A hook set with no hooks: wants() is false everywhere, for any runtime.
  hook_set() = default;
  explicit hook_set(const site_table& sites, hook_phase phase = hook_phase::forward)
      : sites_(&sites), phase_(phase), hooks_(sites.size()), wanted_(sites.size(), 0), changing_(sites.size(), 0) {}

  /// Attaches `fn` to the named site; an argument_error names the nearest valid names for a wrong one.
  hook_set& add(std::string_view site, callback fn, hook_options options = {}) {
    require_table("mint::hook_set::add");
    return add(sites_->at(site, "mint::hook_set::add"), std::move(fn), options);
  }

  /// Attaches `fn` to a site by id; an argument_error for an id outside the table.
  hook_set& add(site_id id, callback fn, hook_options options = {}) {
    require_table("mint::hook_set::add");
    if (id < 0 || std::size_t(id) >= sites_->size())
      throw argument_error("mint::hook_set::add", "site", detail::str("is id ", id),
                           detail::str("needs an id in [0, ", sites_->size(), ") of the runtime's sites()"));
    if (!fn)
      throw argument_error("mint::hook_set::add", "fn", "is empty", "needs a callable");
    const site_info& info = (*sites_)[id];
    const access needed = phase_ == hook_phase::backward ? options.needs | access::gradient : options.needs;
    if (!allows(info.capabilities, needed))
      throw argument_error("mint::hook_set::add", "site",
                           "'" + info.name + "' allows " + to_string(info.capabilities),
                           "needs " + to_string(needed) + " for this hook");
    check_filter(info, options.only);
    hooks_[std::size_t(id)].push_back({std::move(fn), options.only});
    wanted_[std::size_t(id)] = 1;
    if ((options.needs & (access::write | access::add)) != access::none) changing_[std::size_t(id)] = 1;
    return *this;
  }

  /// True when some hook listens at this site: the one branch a runtime pays per site.
  bool wants(site_id id) const noexcept { return std::size_t(id) < wanted_.size() && wanted_[std::size_t(id)]; }

  /// True when a hook at this site declared it writes or adds (`needs` holds access::write or
  /// access::add): a runtime whose activations must not change in place (autograd's saved
  /// tensors, a parameter's view) hands such hooks a copy and reads-only hooks the tensor itself.
  bool may_change(site_id id) const noexcept {
    return std::size_t(id) < changing_.size() && changing_[std::size_t(id)];
  }

  /// Calls every hook at the site, in the order attached, with `activation` covering absolute
  /// positions [options.first_position, + its extent). Returns false when one asked to stop the pass.
  bool call(site_id id, tensor_view<T> activation, std::span<const index> lengths, call_options options = {}) {
    if (!wants(id)) return true;
    const site_info& info = (*sites_)[id];
    bool keep_going = true;
    for (auto& [fn, only] : hooks_[std::size_t(id)]) {
      hook_call<T> c(info, id, activation, lengths, options);
      if (!narrow(info, only, c)) continue;
      fn(c);
      keep_going = keep_going && !c.stop_requested();
    }
    return keep_going;
  }

  /// Removes every hook.
  void clear() {
    for (auto& h : hooks_) h.clear();
    std::fill(wanted_.begin(), wanted_.end(), 0);
    std::fill(changing_.begin(), changing_.end(), 0);
  }

  hook_phase phase() const noexcept { return phase_; }
  bool empty() const noexcept { return std::find(wanted_.begin(), wanted_.end(), 1) == wanted_.end(); }
  /// The table this set was made for (null for the default, empty set).
  const site_table* sites() const noexcept { return sites_; }

private:
  struct entry {
    callback fn;
    hook_filter only;
  };

  void require_table(const char* function) const {
    if (!sites_)
      throw argument_error(function, "hook set", "was made without a site table",
                           "needs hook_set(runtime.sites()) to attach hooks");
  }

  static int head_axis(const site_info& info) {
    for (axis a : {axis::head, axis::kv_head, axis::qkv_head})
      if (const int i = info.axis_of(a); i >= 0) return i;
    return -1;
  }

  static void check_filter(const site_info& info, const hook_filter& only) {
    const bool by_position = only.position_begin != 0 || only.position_end != -1;
    const bool by_head = only.head_begin != 0 || only.head_end != -1;
    if (by_position && info.axis_of(axis::pos) < 0)
      throw argument_error("mint::hook_set::add", "options.only", "filters positions at '" + info.name + "'",
                           "needs a site with a position axis");
    if (by_head && head_axis(info) < 0)
      throw argument_error("mint::hook_set::add", "options.only", "filters heads at '" + info.name + "'",
                           "needs a site with a head axis");
    if (only.position_begin < 0 || (only.position_end != -1 && only.position_end < only.position_begin))
      throw argument_error("mint::hook_set::add", "options.only",
                           detail::str("has positions [", only.position_begin, ", ", only.position_end, ")"),
                           "needs 0 <= begin <= end, or end = -1 for all");
    if (only.head_begin < 0 || (only.head_end != -1 && only.head_end < only.head_begin))
      throw argument_error("mint::hook_set::add", "options.only",
                           detail::str("has heads [", only.head_begin, ", ", only.head_end, ")"),
                           "needs 0 <= begin <= end, or end = -1 for all");
  }

  /// Narrows the call to the filter; false when the slice holds none of the filtered positions.
  static bool narrow(const site_info& info, const hook_filter& only, hook_call<T>& c) {
    if (const int a = info.axis_of(axis::pos); a >= 0 && (only.position_begin != 0 || only.position_end != -1)) {
      // The filter is in absolute positions; the view covers [chunk_begin, chunk_end).
      const index begin = std::max(only.position_begin, c.chunk_begin);
      const index end = only.position_end == -1 ? c.chunk_end : std::min(only.position_end, c.chunk_end);
      if (begin >= end) return false;
      c.activation = c.activation.narrow(a, begin - c.chunk_begin, end - c.chunk_begin);
      c.first_position = begin;
    }
    if (const int a = head_axis(info); a >= 0 && (only.head_begin != 0 || only.head_end != -1)) {
      const index extent = c.activation.extent(a);
      const index end = only.head_end == -1 ? extent : std::min<index>(only.head_end, extent);
      const index begin = std::min<index>(only.head_begin, end);
      c.activation = c.activation.narrow(a, begin, end);
      c.first_head = int(begin);
    }
    return true;
  }

  const site_table* sites_ = nullptr;
  hook_phase phase_ = hook_phase::forward;
  std::vector<std::vector<entry>> hooks_;
  std::vector<unsigned char> wanted_;
  std::vector<unsigned char> changing_;  // some hook declared write or add
};

}  // namespace mint
