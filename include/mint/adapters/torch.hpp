// libtorch as a mint engine, and the only mint header that includes torch. Three parts:
//  - at::Tensor as a mint tensor (CPU, strided, float32 by default; torch_tensor<double> for
//    float64): views share the tensor's memory and strides, nothing is copied.
//  - torch_hook_points: TransformerLens's HookPoint for C++ modules. A module declares its sites
//    once and writes `x = hooks_.point("blocks.0.hook_resid_pre", x);` in its forward.
//  - torch_runtime<Module, T>: a module with hook points as a mint::differentiable_runtime (and an
//    incremental one when the module keeps a KV cache). Forward hooks run at each point (a
//    writing hook on a copy, so autograd's saved tensors and parameter views stay intact); under
//    torch's grad mode every point is a node of the graph whose backward calls mint's grad hooks
//    with d(metric)/d(activation) and passes what they leave upstream.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/head_weights.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/sequence.hpp"
#include "mint/model/site.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

// ---------------------------------------------------------------------------------------------
// Tensors

namespace detail {

template <class T>
constexpr c10::ScalarType torch_dtype() noexcept {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "mint views float or double torch tensors");
  return std::is_same_v<T, float> ? c10::ScalarType::Float : c10::ScalarType::Double;
}

template <class T>
void check_torch_tensor(const at::Tensor& x, const char* function, const char* argument) {
  const char* needs = std::is_same_v<T, float> ? "needs a defined, strided CPU tensor of dtype float32"
                                               : "needs a defined, strided CPU tensor of dtype float64";
  if (!x.defined()) throw argument_error(function, argument, "is an undefined at::Tensor", needs);
  if (!x.device().is_cpu())
    throw argument_error(function, argument, "is on device '" + x.device().str() + "'",
                         std::string(needs) + " (copy it with .cpu())");
  if (x.layout() != c10::kStrided) throw argument_error(function, argument, "is not strided (sparse or mkldnn)", needs);
  if (x.scalar_type() != torch_dtype<T>())
    throw argument_error(function, argument, std::string("has dtype ") + c10::toString(x.scalar_type()),
                         std::string(needs) + (std::is_same_v<T, float> ? " (for float64, view it as mint::torch_tensor<double>)"
                                                                         : " (for float32, view it as mint::torch_tensor<float>)"));
  if (x.dim() < 1 || x.dim() > max_rank)
    throw argument_error(function, argument, str("has ", x.dim(), " dimensions"), str("needs 1 to ", max_rank));
}

}  // namespace detail

/// The view of a CPU float/double tensor, with its strides (transposes and slices stay views).
/// The view writes through to the tensor's memory; an argument_error names what does not fit.
template <class T = float>
tensor_view<T> torch_view(const at::Tensor& x, const char* function = "mint::torch_view") {
  detail::check_torch_tensor<T>(x, function, "tensor");
  index extents[max_rank], strides[max_rank];
  for (int a = 0; a < int(x.dim()); ++a) extents[a] = index(x.size(a)), strides[a] = index(x.stride(a));
  const auto rank = std::size_t(x.dim());
  return tensor_view<T>(x.data_ptr<T>(), std::span<const index>(extents, rank), std::span<const index>(strides, rank));
}

/// An at::Tensor viewed with elements of type T (mint::view(torch_tensor<double>{x})). A plain
/// at::Tensor is a mint tensor of float.
template <class T>
struct torch_tensor {
  at::Tensor tensor;
};

template <class T>
struct tensor_adapter<torch_tensor<T>> {
  static tensor_view<T> view(const torch_tensor<T>& x) { return torch_view<T>(x.tensor, "mint::view"); }
};

template <>
struct tensor_adapter<at::Tensor> {
  static tensor_view<float> view(const at::Tensor& x) { return torch_view<float>(x, "mint::view"); }
};

