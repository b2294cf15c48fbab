// Extraction: reading pairs at the chosen token matches the cache; mean difference is the mean
// gap; PCA recovers a planted direction with repeng's sign, agrees with a direct eigensolve of
// the centred covariance on both routes (Gram and covariance), and gives the same bits on 1 and
// 2 threads; ActAdd is the positionwise difference and adds where it says; the logistic probe
// reaches a stationary point; the layer sweep picks the layer that carries the signal; the
// strength sweep's KL is zero at scale 0 and grows; SAE steering with no change is the identity
// and otherwise moves the activation by the edited latents' decoder rows.
#include "mint/steering.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <Eigen/Eigenvalues>

#include "mint/core/random.hpp"
#include "mint/model/cache.hpp"
#include "mint/model/metrics.hpp"
#include "mint/toy/transformer.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

mint::toy::transformer<float> extract_model(std::uint64_t seed = 7) {
  mint::toy::transformer<float> m({.vocab = 16, .context = 32, .d_model = 16, .layers = 2, .heads = 2, .d_head = 8,
                                   .d_mlp = 32});
  m.initialize(seed);
  return m;
}

// n pairs in d dimensions: negative = noise, positive = negative + a_i u + noise, a_i in [1, 3):
// the differences vary most along u, and positives project higher on +u.
mint::contrastive_activations<float> planted_pairs(mint::index n, mint::index d, const Eigen::VectorXd& u,
                                                   std::uint64_t seed, double noise = 0.05) {
  mint::rng r(seed);
  mint::contrastive_activations<float> out;
  out.sites = {"s"};
  mint::matrixf pos(n, d), neg(n, d);
  for (mint::index i = 0; i < n; ++i) {
    const double a = 1 + 2 * r.uniform();
    for (mint::index k = 0; k < d; ++k) {
      neg(i, k) = float(r.normal());
      pos(i, k) = float(neg(i, k) + a * u(k) + noise * r.normal());
    }
  }
  out.positive.push_back(pos);
  out.negative.push_back(neg);
  return out;
}

Eigen::VectorXd unit_vector(mint::index d, std::uint64_t seed) {
  mint::rng r(seed);
  Eigen::VectorXd u(d);
  for (mint::index k = 0; k < d; ++k) u(k) = r.normal();
  return u.normalized();
}

Eigen::VectorXd as_eigen(const std::vector<float>& v) {
  Eigen::VectorXd out(mint::index(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) out(mint::index(i)) = v[i];
  return out;
}

}  // namespace

TEST_CASE("read_contrastive takes each row's chosen token, as the cache holds it") {
  auto model = extract_model();
  const auto positive = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6, 9, 2, 8}});
  const auto negative = mint::token_batch::from_rows({{1, 4, 3}, {3, 5, 6, 10, 2}});
  const std::vector<std::string> sites{"blocks.0.hook_resid_post", "blocks.1.attn.hook_z"};
  const auto cache_pos = mint::run_with_cache(model, positive, sites);
  const auto cache_neg = mint::run_with_cache(model, negative, sites);
  // Last token (default), then -2 (the token before), then an absolute position per row.
  for (const auto& [positions, pos_at, neg_at] :
       std::vector<std::tuple<std::vector<mint::index>, std::vector<mint::index>, std::vector<mint::index>>>{
           {{}, {3, 5}, {2, 4}}, {{-2}, {2, 4}, {1, 3}}, {{0, 2}, {0, 2}, {0, 2}}}) {
    const auto pairs = mint::read_contrastive(model, positive, negative, {.sites = sites, .positions = positions, .max_batch = 1});
    REQUIRE(pairs.pairs() == 2);
    for (std::size_t s = 0; s < sites.size(); ++s) {
      const auto whole_p = cache_pos.cache[sites[s]], whole_n = cache_neg.cache[sites[s]];
      for (mint::index b = 0; b < 2; ++b) {
        const auto p = whole_p.subview(b).subview(pos_at[std::size_t(b)]);
        const auto q = whole_n.subview(b).subview(neg_at[std::size_t(b)]);
        mint::index k = 0;
        mint::detail::for_each_index(p.extents(), [&](const auto& i) {
          // The same forward, one row a pass: float32 bits may differ by the batch's blocking; 1e-6.
          CHECK(pairs.positive[s](b, k) == doctest::Approx(mint::detail::element_at(p, i)).epsilon(1e-6));
          CHECK(pairs.negative[s](b, k) == doctest::Approx(mint::detail::element_at(q, i)).epsilon(1e-6));
          ++k;
        });
        CHECK(k == pairs.positive[s].cols());
      }
    }
  }
  CHECK_THROWS_AS(mint::read_contrastive(model, positive, negative, {.sites = sites, .positions = {5}}), mint::argument_error);
  CHECK_THROWS_AS(mint::read_contrastive(model, positive, negative, {.sites = {"blocks.0.hook_resid_postt"}}),
                  mint::argument_error);
  CHECK_THROWS_AS(mint::read_contrastive(model, positive, mint::token_batch::from_rows({{1}}), {.sites = sites}),
                  mint::shape_error);
}

