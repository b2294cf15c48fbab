// The tuned lens (Belrose et al. 2023): the logit lens with a learned affine translator per
// layer, h -> h + A h + b (A and b start at zero: the logit lens), trained so that decoding the
// translated residual through the final norm and W_U matches the model's own output
// distribution, minimising the mean KL(p_final || p_lens) over training tokens. Trained with
// Adam on the residuals of one cached forward pass. Cost per step and site: a batch x d x d
// product for the translator and two batch x d x vocab products (decoding and its gradient);
// memory: the cached residual rows per site and the final logits, [valid positions, vocab].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "mint/core/adam.hpp"
#include "mint/core/array.hpp"
#include "mint/core/compiled.hpp"
#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/core/random.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/runtime.hpp"
#include "mint/model/site_values.hpp"
#include "mint/model/unembedding.hpp"

namespace mint {

/// How train_tuned_lens trains.
struct tuned_lens_options {
  /// Residual [batch, pos, d_model] sites; empty: the first layer's resid_pre and every
  /// layer's resid_post, in order (as the logit lens).
  std::vector<std::string> sites{};
  int steps = 500;             ///< Adam steps per site
  index batch_rows = 256;      ///< valid positions per step (one pass over a shuffled order, then the next); 0: all
  double lr = 1e-2;            ///< Adam's learning rate (constant)
  double weight_decay = 0.0;   ///< decoupled decay of A and b towards zero (the identity translator)
  std::uint64_t seed = 0;      ///< the order rows are visited in: rng(seed, site)
};

/// Per site, the translator h -> h + A h + b. Its scalar is the runtime's.
template <class T>
struct tuned_lens {
  std::vector<std::string> sites;
  std::vector<matrix<T>> translators;   ///< A per site, [d_model, d_model]
  std::vector<std::vector<T>> biases;   ///< b per site, [d_model]
  std::vector<double> train_kl;         ///< per site: the mean KL over the training tokens after training (nats)

  /// The index of a site in `sites`; an argument_error otherwise.
  std::size_t site_index(std::string_view site) const {
    for (std::size_t s = 0; s < sites.size(); ++s)
      if (sites[s] == site) return s;
    throw argument_error("mint::tuned_lens", "site", "'" + std::string(site) + "' has no translator",
                         "needs one of the sites the lens was trained on");
  }