/// A tensor of the given extents holding a copy of `v` (any strides), for handing mint's
/// results to torch.
template <class T>
at::Tensor to_torch(tensor_view<const T> v) {
  std::vector<std::int64_t> sizes(v.extents().begin(), v.extents().end());
  at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(detail::torch_dtype<T>()));
  mint::copy(v, torch_view<T>(out, "mint::to_torch"));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hook points

namespace detail {

/// A pass in progress, set by torch_runtime while the module runs.
struct torch_pass {
  virtual ~torch_pass() = default;
  virtual at::Tensor point(site_id id, const at::Tensor& x, index offset) = 0;
  virtual bool active(site_id id) const noexcept = 0;
};

}  // namespace detail

/// The sites of a libtorch module and the points in its forward where mint's hooks run. A
/// module holds one, declares every site in its constructor (add()) and passes each activation
/// through point() in forward(). Outside a torch_runtime's pass, point() returns its argument.
class torch_hook_points {
public:
  /// Declares a site (name, layer, role, heads, kv_heads, axes, sizes, capabilities) and returns its id.
  site_id add(site_info info) { return sites_.add(std::move(info)); }
  const site_table& sites() const noexcept { return sites_; }

  /// The activation at the named site, after mint's hooks: `x` itself, or a hooked copy. The
  /// tensor's axes are the site's axes (batch and pos first where the site has them).
  at::Tensor point(std::string_view name, const at::Tensor& x) {
    return pass_ ? pass_->point(sites_.at(name, "mint::torch_hook_points::point"), x, 0) : x;
  }
  at::Tensor point(site_id id, const at::Tensor& x) { return pass_ ? pass_->point(id, x, 0) : x; }
  /// The same for a slice whose positions start `offset` after the pass's first position: a
  /// state computed step by step (an RNN's h_t is point(site, h, t)), called once per step.
  at::Tensor point(std::string_view name, const at::Tensor& x, index offset) {
    return pass_ ? pass_->point(sites_.at(name, "mint::torch_hook_points::point"), x, offset) : x;
  }
  at::Tensor point(site_id id, const at::Tensor& x, index offset) { return pass_ ? pass_->point(id, x, offset) : x; }

  /// Whether anything will read the site in the pass in progress (a hook, or a gradient graph):
  /// a module may skip computing an activation nothing reads (TransformerLens's use_attn_result).
  bool active(std::string_view name) const { return pass_ && pass_->active(sites_.at(name, "mint::torch_hook_points::active")); }
  bool active(site_id id) const noexcept { return pass_ && pass_->active(id); }

private:
  template <class, class>
  friend class torch_runtime;
  site_table sites_;
  detail::torch_pass* pass_ = nullptr;
};

/// A libtorch module mint can run: hook points, and forward(tokens [batch, pos] int64, lengths
/// [batch] int64) returning logits [batch, pos, vocab]. Positions at or past a row's length are
/// padding: the module masks them as keys, as the toy transformer does.
template <class M>
concept torch_model = requires(M& m, const at::Tensor& tokens, const at::Tensor& lengths) {
  { m.hook_points() } -> std::same_as<torch_hook_points&>;
  { m.forward(tokens, lengths) } -> std::convertible_to<at::Tensor>;
};

/// A module with a KV cache: reset_cache() forgets it; forward_cached(chunk, lengths, first) runs
/// positions [first, first + n) attending to the cached keys and values (lengths absolute) and
/// keeps the chunk's.
template <class M>
concept torch_cached_model = torch_model<M> && requires(M& m, const at::Tensor& tokens, const at::Tensor& lengths,
                                                        std::int64_t first) {
  m.reset_cache();
  { m.forward_cached(tokens, lengths, first) } -> std::convertible_to<at::Tensor>;
};

/// What torch_runtime checks before running the module (0: unchecked).
struct torch_runtime_options {
  index vocab = 0;    ///< token ids must lie in [0, vocab)
  index context = 0;  ///< most positions a sequence may reach
};