TEST_CASE("mean difference is the mean gap; PCA finds the planted direction with the positives above") {
  const mint::index d = 12;
  const auto u = unit_vector(d, 3);
  for (const mint::index n : {mint::index(8), mint::index(40)}) {  // the Gram route (n <= d) and the covariance route
    CAPTURE(n);
    const auto pairs = planted_pairs(n, d, u, 10 + std::uint64_t(n));
    const auto mean = mint::extract_vector(pairs);
    const Eigen::VectorXd gap = (pairs.positive[0] - pairs.negative[0]).cast<double>().colwise().mean().transpose();
    CHECK((as_eigen(mean["s"]) - gap).cwiseAbs().maxCoeff() < 1e-6);  // float32 rounding of the result
    for (const auto method : {mint::extraction_method::pca_difference, mint::extraction_method::pca_center}) {
      const auto v = as_eigen(mint::extract_vector(pairs, method)["s"]);
      CHECK(v.norm() == doctest::Approx(1).epsilon(1e-6));
      CHECK(v.dot(u) > 0.95);  // the planted direction, with the sign that puts positives above
      // Swapping the classes flips the sign and nothing else.
      mint::contrastive_activations<float> swapped{pairs.sites, pairs.negative, pairs.positive};
      const auto w = as_eigen(mint::extract_vector(swapped, method)["s"]);
      CHECK((v + w).cwiseAbs().maxCoeff() < 1e-6);
    }
    // pca_difference is the top eigenvector of the centred differences' covariance (a direct solve).
    Eigen::MatrixXd diff = (pairs.positive[0] - pairs.negative[0]).cast<double>();
    diff.rowwise() -= diff.colwise().mean();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(diff.transpose() * diff);
    const Eigen::VectorXd top = solver.eigenvectors().col(d - 1);
    const auto v = as_eigen(mint::extract_vector(pairs, mint::extraction_method::pca_difference)["s"]);
    CHECK(std::abs(v.dot(top)) == doctest::Approx(1).epsilon(1e-6));
  }
}

TEST_CASE("PCA: pca_center is the top eigenvector of the pair-centred rows; ties in the sign rule are broken by the mean gap") {
  const mint::index d = 6;
  const auto u = unit_vector(d, 21);
  const auto pairs = planted_pairs(9, d, u, 22);
  Eigen::MatrixXd rows(18, d);
  for (mint::index i = 0; i < 9; ++i) {
    const Eigen::RowVectorXd p = pairs.positive[0].row(i).cast<double>(), n = pairs.negative[0].row(i).cast<double>();
    rows.row(i) = p - 0.5 * (p + n);
    rows.row(9 + i) = n - 0.5 * (p + n);
  }
  rows.rowwise() -= rows.colwise().mean();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(rows.transpose() * rows);
  const auto v = as_eigen(mint::extract_vector(pairs, mint::extraction_method::pca_center)["s"]);
  CHECK(std::abs(v.dot(solver.eigenvectors().col(d - 1))) == doctest::Approx(1).epsilon(1e-6));

  // Two pairs whose gaps along u are +3 and -1: one above, one below. The mean gap (+1) decides.
  mint::contrastive_activations<float> tied;
  tied.sites = {"s"};
  mint::matrixf pos = mint::matrixf::Zero(2, d), neg = mint::matrixf::Zero(2, d);
  for (mint::index k = 0; k < d; ++k) pos(0, k) = float(3 * u(k)), pos(1, k) = float(-u(k));
  tied.positive = {pos};
  tied.negative = {neg};
  for (const auto method : {mint::extraction_method::pca_difference, mint::extraction_method::pca_center})
    CHECK(as_eigen(mint::extract_vector(tied, method)["s"]).dot(u) > 0.99);
  tied.positive = {mint::matrixf(-pos)};  // now +1 and -3 along u: the mean gap says -u
  for (const auto method : {mint::extraction_method::pca_difference, mint::extraction_method::pca_center})
    CHECK(as_eigen(mint::extract_vector(tied, method)["s"]).dot(u) < -0.99);
  // Bad pairs are refused by name.
  mint::contrastive_activations<float> empty_site{{"s"}, {mint::matrixf(0, d)}, {mint::matrixf(0, d)}};
  CHECK_THROWS_AS(mint::extract_vector(empty_site), mint::shape_error);
  mint::contrastive_activations<float> one_pair{{"s"}, {mint::matrixf::Ones(1, d)}, {mint::matrixf::Zero(1, d)}};
  CHECK_NOTHROW(mint::extract_vector(one_pair));
  CHECK_THROWS_AS(mint::extract_vector(one_pair, mint::extraction_method::pca_difference), mint::shape_error);
  CHECK_THROWS_AS(mint::probe_vector(mint::contrastive_activations<float>{}), mint::argument_error);
  CHECK_THROWS_AS(mint::layer_sweep(mint::extract_vector(one_pair), mint::contrastive_activations<float>{{"s"}, {}, {}}),
                  mint::argument_error);
}