  /// The translated residual h + A h + b of vectors [..., d_model] (rank 1 to 3), same extents.
  array<T> apply(std::string_view site, const tensor_view<const T>& residual) const;
};

/// One site's mean KL(p_final || p_lens) over the valid positions, in nats.
struct lens_kl_row {
  std::string site;
  double logit_lens = 0;  ///< decoding the residual as it is
  double tuned_lens = std::numeric_limits<double>::quiet_NaN();  ///< through the translator; NaN when none given
};

namespace detail {

/// The final norm and the unembedding in double.
struct lens_decoder {
  final_norm norm = final_norm::none;
  double epsilon = 0;
  Eigen::RowVectorXd gain, bias, unembed_bias;  ///< [d], [d], [vocab]
  Eigen::MatrixXd weight;                       ///< W_U [d, vocab]
};

/// The tuned lens's work, compiled once per scalar type (mint/core/compiled.hpp).
template <class T>
struct tuned_lens_core {
  static lens_decoder decoder(const unembedding_weights<T>& u);
  /// The mean KL(softmax(final) || softmax(decode(h + h A' + b))) over rows of h [n, d] and final
  /// logits [n, vocab]; no translator when a is null. With da and db, the gradient too.
  static double objective(const lens_decoder& u, const Eigen::MatrixXd& h, const Eigen::MatrixXd& final_logits,
                          const Eigen::MatrixXd* a, const Eigen::RowVectorXd* b, Eigen::MatrixXd* da,
                          Eigen::RowVectorXd* db);
  static tuned_lens<T> train(const unembedding_weights<T>& u, const std::vector<std::string>& sites,
                             const std::vector<matrix<T>>& residuals, const matrix<T>& final_logits,
                             const tuned_lens_options& options);
  static std::vector<lens_kl_row> kl(const unembedding_weights<T>& u, const std::vector<std::string>& sites,
                                     const std::vector<matrix<T>>& residuals, const matrix<T>& final_logits,
                                     const tuned_lens<T>* lens);
  static array<T> apply(const matrix<T>& a, const std::vector<T>& b, const tensor_view<const T>& residual);
};

#if MINT_CORE_BODIES
template <class T>
lens_decoder tuned_lens_core<T>::decoder(const unembedding_weights<T>& u) {
  lens_decoder out;
  out.norm = u.norm;
  out.epsilon = u.epsilon;
  const index d = u.weight.extent(0), v = u.weight.extent(1);
  const auto row = [](const tensor_view<const T>& x, index n, double fill) -> Eigen::RowVectorXd {
    if (x.empty()) return Eigen::RowVectorXd::Constant(n, fill);
    return as_matrix(x.reshape({1, n})).row(0).template cast<double>();
  };
  out.gain = row(u.gain, d, 1.0);
  out.bias = row(u.bias, d, 0.0);
  out.unembed_bias = row(u.unembed_bias, v, 0.0);
  out.weight = as_matrix(u.weight).template cast<double>();
  return out;
}

template <class T>
double tuned_lens_core<T>::objective(const lens_decoder& u, const Eigen::MatrixXd& h, const Eigen::MatrixXd& final_logits,
                                     const Eigen::MatrixXd* a, const Eigen::RowVectorXd* b, Eigen::MatrixXd* da,
                                     Eigen::RowVectorXd* db) {
  const index n = h.rows(), d = h.cols();
  // Forward: x = h + h A' + b, normalized rows y = (x - centre) / scale, z = y * gain + bias.
  Eigen::MatrixXd x = h;
  if (a) x += h * a->transpose();
  if (b) x.rowwise() += *b;
  Eigen::VectorXd scale = Eigen::VectorXd::Ones(n);
  if (u.norm == final_norm::layer_norm) x.colwise() -= x.rowwise().mean();
  if (u.norm != final_norm::none) {
    scale = (x.rowwise().squaredNorm() / double(d)).array() + u.epsilon;
    scale = scale.cwiseSqrt();
    x.array().colwise() /= scale.array();
  }
  Eigen::MatrixXd z = x;
  if (u.norm != final_norm::none) {
    z.array().rowwise() *= u.gain.array();
    z.rowwise() += u.bias;
  }
  Eigen::MatrixXd logits = z * u.weight;
  logits.rowwise() += u.unembed_bias;
  // Log-softmax of both, rowwise, shifted by the row maximum.
  const auto log_softmax = [](Eigen::MatrixXd& m) {
    m.colwise() -= m.rowwise().maxCoeff();
    const Eigen::VectorXd log_sum = m.array().exp().rowwise().sum().log().matrix();
    m.colwise() -= log_sum;
  };
  Eigen::MatrixXd log_q = final_logits;
  log_softmax(log_q);
  log_softmax(logits);
  const Eigen::ArrayXXd q = log_q.array().exp();
  const double loss = (q * (log_q - logits).array()).sum() / double(n);
  if (!da && !db) return loss;

  // Backward: d loss / d logits = (p - q) / n, then through W_U, the gain and the norm.
  Eigen::MatrixXd dz = ((logits.array().exp() - q) / double(n)).matrix() * u.weight.transpose();
  Eigen::MatrixXd dx = dz;
  if (u.norm != final_norm::none) {
    dx.array().rowwise() *= u.gain.array();
    // dy -> dx: (dy - y mean(dy y) [- mean(dy) for LayerNorm]) / scale, rowwise.
    const Eigen::VectorXd along = (dx.array() * x.array()).rowwise().sum().matrix() / double(d);
    dx -= (x.array().colwise() * along.array()).matrix();
    if (u.norm == final_norm::layer_norm) dx.colwise() -= dx.rowwise().mean();
    dx.array().colwise() /= scale.array();
  }
  if (da) *da = dx.transpose() * h;
  if (db) *db = dx.colwise().sum();
  return loss;
}

template <class T>
tuned_lens<T> tuned_lens_core<T>::train(const unembedding_weights<T>& u, const std::vector<std::string>& sites,
                                        const std::vector<matrix<T>>& residuals, const matrix<T>& final_logits,
                                        const tuned_lens_options& options) {
  const char* fn = "mint::train_tuned_lens";
  if (options.steps < 1) throw argument_error(fn, "options.steps", detail::str("is ", options.steps), "needs >= 1");
  if (options.batch_rows < 0)
    throw argument_error(fn, "options.batch_rows", detail::str("is ", options.batch_rows), "needs >= 0 (0 for all rows)");
  if (!(options.lr > 0) || !std::isfinite(options.lr))
    throw argument_error(fn, "options.lr", detail::str("is ", options.lr), "needs a finite value > 0");
  if (!(options.weight_decay >= 0) || !std::isfinite(options.weight_decay))
    throw argument_error(fn, "options.weight_decay", detail::str("is ", options.weight_decay), "needs a finite value >= 0");
  const lens_decoder decode = decoder(u);
  const index d = decode.weight.rows(), rows = final_logits.rows();
  const index batch = options.batch_rows > 0 ? std::min(options.batch_rows, rows) : rows;
  const Eigen::MatrixXd all_logits = final_logits.template cast<double>();
  tuned_lens<T> out;
  out.sites = sites;
  for (std::size_t s = 0; s < sites.size(); ++s) {
    const Eigen::MatrixXd all_h = residuals[s].template cast<double>();
    // A (row-major, as matrix<T>) then b in one buffer, as Adam takes it.
    std::vector<double> parameters(std::size_t(d * d + d), 0.0), gradient(parameters.size());
    Eigen::Map<matrixd> a(parameters.data(), d, d), da_map(gradient.data(), d, d);
    Eigen::Map<Eigen::RowVectorXd> b(parameters.data() + d * d, d), db_map(gradient.data() + d * d, d);
    adam<double> optimizer(parameters.size(), {.lr = options.lr, .weight_decay = options.weight_decay});
    rng r(options.seed, s);
    std::vector<index> order(static_cast<std::size_t>(rows));
    std::iota(order.begin(), order.end(), index(0));
    index next = rows;  // reshuffle before the first batch
    Eigen::MatrixXd h(batch, d), logits(batch, all_logits.cols()), da;
    Eigen::RowVectorXd db;
    for (int step = 0; step < options.steps; ++step) {
      if (batch < rows) {
        if (next + batch > rows) r.shuffle(order.begin(), order.end()), next = 0;
        for (index i = 0; i < batch; ++i) {
          h.row(i) = all_h.row(order[std::size_t(next + i)]);
          logits.row(i) = all_logits.row(order[std::size_t(next + i)]);
        }
        next += batch;
      }
      const Eigen::MatrixXd a_now = a;
      const Eigen::RowVectorXd b_now = b;
      objective(decode, batch < rows ? h : all_h, batch < rows ? logits : all_logits, &a_now, &b_now, &da, &db);
      da_map = da;
      db_map = db;
      optimizer.step(std::span<double>(parameters), std::span<const double>(gradient));
    }
    const Eigen::MatrixXd a_final = a;
    const Eigen::RowVectorXd b_final = b;
    out.translators.push_back(a_final.template cast<T>());
    out.biases.emplace_back(std::size_t(d));
    for (index j = 0; j < d; ++j) out.biases.back()[std::size_t(j)] = T(b_final(j));
    // The final loss of the stored (scalar T) parameters.
    const Eigen::MatrixXd a_stored = out.translators.back().template cast<double>();
    Eigen::RowVectorXd b_stored(d);
    for (index j = 0; j < d; ++j) b_stored(j) = double(out.biases.back()[std::size_t(j)]);
    out.train_kl.push_back(objective(decode, all_h, all_logits, &a_stored, &b_stored, nullptr, nullptr));
  }
  return out;
}

template <class T>
std::vector<lens_kl_row> tuned_lens_core<T>::kl(const unembedding_weights<T>& u, const std::vector<std::string>& sites,
                                                const std::vector<matrix<T>>& residuals, const matrix<T>& final_logits,
                                                const tuned_lens<T>* lens) {
  const lens_decoder decode = decoder(u);
  const index d = decode.weight.rows();
  const Eigen::MatrixXd logits = final_logits.template cast<double>();
  std::vector<lens_kl_row> out;
  for (std::size_t s = 0; s < sites.size(); ++s) {
    const Eigen::MatrixXd h = residuals[s].template cast<double>();
    lens_kl_row row{sites[s], objective(decode, h, logits, nullptr, nullptr, nullptr, nullptr)};
    if (lens) {
      const std::size_t k = lens->site_index(sites[s]);
      const Eigen::MatrixXd a = lens->translators[k].template cast<double>();
      Eigen::RowVectorXd b(d);
      for (index j = 0; j < d; ++j) b(j) = double(lens->biases[k][std::size_t(j)]);
      row.tuned_lens = objective(decode, h, logits, &a, &b, nullptr, nullptr);
    }
    out.push_back(std::move(row));
  }
  return out;
}

template <class T>
array<T> tuned_lens_core<T>::apply(const matrix<T>& a, const std::vector<T>& b, const tensor_view<const T>& residual) {
  const index d = a.rows();
  if (residual.rank() < 1 || residual.rank() > 3 || residual.extent(residual.rank() - 1) != d)
    throw shape_error("mint::tuned_lens::apply", "residual", "has extents " + detail::shape_string(residual.extents()),
                      detail::str("needs [..., ", d, "] (d_model last, rank 1 to 3)"));
  array<T> out = array<T>::copy_of(residual);
  Eigen::Map<matrix<T>> rows(out.data(), out.view().size() / d, d);
  // In double; with A and b zero the sum is h exactly.
  Eigen::MatrixXd x = rows.template cast<double>();
  x += Eigen::MatrixXd(x * a.template cast<double>().transpose());
  x.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(b.data(), d).template cast<double>();
  rows = x.template cast<T>();
  return out;
}
#endif  // MINT_CORE_BODIES

/// What one forward pass gives the lens: each site's residual and the final logits, rows of
/// the valid positions in (batch, pos) order.
template <class T>
struct lens_data {
  std::vector<std::string> sites;
  std::vector<matrix<T>> residuals;
  matrix<T> logits;
};

template <runtime R>
lens_data<scalar_t<R>> read_lens_data(R& model, const token_batch& tokens, const std::vector<std::string>& given,
                                      index d, index vocab, const char* fn) {
  using T = scalar_t<R>;
  require_tokens(tokens, fn);
  const site_table& table = model.sites();
  lens_data<T> out;
  out.sites = block_boundary_sites(table, given, fn);
  for (const auto& name : out.sites) {
    const site_info& info = table[table.at(name, fn)];
    if (info.axes != std::vector<axis>{axis::batch, axis::pos, axis::d_model} || info.sizes.back() != d)
      throw argument_error(fn, "options.sites", "'" + name + "' is not a residual [batch, pos, d_model] site",
                           detail::str("needs sites of d_model ", d, " as [batch, pos, d_model]"));
  }
  const auto run = run_with_cache(model, tokens, out.sites);
  if (run.logits.view().rank() != 3 || run.logits.extent(2) != vocab || run.logits.extent(0) != tokens.batch())
    throw shape_error(fn, "model", "returned logits of extents " + detail::shape_string(run.logits.view().extents()),
                      detail::str("needs [batch, pos, ", vocab, "] logits from forward()"));
  for (const auto& name : out.sites) out.residuals.push_back(run.cache.rows(name));
  const index valid = out.residuals.front().rows(), positions = run.logits.extent(1);
  out.logits.resize(valid, vocab);
  const auto all = as_matrix(run.logits.view().reshape({tokens.batch() * positions, vocab}));
  index r = 0;
  for (index b = 0; b < tokens.batch(); ++b)
    for (index t = 0; t < std::min(tokens.length(b), positions); ++t) out.logits.row(r++) = all.row(b * positions + t);
  if (r != valid)
    throw shape_error(fn, "model", detail::str("cached ", valid, " valid positions and returned logits for ", r),
                      "needs logits at every valid position");
  return out;
}

}  // namespace detail

template <class T>
array<T> tuned_lens<T>::apply(std::string_view site, const tensor_view<const T>& residual) const {
  const std::size_t s = site_index(site);
  return detail::tuned_lens_core<T>::apply(translators[s], biases[s], residual);
}

/// Trains a translator per residual site on the valid positions of `tokens` (one forward pass).
template <runtime R>
  requires decodable_runtime<R>
tuned_lens<scalar_t<R>> train_tuned_lens(R& model, const token_batch& tokens, const tuned_lens_options& options = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::train_tuned_lens";
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn);
  const auto data = detail::read_lens_data(model, tokens, options.sites, d, u.weight.extent(1), fn);
  return detail::tuned_lens_core<T>::train(u, data.sites, data.residuals, data.logits, options);
}