namespace detail {

template <class T>
class torch_pass_state;

/// What a point's graph node keeps: the runtime's state (weakly: a module may keep tensors, and
/// so nodes, beyond the runtime's life) and which pass and record it belongs to.
template <class T>
struct torch_point_handle : torch::CustomClassHolder {
  std::weak_ptr<torch_pass_state<T>> state;
  std::uint64_t pass = 0;
  std::size_t record = 0;
};

/// A point as a node of torch's graph: forward runs the forward hooks (on a copy when one writes),
/// backward the grad hooks, straight through (the gradient passes a hooked site as if the hook
/// were not there, as in every mint runtime). A node of an earlier pass passes gradients unchanged.
template <class T>
struct torch_point_function : torch::autograd::Function<torch_point_function<T>> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const std::shared_ptr<torch_pass_state<T>>& state, std::int64_t record) {
    auto handle = c10::make_intrusive<torch_point_handle<T>>();
    handle->state = state, handle->pass = state->pass, handle->record = std::size_t(record);
    ctx->saved_data["mint"] = c10::IValue::make_capsule(std::move(handle));
    const at::Tensor out = state->run_forward_hooks(record, x);
    // Not x itself: an output that is its input is a view made in a custom Function, which
    // autograd forbids to modify in place. A detached alias shares x's memory and version counter,
    // so the point is an identity exactly as torch sees one.
    return out.is_same(x) ? x.detach() : out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto handle = c10::static_intrusive_pointer_cast<torch_point_handle<T>>(ctx->saved_data["mint"].toCapsule());
    const auto state = handle->state.lock();
    at::Tensor g = grads[0];
    if (state && state->pass == handle->pass && handle->record < state->records.size())
      g = state->run_grad_hooks(std::int64_t(handle->record), g);
    return {g, at::Tensor(), at::Tensor()};
  }
};

struct torch_stop {};  // a forward hook asked to stop the pass

/// The runtime's state during and after a pass: the hook sets, and per point of a pass with a
/// graph, the tensor that came in (what backward differentiates with respect to).
template <class T>
class torch_pass_state final : public torch_pass, public std::enable_shared_from_this<torch_pass_state<T>> {
public:
  struct record {
    site_id id;
    index first_position;
    at::Tensor input;
    bool reached = false;
  };

  const site_table* sites = nullptr;
  hook_set<T>* forward_hooks = nullptr;
  hook_set<T>* grad_hooks = nullptr;
  std::span<const index> lengths;
  index first_position = 0;
  bool recording = false;  // building a graph for backward
  std::uint64_t pass = 0;  // counts passes, so nodes of an earlier pass do nothing
  std::vector<record> records;

  bool active(site_id id) const noexcept override { return recording || (forward_hooks && forward_hooks->wants(id)); }

  at::Tensor point(site_id id, const at::Tensor& x, index offset) override {
    if (id < 0 || std::size_t(id) >= sites->size())
      throw argument_error("mint::torch_hook_points::point", "site", str("is id ", id),
                           str("needs an id in [0, ", sites->size(), ") of the module's sites"));
    const bool hooked = forward_hooks->wants(id);
    if (!recording && !hooked) return x;
    check_shape(id, x);
    if (!recording) return apply_hooks(id, x, first_position + offset);
    // A graph leaf where the module's own parameters need no gradient, so backward reaches it.
    records.push_back({id, first_position + offset, x.requires_grad() ? x : x.detach().requires_grad_(true)});
    return torch_point_function<T>::apply(records.back().input, this->shared_from_this(), std::int64_t(records.size() - 1));
  }

  at::Tensor run_forward_hooks(std::int64_t r, const at::Tensor& x) {
    const record& rec = records[std::size_t(r)];
    return apply_hooks(rec.id, x, rec.first_position);
  }