TEST_CASE("PCA extraction gives the same bits on 1 and 2 threads") {
  const auto pairs = planted_pairs(200, 64, unit_vector(64, 4), 5);
  const auto run = [&](int threads) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    return mint::extract_vector(pairs, mint::extraction_method::pca_center)["s"];
  };
  const auto one = run(1), two = run(2);
  run(1);
  CHECK(one == two);
}

TEST_CASE("ActAdd is the positionwise difference and adds at its positions") {
  auto model = extract_model();
  const auto plus = mint::token_batch::from_rows({{2, 9, 4}});
  const auto minus = mint::token_batch::from_rows({{2, 11, 5}});
  const std::string site = "blocks.0.hook_resid_post";
  const auto seq = mint::act_add(model, plus, minus, {site}, 1);
  REQUIRE(seq.positions() == 3);
  const auto a = mint::run_with_cache(model, plus, {site}), b = mint::run_with_cache(model, minus, {site});
  for (mint::index t = 0; t < 3; ++t)
    for (mint::index k = 0; k < 16; ++k)
      CHECK(seq.directions.at(site)(t, k) == doctest::Approx(a.cache[site](0, t, k) - b.cache[site](0, t, k)).epsilon(1e-6));
  CHECK((seq.directions.at(site).row(0).array() == 0).all());  // the same first token: no difference
  // Added at positions 1, 2, 3 of a longer run, times 2; positions 0 and 4 keep their values.
  const auto tokens = mint::token_batch::from_rows({{1, 3, 3, 3, 3}});
  const auto plain = mint::run_with_cache(model, tokens, {site});
  mint::activation_cache<float> cache(model.sites(), {site});
  cache.reserve(1, 5);
  mint::hook_set<float> hooks(model.sites());
  mint::add_steering(hooks, seq, 2.0);
  cache.attach(hooks);
  model.forward(tokens, hooks);
  for (mint::index t = 0; t < 5; ++t)
    for (mint::index k = 0; k < 16; ++k) {
      const double want = plain.cache[site](0, t, k) + (t >= 1 && t <= 3 ? 2.0 * seq.directions.at(site)(t - 1, k) : 0.0);
      CHECK(cache[site](0, t, k) == doctest::Approx(want).epsilon(1e-6));
    }
  CHECK_THROWS_AS(mint::act_add(model, plus, mint::token_batch::from_rows({{1, 2}}), {site}), mint::shape_error);
}

