// A GPT-2-style transformer written with libtorch's C++ modules, with TransformerLens's hook
// points: the architecture of mint::toy::transformer (pre-LN, GELU MLP, grouped-query attention
// allowed, the same parameter and site names), so the toy's safetensors files load into it
// and mint's algorithms give the same answers on both. examples/torch_transformer.cpp runs it;
// tests/torch/ checks it against the toy to the last digit.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <mint/adapters/torch.hpp>
#include <mint/io/safetensors.hpp>
#include <mint/toy/transformer.hpp>

namespace torch_example {

using mint::axis;
using mint::site_role;
using config = mint::toy::transformer_config;

/// Layer norm with the toy's hook points: ln.hook_scale [B, T] (sqrt(var + eps), before the
/// division) and ln.hook_normalized (after gain and bias).
struct NormImpl : torch::nn::Module {
  NormImpl(int d, double eps) : eps(eps) {
    w = register_parameter("w", torch::ones({d}));
    b = register_parameter("b", torch::zeros({d}));
  }
  torch::Tensor forward(mint::torch_hook_points& hooks, mint::site_id scale_site, mint::site_id normalized_site,
                        const torch::Tensor& x) {
    const auto mean = x.mean(-1, true);
    const auto centered = x - mean;
    auto scale = (centered.pow(2).mean(-1, true) + eps).sqrt();
    scale = hooks.point(scale_site, scale.squeeze(-1)).unsqueeze(-1);
    return hooks.point(normalized_site, centered / scale * w + b);
  }
  double eps;
  torch::Tensor w, b;
};
TORCH_MODULE(Norm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const config& c) : heads(c.heads), kv_heads(c.key_value_heads()), d_head(c.d_head) {
    const int d = c.d_model, H = c.heads, K = c.key_value_heads(), dh = c.d_head;
    W_Q = register_parameter("W_Q", torch::zeros({H, d, dh}));
    b_Q = register_parameter("b_Q", torch::zeros({H, dh}));
    W_K = register_parameter("W_K", torch::zeros({K, d, dh}));
    b_K = register_parameter("b_K", torch::zeros({K, dh}));
    W_V = register_parameter("W_V", torch::zeros({K, d, dh}));
    b_V = register_parameter("b_V", torch::zeros({K, dh}));
    W_O = register_parameter("W_O", torch::zeros({H, dh, d}));
    b_O = register_parameter("b_O", torch::zeros({d}));
  }
  int heads, kv_heads, d_head;
  torch::Tensor W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O;
  torch::Tensor k_cache, v_cache;  // [B, positions so far, K, dh] in cached runs
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(const config& c) : activation(c.activation) {
    W_in = register_parameter("W_in", torch::zeros({c.d_model, c.d_mlp}));
    b_in = register_parameter("b_in", torch::zeros({c.d_mlp}));
    W_out = register_parameter("W_out", torch::zeros({c.d_mlp, c.d_model}));
    b_out = register_parameter("b_out", torch::zeros({c.d_model}));
  }
  torch::Tensor act(const torch::Tensor& x) const {
    switch (activation) {
      case mint::toy::activation_fn::relu: return torch::relu(x);
      case mint::toy::activation_fn::gelu_tanh: return torch::gelu(x, "tanh");
      default: return torch::gelu(x);
    }
  }
  mint::toy::activation_fn activation;
  torch::Tensor W_in, b_in, W_out, b_out;
};
TORCH_MODULE(Mlp);

/// The site ids of one block (-1 where the config has no such site).
struct block_sites {
  mint::site_id q_input = -1, k_input = -1, v_input = -1;
  mint::site_id resid_pre = -1, ln1_scale = -1, ln1_normalized = -1, q = -1, k = -1, v = -1, pattern = -1, z = -1,
                result = -1, attn_out = -1, resid_mid = -1, mlp_in = -1, ln2_scale = -1, ln2_normalized = -1,
                mlp_pre = -1, mlp_post = -1, mlp_out = -1, resid_post = -1;
};