/// Per site of the lens, the mean KL(p_final || p_lens) over the valid positions of `tokens`
/// (held-out ones, to judge the lens), for the tuned lens and the logit lens.
template <runtime R>
  requires decodable_runtime<R>
std::vector<lens_kl_row> lens_kl(R& model, const token_batch& tokens, const tuned_lens<scalar_t<R>>& lens) {
  using T = scalar_t<R>;
  const char* fn = "mint::lens_kl";
  if (lens.sites.empty()) throw argument_error(fn, "lens", "has no sites", "needs a lens from train_tuned_lens");
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn);
  for (const auto& a : lens.translators)
    if (a.rows() != d || a.cols() != d)
      throw shape_error(fn, "lens", detail::str("holds a [", a.rows(), ", ", a.cols(), "] translator"),
                        detail::str("needs [", d, ", ", d, "], the model's d_model"));
  const auto data = detail::read_lens_data(model, tokens, lens.sites, d, u.weight.extent(1), fn);
  return detail::tuned_lens_core<T>::kl(u, data.sites, data.residuals, data.logits, &lens);
}

/// The logit lens's KL alone (tuned_lens NaN), at `sites` (empty: as train_tuned_lens picks them).
template <runtime R>
  requires decodable_runtime<R>
std::vector<lens_kl_row> lens_kl(R& model, const token_batch& tokens, const std::vector<std::string>& sites = {}) {
  using T = scalar_t<R>;
  const char* fn = "mint::lens_kl";
  const unembedding_weights<T> u = model.unembedding();
  const index d = detail::check_unembedding(u, fn);
  const auto data = detail::read_lens_data(model, tokens, sites, d, u.weight.extent(1), fn);
  return detail::tuned_lens_core<T>::kl(u, data.sites, data.residuals, data.logits, nullptr);
}

