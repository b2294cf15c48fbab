// A recurrent reference runtime: a small LSTM language model in Eigen with a site
// per gate, cell and hidden state, an exact backward through time (BPTT) to every
// site and parameter, and chunked evaluation that carries h and c between chunks.
// Recurrent sites are called once per position with a [batch, 1, ...] view, so a
// hook that changes h_t or c_t changes step t + 1 and everything after it. A
// recurrent state has no d_model of its own: its feature axis is axis::d_model
// with extent d_hidden (4 * d_hidden for the gates). Forward cost O(batch * pos *
// (layers * (d_in + d_hidden) * 4 * d_hidden + d_hidden * vocab)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/parameters.hpp"
#include "mint/core/random.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/tensor_view.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/sequence.hpp"
#include "mint/model/site.hpp"

namespace mint::toy {

/// The shape of a toy LSTM.
struct lstm_config {
  int vocab = 0;
  int d_model = 0;   ///< embedding width (layer 0's input)
  int d_hidden = 0;  ///< h and c per layer (later layers' input)
  int layers = 1;
  int context = 0;   ///< longest sequence, for checks (an LSTM has no positional table)

  void validate() const {
    const char* fn = "mint::toy::lstm";
    auto need = [&](bool ok, const char* what, int value, const char* needs) {
      if (!ok) throw argument_error(fn, std::string("config.") + what, detail::str("is ", value), needs);
    };
    need(vocab > 0, "vocab", vocab, "needs > 0");
    need(d_model > 0, "d_model", d_model, "needs > 0");
    need(d_hidden > 0, "d_hidden", d_hidden, "needs > 0");
    need(layers > 0, "layers", layers, "needs > 0");
    need(context > 0, "context", context, "needs > 0");
  }
};

/// A small LSTM: a mint::differentiable_runtime and a mint::incremental_runtime.
/// Gates = x_t W_ih + h_{t-1} W_hh + b, split i, f, g, o (PyTorch's order); i, f, o
/// sigmoid, g tanh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t); h_0 = c_0 = 0.
template <class T = float>
class lstm {
public:
  using scalar_type = T;

  /// A model of that shape with zero weights; see initialize().
  explicit lstm(const lstm_config& config);

  /// Random weights: W_E ~ N(0, 1), the others N(0, 1 / fan_in) (fan_in = their first extent),
  /// so pre-activations start near unit scale; biases zero but the forget gate's, 1, so the
  /// cell remembers from the start (Jozefowicz et al. 2015).
  void initialize(std::uint64_t seed);

  const lstm_config& config() const noexcept { return config_; }
  /// Every site, in the order a chunk reaches them (recurrent sites once per position).
  const site_table& sites() const noexcept { return *sites_; }
  /// "embed.W_E", "blocks.L.lstm.W_ih" [in, 4 d_hidden], "blocks.L.lstm.W_hh", "blocks.L.lstm.b", "unembed.W_U", "unembed.b_U".
  parameter_store<T>& parameters() noexcept { return params_; }
  const parameter_store<T>& parameters() const noexcept { return params_; }

  /// Runs the whole sequence from a zero state (reset(), then one chunk), calling hooks at each
  /// site; returns logits [batch, pos, vocab], valid until the next call. An empty view means a
  /// hook stopped the pass. forward_chunk() may continue the sequence afterwards.
  tensor_view<const T> forward(const token_batch& tokens, hook_set<T>& hooks);
  tensor_view<const T> forward(const token_batch& tokens);

  /// Forgets the sequence: h and c back to zero.
  void reset() noexcept { sequence_.reset(); }

  /// Positions of the current sequence the state has consumed: where the next chunk starts.
  index cached_positions() const noexcept { return sequence_.next_position(); }

