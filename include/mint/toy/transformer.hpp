// The reference runtime: a small pre-LN transformer in Eigen with every
// TransformerLens site, an exact hand-written backward to every site and
// parameter, grouped-query attention, optional split q/k/v inputs per head,
// optional MLP and layer norm. Parameters carry TransformerLens state-dict
// names and shapes. Forward cost O(batch * pos * (layers * d_model * (heads *
// d_head + d_mlp) + d_model * vocab) + batch * layers * heads * pos^2 * d_head).
// It also decodes incrementally: forward_chunk() appends a chunk of positions to
// a sequence whose keys and values it keeps (a KV cache).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parallel.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/graph.hpp"
#include "mint/model/head_weights.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/sequence.hpp"
#include "mint/model/site.hpp"
#include "mint/model/unembedding.hpp"
#include "mint/toy/detail/kernels.hpp"

namespace mint::toy {

/// The shape of a toy transformer.
struct transformer_config {
  int vocab = 0;
  int context = 0;            ///< longest sequence (positional embeddings)
  int d_model = 0;
  int layers = 1;
  int heads = 1;
  int kv_heads = 0;           ///< key/value heads for grouped-query attention; 0: as many as heads
  int d_head = 0;
  int d_mlp = 0;              ///< 0: attention only
  activation_fn activation = activation_fn::gelu;
  bool layer_norm = true;     ///< pre-LN before attention, MLP and unembedding
  bool split_qkv_input = false;  ///< each head's q, k and v input is its own site (needed for edge graphs)
  double layer_norm_eps = 1e-5;

  int key_value_heads() const noexcept { return kv_heads ? kv_heads : heads; }
  bool has_mlp() const noexcept { return d_mlp > 0; }
  /// Attention inputs per position in split mode: q per head, then k and v per kv head.
  int input_groups() const noexcept { return heads + 2 * key_value_heads(); }

  void validate() const {
    const char* fn = "mint::toy::transformer";
    auto need = [&](bool ok, const char* what, int value, const char* needs) {
      if (!ok) throw argument_error(fn, std::string("config.") + what, detail::str("is ", value), needs);
    };
    need(vocab > 0, "vocab", vocab, "needs > 0");
    need(context > 0, "context", context, "needs > 0");
    need(d_model > 0, "d_model", d_model, "needs > 0");
    need(layers > 0, "layers", layers, "needs > 0");
    need(heads > 0, "heads", heads, "needs > 0");
    need(d_head > 0, "d_head", d_head, "needs > 0");
    need(d_mlp >= 0, "d_mlp", d_mlp, "needs >= 0 (0 for attention only)");
    need(kv_heads >= 0 && heads % key_value_heads() == 0, "kv_heads", kv_heads,
         "needs to divide heads (0 for as many as heads)");
  }
};

/// A small transformer: a mint::differentiable_runtime with every site of the TransformerLens naming.
template <class T = float>
class transformer {
public:
  using scalar_type = T;

  /// A model of that shape with zero weights (layer-norm gains one); see initialize().
  explicit transformer(const transformer_config& config);

  /// Random weights, N(0, (0.8 / sqrt(d_model))^2) as TransformerLens initializes small models; biases zero.
  void initialize(std::uint64_t seed);

  const transformer_config& config() const noexcept { return config_; }
  /// Every site, in the order the forward pass reaches them.
  const site_table& sites() const noexcept { return *sites_; }
  /// Weights by TransformerLens name ("embed.W_E", "blocks.0.attn.W_Q", ...).
  parameter_store<T>& parameters() noexcept { return params_; }
  const parameter_store<T>& parameters() const noexcept { return params_; }

  /// The residual edge graph (needs split_qkv_input, so each head's inputs are sites).
  edge_graph graph() const;

  /// The final layer norm and the unembedding, for the logit lens and direct logit attribution.
  unembedding_weights<T> unembedding() const;

  /// Block `layer`'s attention weights (W_Q, W_K, W_V, W_O as TransformerLens lays them out) and
  /// the token embedding W_E [vocab, d_model], for the weight analyses (mint/explain/).
  attention_matrices<T> attention_weights(int layer) const;
  /// Block `layer`'s MLP weights (W_in [d_model, d_mlp], W_out [d_mlp, d_model]); a model without
  /// MLPs refuses.
  mlp_matrices<T> mlp_weights(int layer) const;
  tensor_view<const T> embedding_weights() const { return tensor_view<const T>(p(embed_W_), {index(config_.vocab), index(config_.d_model)}); }

  /// Runs the model, calling hooks at each site; returns logits [batch, pos, vocab], valid until the next forward.
  /// An empty view means a hook stopped the pass.
  /// It forgets any sequence built by forward_chunk().
  tensor_view<const T> forward(const token_batch& tokens, hook_set<T>& hooks);
  tensor_view<const T> forward(const token_batch& tokens);

  /// Forgets the sequence forward_chunk() has built (its keys and values).
  void reset() noexcept { sequence_.reset(); }

  /// Positions of the current sequence held in the KV cache: where the next chunk starts.
  index cached_positions() const noexcept { return sequence_.next_position(); }

  /// Runs the next `chunk.positions()` positions of the sequence (positions [t0, t0 + n) with
  /// t0 = cached_positions()), attending to the keys and values kept from earlier chunks; hooks
  /// see the chunk with first_position t0 (the pattern is [batch, heads, n, t0 + n]). Returns
  /// the chunk's logits [batch, n, vocab], valid until the next call. The first chunk after
  /// reset() fixes the batch and needs every row to hold a token; later, a row whose chunk
  /// length is below n has ended and its later positions are padding. The logits equal one
  /// forward() over the whole sequence to rounding. There is no backward after a chunk.
  tensor_view<const T> forward_chunk(const token_batch& chunk, hook_set<T>& hooks);
  tensor_view<const T> forward_chunk(const token_batch& chunk);

  /// A forward resumed at block `layer`: `resid` [batch, positions, d_model] is that block's
  /// hook_resid_pre (hooks there see it first); the embeddings and earlier blocks do not run.
  /// layer -1 is forward() itself (resid empty). Forgets any chunked sequence; no backward follows.
  tensor_view<const T> forward_from(int layer, tensor_view<const T> resid, const token_batch& tokens,
                                    hook_set<T>& hooks);

  /// A branch off the cached sequence: runs `chunk` as its continuation from block `layer`
  /// (`resid` [chunk rows, n, d_model] its hook_resid_pre; layer -1: from the tokens) without
  /// keeping it, so cached_positions() stays. chunk.batch() may be k times the cached batch:
  /// row r continues cached row r mod batch, k variants of a continuation in one pass.
  tensor_view<const T> forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                      hook_set<T>& hooks);
  /// The same with logits at the chunk's last `outputs` positions only ([chunk rows, outputs,
  /// vocab]): the last block computes its keys and values at every position of the chunk, and
  /// its attention pattern and everything after (z, result, attn_out, MLP, resid_post, the final
  /// norm, the logits) at those positions alone; hooks there see them, first_position moved to match.
  tensor_view<const T> forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                      hook_set<T>& hooks, index outputs);

  /// Propagates d(metric)/d(logits) back through the last forward, calling grad hooks with
  /// d(metric)/d(activation) at each site, and adding parameter gradients into `gradients` when given.
  void backward(tensor_view<const T> dlogits, hook_set<T>& grad_hooks, parameter_store<T>* gradients = nullptr);
  void backward(tensor_view<const T> dlogits, parameter_store<T>& gradients);

  /// Folds each layer norm's gain and bias into the weights that read it (W_Q/W_K/W_V,
  /// W_in, W_U and their biases), leaving gains of one and biases of zero: the same function.
  void fold_layer_norm();

  /// The same model in another scalar type (for example double, for gradient checks).
  template <class U>
  transformer<U> cast() const {
    transformer<U> out(config_);
    auto dst = out.parameters().flat();
    const auto src = params_.flat();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i] = U(src[i]);
    return out;
  }