  at::Tensor run_grad_hooks(std::int64_t r, const at::Tensor& g) {
    record& rec = records[std::size_t(r)];
    rec.reached = true;
    if (!grad_hooks || !grad_hooks->wants(rec.id)) return g;
    at::Tensor out = g.defined() ? g.clone() : at::zeros_like(rec.input);
    grad_hooks->call(rec.id, torch_view<T>(out, "mint::torch_runtime::backward"), lengths,
                     {.first_position = rec.first_position});
    return out;
  }

private:
  at::Tensor apply_hooks(site_id id, const at::Tensor& x, index first) {
    if (!forward_hooks->wants(id)) return x;
    // A writing hook gets a copy: x may be saved for backward or be a view of a parameter.
    at::Tensor target = forward_hooks->may_change(id) ? x.clone() : x;
    if (!forward_hooks->call(id, torch_view<T>(target, "mint::torch_hook_points::point"), lengths,
                             {.first_position = first}))
      throw torch_stop{};
    return target;
  }

  void check_shape(site_id id, const at::Tensor& x) const {
    const site_info& info = (*sites)[id];
    // The argument's name (an allocation) only for a tensor that fails: this runs at every point.
    if (!x.defined() || !x.device().is_cpu() || x.layout() != c10::kStrided || x.scalar_type() != torch_dtype<T>() ||
        x.dim() < 1 || x.dim() > max_rank)
      check_torch_tensor<T>(x, "mint::torch_hook_points::point", ("x at '" + info.name + "'").c_str());
    bool fits = std::size_t(x.dim()) == info.axes.size();
    for (std::size_t a = 0; fits && a < info.axes.size(); ++a)
      fits = info.sizes[a] == 0 || info.sizes[a] == x.size(std::int64_t(a));
    if (!fits) {
      std::vector<index> got(x.sizes().begin(), x.sizes().end());
      throw argument_error("mint::torch_hook_points::point", "x",
                           "at '" + info.name + "' has shape " + shape_string(std::span<const index>(got)),
                           "needs the declared sizes " + shape_string(std::span<const index>(info.sizes)) +
                               " (0: any)");
    }
  }
};

}  // namespace detail

/// A libtorch module with hook points as a mint runtime. `T` is the module's dtype (float or
/// double). forward() builds a graph for backward() when torch's grad mode is on (the default;
/// under torch::NoGradGuard it does not, and backward() refuses). Chunks (forward_chunk) never
/// build one.
template <class M, class T = float>
class torch_runtime {
public:
  using scalar_type = T;
  static_assert(torch_model<M>, "mint::torch_runtime needs hook_points() and forward(tokens, lengths) (mint::torch_model)");

  explicit torch_runtime(std::shared_ptr<M> model, torch_runtime_options options = {})
      : model_(std::move(model)), state_(std::make_shared<detail::torch_pass_state<T>>()),
        sequence_(options.context, options.vocab) {
    if (!model_) throw argument_error("mint::torch_runtime", "model", "is null", "needs a module");
  }

  M& model() noexcept { return *model_; }
  const site_table& sites() const noexcept { return model_->hook_points().sites(); }

  /// Runs the module over `tokens`, calling `hooks` at its points; logits [batch, pos, vocab],
  /// valid until the next call (empty when a hook stopped the pass).
  tensor_view<const T> forward(const token_batch& tokens, hook_set<T>& hooks) {
    const char* fn = "mint::torch_runtime::forward";
    check_forward_hooks(hooks, sites(), fn);
    sequence_.start(tokens, fn);
    if constexpr (torch_cached_model<M>) model_->reset_cache();
    return run(tokens, hooks, 0, false, torch::autograd::GradMode::is_enabled(), fn);
  }
  tensor_view<const T> forward(const token_batch& tokens) {
    hook_set<T> none;
    return forward(tokens, none);
  }