  /// Runs the next chunk.positions() positions (absolute [t0, t0 + n), t0 = cached_positions())
  /// from the h and c the last chunk left; hooks see first_position t0 (t0 + t per step at the
  /// recurrent sites). Returns the chunk's logits [batch, n, vocab], valid until the next call.
  /// The first chunk after reset() fixes the batch and needs every row to hold a token; later, a
  /// row whose chunk length is below n has ended, and its state stays as its last token left it.
  /// There is no backward after a chunk.
  tensor_view<const T> forward_chunk(const token_batch& chunk, hook_set<T>& hooks);
  tensor_view<const T> forward_chunk(const token_batch& chunk);

  /// A branch off the sequence: runs `chunk` from the state the cached positions left, without
  /// keeping it (cached_positions() and the state stay). chunk.batch() may be k times the
  /// sequence's rows: row r starts from row r mod rows' state. `layer` is -1 and `resid` empty:
  /// an LSTM has no residual stream to resume at.
  tensor_view<const T> forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                      hook_set<T>& hooks);

  /// Propagates d(metric)/d(logits) back through the last forward() (through time), calling grad
  /// hooks with d(metric)/d(activation): logits first, then each layer from the last, its
  /// recurrent sites once per position from t = T - 1 down to 0, then the embedding. Adds
  /// parameter gradients into `gradients` when given.
  void backward(tensor_view<const T> dlogits, hook_set<T>& grad_hooks, parameter_store<T>* gradients = nullptr);
  void backward(tensor_view<const T> dlogits, parameter_store<T>& gradients);

  /// The same model in another scalar type (for example double, for gradient checks).
  template <class U>
  lstm<U> cast() const {
    lstm<U> out(config_);
    auto dst = out.parameters().flat();
    const auto src = params_.flat();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i] = U(src[i]);
    return out;
  }

private:
  struct layer_sites {
    site_id gates_pre = -1, gates = -1, c = -1, h = -1;
  };
  struct site_ids {
    site_id embed = -1, logits = -1;
    std::vector<layer_sites> layer;
  };
  // Offsets of each parameter in the flat store (stable under copies of the model).
  struct layer_params {
    index W_ih, W_hh, b;
  };
  struct layer_state {
    matrix<T> pre, gates, c, h;  // this pass, [batch * pos, 4 d_hidden or d_hidden], row b * pos + t
    matrix<T> h0, c0;            // [batch, d_hidden]: the state the pass started from, then the one it left
  };

  using rows_map = Eigen::Map<matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
  using const_rows_map = Eigen::Map<const matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
  using const_matrix_map = Eigen::Map<const matrix<T>>;
  using const_vector_map = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
  using vector_map = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;

  index rows() const noexcept { return batch_ * positions_; }
  const T* p(index offset) const noexcept { return params_.flat().data() + offset; }
  static T sigmoid(T x) noexcept { return T(1) / (T(1) + std::exp(-x)); }
  /// Whether column k of the gates is g's (tanh); i, f and o are sigmoids.
  bool is_g(index k) const noexcept { return k >= 2 * config_.d_hidden && k < 3 * config_.d_hidden; }

  /// Rows of every batch row at local position t of a [batch * pos, width] buffer: [batch, width].
  rows_map step(matrix<T>& m, index t) const {
    return rows_map(m.data() + t * m.cols(), batch_, m.cols(), Eigen::OuterStride<>(positions_ * m.cols()));
  }
  const_rows_map const_step(const matrix<T>& m, index t) const {
    return const_rows_map(m.data() + t * m.cols(), batch_, m.cols(), Eigen::OuterStride<>(positions_ * m.cols()));
  }

  // ---- declarations ----------------------------------------------------------------

  void declare_parameters();
  void declare_sites();

  // ---- checks ------------------------------------------------------------------------

  // ---- forward -----------------------------------------------------------------------

  /// Calls the hooks at a site held in a [batch * pos, width] buffer: the whole chunk, or with
  /// t >= 0 only local position t (a [batch, 1, width] view into the buffer, nothing copied).
  bool visit(hook_set<T>& hooks, site_id id, matrix<T>& m, index t = -1) {
    if (!hooks.wants(id)) return true;
    const index w = m.cols();
    if (t < 0) {
      const index extents[] = {batch_, positions_, w};
      return hooks.call(id, tensor_view<T>(m.data(), extents), lengths_, {.first_position = first_});
    }
    const index extents[] = {batch_, 1, w}, strides[] = {positions_ * w, w, 1};
    return hooks.call(id, tensor_view<T>(m.data() + t * w, extents, strides), lengths_, {.first_position = first_ + t});
  }

  /// One pass over absolute positions [first, first + n) of rows with absolute lengths `lengths`,
  /// from the state in each layer's h0 and c0 (left there for the next chunk); an empty view
  /// when a hook stopped it.
  tensor_view<const T> run(const token_batch& tokens, hook_set<T>& hooks, std::span<const index> lengths, index first);
  /// A new sequence of `batch` rows: h and c zero.
  void start_state(index batch) {
    states_.resize(std::size_t(config_.layers));
    for (auto& s : states_) s.h0.setZero(batch, config_.d_hidden), s.c0.setZero(batch, config_.d_hidden);
  }
  bool layer_forward(int l, hook_set<T>& hooks);

  // ---- backward ----------------------------------------------------------------------

  /// Backward through one layer, d(metric)/d(h) from above in d_above_; leaves d(metric)/d(input) there.
  bool layer_backward(int l, hook_set<T>& hooks, T* grad);

  lstm_config config_;
  parameter_store<T> params_;
  std::shared_ptr<const site_table> sites_;  // shared by copies, so hook sets stay valid
  site_ids ids_;
  std::vector<layer_params> layer_;
  index embed_W_ = 0, unembed_W_ = 0, unembed_b_ = 0;

  // The last pass (a whole sequence or a chunk), kept for backward; buffers are reused across calls.
  index batch_ = 0, positions_ = 0;  // rows and positions of the last pass
  index first_ = 0;                  // absolute position of the pass's first position
  std::vector<index> lengths_;       // each pass row's absolute valid length
  chunked_sequence sequence_;        // row lengths and where the next chunk starts
  bool forward_done_ = false;
  std::vector<token> ids_in_;
  matrix<T> embed_, logits_;
  std::vector<layer_state> states_;
  std::vector<std::pair<matrix<T>, matrix<T>>> saved_;  // the sequence's h0, c0 per layer during a branch
  // Backward buffers.
  matrix<T> d_logits_, d_above_, d_h_, d_c_, d_gates_, d_pre_, d_c_next_;
};