private:
  struct layer_sites {
    site_id resid_pre = -1, q_input = -1, k_input = -1, v_input = -1, ln1_scale = -1, ln1_normalized = -1;
    site_id q = -1, k = -1, v = -1, pattern = -1, z = -1, result = -1, attn_out = -1;
    site_id resid_mid = -1, mlp_in = -1, ln2_scale = -1, ln2_normalized = -1, mlp_pre = -1, mlp_post = -1;
    site_id mlp_out = -1, resid_post = -1;
  };
  struct site_ids {
    site_id embed = -1, pos_embed = -1, ln_final_scale = -1, ln_final_normalized = -1, logits = -1;
    std::vector<layer_sites> layer;
  };
  // Offsets of each parameter in the flat store (stable under copies of the model).
  struct layer_params {
    index W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, ln1_w, ln1_b, ln2_w, ln2_b, W_in, b_in, W_out, b_out;
  };
  /// One layer norm's statistics per row: mean, sqrt(var + eps) ("raw") and the scale as hooks left it.
  struct norm_stats {
    std::vector<T> mean, raw, scale;
  };
  /// Which layer norm: its gain and bias (parameter offsets), its two sites, and how many
  /// input groups a position has (split q/k/v inputs; 0 for one row per position).
  struct norm_ref {
    index w = 0, b = 0;
    site_id scale_site = -1, normalized_site = -1;
    index groups = 0;
  };

  struct layer_state {
    matrix<T> qkv_in, ln1_out, q, k, v, z, result, attn_out, resid_mid, mlp_in, ln2_out, pre, post, mlp_out;
    matrix<T> k_cache, v_cache;  // incremental mode: [batch * context, kv_heads * d_head], row b * context + position
    norm_stats ln1, ln2;
    std::vector<T> pattern, pattern_raw;
    bool pattern_hooked = false;
    // Split q/k/v inputs that no forward hook touched: every head reads one normalized copy of the
    // residual (ln1_out and ln1 hold N rows, not N x groups), which saves the copies' layer norms.
    bool shared_input = false;
  };

  using rows_map = detail::rows_map<T>;
  using const_rows_map = detail::const_rows_map<T>;
  using const_matrix_map = Eigen::Map<const matrix<T>>;
  using const_vector_map = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
  using vector_map = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

  index rows() const noexcept { return batch_ * positions_; }
  const T* p(index offset) const noexcept { return params_.flat().data() + offset; }
  static T* g(T* grad, index offset) noexcept { return grad ? grad + offset : nullptr; }

  // ---- declarations ----------------------------------------------------------------

  void declare_parameters();
  void reset_layer_norms();
  void declare_sites();

  // ---- forward -----------------------------------------------------------------------

  /// Sets up a pass over positions [first, first + tokens.positions()) of rows with absolute
  /// lengths `lengths`. kv_capacity > 0: keys and values of earlier positions come from the
  /// per-layer caches of that many positions a row (incremental mode), pass row b reading cached
  /// row b mod cached_rows; `keep` stores this pass's keys and values there too.
  void prepare(const token_batch& tokens, std::span<const index> lengths, index first, index kv_capacity,
               index cached_rows, bool keep);

  /// The pass itself from block `layer` with input `resid` (-1: from the embeddings); an empty
  /// view when a hook stopped it.
  tensor_view<const T> run(hook_set<T>& hooks, int layer = -1, tensor_view<const T> resid = {});

  /// Checks `layer` and `resid` of forward_from/forward_branch for a pass of `tokens`' shape.
  void check_resume(int layer, tensor_view<const T> resid, const token_batch& tokens, const char* function) const;

  /// Calls the hooks at a site whose activation is a [batch*pos, ...] buffer; false: stop.
  bool visit(hook_set<T>& hooks, site_id id, T* data, std::span<const index> extents,
             std::span<const index> strides = {}) {
    if (!hooks.wants(id)) return true;
    const tensor_view<T> v = strides.empty() ? tensor_view<T>(data, extents) : tensor_view<T>(data, extents, strides);
    return hooks.call(id, v, lengths_, {.first_position = first_});
  }
  bool visit(hook_set<T>& hooks, site_id id, matrix<T>& m) {
    const index extents[] = {batch_, positions_, index(m.cols())};
    return visit(hooks, id, m.data(), extents);
  }
  bool visit_heads(hook_set<T>& hooks, site_id id, T* data, index heads, index width, index row_stride) {
    const index extents[] = {batch_, positions_, heads, width};
    const index strides[] = {positions_ * row_stride, row_stride, width, 1};
    return visit(hooks, id, data, extents, strides);
  }

  bool embed(hook_set<T>& hooks);

  norm_ref ln1_of(int l) const {
    const layer_params& w = layer_[std::size_t(l)];
    const layer_sites& id = ids_.layer[std::size_t(l)];
    return {.w = w.ln1_w, .b = w.ln1_b, .scale_site = id.ln1_scale, .normalized_site = id.ln1_normalized,
            .groups = config_.split_qkv_input ? index(config_.input_groups()) : 0};
  }
  norm_ref ln2_of(int l) const {
    const layer_params& w = layer_[std::size_t(l)];
    const layer_sites& id = ids_.layer[std::size_t(l)];
    return {.w = w.ln2_w, .b = w.ln2_b, .scale_site = id.ln2_scale, .normalized_site = id.ln2_normalized, .groups = 0};
  }
  norm_ref final_norm() const {
    return {.w = final_w_, .b = final_b_, .scale_site = ids_.ln_final_scale,
            .normalized_site = ids_.ln_final_normalized, .groups = 0};
  }

  /// Layer norm over `count` rows of width d at `in` (row stride d), into `out`, calling the scale and normalized sites.
  bool layer_norm_forward(hook_set<T>& hooks, const T* in, index count, const norm_ref& n, norm_stats& st,
                          matrix<T>& out);

  /// Rows of the attention input that head-group `group` reads (all groups read one matrix unless split).
  const_rows_map attention_input(const layer_state& s, index group) const {
    const index d = config_.d_model;
    if (!config_.split_qkv_input || s.shared_input) return const_rows_map(s.ln1_out.data(), rows(), d, Eigen::OuterStride<>(d));
    return const_rows_map(s.ln1_out.data() + group * d, rows(), d, Eigen::OuterStride<>(config_.input_groups() * d));
  }

  bool attention_forward(int l, hook_set<T>& hooks);
  /// Narrows the pass to each row's last `keep` positions (queries and residual of block `l`,
  /// positions_ and first_), its keys and values already computed over all of them.
  void keep_last_positions(layer_state& s, int l, index keep);
  static norm_ref ungrouped(norm_ref n) {
    n.groups = 0;
    return n;
  }
  bool mlp_forward(int l, hook_set<T>& hooks);
  bool unembed(hook_set<T>& hooks);

  // ---- backward ----------------------------------------------------------------------

  /// d(out) of a layer norm -> d(in) into `d_in` (count x d, row stride d); calls the normalized
  /// and scale grad sites. `in` holds count / shared rows (and st their statistics), each read by
  /// `shared` consecutive rows of d_out (heads sharing one input).
  bool layer_norm_backward(hook_set<T>& hooks, const T* in, index count, const norm_ref& n, const norm_stats& st,
                           matrix<T>& d_out, matrix<T>& d_in, T* grad, index shared = 1);

  bool unembed_backward(hook_set<T>& hooks, T* grad);
  bool mlp_backward(int l, hook_set<T>& hooks, T* grad);
  bool attention_backward(int l, hook_set<T>& hooks, T* grad);
  void embed_backward(hook_set<T>& hooks, T* grad);

  transformer_config config_;
  parameter_store<T> params_;
  std::shared_ptr<const site_table> sites_;  // shared by copies, so hook sets stay valid
  site_ids ids_;
  std::vector<layer_params> layer_;
  index embed_W_ = 0, pos_W_ = 0, final_w_ = 0, final_b_ = 0, unembed_W_ = 0, unembed_b_ = 0;

  // The last forward pass, kept for backward; buffers are reused across calls.
  index batch_ = 0, positions_ = 0;  // rows and positions of the last pass (a chunk's, in incremental mode)
  index first_ = 0;                  // absolute position of the pass's first position
  index kv_capacity_ = 0;            // positions a row holds in the KV cache; 0 outside incremental mode
  index cached_rows_ = 0;            // rows the KV cache holds (a branch's row b reads row b mod this)
  bool keep_kv_ = false;             // the pass stores its keys and values in the cache
  index outputs_ = 0;                // > 0: the last block runs after its keys and values at the last outputs_ positions only
  std::vector<index> lengths_;       // each pass row's absolute valid length
  chunked_sequence sequence_;        // row lengths and where the next chunk starts
  bool forward_done_ = false;
  std::vector<token> ids_in_;
  matrix<T> embed_, pos_, final_out_, logits_;
  std::vector<matrix<T>> resid_;
  std::vector<layer_state> states_;
  norm_stats final_norm_;
  // Backward buffers.
  // The two layer norms have their own: the attention's hold a row per head group in split mode,
  // and one buffer resized between the two would be reallocated (and page-faulted) every layer.
  matrix<T> d_logits_, d_final_out_, d_resid_, d_mlp_out_, d_post_, d_pre_, d_ln1_out_, d_ln1_in_,
      d_ln2_out_, d_ln2_in_, d_attn_out_, d_result_, d_z_, d_q_, d_k_, d_v_, d_embed_, d_pos_;
  std::vector<T> d_pattern_, d_scale_;
};

