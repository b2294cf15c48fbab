// A head's QK and OV circuits from the weights (Elhage et al. 2021), in factored form so nothing
// vocab x vocab is built unless asked:
//   QK  = W_E W_Q (W_E W_K)^T              [vocab, vocab]: query token x key token -> score
//   OV  = W_E W_V W_O W_U                  [vocab, vocab]: attended token x output logit
// the copying score of an OV circuit, sum(lambda) / sum(|lambda|) over its eigenvalues (1 for a
// head that copies the token it attends to, -1 for one that suppresses it), computed from the
// small d_head x d_head product of the factors; and the composition scores between a head h1
// and a later head h2, |A B|_F / (|A|_F |B|_F) with A = OV1 = W_V1 W_O1 and B = QK2 = W_Q2 W_K2^T
// (Q-composition), QK2^T (K-composition) or OV2 (V-composition), as TransformerLens computes
// them. Layer norms are ignored (fold them into the weights first for the usual convention).
// Everything in double. Cost: O(vocab x d x d_head) per circuit, O(d x d_head^2) per pair.
#pragma once

#include <cmath>
#include <algorithm>
#include <complex>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "mint/core/array.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/model/head_weights.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

/// A vocab x vocab circuit as the product left * right (left [vocab, r], right [r, vocab]).
struct factored_circuit {
  Eigen::MatrixXd left, right;
  /// The whole [vocab, vocab] matrix (memory vocab^2 doubles).
  MINT_LAZY Eigen::MatrixXd full() const { return left * right; }
};

namespace detail {

/// Head h's (or its key/value head's) [d, d_head] matrix of a [heads, d, d_head] weight, in double.
template <class T>
Eigen::MatrixXd head_matrix(const tensor_view<const T>& w, index h) {
  const tensor_view<const T> m = w.subview(h);
  Eigen::MatrixXd out(m.extent(0), m.extent(1));
  for (index i = 0; i < m.extent(0); ++i)
    for (index j = 0; j < m.extent(1); ++j) out(i, j) = double(m(i, j));
  return out;
}

template <class T>
Eigen::MatrixXd weight_matrix(const tensor_view<const T>& w) {
  Eigen::MatrixXd out(w.extent(0), w.extent(1));
  for (index i = 0; i < w.extent(0); ++i)
    for (index j = 0; j < w.extent(1); ++j) out(i, j) = double(w(i, j));
  return out;
}

/// The four matrices of query head `head` in block `layer`, checked.
struct head_factors {
  Eigen::MatrixXd W_Q, W_K, W_V, W_O;  // [d, dh] x 3, [dh, d]
};

template <attention_weight_runtime R>
head_factors factors_of(const R& model, int layer, int head, const char* function) {
  const auto w = model.attention_weights(layer);
  if (w.W_Q.rank() != 3 || w.W_K.rank() != 3 || w.W_V.rank() != 3 || w.W_O.rank() != 3)
    throw shape_error(function, "model", "gives attention weights of other ranks", "needs W_Q, W_K, W_V, W_O of rank 3");
  const index H = w.W_Q.extent(0), K = w.W_K.extent(0);
  if (head < 0 || head >= H)
    throw argument_error(function, "head", detail::str("is ", head), detail::str("needs a head in [0, ", H, ")"));
  if (K < 1 || H % K != 0 || w.W_V.extent(0) != K || w.W_O.extent(0) != H)
    throw shape_error(function, "model", detail::str("gives ", H, " query heads, ", K, " key and ", w.W_V.extent(0), " value heads"),
                      "needs key/value heads that divide the query heads");
  const index d = w.W_Q.extent(1), dh = w.W_Q.extent(2);
  const auto is = [](const tensor_view<const typename R::scalar_type>& v, index a, index b) { return v.extent(1) == a && v.extent(2) == b; };
  if (!is(w.W_K, d, dh) || !is(w.W_V, d, dh) || !is(w.W_O, dh, d))
    throw shape_error(function, "model",
                      "gives W_Q " + detail::shape_string(w.W_Q.extents()) + ", W_K " + detail::shape_string(w.W_K.extents()) +
                          ", W_V " + detail::shape_string(w.W_V.extents()) + ", W_O " + detail::shape_string(w.W_O.extents()),
                      "needs W_K and W_V as [kv_heads, d_model, d_head] and W_O as [heads, d_head, d_model] of W_Q's sizes");
  const index kv = head / (H / K);
  return {head_matrix(w.W_Q, head), head_matrix(w.W_K, kv), head_matrix(w.W_V, kv), head_matrix(w.W_O, head)};
}

/// tr((A^T A) M (C C^T) M^T) = |A M C|_F^2 without forming A M C.
MINT_LAZY double squared_norm_of_product(const Eigen::MatrixXd& a_gram, const Eigen::MatrixXd& m, const Eigen::MatrixXd& c_gram) {
  return (a_gram * m * c_gram * m.transpose()).trace();
}

}  // namespace detail

/// The QK circuit of query head `head` in block `layer`: W_E W_Q (W_E W_K)^T, factored.
template <attention_weight_runtime R>
factored_circuit qk_circuit(const R& model, int layer, int head) {
  const auto f = detail::factors_of(model, layer, head, "mint::qk_circuit");
  const Eigen::MatrixXd E = detail::weight_matrix(model.embedding_weights());
  if (E.cols() != f.W_Q.rows())
    throw shape_error("mint::qk_circuit", "model", detail::str("gives W_E of width ", E.cols()),
                      detail::str("needs d_model = ", f.W_Q.rows()));
  return {E * f.W_Q, (E * f.W_K).transpose()};
}