#if MINT_CORE_BODIES
template <class T>
lstm<T>::lstm(const lstm_config& config)
    : config_(config), sequence_(config.context, config.vocab) {
  config_.validate();
  declare_parameters();
  declare_sites();
}

template <class T>
void lstm<T>::initialize(std::uint64_t seed) {
  rng r(seed);
  for (const auto& e : params_.entries()) {
    auto v = params_.view_of(e);
    if (e.name.find(".W_") != std::string::npos)
      r.fill_normal(v, 0.0, e.name == "embed.W_E" ? 1.0 : 1.0 / std::sqrt(double(e.extents[0])));
    else
      std::fill(v.data(), v.data() + v.size(), T(0));
  }
  const index h = config_.d_hidden;
  for (const auto& w : layer_) std::fill(params_.flat().data() + w.b + h, params_.flat().data() + w.b + 2 * h, T(1));
}

template <class T>
tensor_view<const T> lstm<T>::forward(const token_batch& tokens, hook_set<T>& hooks) {
  const char* fn = "mint::toy::lstm::forward";
  check_forward_hooks(hooks, *sites_, fn);
  sequence_.start(tokens, fn);
  forward_done_ = false;
  start_state(tokens.batch());
  const auto logits = run(tokens, hooks, sequence_.lengths(), 0);
  sequence_.finish(0, tokens.positions(), logits.empty());
  forward_done_ = !logits.empty();
  return logits;
}

template <class T>
tensor_view<const T> lstm<T>::forward(const token_batch& tokens) {
  hook_set<T> none;
  return forward(tokens, none);
}