#if MINT_CORE_BODIES
template <class T>
transformer<T>::transformer(const transformer_config& config)
    : config_(config), sequence_(config.context, config.vocab) {
  config_.validate();
  declare_parameters();
  declare_sites();
  reset_layer_norms();
}

template <class T>
void transformer<T>::initialize(std::uint64_t seed) {
  rng r(seed);
  const double std = 0.8 / std::sqrt(double(config_.d_model));
  for (const auto& e : params_.entries()) {
    const bool weight = e.name.find(".W_") != std::string::npos;
    auto v = params_.view_of(e);
    if (weight) r.fill_normal(v, 0.0, std);
    else std::fill(v.data(), v.data() + v.size(), T(0));
  }
  reset_layer_norms();
}

template <class T>
unembedding_weights<T> transformer<T>::unembedding() const {
  const index d = config_.d_model, v = config_.vocab;
  unembedding_weights<T> u;
  u.norm = config_.layer_norm ? final_norm::layer_norm : final_norm::none;
  u.epsilon = config_.layer_norm_eps;
  if (config_.layer_norm) {
    u.gain = tensor_view<const T>(p(final_w_), {d});
    u.bias = tensor_view<const T>(p(final_b_), {d});
  }
  u.weight = tensor_view<const T>(p(unembed_W_), {d, v});
  u.unembed_bias = tensor_view<const T>(p(unembed_b_), {v});
  return u;
}

template <class T>
attention_matrices<T> transformer<T>::attention_weights(int layer) const {
  if (layer < 0 || layer >= config_.layers)
    throw argument_error("mint::toy::transformer::attention_weights", "layer", detail::str("is ", layer),
                         detail::str("needs a block in [0, ", config_.layers, ")"));
  const index d = config_.d_model, H = config_.heads, K = config_.key_value_heads(), dh = config_.d_head;
  const layer_params& w = layer_[std::size_t(layer)];
  attention_matrices<T> out;
  out.W_Q = tensor_view<const T>(p(w.W_Q), {H, d, dh});
  out.W_K = tensor_view<const T>(p(w.W_K), {K, d, dh});
  out.W_V = tensor_view<const T>(p(w.W_V), {K, d, dh});
  out.W_O = tensor_view<const T>(p(w.W_O), {H, dh, d});
  return out;
}

template <class T>
mlp_matrices<T> transformer<T>::mlp_weights(int layer) const {
  const char* fn = "mint::toy::transformer::mlp_weights";
  if (!config_.has_mlp()) throw argument_error(fn, "model", "has no MLPs (d_mlp is 0)", "needs a model with MLP blocks");
  if (layer < 0 || layer >= config_.layers)
    throw argument_error(fn, "layer", detail::str("is ", layer), detail::str("needs a block in [0, ", config_.layers, ")"));
  const index d = config_.d_model, m = config_.d_mlp;
  const layer_params& w = layer_[std::size_t(layer)];
  return {tensor_view<const T>(p(w.W_in), {d, m}), tensor_view<const T>(p(w.W_out), {m, d})};
}

template <class T>
edge_graph transformer<T>::graph() const {
  if (!config_.split_qkv_input)
    throw argument_error("mint::toy::transformer::graph", "config.split_qkv_input", "is false",
                         "needs true, so each head's q/k/v input is a receiver");
  return transformer_graph(*sites_, {config_.layers, config_.heads, config_.key_value_heads(), config_.has_mlp()});
}

template <class T>
tensor_view<const T> transformer<T>::forward(const token_batch& tokens, hook_set<T>& hooks) {
  check_forward_hooks(hooks, *sites_, "mint::toy::transformer::forward");
  sequence_.start(tokens, "mint::toy::transformer::forward");  // keeps no keys: the next chunk starts afresh
  forward_done_ = false;
  prepare(tokens, sequence_.lengths(), 0, 0, 0, false);
  const auto logits = run(hooks);
  forward_done_ = !logits.empty();
  return logits;
}

template <class T>
void transformer<T>::check_resume(int layer, tensor_view<const T> resid, const token_batch& tokens,
                                  const char* function) const {
  if (layer < -1 || layer >= config_.layers)
    throw argument_error(function, "layer", detail::str("is ", layer),
                         detail::str("needs a block in [0, ", config_.layers, ") or -1 (from the tokens)"));
  if (layer < 0) {
    if (!resid.empty())
      throw argument_error(function, "resid", "is given with layer -1", "needs an empty view (the tokens are the input)");
    return;
  }
  if (resid.rank() != 3 || resid.extent(0) != tokens.batch() || resid.extent(1) != tokens.positions() ||
      resid.extent(2) != config_.d_model)
    throw shape_error(function, "resid", "has extents " + detail::shape_string(resid.extents()),
                      detail::str("needs [", tokens.batch(), ", ", tokens.positions(), ", ", config_.d_model,
                                        "], the tokens' blocks.", layer, ".hook_resid_pre"));
}

template <class T>
tensor_view<const T> transformer<T>::forward_from(int layer, tensor_view<const T> resid, const token_batch& tokens,
                                                  hook_set<T>& hooks) {
  const char* fn = "mint::toy::transformer::forward_from";
  check_forward_hooks(hooks, *sites_, fn);
  sequence_.start(tokens, fn);
  check_resume(layer, resid, tokens, fn);
  forward_done_ = false;
  prepare(tokens, sequence_.lengths(), 0, 0, 0, false);
  return run(hooks, layer, resid);
}

template <class T>
tensor_view<const T> transformer<T>::forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                                    hook_set<T>& hooks) {
  return forward_branch(layer, resid, chunk, hooks, chunk.positions());
}

template <class T>
tensor_view<const T> transformer<T>::forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                                    hook_set<T>& hooks, index outputs) {
  const char* fn = "mint::toy::transformer::forward_branch";
  check_forward_hooks(hooks, *sites_, fn);
  const std::vector<index> lengths = sequence_.branch(chunk, fn);
  check_resume(layer, resid, chunk, fn);
  if (outputs < 1 || outputs > chunk.positions())
    throw argument_error(fn, "outputs", detail::str("is ", outputs),
                         detail::str("needs 1 to the chunk's positions, ", chunk.positions()));
  forward_done_ = false;
  prepare(chunk, lengths, sequence_.next_position(), config_.context, sequence_.batch(), false);
  outputs_ = outputs;
  return run(hooks, layer, resid);
}