  /// Propagates d(metric)/d(logits) back through the last forward, calling `grad_hooks` with
  /// d(metric)/d(activation) at each hooked site, later sites first.
  void backward(tensor_view<const T> dlogits, hook_set<T>& grad_hooks) {
    const char* fn = "mint::torch_runtime::backward";
    if (grad_hooks.sites() && grad_hooks.sites() != &sites())
      throw argument_error(fn, "grad_hooks", "were made for another runtime's sites", "needs hook_set(runtime.sites(), hook_phase::backward)");
    if (grad_hooks.phase() != hook_phase::backward)
      throw argument_error(fn, "grad_hooks", "is a forward hook set", "needs hook_phase::backward");
    if (!graph_)
      throw argument_error(fn, "the last forward",
                           stopped_ ? "was stopped by a hook"
                           : logits_.defined() ? "ran without a graph (torch's grad mode off, or a chunk)"
                                               : "has not run",
                           "needs a complete forward() with torch's grad mode on");
    if (dlogits.rank() != 3 || dlogits.extent(0) != logits_.size(0) || dlogits.extent(1) != logits_.size(1) ||
        dlogits.extent(2) != logits_.size(2))
      throw shape_error(fn, "dlogits", "has shape " + detail::shape_string(dlogits.extents()),
                        detail::str("needs the logits' [", logits_.size(0), ", ", logits_.size(1), ", ", logits_.size(2), "]"));
    auto& st = *state_;
    std::vector<at::Tensor> inputs;
    for (auto& r : st.records) {
      r.reached = false;
      if (grad_hooks.wants(r.id)) inputs.push_back(r.input);
    }
    if (inputs.empty()) return;
    const at::Tensor d = to_torch<T>(dlogits);
    st.grad_hooks = &grad_hooks;
    struct reset {
      detail::torch_pass_state<T>& s;
      ~reset() { s.grad_hooks = nullptr; }
    } guard{st};
    torch::autograd::grad({logits_}, inputs, {d}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
    // A point the logits do not depend on is still called, with a zero gradient, later points first.
    for (std::size_t r = st.records.size(); r-- > 0;)
      if (!st.records[r].reached && grad_hooks.wants(st.records[r].id)) st.run_grad_hooks(std::int64_t(r), at::Tensor());
  }

  // The incremental capability, where the module keeps a KV cache.

  /// Forgets the sequence forward_chunk() has built.
  void reset()
    requires torch_cached_model<M>
  {
    sequence_.reset();
    model_->reset_cache();
  }
  /// Where the next chunk starts.
  index cached_positions() const noexcept
    requires torch_cached_model<M>
  {
    return sequence_.next_position();
  }
  /// Runs the next chunk.positions() positions against the module's cache (never with a graph).
  tensor_view<const T> forward_chunk(const token_batch& chunk, hook_set<T>& hooks)
    requires torch_cached_model<M>
  {
    const char* fn = "mint::torch_runtime::forward_chunk";
    check_forward_hooks(hooks, sites(), fn);
    const index first = sequence_.append(chunk, fn);
    return run(chunk, hooks, first, true, false, fn);
  }
  tensor_view<const T> forward_chunk(const token_batch& chunk)
    requires torch_cached_model<M>
  {
    hook_set<T> none;
    return forward_chunk(chunk, none);
  }

  // Weights, forwarded where the module offers them as member templates on the dtype
  // (`template <class T> mint::unembedding_weights<T> unembedding() const`, ...): the runtime is
  // then decodable (direct logit attribution, the logit lens) and shows its attention and MLP
  // weights (QK/OV circuits, composition scores, neurons' logit effects).

  unembedding_weights<T> unembedding() const
    requires requires(const M& m) { { m.template unembedding<T>() } -> std::convertible_to<unembedding_weights<T>>; }
  {
    return model_->template unembedding<T>();
  }
  attention_matrices<T> attention_weights(int layer) const
    requires requires(const M& m) { { m.template attention_weights<T>(layer) } -> std::convertible_to<attention_matrices<T>>; }
  {
    return model_->template attention_weights<T>(layer);
  }
  tensor_view<const T> embedding_weights() const
    requires requires(const M& m) { { m.template embedding_weights<T>() } -> std::convertible_to<tensor_view<const T>>; }
  {
    return model_->template embedding_weights<T>();
  }
  mlp_matrices<T> mlp_weights(int layer) const
    requires requires(const M& m) { { m.template mlp_weights<T>(layer) } -> std::convertible_to<mlp_matrices<T>>; }
  {
    return model_->template mlp_weights<T>(layer);
  }

private:
  tensor_view<const T> run(const token_batch& tokens, hook_set<T>& hooks, index first, bool chunk, bool graph,
                           const char* fn) {
    auto& st = *state_;
    const index B = tokens.batch(), n = tokens.positions();
    at::Tensor ids = at::empty({B, n}, at::TensorOptions().dtype(at::kLong));
    auto* id = ids.data_ptr<std::int64_t>();
    for (index b = 0; b < B; ++b)
      for (index t = 0; t < n; ++t) id[b * n + t] = tokens(b, t);
    at::Tensor lengths = at::empty({B}, at::TensorOptions().dtype(at::kLong));
    for (index b = 0; b < B; ++b) lengths.data_ptr<std::int64_t>()[b] = sequence_.lengths()[std::size_t(b)];

    st.sites = &sites();
    st.forward_hooks = &hooks;
    st.lengths = sequence_.lengths();
    st.first_position = first;
    st.recording = graph;
    ++st.pass;
    st.records.clear();
    logits_ = at::Tensor();
    graph_ = false;
    stopped_ = false;
    torch_hook_points& points = model_->hook_points();
    points.pass_ = state_.get();
    struct unset {
      torch_hook_points& p;
      detail::torch_pass_state<T>& s;
      ~unset() { p.pass_ = nullptr, s.forward_hooks = nullptr, s.recording = false; }
    } guard{points, st};
    at::Tensor logits;
    try {
      torch::autograd::AutoGradMode mode(graph);
      logits = chunk ? forward_cached(ids, lengths, first) : at::Tensor(model_->forward(ids, lengths));
    } catch (const detail::torch_stop&) {
      stopped_ = true;
    } catch (const c10::Error& e) {
      end_chunk(chunk, first, n, true);
      throw argument_error(fn, "the module", std::string("threw in its forward: ") + e.what_without_backtrace(),
                           "needs a forward that runs on these tokens");
    } catch (...) {
      end_chunk(chunk, first, n, true);  // a chunk that did not finish ends the sequence
      throw;
    }
    end_chunk(chunk, first, n, stopped_);
    if (stopped_) {
      st.records.clear();
      return {};
    }
    detail::check_torch_tensor<T>(logits, fn, "the module's logits");
    if (logits.dim() != 3 || logits.size(0) != B || logits.size(1) != n)
      throw shape_error(fn, "the module's logits", "have shape " + shape_of(logits), detail::str("needs [", B, ", ", n, ", vocab]"));
    logits_ = logits;
    graph_ = graph && logits.requires_grad();
    if (!graph_) st.records.clear();
    return torch_view<T>(logits_, fn);
  }

  // A chunk moves the sequence on (or ends it, stopped or failed); a whole forward leaves it at 0,
  // where sequence_.start() put it: the module's cache was reset and holds nothing of it.
  void end_chunk(bool chunk, index first, index n, bool stopped) noexcept {
    if (chunk) sequence_.finish(first, n, stopped);
  }

  at::Tensor forward_cached(const at::Tensor& ids, const at::Tensor& lengths, index first) {
    if constexpr (torch_cached_model<M>) return model_->forward_cached(ids, lengths, std::int64_t(first));
    else return model_->forward(ids, lengths);
  }

  static std::string shape_of(const at::Tensor& x) {
    std::vector<index> s(x.sizes().begin(), x.sizes().end());
    return detail::shape_string(std::span<const index>(s));
  }

  std::shared_ptr<M> model_;
  std::shared_ptr<detail::torch_pass_state<T>> state_;  // the graph's nodes hold it weakly
  chunked_sequence sequence_;
  at::Tensor logits_;
  bool graph_ = false;
  bool stopped_ = false;
};

}  // namespace mint