TEST_CASE("the logistic probe reaches a stationary point of its objective and separates planted pairs") {
  const mint::index d = 10;
  const auto u = unit_vector(d, 6);
  // Two clouds of unit noise 4 apart along u: about 98% separable.
  auto pairs = planted_pairs(40, d, u, 7, 0.0);
  mint::rng r(8);
  for (mint::index i = 0; i < 40; ++i)
    for (mint::index k = 0; k < d; ++k) pairs.positive[0](i, k) = float(r.normal() + 4 * u(k));
  const double l2 = 0.5;
  const auto fit = mint::logistic_probe(pairs.positive[0], pairs.negative[0], {.l2 = l2});
  REQUIRE(fit.converged);
  CHECK(fit.train_accuracy > 0.9);
  CHECK(as_eigen(fit.weights).normalized().dot(u) > 0.8);
  // The gradient of the objective at the solution, computed here in double from the formula.
  Eigen::VectorXd g = l2 * as_eigen(fit.weights);
  double g_bias = 0;
  for (int cls = 0; cls < 2; ++cls) {
    const auto& rows = cls == 0 ? pairs.positive[0] : pairs.negative[0];
    for (mint::index i = 0; i < rows.rows(); ++i) {
      const Eigen::VectorXd x = rows.row(i).cast<double>().transpose();
      const double p = 1 / (1 + std::exp(-(as_eigen(fit.weights).dot(x) + fit.bias)));
      g += (p - (cls == 0 ? 1.0 : 0.0)) * x;
      g_bias += p - (cls == 0 ? 1.0 : 0.0);
    }
  }
  // The weights are rounded to float32: a gradient of 1e-3 against entries of order 10.
  CHECK(g.cwiseAbs().maxCoeff() < 1e-3);
  CHECK(std::abs(g_bias) < 1e-3);
  CHECK_THROWS_AS(mint::logistic_probe(pairs.positive[0], pairs.negative[0], {.l2 = 0}), mint::argument_error);
}

TEST_CASE("the layer sweep picks the site that carries the signal, and keeps per-pair gaps") {
  const mint::index d = 8;
  const auto u = unit_vector(d, 8);
  auto train = planted_pairs(40, d, u, 9, 0.1), held = planted_pairs(20, d, u, 10, 0.1);
  // A second site where positives and negatives are unrelated noise.
  const auto noise = [&](std::uint64_t seed) {
    mint::rng r(seed);
    mint::matrixf m(train.pairs(), d);
    for (mint::index i = 0; i < m.size(); ++i) m.data()[i] = float(r.normal());
    return m;
  };
  train.sites.push_back("noise");
  train.positive.push_back(noise(1));
  train.negative.push_back(noise(2));
  held.sites.push_back("noise");
  held.positive.push_back(noise(3).topRows(20));
  held.negative.push_back(noise(4).topRows(20));
  const auto sweep = mint::layer_sweep(train, held);
  REQUIRE(sweep.sites.size() == 2);
  CHECK(sweep.best().site == "s");
  CHECK(sweep.sites[0].pair_accuracy == 1.0);
  CHECK(sweep.sites[0].gaps.size() == 20);
  CHECK(sweep.sites[0].effect_size > sweep.sites[1].effect_size);
}

TEST_CASE("the strength sweep: KL zero at scale 0, growing with the scale; behaviour moves") {
  auto model = extract_model();
  const auto prompts = mint::token_batch::from_rows({{1, 4, 2}, {3, 5, 6}});
  const auto neutral = mint::token_batch::from_rows({{2, 3, 4, 5, 6, 7}, {9, 8, 7, 6}});
  mint::rng r(12);
  std::vector<float> dir(16);
  for (auto& x : dir) x = float(r.normal());
  const mint::steering_vector<float> v{{"blocks.1.hook_resid_pre", dir}};
  const mint::token_probability target{{5, 5}};
  const auto points = mint::strength_sweep(model, v, prompts, target, neutral, {.scales = {0.0, 1.0, 4.0}});
  REQUIRE(points.size() == 3);
  CHECK(points[0].fluency_kl == doctest::Approx(0).scale(1e-9));
  CHECK(points[1].fluency_kl > 0);
  CHECK(points[2].fluency_kl > points[1].fluency_kl);
  mint::hook_set<float> none;
  CHECK(points[0].behaviour == doctest::Approx(target.value(model.forward(prompts, none), prompts)).epsilon(1e-6));
  CHECK(points[2].behaviour != doctest::Approx(points[0].behaviour).epsilon(1e-3));
}