template <class T>
tensor_view<const T> transformer<T>::forward(const token_batch& tokens) {
  hook_set<T> none;
  return forward(tokens, none);
}

template <class T>
tensor_view<const T> transformer<T>::forward_chunk(const token_batch& chunk, hook_set<T>& hooks) {
  const char* fn = "mint::toy::transformer::forward_chunk";
  check_forward_hooks(hooks, *sites_, fn);
  const index t0 = sequence_.append(chunk, fn);
  forward_done_ = false;
  if (t0 == 0) {
    states_.resize(std::size_t(config_.layers));
    for (auto& st : states_) {
      st.k_cache.resize(chunk.batch() * config_.context, config_.key_value_heads() * config_.d_head);
      st.v_cache.resize(chunk.batch() * config_.context, config_.key_value_heads() * config_.d_head);
    }
  }
  prepare(chunk, sequence_.lengths(), t0, config_.context, chunk.batch(), true);
  const auto logits = run(hooks);
  sequence_.finish(t0, chunk.positions(), logits.empty());
  return logits;
}

template <class T>
tensor_view<const T> transformer<T>::forward_chunk(const token_batch& chunk) {
  hook_set<T> none;
  return forward_chunk(chunk, none);
}

template <class T>
void transformer<T>::backward(tensor_view<const T> dlogits, hook_set<T>& grad_hooks, parameter_store<T>* gradients) {
  const char* fn = "mint::toy::transformer::backward";
  if (!forward_done_)
    throw argument_error(fn, "model", "has no completed forward pass", "needs forward() to run to the end first");
  if (dlogits.rank() != 3 || dlogits.extent(0) != batch_ || dlogits.extent(1) != positions_ ||
      dlogits.extent(2) != config_.vocab)
    throw shape_error(fn, "dlogits", "has extents " + detail::shape_string(dlogits.extents()),
                      detail::str("needs [", batch_, ", ", positions_, ", ", config_.vocab, "], the last logits"));
  if (grad_hooks.sites() && grad_hooks.sites() != sites_.get())
    throw argument_error(fn, "grad_hooks", "were made for another runtime's sites", "needs hook_set(model.sites(), hook_phase::backward)");
  if (gradients && gradients->size() != params_.size())
    throw shape_error(fn, "gradients", detail::str("hold ", gradients->size(), " values"),
                      detail::str("needs the parameters' layout (", params_.size(), "), e.g. parameters().zeros_like()"));
  T* grad = gradients ? gradients->flat().data() : nullptr;
  d_logits_.resize(rows(), config_.vocab);
  copy(dlogits, tensor_view<T>(d_logits_.data(), {batch_, positions_, index(config_.vocab)}));
  if (!unembed_backward(grad_hooks, grad)) return;
  for (int l = config_.layers - 1; l >= 0; --l) {
    if (!visit(grad_hooks, ids_.layer[l].resid_post, d_resid_)) return;
    if (!mlp_backward(l, grad_hooks, grad)) return;
    if (!attention_backward(l, grad_hooks, grad)) return;
    if (!visit(grad_hooks, ids_.layer[l].resid_pre, d_resid_)) return;
  }
  embed_backward(grad_hooks, grad);
}

template <class T>
void transformer<T>::backward(tensor_view<const T> dlogits, parameter_store<T>& gradients) {
  hook_set<T> none;
  backward(dlogits, none, &gradients);
}

template <class T>
void transformer<T>::fold_layer_norm() {
  if (!config_.layer_norm) return;
  const index d = config_.d_model;
  auto fold = [&](const std::string& ln, const std::string& weight, const std::string& bias, index outer) {
    auto w = params_[ln + ".w"], b = params_[ln + ".b"];
    auto W = params_[weight], B = params_[bias];
    const index cols = W.size() / (outer * d);
    for (index o = 0; o < outer; ++o) {
      Eigen::Map<matrix<T>> Wo(W.data() + o * d * cols, d, cols);
      Eigen::Map<vector<T>> Bo(B.data() + o * cols, cols);
      const Eigen::Map<const vector<T>> wv(w.data(), d), bv(b.data(), d);
      Bo += (bv.transpose() * Wo).transpose();
      Wo = wv.asDiagonal() * Wo;
    }
  };
  for (int l = 0; l < config_.layers; ++l) {
    const std::string block = "blocks." + std::to_string(l);
    fold(block + ".ln1", block + ".attn.W_Q", block + ".attn.b_Q", config_.heads);
    fold(block + ".ln1", block + ".attn.W_K", block + ".attn.b_K", config_.key_value_heads());
    fold(block + ".ln1", block + ".attn.W_V", block + ".attn.b_V", config_.key_value_heads());
    if (config_.has_mlp()) fold(block + ".ln2", block + ".mlp.W_in", block + ".mlp.b_in", 1);
  }
  fold("ln_final", "unembed.W_U", "unembed.b_U", 1);
  reset_layer_norms();
}

template <class T>
void transformer<T>::declare_parameters() {
  const index V = config_.vocab, C = config_.context, d = config_.d_model, H = config_.heads,
              K = config_.key_value_heads(), dh = config_.d_head, m = config_.d_mlp;
  auto offset = [&](const std::string& name, std::vector<index> extents) {
    params_.add(name, std::move(extents));
    return params_.entries().back().offset;
  };
  embed_W_ = offset("embed.W_E", {V, d});
  pos_W_ = offset("pos_embed.W_pos", {C, d});
  for (int l = 0; l < config_.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l);
    layer_params lp{};
    if (config_.layer_norm) lp.ln1_w = offset(b + ".ln1.w", {d}), lp.ln1_b = offset(b + ".ln1.b", {d});
    lp.W_Q = offset(b + ".attn.W_Q", {H, d, dh});
    lp.b_Q = offset(b + ".attn.b_Q", {H, dh});
    lp.W_K = offset(b + ".attn.W_K", {K, d, dh});
    lp.b_K = offset(b + ".attn.b_K", {K, dh});
    lp.W_V = offset(b + ".attn.W_V", {K, d, dh});
    lp.b_V = offset(b + ".attn.b_V", {K, dh});
    lp.W_O = offset(b + ".attn.W_O", {H, dh, d});
    lp.b_O = offset(b + ".attn.b_O", {d});
    if (config_.has_mlp()) {
      if (config_.layer_norm) lp.ln2_w = offset(b + ".ln2.w", {d}), lp.ln2_b = offset(b + ".ln2.b", {d});
      lp.W_in = offset(b + ".mlp.W_in", {d, m});
      lp.b_in = offset(b + ".mlp.b_in", {m});
      lp.W_out = offset(b + ".mlp.W_out", {m, d});
      lp.b_out = offset(b + ".mlp.b_out", {d});
    }
    layer_.push_back(lp);
  }
  if (config_.layer_norm) final_w_ = offset("ln_final.w", {d}), final_b_ = offset("ln_final.b", {d});
  unembed_W_ = offset("unembed.W_U", {d, V});
  unembed_b_ = offset("unembed.b_U", {V});
}

template <class T>
void transformer<T>::reset_layer_norms() {
  if (!config_.layer_norm) return;
  for (const auto& e : params_.entries()) {
    const auto& n = e.name;
    const bool gain = n.size() > 2 && n.compare(n.size() - 2, 2, ".w") == 0;
    const bool bias = n.size() > 2 && n.compare(n.size() - 2, 2, ".b") == 0;
    if (!gain && !bias) continue;
    auto v = params_.view_of(e);
    std::fill(v.data(), v.data() + v.size(), gain ? T(1) : T(0));
  }
}