template <class T>
tensor_view<const T> lstm<T>::forward_chunk(const token_batch& chunk, hook_set<T>& hooks) {
  const char* fn = "mint::toy::lstm::forward_chunk";
  check_forward_hooks(hooks, *sites_, fn);
  const index t0 = sequence_.append(chunk, fn);
  forward_done_ = false;
  if (t0 == 0) start_state(chunk.batch());
  const auto logits = run(chunk, hooks, sequence_.lengths(), t0);
  sequence_.finish(t0, chunk.positions(), logits.empty());
  return logits;
}

template <class T>
tensor_view<const T> lstm<T>::forward_branch(int layer, tensor_view<const T> resid, const token_batch& chunk,
                                             hook_set<T>& hooks) {
  const char* fn = "mint::toy::lstm::forward_branch";
  check_forward_hooks(hooks, *sites_, fn);
  if (layer != -1 || !resid.empty())
    throw argument_error(fn, "layer", detail::str("is ", layer, resid.empty() ? "" : " with a residual"),
                         "needs -1 and an empty resid: an LSTM has no residual stream to resume at");
  const std::vector<index> lengths = sequence_.branch(chunk, fn);
  forward_done_ = false;
  // Each copy starts from its row's carried state; the sequence's own state is put back after.
  const index rows_before = sequence_.batch();
  saved_.resize(states_.size());
  for (std::size_t l = 0; l < states_.size(); ++l) {
    layer_state& st = states_[l];
    saved_[l] = {st.h0, st.c0};
    st.h0.resize(chunk.batch(), config_.d_hidden);
    st.c0.resize(chunk.batch(), config_.d_hidden);
    for (index r = 0; r < chunk.batch(); ++r) {
      st.h0.row(r) = saved_[l].first.row(r % rows_before);
      st.c0.row(r) = saved_[l].second.row(r % rows_before);
    }
  }
  auto restore = [&] {
    for (std::size_t l = 0; l < states_.size(); ++l) {
      states_[l].h0.swap(saved_[l].first);
      states_[l].c0.swap(saved_[l].second);
    }
  };
  try {  // a hook that throws must not leave the sequence with a branch's state
    const auto logits = run(chunk, hooks, lengths, sequence_.next_position());
    restore();
    return logits;
  } catch (...) {
    restore();
    throw;
  }
}

template <class T>
tensor_view<const T> lstm<T>::forward_chunk(const token_batch& chunk) {
  hook_set<T> none;
  return forward_chunk(chunk, none);
}

template <class T>
void lstm<T>::backward(tensor_view<const T> dlogits, hook_set<T>& grad_hooks, parameter_store<T>* gradients) {
  const char* fn = "mint::toy::lstm::backward";
  if (!forward_done_)
    throw argument_error(fn, "model", "has no completed forward pass",
                         "needs forward() to run to the end first (forward_chunk() keeps no backward state)");
  if (dlogits.rank() != 3 || dlogits.extent(0) != batch_ || dlogits.extent(1) != positions_ ||
      dlogits.extent(2) != config_.vocab)
    throw shape_error(fn, "dlogits", "has extents " + detail::shape_string(dlogits.extents()),
                      detail::str("needs [", batch_, ", ", positions_, ", ", config_.vocab, "], the last logits"));
  if (grad_hooks.sites() && grad_hooks.sites() != sites_.get())
    throw argument_error(fn, "grad_hooks", "were made for another runtime's sites",
                         "needs hook_set(model.sites(), hook_phase::backward)");
  if (gradients && gradients->size() != params_.size())
    throw shape_error(fn, "gradients", detail::str("hold ", gradients->size(), " values"),
                      detail::str("needs the parameters' layout (", params_.size(), "), e.g. parameters().zeros_like()"));
  T* grad = gradients ? gradients->flat().data() : nullptr;
  const index Hd = config_.d_hidden, V = config_.vocab;
  d_logits_.resize(rows(), V);
  copy(dlogits, tensor_view<T>(d_logits_.data(), {batch_, positions_, index(V)}));
  if (!visit(grad_hooks, ids_.logits, d_logits_)) return;
  const matrix<T>& top = states_.back().h;
  if (grad) {
    Eigen::Map<matrix<T>>(grad + unembed_W_, Hd, V).noalias() += top.transpose() * d_logits_;
    vector_map(grad + unembed_b_, V) += d_logits_.colwise().sum();
  }
  d_above_.noalias() = d_logits_ * const_matrix_map(p(unembed_W_), Hd, V).transpose();
  for (int l = config_.layers - 1; l >= 0; --l)
    if (!layer_backward(l, grad_hooks, grad)) return;
  // d_above_ now holds d(metric)/d(embedding).
  if (!visit(grad_hooks, ids_.embed, d_above_) || !grad) return;
  Eigen::Map<matrix<T>> dWE(grad + embed_W_, config_.vocab, config_.d_model);
  for (index n = 0; n < rows(); ++n) dWE.row(ids_in_[std::size_t(n)]) += d_above_.row(n);
}