TEST_CASE("SAE steering: no change is the identity; an edit moves the activation by decode(z') - decode(z)") {
  auto model = extract_model();
  const auto tokens = mint::token_batch::from_rows({{1, 4, 2, 7}, {3, 5, 6}});
  const std::string site = "blocks.0.hook_resid_post";
  const auto plain = mint::run_with_cache(model, tokens, {site});
  const mint::matrixf before = plain.cache.rows(site);  // valid rows in (row, position) order
  using norm = mint::dictionary::normalization;
  for (const auto mode : {norm::none, norm::expected_average_only_in, norm::constant_norm_rescale, norm::layer_norm}) {
    CAPTURE(int(mode));
    mint::dictionary::sae_options o;
    o.d_in = 16;
    o.d_sae = 32;
    o.normalize_activations = mode;
    mint::dictionary::basic_sae<float> sae(o, 3);
    if (mode == norm::expected_average_only_in) sae.set_scaling_factor(0.37f);
    const auto steered_by = [&](std::vector<mint::latent_edit> edits, const mint::position_policy& at = {}) {
      mint::activation_cache<float> cache(model.sites(), {site});
      cache.reserve(tokens.batch(), tokens.positions());
      mint::hook_set<float> hooks(model.sites());
      mint::add_sae_steering(hooks, site, sae, std::move(edits), at);
      cache.attach(hooks);
      model.forward(tokens, hooks);
      return mint::matrixf(cache.rows(site));
    };
    // Scaling by 1 and adding 0 change nothing: the activation comes back bit for bit.
    CHECK(steered_by({{.latent = 3, .kind = mint::latent_edit_kind::scale, .value = 1.0},
                      {.latent = 5, .kind = mint::latent_edit_kind::add, .value = 0.0}}) == before);
    // Each kind against the SAE's own reconstructions: x + forward-reconstruction difference,
    // computed here from encode and the decoder (SAELens's undoing of each normalisation).
    const std::vector<mint::latent_edit> edits{{.latent = 7, .kind = mint::latent_edit_kind::add, .value = 2.0},
                                               {.latent = 2, .kind = mint::latent_edit_kind::set, .value = 1.5},
                                               {.latent = 9, .kind = mint::latent_edit_kind::scale, .value = 3.0}};
    const mint::matrixf moved = steered_by(edits);
    mint::matrixf xn;
    mint::dictionary::row_scaling<float> rows;
    sae.normalize(before, xn, rows);
    mint::matrixf z;
    sae.encode_normalized(xn, z);
    for (mint::index i = 0; i < before.rows(); ++i) {
      Eigen::VectorXd change = Eigen::VectorXd::Zero(16);
      for (const auto& e : edits) {
        const double zi = z(i, e.latent);
        const double edited = e.kind == mint::latent_edit_kind::set ? e.value : e.kind == mint::latent_edit_kind::scale ? e.value * zi : zi + e.value;
        change += (edited - zi) * sae.W_dec().row(e.latent).cast<double>().transpose();
      }
      switch (mode) {
        case norm::none: break;
        case norm::expected_average_only_in: change /= 0.37; break;
        case norm::constant_norm_rescale: change /= double(rows.scale(i)); break;
        case norm::layer_norm: change *= double(rows.scale(i)); break;
      }
      const Eigen::VectorXd got = (moved.row(i) - before.row(i)).cast<double>().transpose();
      // float32 activations of norm about 4 plus a change of order 1: 1e-5 relative.
      CHECK((got - change).cwiseAbs().maxCoeff() < 1e-5 * (1 + change.norm() + before.row(i).norm()));
    }
    // With a position policy, only those positions move: position 0 of each row, rows 0 and 4
    // of the valid rows (row 0 holds four positions).
    const mint::matrixf only_first = steered_by(edits, {.positions = mint::steer_positions::given, .given = {0}});
    for (mint::index i = 0; i < before.rows(); ++i) CHECK(only_first.row(i) == (i == 0 || i == 4 ? moved.row(i) : before.row(i)));
  }
  mint::dictionary::sae_options o;
  o.d_in = 16;
  o.d_sae = 8;
  const mint::dictionary::basic_sae<float> sae(o, 1);
  mint::hook_set<float> hooks(model.sites());
  CHECK_THROWS_AS(mint::add_sae_steering(hooks, site, sae, {{.latent = 8}}), mint::argument_error);
  CHECK_THROWS_AS(mint::add_sae_steering(hooks, site, sae, {{.latent = 1}, {.latent = 1, .kind = mint::latent_edit_kind::add}}),
                  mint::argument_error);  // one edit per latent
  CHECK_THROWS_AS(mint::add_sae_steering(hooks, "blocks.0.mlp.hook_post", sae, {{.latent = 1}}), mint::shape_error);
}