template <class T>
void transformer<T>::declare_sites() {
  auto table = std::make_shared<site_table>();
  const index d = config_.d_model, H = config_.heads, K = config_.key_value_heads(), dh = config_.d_head,
              G = config_.input_groups(), m = config_.d_mlp, V = config_.vocab;
  using a = axis;
  auto add = [&](std::string name, int layer, site_role role, std::vector<axis> axes, std::vector<index> sizes) {
    return table->add({std::move(name), layer, role, config_.heads, int(K), std::move(axes), std::move(sizes), full_access});
  };
  const std::vector<axis> bpd = {a::batch, a::pos, a::d_model};
  const std::vector<index> sd = {0, 0, d};
  ids_.embed = add("hook_embed", -1, site_role::embed, bpd, sd);
  ids_.pos_embed = add("hook_pos_embed", -1, site_role::pos_embed, bpd, sd);
  for (int l = 0; l < config_.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    layer_sites s;
    s.resid_pre = add(b + "hook_resid_pre", l, site_role::resid_pre, bpd, sd);
    if (config_.split_qkv_input) {
      s.q_input = add(b + "hook_q_input", l, site_role::q_input, {a::batch, a::pos, a::head, a::d_model}, {0, 0, H, d});
      s.k_input = add(b + "hook_k_input", l, site_role::k_input, {a::batch, a::pos, a::kv_head, a::d_model}, {0, 0, K, d});
      s.v_input = add(b + "hook_v_input", l, site_role::v_input, {a::batch, a::pos, a::kv_head, a::d_model}, {0, 0, K, d});
    }
    if (config_.layer_norm) {
      if (config_.split_qkv_input) {
        s.ln1_scale = add(b + "ln1.hook_scale", l, site_role::ln_scale, {a::batch, a::pos, a::qkv_head}, {0, 0, G});
        s.ln1_normalized = add(b + "ln1.hook_normalized", l, site_role::ln_normalized,
                               {a::batch, a::pos, a::qkv_head, a::d_model}, {0, 0, G, d});
      } else {
        s.ln1_scale = add(b + "ln1.hook_scale", l, site_role::ln_scale, {a::batch, a::pos}, {0, 0});
        s.ln1_normalized = add(b + "ln1.hook_normalized", l, site_role::ln_normalized, bpd, sd);
      }
    }
    s.q = add(b + "attn.hook_q", l, site_role::attn_q, {a::batch, a::pos, a::head, a::d_head}, {0, 0, H, dh});
    s.k = add(b + "attn.hook_k", l, site_role::attn_k, {a::batch, a::pos, a::kv_head, a::d_head}, {0, 0, K, dh});
    s.v = add(b + "attn.hook_v", l, site_role::attn_v, {a::batch, a::pos, a::kv_head, a::d_head}, {0, 0, K, dh});
    s.pattern = add(b + "attn.hook_pattern", l, site_role::attn_pattern, {a::batch, a::head, a::pos, a::key_pos},
                    {0, H, 0, 0});
    s.z = add(b + "attn.hook_z", l, site_role::attn_z, {a::batch, a::pos, a::head, a::d_head}, {0, 0, H, dh});
    s.result = add(b + "attn.hook_result", l, site_role::attn_result, {a::batch, a::pos, a::head, a::d_model},
                   {0, 0, H, d});
    s.attn_out = add(b + "hook_attn_out", l, site_role::attn_out, bpd, sd);
    if (config_.has_mlp()) {
      s.resid_mid = add(b + "hook_resid_mid", l, site_role::resid_mid, bpd, sd);
      s.mlp_in = add(b + "hook_mlp_in", l, site_role::mlp_in, bpd, sd);
      if (config_.layer_norm) {
        s.ln2_scale = add(b + "ln2.hook_scale", l, site_role::ln_scale, {a::batch, a::pos}, {0, 0});
        s.ln2_normalized = add(b + "ln2.hook_normalized", l, site_role::ln_normalized, bpd, sd);
      }
      s.mlp_pre = add(b + "mlp.hook_pre", l, site_role::mlp_pre, {a::batch, a::pos, a::d_mlp}, {0, 0, m});
      s.mlp_post = add(b + "mlp.hook_post", l, site_role::mlp_post, {a::batch, a::pos, a::d_mlp}, {0, 0, m});
      s.mlp_out = add(b + "hook_mlp_out", l, site_role::mlp_out, bpd, sd);
    }
    s.resid_post = add(b + "hook_resid_post", l, site_role::resid_post, bpd, sd);
    ids_.layer.push_back(s);
  }
  if (config_.layer_norm) {
    ids_.ln_final_scale = add("ln_final.hook_scale", -1, site_role::ln_scale, {a::batch, a::pos}, {0, 0});
    ids_.ln_final_normalized = add("ln_final.hook_normalized", -1, site_role::ln_normalized, bpd, sd);
  }
  ids_.logits = add("hook_logits", -1, site_role::logits, {a::batch, a::pos, a::vocab}, {0, 0, V});
  sites_ = std::move(table);
}

template <class T>
void transformer<T>::prepare(const token_batch& tokens, std::span<const index> lengths, index first,
                             index kv_capacity, index cached_rows, bool keep) {
  batch_ = tokens.batch();
  positions_ = tokens.positions();
  first_ = first;
  kv_capacity_ = kv_capacity;
  cached_rows_ = cached_rows;
  keep_kv_ = keep;
  outputs_ = 0;
  lengths_.assign(lengths.begin(), lengths.end());
  ids_in_.assign(std::size_t(rows()), 0);
  for (index b = 0; b < batch_; ++b)
    for (index t = 0; t < positions_; ++t) ids_in_[std::size_t(b * positions_ + t)] = tokens(b, t);
  states_.resize(std::size_t(config_.layers));
  resid_.resize(std::size_t(config_.layers) + 1);
}

template <class T>
tensor_view<const T> transformer<T>::run(hook_set<T>& hooks, int layer, tensor_view<const T> resid) {
  if (layer < 0 && !embed(hooks)) return {};
  if (layer >= 0) {
    matrix<T>& x = resid_[std::size_t(layer)];
    x.resize(rows(), config_.d_model);
    copy(resid, tensor_view<T>(x.data(), {batch_, positions_, index(config_.d_model)}));
  }
  for (int l = std::max(layer, 0); l < config_.layers; ++l) {
    if ((l > 0 || layer == 0) && !visit(hooks, ids_.layer[l].resid_pre, resid_[l])) return {};
    if (!attention_forward(l, hooks)) return {};
    if (!mlp_forward(l, hooks)) return {};
  }
  if (!unembed(hooks)) return {};
  return tensor_view<const T>(logits_.data(), {batch_, positions_, index(config_.vocab)});
}

template <class T>
bool transformer<T>::embed(hook_set<T>& hooks) {
  const index d = config_.d_model;
  embed_.resize(rows(), d);
  pos_.resize(rows(), d);
  const const_matrix_map WE(p(embed_W_), config_.vocab, d), Wpos(p(pos_W_), config_.context, d);
  for (index n = 0; n < rows(); ++n) {
    embed_.row(n) = WE.row(ids_in_[std::size_t(n)]);
    pos_.row(n) = Wpos.row(first_ + n % positions_);
  }
  if (!visit(hooks, ids_.embed, embed_) || !visit(hooks, ids_.pos_embed, pos_)) return false;
  resid_[0] = embed_ + pos_;
  return visit(hooks, ids_.layer[0].resid_pre, resid_[0]);
}

template <class T>
bool transformer<T>::layer_norm_forward(hook_set<T>& hooks, const T* in, index count, const norm_ref& n, norm_stats& st,
                                        matrix<T>& out) {
  const index d = config_.d_model, w = n.w, b = n.b, groups = n.groups;
  const site_id scale_site = n.scale_site, normalized_site = n.normalized_site;
  std::vector<T>&mean = st.mean, &raw = st.raw, &scale = st.scale;
  out.resize(count, d);
  const const_rows_map x(in, count, d, Eigen::OuterStride<>(d));
  if (!config_.layer_norm) {
    out = x;
    return true;
  }
  mean.resize(std::size_t(count));
  raw.resize(std::size_t(count));
  detail::layer_norm_stats<T>(x, config_.layer_norm_eps, mean.data(), raw.data());
  scale = raw;
  if (groups > 0) {
    const index se[] = {batch_, positions_, groups}, ne[] = {batch_, positions_, groups, d};
    if (!visit(hooks, scale_site, scale.data(), se)) return false;
    detail::layer_norm_apply<T>(x, mean.data(), scale.data(), p(w), p(b), rows_map(out.data(), count, d, Eigen::OuterStride<>(d)));
    return visit(hooks, normalized_site, out.data(), ne);
  }
  const index se[] = {batch_, positions_};
  if (!visit(hooks, scale_site, scale.data(), se)) return false;
  detail::layer_norm_apply<T>(x, mean.data(), scale.data(), p(w), p(b), rows_map(out.data(), count, d, Eigen::OuterStride<>(d)));
  return visit(hooks, normalized_site, out);
}