template <class T>
void lstm<T>::backward(tensor_view<const T> dlogits, parameter_store<T>& gradients) {
  hook_set<T> none;
  backward(dlogits, none, &gradients);
}

template <class T>
void lstm<T>::declare_parameters() {
  const index V = config_.vocab, d = config_.d_model, h = config_.d_hidden;
  auto offset = [&](const std::string& name, std::vector<index> extents) {
    params_.add(name, std::move(extents));
    return params_.entries().back().offset;
  };
  embed_W_ = offset("embed.W_E", {V, d});
  for (int l = 0; l < config_.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".lstm.";
    layer_params lp{};
    lp.W_ih = offset(b + "W_ih", {l == 0 ? d : h, 4 * h});
    lp.W_hh = offset(b + "W_hh", {h, 4 * h});
    lp.b = offset(b + "b", {4 * h});
    layer_.push_back(lp);
  }
  unembed_W_ = offset("unembed.W_U", {h, V});
  unembed_b_ = offset("unembed.b_U", {V});
}

template <class T>
void lstm<T>::declare_sites() {
  auto table = std::make_shared<site_table>();
  const index d = config_.d_model, h = config_.d_hidden, V = config_.vocab;
  using a = axis;
  auto add = [&](std::string name, int layer, site_role role, axis last, index width) {
    return table->add({std::move(name), layer, role, 0, 0, {a::batch, a::pos, last}, {0, 0, width}, full_access});
  };
  ids_.embed = add("hook_embed", -1, site_role::embed, a::d_model, d);
  for (int l = 0; l < config_.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    layer_sites s;
    s.gates_pre = add(b + "hook_gates_pre", l, site_role::other, a::d_model, 4 * h);
    s.gates = add(b + "hook_gates", l, site_role::other, a::d_model, 4 * h);
    s.c = add(b + "hook_c", l, site_role::other, a::d_model, h);
    s.h = add(b + "hook_h", l, site_role::other, a::d_model, h);
    ids_.layer.push_back(s);
  }
  ids_.logits = add("hook_logits", -1, site_role::logits, a::vocab, V);
  sites_ = std::move(table);
}

template <class T>
tensor_view<const T> lstm<T>::run(const token_batch& tokens, hook_set<T>& hooks, std::span<const index> lengths,
                                  index first) {
  const index d = config_.d_model, V = config_.vocab, Hd = config_.d_hidden;
  batch_ = tokens.batch();
  positions_ = tokens.positions();
  first_ = first;
  lengths_.assign(lengths.begin(), lengths.end());
  ids_in_.assign(std::size_t(rows()), 0);
  for (index b = 0; b < batch_; ++b)
    for (index t = 0; t < positions_; ++t) ids_in_[std::size_t(b * positions_ + t)] = tokens(b, t);

  embed_.resize(rows(), d);
  const const_matrix_map WE(p(embed_W_), config_.vocab, d);
  for (index n = 0; n < rows(); ++n) embed_.row(n) = WE.row(ids_in_[std::size_t(n)]);
  bool going = visit(hooks, ids_.embed, embed_);
  for (int l = 0; going && l < config_.layers; ++l) going = layer_forward(l, hooks);
  if (going) {
    logits_.noalias() = states_.back().h * const_matrix_map(p(unembed_W_), Hd, V);
    logits_.rowwise() += const_vector_map(p(unembed_b_), V);
    going = visit(hooks, ids_.logits, logits_);
  }
  if (!going) return {};
  return tensor_view<const T>(logits_.data(), {batch_, positions_, index(V)});
}