struct BlockImpl : torch::nn::Module {
  BlockImpl(const config& c) : layer_norm(c.layer_norm), has_mlp(c.has_mlp()) {
    if (layer_norm) ln1 = register_module("ln1", Norm(c.d_model, c.layer_norm_eps));
    attn = register_module("attn", Attention(c));
    if (has_mlp) {
      if (layer_norm) ln2 = register_module("ln2", Norm(c.d_model, c.layer_norm_eps));
      mlp = register_module("mlp", Mlp(c));
    }
  }
  bool layer_norm, has_mlp;
  Norm ln1{nullptr}, ln2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  block_sites id;
};
TORCH_MODULE(Block);

/// The transformer: forward(tokens [B, T], lengths [B]) -> logits [B, T, vocab], and the KV-cached
/// forward_cached for chunks (mint::torch_cached_model).
struct TransformerImpl : torch::nn::Module {
  explicit TransformerImpl(const config& c) : cfg(c) {
    c.validate();
    auto embed = register_module("embed", std::make_shared<torch::nn::Module>());
    W_E = embed->register_parameter("W_E", torch::zeros({c.vocab, c.d_model}));
    auto pos = register_module("pos_embed", std::make_shared<torch::nn::Module>());
    W_pos = pos->register_parameter("W_pos", torch::zeros({c.context, c.d_model}));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int l = 0; l < c.layers; ++l) blocks->push_back(Block(c));
    if (c.layer_norm) ln_final = register_module("ln_final", Norm(c.d_model, c.layer_norm_eps));
    auto unembed = register_module("unembed", std::make_shared<torch::nn::Module>());
    W_U = unembed->register_parameter("W_U", torch::zeros({c.d_model, c.vocab}));
    b_U = unembed->register_parameter("b_U", torch::zeros({c.vocab}));
    declare_sites();
  }

  mint::torch_hook_points& hook_points() { return hooks_; }

  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& lengths) {
    return run(tokens, lengths, 0, false);
  }
  torch::Tensor forward_cached(const torch::Tensor& tokens, const torch::Tensor& lengths, std::int64_t first) {
    return run(tokens, lengths, first, true);
  }
  void reset_cache() {
    for (auto& b : *blocks) b->as<BlockImpl>()->attn->k_cache = torch::Tensor(), b->as<BlockImpl>()->attn->v_cache = torch::Tensor();
  }

  /// Reads every weight from a file mint::toy::save wrote (names and shapes are the toy's).
  void load(const std::string& path) {
    const mint::safetensors_file file(path);
    torch::NoGradGuard no_grad;
    for (auto& item : named_parameters()) {
      const std::string& name = item.key();
      torch::Tensor& p = item.value();
      const auto a = file.read<double>(name, {.convert = true});
      std::vector<std::int64_t> shape(a.shape().begin(), a.shape().end());
      if (shape != p.sizes().vec())
        throw mint::format_error("torch_example::Transformer::load", "file '" + path + "'", "holds '" + name + "' in another shape",
                                 "needs the shapes of this config");
      p.copy_(torch::from_blob(const_cast<double*>(a.values().data()), shape, torch::kDouble).to(p.scalar_type()));
    }
  }

  // The weights mint's weight analyses read, as views of the parameters (T: the module's dtype).
  template <class T>
  mint::unembedding_weights<T> unembedding() const {
    mint::unembedding_weights<T> u;
    u.norm = cfg.layer_norm ? mint::final_norm::layer_norm : mint::final_norm::none;
    u.epsilon = cfg.layer_norm_eps;
    if (cfg.layer_norm) u.gain = mint::torch_view<T>(ln_final->w), u.bias = mint::torch_view<T>(ln_final->b);
    u.weight = mint::torch_view<T>(W_U);
    u.unembed_bias = mint::torch_view<T>(b_U);
    return u;
  }
  template <class T>
  mint::attention_matrices<T> attention_weights(int layer) const {
    const auto& a = *block(layer).attn;
    return {mint::torch_view<T>(a.W_Q), mint::torch_view<T>(a.W_K), mint::torch_view<T>(a.W_V), mint::torch_view<T>(a.W_O)};
  }
  template <class T>
  mint::tensor_view<const T> embedding_weights() const {
    return mint::torch_view<T>(W_E);
  }
  template <class T>
  mint::mlp_matrices<T> mlp_weights(int layer) const {
    const auto& b = block(layer);
    if (!b.has_mlp) throw mint::argument_error("torch_example::Transformer::mlp_weights", "layer", "has no MLP", "needs d_mlp > 0");
    return {mint::torch_view<T>(b.mlp->W_in), mint::torch_view<T>(b.mlp->W_out)};
  }

  config cfg;
  torch::Tensor W_E, W_pos, W_U, b_U;
  torch::nn::ModuleList blocks{nullptr};
  Norm ln_final{nullptr};