/// The lens's objective and gradient on given rows, for checks: mean KL over rows of residuals
/// [n, d] against final logits [n, vocab], with translator A [d, d] and b [1, d]; fills
/// gradient_a and gradient_b when given.
template <class T>
double tuned_lens_objective(const unembedding_weights<T>& u, const matrixd& residuals, const matrixd& final_logits,
                            const matrixd& a, const matrixd& b, matrixd* gradient_a = nullptr, matrixd* gradient_b = nullptr) {
  const char* fn = "mint::tuned_lens_objective";
  const index d = detail::check_unembedding(u, fn);
  if (residuals.cols() != d || final_logits.cols() != u.weight.extent(1) || residuals.rows() != final_logits.rows() ||
      residuals.rows() < 1 || a.rows() != d || a.cols() != d || b.rows() != 1 || b.cols() != d)
    throw shape_error(fn, "residuals", detail::str("are [", residuals.rows(), ", ", residuals.cols(), "] with logits [",
                                                   final_logits.rows(), ", ", final_logits.cols(), "], A [", a.rows(), ", ",
                                                   a.cols(), "], b [", b.rows(), ", ", b.cols(), "]"),
                      detail::str("needs [n, ", d, "], [n, ", u.weight.extent(1), "], [", d, ", ", d, "], [1, ", d, "]"));
  const Eigen::MatrixXd h = residuals, logits = final_logits, a_ = a;
  const Eigen::RowVectorXd b_ = b.row(0);
  Eigen::MatrixXd da;
  Eigen::RowVectorXd db;
  const bool grad = gradient_a || gradient_b;
  const double loss = detail::tuned_lens_core<T>::objective(detail::tuned_lens_core<T>::decoder(u), h, logits, &a_, &b_,
                                                            grad ? &da : nullptr, grad ? &db : nullptr);
  if (gradient_a) *gradient_a = da;
  if (gradient_b) *gradient_b = db;
  return loss;
}

}  // namespace mint

/// The cores this header compiles once (mint/core/compiled.hpp).
#define MINT_CORES_EXPLAIN_TUNED_LENS(CORE) MINT_CORE_FD(CORE, mint::detail::tuned_lens_core)
MINT_CORES_EXPLAIN_TUNED_LENS(MINT_CORE)