template <class T>
bool lstm<T>::layer_forward(int l, hook_set<T>& hooks) {
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  const index Hd = config_.d_hidden, in = l == 0 ? config_.d_model : Hd;
  const matrix<T>& x = l == 0 ? embed_ : states_[std::size_t(l) - 1].h;
  // The input projection of the whole chunk in one product; only the recurrence is per step.
  s.pre.noalias() = x * const_matrix_map(p(w.W_ih), in, 4 * Hd);
  s.pre.rowwise() += const_vector_map(p(w.b), 4 * Hd);
  s.gates.resize(rows(), 4 * Hd);
  s.c.resize(rows(), Hd);
  s.h.resize(rows(), Hd);
  const const_matrix_map Whh(p(w.W_hh), Hd, 4 * Hd);
  for (index t = 0; t < positions_; ++t) {
    // h and c of the previous step, as its hooks left them (the carried state at t = 0).
    const const_rows_map h_prev = t == 0 ? const_rows_map(s.h0.data(), batch_, Hd, Eigen::OuterStride<>(Hd))
                                         : const_step(s.h, t - 1);
    const const_rows_map c_prev = t == 0 ? const_rows_map(s.c0.data(), batch_, Hd, Eigen::OuterStride<>(Hd))
                                         : const_step(s.c, t - 1);
    rows_map pre = step(s.pre, t), gates = step(s.gates, t), c = step(s.c, t), h = step(s.h, t);
    pre.noalias() += h_prev * Whh;
    if (!visit(hooks, id.gates_pre, s.pre, t)) return false;
    for (index b = 0; b < batch_; ++b)
      for (index k = 0; k < 4 * Hd; ++k) gates(b, k) = is_g(k) ? std::tanh(pre(b, k)) : sigmoid(pre(b, k));
    if (!visit(hooks, id.gates, s.gates, t)) return false;
    for (index b = 0; b < batch_; ++b)
      for (index j = 0; j < Hd; ++j) c(b, j) = gates(b, Hd + j) * c_prev(b, j) + gates(b, j) * gates(b, 2 * Hd + j);
    if (!visit(hooks, id.c, s.c, t)) return false;
    for (index b = 0; b < batch_; ++b)
      for (index j = 0; j < Hd; ++j) h(b, j) = gates(b, 3 * Hd + j) * std::tanh(c(b, j));
    if (!visit(hooks, id.h, s.h, t)) return false;
  }
  // Carry each row's state from its last valid position of the chunk; an ended row keeps its own.
  for (index b = 0; b < batch_; ++b) {
    const index last = std::min(positions_, lengths_[std::size_t(b)] - first_) - 1;
    if (last < 0) continue;
    s.h0.row(b) = s.h.row(b * positions_ + last);
    s.c0.row(b) = s.c.row(b * positions_ + last);
  }
  return true;
}