template <class T>
bool transformer<T>::attention_forward(int l, hook_set<T>& hooks) {
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  const index N = rows(), d = config_.d_model, H = config_.heads, K = config_.key_value_heads(),
              dh = config_.d_head, G = config_.input_groups(), Tn = positions_;
  const matrix<T>& x = resid_[std::size_t(l)];

  const norm_ref ln1 = ln1_of(l);
  s.shared_input = config_.split_qkv_input && !hooks.wants(id.q_input) && !hooks.wants(id.k_input) &&
                   !hooks.wants(id.v_input) && !hooks.wants(ln1.scale_site) && !hooks.wants(ln1.normalized_site);
  if (s.shared_input) {
    if (!layer_norm_forward(hooks, x.data(), N, ungrouped(ln1), s.ln1, s.ln1_out)) return false;
  } else if (config_.split_qkv_input) {
    s.qkv_in.resize(N, G * d);
    for (index n = 0; n < N; ++n)
      for (index gi = 0; gi < G; ++gi) s.qkv_in.row(n).segment(gi * d, d) = x.row(n);
    if (!visit_heads(hooks, id.q_input, s.qkv_in.data(), H, d, G * d) ||
        !visit_heads(hooks, id.k_input, s.qkv_in.data() + H * d, K, d, G * d) ||
        !visit_heads(hooks, id.v_input, s.qkv_in.data() + (H + K) * d, K, d, G * d))
      return false;
    if (!layer_norm_forward(hooks, s.qkv_in.data(), N * G, ln1, s.ln1, s.ln1_out)) return false;
  } else if (!layer_norm_forward(hooks, x.data(), N, ln1, s.ln1, s.ln1_out)) {
    return false;
  }

  s.q.resize(N, H * dh);
  s.k.resize(N, K * dh);
  s.v.resize(N, K * dh);
  for (index h = 0; h < H; ++h) {
    s.q.middleCols(h * dh, dh).noalias() = attention_input(s, h) * const_matrix_map(p(w.W_Q) + h * d * dh, d, dh);
    s.q.middleCols(h * dh, dh).rowwise() += const_vector_map(p(w.b_Q) + h * dh, dh);
  }
  for (index kv = 0; kv < K; ++kv) {
    s.k.middleCols(kv * dh, dh).noalias() = attention_input(s, H + kv) * const_matrix_map(p(w.W_K) + kv * d * dh, d, dh);
    s.k.middleCols(kv * dh, dh).rowwise() += const_vector_map(p(w.b_K) + kv * dh, dh);
    s.v.middleCols(kv * dh, dh).noalias() =
        attention_input(s, H + K + kv) * const_matrix_map(p(w.W_V) + kv * d * dh, d, dh);
    s.v.middleCols(kv * dh, dh).rowwise() += const_vector_map(p(w.b_V) + kv * dh, dh);
  }
  if (!visit_heads(hooks, id.q, s.q.data(), H, dh, H * dh) || !visit_heads(hooks, id.k, s.k.data(), K, dh, K * dh) ||
      !visit_heads(hooks, id.v, s.v.data(), K, dh, K * dh))
    return false;

  // Queries attend to keys [0, first_ + Tn): in incremental mode the first_ kept from earlier
  // chunks (pass row b reads cached row b mod cached_rows_), then this pass's own, which a
  // committed chunk also keeps (as hooks left them).
  const index Tk = first_ + Tn, before = kv_capacity_ > 0 ? first_ : 0;
  if (kv_capacity_ > 0 && keep_kv_)
    for (index b = 0; b < batch_; ++b) {
      s.k_cache.middleRows(b * kv_capacity_ + first_, Tn) = s.k.middleRows(b * Tn, Tn);
      s.v_cache.middleRows(b * kv_capacity_ + first_, Tn) = s.v.middleRows(b * Tn, Tn);
    }
  // Only the last outputs_ positions wanted from the last block: from here on it runs there alone.
  if (l + 1 == config_.layers && outputs_ > 0 && outputs_ < Tn) keep_last_positions(s, l, outputs_);
  const index Tq = positions_, Nq = rows();  // query positions: Tn, or the last outputs_ of them
  s.pattern.resize(std::size_t(batch_ * H * Tq * Tk));
  [[maybe_unused]] const double attention_work =  // read only by OpenMP's if clause
      2.0 * double(batch_ * H * Tq * Tk * dh);
  const T scale = T(1) / std::sqrt(T(dh));
  const index per_group = H / K;
  MINT_PARALLEL_FOR(attention_work)
  for (index b = 0; b < batch_; ++b)
    for (index h = 0; h < H; ++h) {
      Eigen::Map<matrix<T>> P(s.pattern.data() + (b * H + h) * Tq * Tk, Tq, Tk);
      const auto q = s.q.block(b * Tq, h * dh, Tq, dh);
      const index kv = (h / per_group) * dh;
      if (before > 0)
        P.leftCols(before).noalias() =
            q * s.k_cache.block((b % cached_rows_) * kv_capacity_, kv, before, dh).transpose();
      P.rightCols(Tn).noalias() = q * s.k.block(b * Tn, kv, Tn, dh).transpose();
      P *= scale;
      detail::causal_softmax<T>(P, lengths_[std::size_t(b)], first_);
    }
  s.pattern_hooked = hooks.wants(id.pattern);
  if (s.pattern_hooked) {
    s.pattern_raw = s.pattern;  // the softmax's own output, for its backward
    const index pe[] = {batch_, H, Tq, Tk};
    if (!visit(hooks, id.pattern, s.pattern.data(), pe)) return false;
  }

  s.z.resize(Nq, H * dh);
  MINT_PARALLEL_FOR(attention_work)
  for (index b = 0; b < batch_; ++b)
    for (index h = 0; h < H; ++h) {
      const Eigen::Map<const matrix<T>> P(s.pattern.data() + (b * H + h) * Tq * Tk, Tq, Tk);
      auto z = s.z.block(b * Tq, h * dh, Tq, dh);
      const index kv = (h / per_group) * dh;
      z.noalias() = P.rightCols(Tn) * s.v.block(b * Tn, kv, Tn, dh);
      if (before > 0)
        z.noalias() += P.leftCols(before) * s.v_cache.block((b % cached_rows_) * kv_capacity_, kv, before, dh);
    }
  if (!visit_heads(hooks, id.z, s.z.data(), H, dh, H * dh)) return false;

  // attn_out sums the heads' results one head at a time, the same way whether or not
  // the per-head results are hooked, so reading them never changes a bit of the output.
  s.attn_out.resize(Nq, d);
  if (hooks.wants(id.result)) {
    s.result.resize(Nq, H * d);
    for (index h = 0; h < H; ++h)
      s.result.middleCols(h * d, d).noalias() = s.z.middleCols(h * dh, dh) * const_matrix_map(p(w.W_O) + h * dh * d, dh, d);
    if (!visit_heads(hooks, id.result, s.result.data(), H, d, H * d)) return false;
    // One pass over the results, row by row, in the same order of heads as below.
    for (index n = 0; n < Nq; ++n) {
      auto out = s.attn_out.row(n);
      out = s.result.row(n).segment(0, d);
      for (index h = 1; h < H; ++h) out += s.result.row(n).segment(h * d, d);
    }
  } else {
    for (index h = 0; h < H; ++h) {
      const auto product = s.z.middleCols(h * dh, dh) * const_matrix_map(p(w.W_O) + h * dh * d, dh, d);
      if (h == 0) s.attn_out.noalias() = product;
      else s.attn_out.noalias() += product;
    }
  }
  s.attn_out.rowwise() += const_vector_map(p(w.b_O), d);
  return visit(hooks, id.attn_out, s.attn_out);
}