/// The OV circuit of query head `head` in block `layer`: W_E W_V W_O W_U, factored.
template <class R>
  requires attention_weight_runtime<R> && decodable_runtime<R>
factored_circuit ov_circuit(const R& model, int layer, int head) {
  const auto f = detail::factors_of(model, layer, head, "mint::ov_circuit");
  const Eigen::MatrixXd E = detail::weight_matrix(model.embedding_weights());
  const Eigen::MatrixXd U = detail::weight_matrix(model.unembedding().weight);
  if (E.cols() != f.W_V.rows() || U.rows() != f.W_O.cols())
    throw shape_error("mint::ov_circuit", "model", detail::str("gives W_E of width ", E.cols(), " and W_U of height ", U.rows()),
                      detail::str("needs d_model = ", f.W_V.rows()));
  return {E * f.W_V, f.W_O * U};
}

/// sum(lambda) / sum(|lambda|) over the circuit's eigenvalues (those of right * left, the same
/// non-zero ones); 0 for a zero circuit. For an OV circuit: the copying score.
MINT_LAZY double copying_score(const factored_circuit& c) {
  if (c.left.cols() != c.right.rows() || c.left.rows() != c.right.cols())
    throw shape_error("mint::copying_score", "circuit", detail::str("has factors ", c.left.rows(), " x ", c.left.cols(), " and ",
                                                                    c.right.rows(), " x ", c.right.cols()),
                      "needs a square circuit left [n, r], right [r, n]");
  const Eigen::MatrixXd small = c.right * c.left;
  const Eigen::VectorXcd lambda = Eigen::EigenSolver<Eigen::MatrixXd>(small, false).eigenvalues();
  const double magnitude = lambda.cwiseAbs().sum();
  return magnitude > 0 ? lambda.sum().real() / magnitude : 0.0;
}

/// Q-, K- and V-composition scores of every head pair: [layers, heads, layers, heads] arrays,
/// sender (l1, h1) then receiver (l2, h2), zero unless l1 < l2.
struct composition_scores_result {
  array<double> q, k, v;
};

/// The composition scores between every head of the first `layers` blocks and every head of a
/// later one among them (layers from 2 to the model's blocks).
template <attention_weight_runtime R>
composition_scores_result composition_scores(const R& model, int layers) {
  const char* fn = "mint::composition_scores";
  int blocks = 0;
  for (const auto& s : model.sites()) blocks = std::max(blocks, s.layer + 1);
  if (layers < 2 || layers > blocks)
    throw argument_error(fn, "layers", detail::str("is ", layers),
                         detail::str("needs at least two blocks to compose, and at most the model's ", blocks));
  const index H = model.attention_weights(0).W_Q.extent(0);
  // Per head: its OV factors' Grams and its QK factors.
  std::vector<detail::head_factors> f;
  for (int l = 0; l < layers; ++l)
    for (index h = 0; h < H; ++h) f.push_back(detail::factors_of(model, l, int(h), fn));
  composition_scores_result out{array<double>({layers, H, layers, H}), array<double>({layers, H, layers, H}),
                                array<double>({layers, H, layers, H})};
  const auto at = [&](int l, index h) -> const detail::head_factors& { return f[std::size_t(l * H + h)]; };
  // Per head, the Grams of its factors (d_head x d_head) and the norms of its QK and OV.
  struct grams {
    Eigen::MatrixXd q, k, v, o;
    double qk = 0, ov = 0;
  };
  std::vector<grams> g;
  for (const auto& h : f) {
    grams x{h.W_Q.transpose() * h.W_Q, h.W_K.transpose() * h.W_K, h.W_V.transpose() * h.W_V, h.W_O * h.W_O.transpose()};
    x.qk = std::sqrt(std::max(0.0, (x.q * x.k).trace()));
    x.ov = std::sqrt(std::max(0.0, (x.v * x.o).trace()));
    g.push_back(std::move(x));
  }
  for (int l1 = 0; l1 < layers; ++l1)
    for (index h1 = 0; h1 < H; ++h1) {
      const auto& a = at(l1, h1);  // OV1 = W_V1 W_O1
      const grams& ga = g[std::size_t(l1 * H + h1)];
      const Eigen::MatrixXd& a_gram = ga.v;
      const double ov1 = ga.ov;
      for (int l2 = l1 + 1; l2 < layers; ++l2)
        for (index h2 = 0; h2 < H; ++h2) {
          const auto& b = at(l2, h2);
          const grams& gb = g[std::size_t(l2 * H + h2)];
          const Eigen::MatrixXd &q_gram = gb.q, &k_gram = gb.k, &o2_gram = gb.o;
          const double qk2 = gb.qk, ov2 = gb.ov;
          // |A M C|_F with A = W_V1, then M and C per mode.
          const auto score = [&](const Eigen::MatrixXd& m, const Eigen::MatrixXd& c_gram, double norm_b) {
            const double denominator = ov1 * norm_b;
            return denominator > 0 ? std::sqrt(std::max(0.0, detail::squared_norm_of_product(a_gram, m, c_gram))) / denominator : 0.0;
          };
          out.q(l1, h1, l2, h2) = score(a.W_O * b.W_Q, k_gram, qk2);  // OV1 QK2 = W_V1 (W_O1 W_Q2) W_K2^T
          out.k(l1, h1, l2, h2) = score(a.W_O * b.W_K, q_gram, qk2);  // OV1 QK2^T = W_V1 (W_O1 W_K2) W_Q2^T
          out.v(l1, h1, l2, h2) = score(a.W_O * b.W_V, o2_gram, ov2); // OV1 OV2 = W_V1 (W_O1 W_V2) W_O2
        }
    }
  return out;
}

}  // namespace mint