private:
  const BlockImpl& block(int layer) const {
    if (layer < 0 || layer >= cfg.layers)
      throw mint::argument_error("torch_example::Transformer", "layer", "is " + std::to_string(layer),
                                 "needs a block in [0, " + std::to_string(cfg.layers) + ")");
    return *blocks->ptr(std::size_t(layer))->as<BlockImpl>();
  }

  torch::Tensor run(const torch::Tensor& tokens, const torch::Tensor& lengths, std::int64_t first, bool cached) {
    auto& h = hooks_;
    const auto B = tokens.size(0), T = tokens.size(1);
    auto embed = h.point(embed_, W_E.index_select(0, tokens.reshape({-1})).view({B, T, cfg.d_model}));
    auto pos = h.point(pos_embed_, W_pos.narrow(0, first, T).unsqueeze(0).expand({B, T, cfg.d_model}));
    auto resid = embed + pos;
    // Query i (absolute first + i) of row b sees keys j <= first + i with j < lengths[b].
    const auto keys = torch::arange(first + T, torch::kLong);
    const auto query = torch::arange(first, first + T, torch::kLong);
    const auto mask = (keys.view({1, 1, 1, -1}) <= query.view({1, 1, -1, 1})) &
                      (keys.view({1, 1, 1, -1}) < lengths.view({-1, 1, 1, 1}));
    for (auto& module : *blocks) {
      auto& b = *module->as<BlockImpl>();
      resid = h.point(b.id.resid_pre, resid);
      auto& a = *b.attn;
      torch::Tensor q, k, v;
      if (cfg.split_qkv_input) {
        // Each head's q input and each kv head's k and v inputs are their own sites (edge graphs).
        const auto per = [&](mint::site_id id, std::int64_t n) {
          return h.point(id, resid.unsqueeze(2).expand({B, T, n, cfg.d_model}));
        };
        auto x = torch::cat({per(b.id.q_input, a.heads), per(b.id.k_input, a.kv_heads), per(b.id.v_input, a.kv_heads)}, 2);
        if (b.layer_norm) x = b.ln1->forward(h, b.id.ln1_scale, b.id.ln1_normalized, x);
        const auto group = [&](std::int64_t first, std::int64_t n) { return x.narrow(2, first, n); };
        q = torch::einsum("bthd,hde->bthe", {group(0, a.heads), a.W_Q}) + a.b_Q;
        k = torch::einsum("bthd,hde->bthe", {group(a.heads, a.kv_heads), a.W_K}) + a.b_K;
        v = torch::einsum("bthd,hde->bthe", {group(a.heads + a.kv_heads, a.kv_heads), a.W_V}) + a.b_V;
      } else {
        auto x = b.layer_norm ? b.ln1->forward(h, b.id.ln1_scale, b.id.ln1_normalized, resid) : resid;
        q = torch::einsum("btd,hde->bthe", {x, a.W_Q}) + a.b_Q;
        k = torch::einsum("btd,hde->bthe", {x, a.W_K}) + a.b_K;
        v = torch::einsum("btd,hde->bthe", {x, a.W_V}) + a.b_V;
      }
      q = h.point(b.id.q, q);
      k = h.point(b.id.k, k);
      v = h.point(b.id.v, v);
      if (cached) {
        a.k_cache = a.k_cache.defined() ? torch::cat({a.k_cache, k}, 1) : k;
        a.v_cache = a.v_cache.defined() ? torch::cat({a.v_cache, v}, 1) : v;
        k = a.k_cache, v = a.v_cache;
      }
      if (a.kv_heads != a.heads) {  // grouped-query attention: each kv head serves heads / kv_heads queries
        k = k.repeat_interleave(a.heads / a.kv_heads, 2);
        v = v.repeat_interleave(a.heads / a.kv_heads, 2);
      }
      auto scores = torch::einsum("bqhe,bkhe->bhqk", {q, k}) / std::sqrt(double(a.d_head));
      scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
      auto pattern = h.point(b.id.pattern, torch::softmax(scores, -1));
      auto z = h.point(b.id.z, torch::einsum("bhqk,bkhe->bqhe", {pattern, v}));
      auto result = h.point(b.id.result, torch::einsum("bqhe,hed->bqhd", {z, a.W_O}));
      auto attn_out = h.point(b.id.attn_out, result.sum(2) + a.b_O);
      resid = resid + attn_out;
      if (b.has_mlp) {
        resid = h.point(b.id.resid_mid, resid);
        auto in = h.point(b.id.mlp_in, resid);
        auto xn = b.layer_norm ? b.ln2->forward(h, b.id.ln2_scale, b.id.ln2_normalized, in) : in;
        auto& m = *b.mlp;
        auto pre = h.point(b.id.mlp_pre, torch::matmul(xn, m.W_in) + m.b_in);
        auto post = h.point(b.id.mlp_post, m.act(pre));
        resid = resid + h.point(b.id.mlp_out, torch::matmul(post, m.W_out) + m.b_out);
      }
      resid = h.point(b.id.resid_post, resid);
    }
    auto x = cfg.layer_norm ? ln_final->forward(h, final_scale_, final_normalized_, resid) : resid;
    return h.point(logits_, torch::matmul(x, W_U) + b_U);
  }

  // The toy's sites, in its order, so a site table compares equal name by name.
  void declare_sites() {
    const std::int64_t d = cfg.d_model, H = cfg.heads, K = cfg.key_value_heads(), dh = cfg.d_head, m = cfg.d_mlp;
    auto add = [&](std::string name, int layer, site_role role, std::vector<axis> axes, std::vector<mint::index> sizes) {
      return hooks_.add({std::move(name), layer, role, cfg.heads, int(K), std::move(axes), std::move(sizes), mint::full_access});
    };
    const std::vector<axis> bpd = {axis::batch, axis::pos, axis::d_model};
    const std::vector<mint::index> sd = {0, 0, d};
    embed_ = add("hook_embed", -1, site_role::embed, bpd, sd);
    pos_embed_ = add("hook_pos_embed", -1, site_role::pos_embed, bpd, sd);
    for (int l = 0; l < cfg.layers; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".";
      auto& s = blocks[std::size_t(l)]->as<BlockImpl>()->id;
      s.resid_pre = add(p + "hook_resid_pre", l, site_role::resid_pre, bpd, sd);
      const std::int64_t G = cfg.input_groups();
      if (cfg.split_qkv_input) {
        s.q_input = add(p + "hook_q_input", l, site_role::q_input, {axis::batch, axis::pos, axis::head, axis::d_model}, {0, 0, H, d});
        s.k_input = add(p + "hook_k_input", l, site_role::k_input, {axis::batch, axis::pos, axis::kv_head, axis::d_model}, {0, 0, K, d});
        s.v_input = add(p + "hook_v_input", l, site_role::v_input, {axis::batch, axis::pos, axis::kv_head, axis::d_model}, {0, 0, K, d});
      }
      if (cfg.layer_norm && cfg.split_qkv_input) {
        s.ln1_scale = add(p + "ln1.hook_scale", l, site_role::ln_scale, {axis::batch, axis::pos, axis::qkv_head}, {0, 0, G});
        s.ln1_normalized = add(p + "ln1.hook_normalized", l, site_role::ln_normalized,
                               {axis::batch, axis::pos, axis::qkv_head, axis::d_model}, {0, 0, G, d});
      } else if (cfg.layer_norm) {
        s.ln1_scale = add(p + "ln1.hook_scale", l, site_role::ln_scale, {axis::batch, axis::pos}, {0, 0});
        s.ln1_normalized = add(p + "ln1.hook_normalized", l, site_role::ln_normalized, bpd, sd);
      }
      s.q = add(p + "attn.hook_q", l, site_role::attn_q, {axis::batch, axis::pos, axis::head, axis::d_head}, {0, 0, H, dh});
      s.k = add(p + "attn.hook_k", l, site_role::attn_k, {axis::batch, axis::pos, axis::kv_head, axis::d_head}, {0, 0, K, dh});
      s.v = add(p + "attn.hook_v", l, site_role::attn_v, {axis::batch, axis::pos, axis::kv_head, axis::d_head}, {0, 0, K, dh});
      s.pattern = add(p + "attn.hook_pattern", l, site_role::attn_pattern,
                      {axis::batch, axis::head, axis::pos, axis::key_pos}, {0, H, 0, 0});
      s.z = add(p + "attn.hook_z", l, site_role::attn_z, {axis::batch, axis::pos, axis::head, axis::d_head}, {0, 0, H, dh});
      s.result = add(p + "attn.hook_result", l, site_role::attn_result,
                     {axis::batch, axis::pos, axis::head, axis::d_model}, {0, 0, H, d});
      s.attn_out = add(p + "hook_attn_out", l, site_role::attn_out, bpd, sd);
      if (cfg.has_mlp()) {
        s.resid_mid = add(p + "hook_resid_mid", l, site_role::resid_mid, bpd, sd);
        s.mlp_in = add(p + "hook_mlp_in", l, site_role::mlp_in, bpd, sd);
        if (cfg.layer_norm) {
          s.ln2_scale = add(p + "ln2.hook_scale", l, site_role::ln_scale, {axis::batch, axis::pos}, {0, 0});
          s.ln2_normalized = add(p + "ln2.hook_normalized", l, site_role::ln_normalized, bpd, sd);
        }
        s.mlp_pre = add(p + "mlp.hook_pre", l, site_role::mlp_pre, {axis::batch, axis::pos, axis::d_mlp}, {0, 0, m});
        s.mlp_post = add(p + "mlp.hook_post", l, site_role::mlp_post, {axis::batch, axis::pos, axis::d_mlp}, {0, 0, m});
        s.mlp_out = add(p + "hook_mlp_out", l, site_role::mlp_out, bpd, sd);
      }
      s.resid_post = add(p + "hook_resid_post", l, site_role::resid_post, bpd, sd);
    }
    if (cfg.layer_norm) {
      final_scale_ = add("ln_final.hook_scale", -1, site_role::ln_scale, {axis::batch, axis::pos}, {0, 0});
      final_normalized_ = add("ln_final.hook_normalized", -1, site_role::ln_normalized, bpd, sd);
    }
    logits_ = add("hook_logits", -1, site_role::logits, {axis::batch, axis::pos, axis::vocab}, {0, 0, cfg.vocab});
  }

  mint::torch_hook_points hooks_;
  mint::site_id embed_ = -1, pos_embed_ = -1, final_scale_ = -1, final_normalized_ = -1, logits_ = -1;
};
TORCH_MODULE(Transformer);

}  // namespace torch_example