template <class T>
void transformer<T>::keep_last_positions(layer_state& s, int l, index keep) {
  const index Tn = positions_, skip = Tn - keep;
  // Row b * keep + i takes row b * Tn + skip + i, never a later one than it writes: in place, in order.
  auto compact = [&](matrix<T>& m) {
    for (index b = 0; b < batch_; ++b)
      for (index i = 0; i < keep; ++i) m.row(b * keep + i) = m.row(b * Tn + skip + i);
    m.conservativeResize(batch_ * keep, Eigen::NoChange);
  };
  compact(s.q);
  compact(resid_[std::size_t(l)]);
  positions_ = keep;
  first_ += skip;
}

template <class T>
bool transformer<T>::mlp_forward(int l, hook_set<T>& hooks) {
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  matrix<T>& out = resid_[std::size_t(l) + 1];
  if (!config_.has_mlp()) {
    out = resid_[std::size_t(l)] + s.attn_out;
    return visit(hooks, id.resid_post, out);
  }
  const index d = config_.d_model, m = config_.d_mlp;
  s.resid_mid = resid_[std::size_t(l)] + s.attn_out;
  if (!visit(hooks, id.resid_mid, s.resid_mid)) return false;
  s.mlp_in = s.resid_mid;
  if (!visit(hooks, id.mlp_in, s.mlp_in)) return false;
  if (!layer_norm_forward(hooks, s.mlp_in.data(), rows(), ln2_of(l), s.ln2, s.ln2_out))
    return false;
  s.pre.noalias() = s.ln2_out * const_matrix_map(p(w.W_in), d, m);
  s.pre.rowwise() += const_vector_map(p(w.b_in), m);
  if (!visit(hooks, id.mlp_pre, s.pre)) return false;
  detail::activate(config_.activation, s.pre, s.post);
  if (!visit(hooks, id.mlp_post, s.post)) return false;
  s.mlp_out.noalias() = s.post * const_matrix_map(p(w.W_out), m, d);
  s.mlp_out.rowwise() += const_vector_map(p(w.b_out), d);
  if (!visit(hooks, id.mlp_out, s.mlp_out)) return false;
  out = s.resid_mid + s.mlp_out;
  return visit(hooks, id.resid_post, out);
}

template <class T>
bool transformer<T>::unembed(hook_set<T>& hooks) {
  const index d = config_.d_model, V = config_.vocab;
  const matrix<T>& x = resid_.back();
  if (!layer_norm_forward(hooks, x.data(), rows(), final_norm(), final_norm_, final_out_))
    return false;
  logits_.noalias() = final_out_ * const_matrix_map(p(unembed_W_), d, V);
  logits_.rowwise() += const_vector_map(p(unembed_b_), V);
  return visit(hooks, ids_.logits, logits_);
}

template <class T>
bool transformer<T>::layer_norm_backward(hook_set<T>& hooks, const T* in, index count, const norm_ref& n,
                                         const norm_stats& st, matrix<T>& d_out, matrix<T>& d_in, T* grad, index shared) {
  const index d = config_.d_model, w = n.w, b = n.b, groups = n.groups;
  const site_id scale_site = n.scale_site, normalized_site = n.normalized_site;
  const std::vector<T>&mean = st.mean, &raw = st.raw, &scale = st.scale;
  d_in.resize(count, d);
  if (!config_.layer_norm) {
    d_in = d_out;
    return true;
  }
  if (groups > 0) {
    const index ne[] = {batch_, positions_, groups, d};
    if (!visit(hooks, normalized_site, d_out.data(), ne)) return false;
  } else if (!visit(hooks, normalized_site, d_out)) {
    return false;
  }
  const const_rows_map x(in, count / shared, d, Eigen::OuterStride<>(d)),
      dout(d_out.data(), count, d, Eigen::OuterStride<>(d));
  d_scale_.resize(std::size_t(count));
  detail::layer_norm_backward_scale<T>(x, mean.data(), scale.data(), p(w), dout, d_scale_.data(), g(grad, w),
                                       g(grad, b), shared);
  const index se2[] = {batch_, positions_}, se3[] = {batch_, positions_, groups};
  if (!visit(hooks, scale_site, d_scale_.data(), groups > 0 ? std::span<const index>(se3) : std::span<const index>(se2)))
    return false;
  detail::layer_norm_backward_input<T>(x, mean.data(), scale.data(), raw.data(), p(w), dout, d_scale_.data(),
                                       rows_map(d_in.data(), count, d, Eigen::OuterStride<>(d)), false, shared);
  return true;
}

template <class T>
bool transformer<T>::unembed_backward(hook_set<T>& hooks, T* grad) {
  const index d = config_.d_model, V = config_.vocab;
  if (!visit(hooks, ids_.logits, d_logits_)) return false;
  d_final_out_.noalias() = d_logits_ * const_matrix_map(p(unembed_W_), d, V).transpose();
  if (grad) {
    Eigen::Map<matrix<T>>(grad + unembed_W_, d, V).noalias() += final_out_.transpose() * d_logits_;
    vector_map(grad + unembed_b_, V) += d_logits_.colwise().sum();
  }
  return layer_norm_backward(hooks, resid_.back().data(), rows(), final_norm(), final_norm_, d_final_out_, d_resid_,
                             grad);
}

template <class T>
bool transformer<T>::mlp_backward(int l, hook_set<T>& hooks, T* grad) {
  if (!config_.has_mlp()) return true;  // d_resid passes to the attention block unchanged
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  const index d = config_.d_model, m = config_.d_mlp;
  d_mlp_out_ = d_resid_;
  if (!visit(hooks, id.mlp_out, d_mlp_out_)) return false;
  if (grad) {
    Eigen::Map<matrix<T>>(grad + w.W_out, m, d).noalias() += s.post.transpose() * d_mlp_out_;
    vector_map(grad + w.b_out, d) += d_mlp_out_.colwise().sum();
  }
  d_post_.noalias() = d_mlp_out_ * const_matrix_map(p(w.W_out), m, d).transpose();
  if (!visit(hooks, id.mlp_post, d_post_)) return false;
  detail::activate_backward(config_.activation, s.pre, d_post_, d_pre_);
  if (!visit(hooks, id.mlp_pre, d_pre_)) return false;
  if (grad) {
    Eigen::Map<matrix<T>>(grad + w.W_in, d, m).noalias() += s.ln2_out.transpose() * d_pre_;
    vector_map(grad + w.b_in, m) += d_pre_.colwise().sum();
  }
  d_ln2_out_.noalias() = d_pre_ * const_matrix_map(p(w.W_in), d, m).transpose();
  if (!layer_norm_backward(hooks, s.mlp_in.data(), rows(), ln2_of(l), s.ln2, d_ln2_out_, d_ln2_in_, grad))
    return false;
  if (!visit(hooks, id.mlp_in, d_ln2_in_)) return false;
  d_resid_ += d_ln2_in_;
  return visit(hooks, id.resid_mid, d_resid_);
}