template <class T>
bool lstm<T>::layer_backward(int l, hook_set<T>& hooks, T* grad) {
  layer_state& s = states_[std::size_t(l)];
  const layer_sites& id = ids_.layer[std::size_t(l)];
  const layer_params& w = layer_[std::size_t(l)];
  const index Hd = config_.d_hidden, in = l == 0 ? config_.d_model : Hd, Tn = positions_;
  const matrix<T>& x = l == 0 ? embed_ : states_[std::size_t(l) - 1].h;
  const const_matrix_map Whh(p(w.W_hh), Hd, 4 * Hd), Wih(p(w.W_ih), in, 4 * Hd);
  d_h_ = d_above_;  // from the layer above (or the unembedding) at every step; step t + 1 adds below
  d_c_.resize(rows(), Hd);
  d_gates_.resize(rows(), 4 * Hd);
  d_pre_.resize(rows(), 4 * Hd);
  d_c_next_.setZero(batch_, Hd);  // d(metric)/d(c_t) through c_{t+1} = f_{t+1} c_t + ...
  for (index t = Tn - 1; t >= 0; --t) {
    if (!visit(hooks, id.h, d_h_, t)) return false;  // complete: from above at t and from step t + 1
    rows_map dh = step(d_h_, t), dc = step(d_c_, t), dg = step(d_gates_, t), dp = step(d_pre_, t);
    const const_rows_map gates = const_step(s.gates, t), c = const_step(s.c, t), pre = const_step(s.pre, t);
    for (index b = 0; b < batch_; ++b)
      for (index j = 0; j < Hd; ++j) {
        const T tc = std::tanh(c(b, j));
        dc(b, j) = dh(b, j) * gates(b, 3 * Hd + j) * (T(1) - tc * tc) + d_c_next_(b, j);
      }
    if (!visit(hooks, id.c, d_c_, t)) return false;
    // The forward pass started from a zero state (backward follows forward() only).
    for (index b = 0; b < batch_; ++b)
      for (index j = 0; j < Hd; ++j) {
        const T c_prev = t > 0 ? s.c(b * Tn + t - 1, j) : T(0);
        dg(b, j) = dc(b, j) * gates(b, 2 * Hd + j);
        dg(b, Hd + j) = dc(b, j) * c_prev;
        dg(b, 2 * Hd + j) = dc(b, j) * gates(b, j);
        dg(b, 3 * Hd + j) = dh(b, j) * std::tanh(c(b, j));
      }
    if (!visit(hooks, id.gates, d_gates_, t)) return false;
    // Derivatives of the nonlinearities where the forward pass evaluated them (straight through a gates hook).
    for (index b = 0; b < batch_; ++b)
      for (index k = 0; k < 4 * Hd; ++k) {
        if (is_g(k)) {
          const T a = std::tanh(pre(b, k));
          dp(b, k) = dg(b, k) * (T(1) - a * a);
        } else {
          const T a = sigmoid(pre(b, k));
          dp(b, k) = dg(b, k) * a * (T(1) - a);
        }
      }
    if (!visit(hooks, id.gates_pre, d_pre_, t)) return false;
    if (t > 0) {
      step(d_h_, t - 1).noalias() += dp * Whh.transpose();
      for (index b = 0; b < batch_; ++b)
        for (index j = 0; j < Hd; ++j) d_c_next_(b, j) = dc(b, j) * gates(b, Hd + j);
    }
  }
  if (grad) {
    Eigen::Map<matrix<T>>(grad + w.W_ih, in, 4 * Hd).noalias() += x.transpose() * d_pre_;
    vector_map(grad + w.b, 4 * Hd) += d_pre_.colwise().sum();
    // h_{t-1} meets the gates of step t: rows [0, T-1) of h against rows [1, T) of d_pre, per batch row.
    Eigen::Map<matrix<T>> dWhh(grad + w.W_hh, Hd, 4 * Hd);
    if (Tn > 1)
      for (index b = 0; b < batch_; ++b)
        dWhh.noalias() += s.h.middleRows(b * Tn, Tn - 1).transpose() * d_pre_.middleRows(b * Tn + 1, Tn - 1);
  }
  d_above_.noalias() = d_pre_ * Wih.transpose();
  return true;
}
#endif  // MINT_CORE_BODIES

}  // namespace mint::toy

/// The cores this header compiles once (mint/core/compiled.hpp): the model over float and double.
#define MINT_CORES_TOY_LSTM(CORE)     \
  CORE(class mint::toy::lstm<float>) \
  CORE(class mint::toy::lstm<double>)
MINT_CORES_TOY_LSTM(MINT_CORE)