template <class T>
bool transformer<T>::attention_backward(int l, hook_set<T>& hooks, T* grad) {
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  const index N = rows(), d = config_.d_model, H = config_.heads, K = config_.key_value_heads(),
              dh = config_.d_head, G = config_.input_groups(), Tn = positions_, per_group = H / K;

  d_attn_out_ = d_resid_;
  if (!visit(hooks, id.attn_out, d_attn_out_)) return false;
  if (grad) vector_map(grad + w.b_O, d) += d_attn_out_.colwise().sum();
  // Per head, as in the forward pass, so hooking the results changes no bit of the gradients.
  d_z_.resize(N, H * dh);
  const bool hooked = hooks.wants(id.result);
  if (hooked) {
    d_result_.resize(N, H * d);
    for (index h = 0; h < H; ++h) d_result_.middleCols(h * d, d) = d_attn_out_;
    if (!visit_heads(hooks, id.result, d_result_.data(), H, d, H * d)) return false;
  }
  for (index h = 0; h < H; ++h) {
    const_matrix_map WO(p(w.W_O) + h * dh * d, dh, d);
    const auto d_result_h = hooked ? d_result_.middleCols(h * d, d) : d_attn_out_.middleCols(0, d);
    d_z_.middleCols(h * dh, dh).noalias() = d_result_h * WO.transpose();
    if (grad)
      Eigen::Map<matrix<T>>(grad + w.W_O + h * dh * d, dh, d).noalias() += s.z.middleCols(h * dh, dh).transpose() * d_result_h;
  }
  if (!visit_heads(hooks, id.z, d_z_.data(), H, dh, H * dh)) return false;

  // Through z = P v, then the softmax, then the scores q k^T / sqrt(dh).
  [[maybe_unused]] const double attention_work =  // read only by OpenMP's if clause
      4.0 * double(batch_ * H * Tn * Tn * dh);
  d_pattern_.resize(s.pattern.size());
  d_q_.setZero(N, H * dh);
  d_k_.setZero(N, K * dh);
  d_v_.setZero(N, K * dh);
  MINT_PARALLEL_FOR(attention_work)
  for (index b = 0; b < batch_; ++b)
    for (index h = 0; h < H; ++h) {
      const index kv = h / per_group;
      const Eigen::Map<const matrix<T>> P(s.pattern.data() + (b * H + h) * Tn * Tn, Tn, Tn);
      Eigen::Map<matrix<T>> dP(d_pattern_.data() + (b * H + h) * Tn * Tn, Tn, Tn);
      const auto dZ = d_z_.block(b * Tn, h * dh, Tn, dh);
      dP.noalias() = dZ * s.v.block(b * Tn, kv * dh, Tn, dh).transpose();
      d_v_.block(b * Tn, kv * dh, Tn, dh).noalias() += P.transpose() * dZ;
    }
  const index pe[] = {batch_, H, Tn, Tn};
  if (!visit(hooks, id.pattern, d_pattern_.data(), pe)) return false;
  const T scale = T(1) / std::sqrt(T(dh));
  const std::vector<T>& softmax_out = s.pattern_hooked ? s.pattern_raw : s.pattern;
  MINT_PARALLEL_FOR(attention_work)
  for (index b = 0; b < batch_; ++b)
    for (index h = 0; h < H; ++h) {
      const index kv = h / per_group;
      const Eigen::Map<const matrix<T>> P(softmax_out.data() + (b * H + h) * Tn * Tn, Tn, Tn);
      Eigen::Map<matrix<T>> dS(d_pattern_.data() + (b * H + h) * Tn * Tn, Tn, Tn);
      for (index i = 0; i < Tn; ++i) {
        const T inner = P.row(i).dot(dS.row(i));
        dS.row(i) = (P.row(i).array() * (dS.row(i).array() - inner)).matrix();
      }
      dS *= scale;
      d_q_.block(b * Tn, h * dh, Tn, dh).noalias() = dS * s.k.block(b * Tn, kv * dh, Tn, dh);
      d_k_.block(b * Tn, kv * dh, Tn, dh).noalias() += dS.transpose() * s.q.block(b * Tn, h * dh, Tn, dh);
    }
  if (!visit_heads(hooks, id.q, d_q_.data(), H, dh, H * dh) || !visit_heads(hooks, id.k, d_k_.data(), K, dh, K * dh) ||
      !visit_heads(hooks, id.v, d_v_.data(), K, dh, K * dh))
    return false;

  // Into the (normalized) attention inputs and the q/k/v weights. Heads that read one shared
  // input, whose own input gradients no hook reads, add theirs into one buffer: one layer-norm
  // backward then serves them all.
  const norm_ref ln1 = ln1_of(l);
  const bool summed = !config_.split_qkv_input ||
                      (s.shared_input && !hooks.wants(id.q_input) && !hooks.wants(id.k_input) &&
                       !hooks.wants(id.v_input) && !hooks.wants(ln1.scale_site) && !hooks.wants(ln1.normalized_site));
  const index input_rows = summed ? N : N * G;
  d_ln1_out_.setZero(input_rows, d);
  auto d_input = [&](index group) {
    if (summed) return rows_map(d_ln1_out_.data(), N, d, Eigen::OuterStride<>(d));
    return rows_map(d_ln1_out_.data() + group * d, N, d, Eigen::OuterStride<>(G * d));
  };
  auto project = [&](const matrix<T>& d_act, index head, index group, index W, index B) {
    const_matrix_map Wh(p(W) + head * d * dh, d, dh);
    const auto dh_block = d_act.middleCols(head * dh, dh);
    d_input(group).noalias() += dh_block * Wh.transpose();
    if (grad) {
      Eigen::Map<matrix<T>>(grad + W + head * d * dh, d, dh).noalias() += attention_input(s, group).transpose() * dh_block;
      vector_map(grad + B + head * dh, dh) += dh_block.colwise().sum();
    }
  };
  for (index h = 0; h < H; ++h) project(d_q_, h, h, w.W_Q, w.b_Q);
  for (index kv = 0; kv < K; ++kv) {
    project(d_k_, kv, H + kv, w.W_K, w.b_K);
    project(d_v_, kv, H + K + kv, w.W_V, w.b_V);
  }
  if (summed) {
    if (!layer_norm_backward(hooks, resid_[std::size_t(l)].data(), N, ungrouped(ln1), s.ln1, d_ln1_out_, d_ln1_in_, grad))
      return false;
    d_resid_ += d_ln1_in_;
    return true;
  }
  // Per-head input gradients; under a shared input each residual row serves G rows of d_ln1_out_.
  const T* ln_in = s.shared_input ? resid_[std::size_t(l)].data() : s.qkv_in.data();
  if (!layer_norm_backward(hooks, ln_in, input_rows, ln1, s.ln1, d_ln1_out_, d_ln1_in_, grad, s.shared_input ? G : 1))
    return false;
  if (!visit_heads(hooks, id.q_input, d_ln1_in_.data(), H, d, G * d) ||
      !visit_heads(hooks, id.k_input, d_ln1_in_.data() + H * d, K, d, G * d) ||
      !visit_heads(hooks, id.v_input, d_ln1_in_.data() + (H + K) * d, K, d, G * d))
    return false;
  for (index n = 0; n < N; ++n)
    for (index gi = 0; gi < G; ++gi) d_resid_.row(n) += d_ln1_in_.row(n * G + gi);
  return true;
}

template <class T>
void transformer<T>::embed_backward(hook_set<T>& hooks, T* grad) {
  const index d = config_.d_model;
  d_embed_ = d_resid_;
  d_pos_ = d_resid_;
  if (!visit(hooks, ids_.pos_embed, d_pos_) || !visit(hooks, ids_.embed, d_embed_) || !grad) return;
  Eigen::Map<matrix<T>> dWE(grad + embed_W_, config_.vocab, d), dWpos(grad + pos_W_, config_.context, d);
  for (index n = 0; n < rows(); ++n) {
    dWE.row(ids_in_[std::size_t(n)]) += d_embed_.row(n);
    dWpos.row(n % positions_) += d_pos_.row(n);
  }
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::toy

/// The cores this header compiles once (mint/core/compiled.hpp): the model over float and double.
#define MINT_CORES_TOY_TRANSFORMER(CORE)     \
  CORE(class mint::toy::transformer<float>) \
  CORE(class mint::toy::transformer<double>)
MINT_CORES_TOY_TRANSFORMER(MINT_CORE)
