// SAE architectures: exact gradients against finite differences (double), TopK's k,
// normalization round trips, and the inference rules.
#include "mint/dictionary/sae.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "mint/adapters/eigen.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace dict = mint::dictionary;
using dict::sae_architecture;

namespace {

dict::basic_sae<double> random_sae(sae_architecture arch, mint::index d, mint::index m, mint::index k, std::uint64_t seed,
                                   bool b_dec_in = true) {
  dict::basic_sae<double> s({.d_in = d, .d_sae = m, .architecture = arch, .k = k, .apply_b_dec_to_input = b_dec_in}, seed);
  mint::rng r(seed + 100);
  // Every parameter away from its initial symmetry (biases 0, encoder = decoder^T).
  for (auto& v : s.parameters().flat()) v += 0.3 * r.normal();
  if (arch == sae_architecture::jumprelu)
    for (auto& t : s.threshold()) t = 0.2 + 0.3 * r.uniform();
  return s;
}

// Central differences of `objective` for every parameter but `skip`, against `gradient`.
// Step 1e-6 in double: truncation ~1e-12, rounding ~1e-10 of the loss; tolerance 1e-6 relative.
void check_gradient(dict::basic_sae<double>& s, const mint::parameter_store<double>& gradient,
                    const std::function<double()>& objective, const std::string& skip = "") {
  const double h = 1e-6;
  auto flat = s.parameters().flat();
  int checked = 0;
  for (const auto& e : s.parameters().entries()) {
    if (e.name == skip) continue;
    for (mint::index p = e.offset; p < e.offset + e.size; ++p) {
      const double keep = flat[std::size_t(p)];
      flat[std::size_t(p)] = keep + h;
      const double up = objective();
      flat[std::size_t(p)] = keep - h;
      const double down = objective();
      flat[std::size_t(p)] = keep;
      const double fd = (up - down) / (2 * h), g = gradient.flat()[std::size_t(p)];
      INFO(e.name, " [", p - e.offset, "]: fd ", fd, " exact ", g);
      CHECK(std::abs(fd - g) <= 1e-6 * std::max(1.0, std::abs(fd)));
      ++checked;
    }
  }
  CHECK(checked > 50);
}

mint::matrixd random_rows(mint::index n, mint::index d, std::uint64_t seed) {
  mint::matrixd x(n, d);
  mint::rng r(seed);
  r.fill_normal(x);
  return x;
}

}  // namespace

TEST_CASE("relu, jumprelu, batchtopk and topk gradients match finite differences (dense and sparse paths)") {
  for (auto arch : {sae_architecture::relu, sae_architecture::jumprelu, sae_architecture::batchtopk, sae_architecture::topk}) {
    CAPTURE(dict::to_string(arch));
    for (int variant = 0; variant < 4; ++variant) {
      const bool b_dec_in = variant % 2 == 0;
      const double sparse_density = variant < 2 ? 0.0 : 1.0;  // relu/jumprelu: dense, then sparse
      CAPTURE(sparse_density);
      auto s = random_sae(arch, 5, 8, 3, 11, b_dec_in);
      const mint::matrixd x = random_rows(6, 5, 3);
      const dict::sae_loss_options o{
          .l1_coefficient = 0.3, .l0_coefficient = 0.05, .bandwidth = 0.8, .sparse_density = sparse_density};
      dict::sae_workspace<double> ws;
      auto g = s.parameters().zeros_like();
      const auto l = s.loss(x, o, ws, &g);
      CHECK(l.rows == 6);
      CHECK(l.reconstruction > 0);
      if (arch == sae_architecture::relu || arch == sae_architecture::jumprelu) CHECK(l.sparsity > 0);
      if (arch == sae_architecture::batchtopk) CHECK(l.l0 <= 3 * 6);
      check_gradient(s, g, [&] { return s.loss(x, o, ws).total(); }, "threshold");
      if (arch != sae_architecture::jumprelu) continue;
      // The threshold's straight-through gradient, written out from the paper's formula.
      const mint::matrixd pre = ((x.rowwise() - (b_dec_in ? 1.0 : 0.0) * s.b_dec().transpose()) * s.W_enc()).rowwise() +
                                s.b_enc().transpose();
      const mint::matrixd z = (pre.array() > 0 && pre.array() > s.threshold().transpose().replicate(6, 1).array()).select(pre, 0.0);
      const mint::matrixd dz = 2 * ((z * s.W_dec()).rowwise() + s.b_dec().transpose() - x) * s.W_dec().transpose();
      int inside = 0;
      for (mint::index j = 0; j < 8; ++j) {
        double want = 0;
        const double theta = s.threshold()(j);
        for (mint::index i = 0; i < 6; ++i)
          if (std::abs(pre(i, j) - theta) < 0.4) {
            want += -(theta / 0.8) * dz(i, j) - 0.05 / 0.8;
            ++inside;
          }
        CHECK(s.parameters()["threshold"].size() == 8);
        CHECK(g["threshold"](j) == doctest::Approx(want).epsilon(1e-12));
      }
      CHECK(inside > 3);
    }
  }
}

TEST_CASE("gated gradients match finite differences of the loss with the auxiliary decoder frozen") {
  auto s = random_sae(sae_architecture::gated, 5, 8, 3, 12);
  const mint::matrixd x = random_rows(6, 5, 4);
  const dict::sae_loss_options o{.l1_coefficient = 0.3};
  dict::sae_workspace<double> ws;
  auto g = s.parameters().zeros_like();
  const auto l = s.loss(x, o, ws, &g);
  CHECK(l.auxiliary > 0);
  const mint::matrixd W_dec0 = s.W_dec();
  const Eigen::VectorXd b_dec0 = s.b_dec();
  auto objective = [&] {
    const auto now = s.loss(x, o, ws);
    const mint::matrixd pi = (((x.rowwise() - s.b_dec().transpose()) * s.W_enc()).rowwise() + s.b_gate().transpose()).cwiseMax(0.0);
    const double aux = ((pi * W_dec0).rowwise() + b_dec0.transpose() - x).squaredNorm();
    return now.reconstruction + now.sparsity + aux;
  };
  CHECK(objective() == doctest::Approx(l.total()).epsilon(1e-12));
  check_gradient(s, g, objective);
}

TEST_CASE("topk with AuxK: gradients match finite differences with the residual frozen") {
  auto s = random_sae(sae_architecture::topk, 6, 10, 2, 13);
  const mint::matrixd x = random_rows(7, 6, 5);
  std::vector<std::uint8_t> dead(10, 0);
  dead[1] = dead[4] = dead[7] = dead[8] = 1;
  const dict::sae_loss_options o{.auxk_coefficient = 0.5, .k_aux = 2};
  dict::sae_workspace<double> ws;
  auto g = s.parameters().zeros_like();
  const auto l = s.loss(x, o, ws, &g, dead);
  CHECK(l.auxiliary > 0);
  const mint::matrixd residual = x - ws.reconstruction();  // held fixed, as the loss detaches it
  auto objective = [&] {
    const auto now = s.loss(x, o, ws);
    const mint::matrixd pre = ((x.rowwise() - s.b_dec().transpose()) * s.W_enc()).rowwise() + s.b_enc().transpose();
    mint::matrixd za = mint::matrixd::Zero(7, 10);
    for (mint::index i = 0; i < 7; ++i) {
      std::vector<mint::index> ids = {1, 4, 7, 8};
      std::sort(ids.begin(), ids.end(), [&](auto a, auto b) { return pre(i, a) > pre(i, b); });
      for (int t = 0; t < 2; ++t) za(i, ids[t]) = std::max(pre(i, ids[t]), 0.0);
    }
    // scale min(1, dead / k_aux) = 1
    return now.reconstruction + 0.5 * (za * s.W_dec() - residual).squaredNorm();
  };
  CHECK(objective() == doctest::Approx(l.total()).epsilon(1e-12));
  check_gradient(s, g, objective);
}

TEST_CASE("topk keeps exactly k latents per row; batchtopk keeps k x rows over the batch") {
  dict::sae s({.d_in = 16, .d_sae = 64, .architecture = sae_architecture::topk, .k = 5}, 1);
  s.b_enc().setConstant(10.0f);  // every pre-activation positive: exactly k non-zeros
  mint::matrixf x(9, 16);
  mint::rng(2).fill_normal(x);
  const mint::matrixf z = s.encode(x);
  for (mint::index i = 0; i < 9; ++i) CHECK((z.row(i).array() > 0).count() == 5);
  // They are the k largest pre-activations.
  const mint::matrixf pre = ((x.rowwise() - s.b_dec().transpose()) * s.W_enc()).rowwise() + s.b_enc().transpose();
  for (mint::index i = 0; i < 9; ++i) {
    float smallest_kept = 1e30f, largest_dropped = -1e30f;
    for (mint::index j = 0; j < 64; ++j)
      (z(i, j) > 0 ? smallest_kept = std::min(smallest_kept, pre(i, j)) : largest_dropped = std::max(largest_dropped, pre(i, j)));
    CHECK(smallest_kept > largest_dropped);
  }
  dict::sae b({.d_in = 16, .d_sae = 64, .architecture = sae_architecture::batchtopk, .k = 5}, 1);
  b.b_enc().setConstant(10.0f);
  CHECK((b.encode(x).array() > 0).count() == 5 * 9);
  dict::sae_workspace<float> ws;
  b.loss(x, {}, ws);
  CHECK(ws.batch_threshold() > 0);
  b.set_batch_threshold(ws.batch_threshold());
  // With the learned threshold, inference keeps what exceeds it (here the same count but the smallest kept).
  CHECK((b.encode(x).array() > 0).count() == 5 * 9 - 1);
}

TEST_CASE("select_topk equals a full sort of each row: ties to the lower latent, masks, NaN rows") {
  // Rows of 8 levels (many ties), widths around the block size, k from 1 to more than allowed.
  for (const mint::index m : {1, 5, 64, 257, 1000}) {
    for (const mint::index k : {1, 3, 32, 300}) {
      CAPTURE(m);
      CAPTURE(k);
      mint::matrixf pre(6, m);
      mint::rng r(std::uint64_t(m * 1000 + k));
      for (mint::index i = 0; i < pre.size(); ++i) pre.data()[i] = float(int(r.uniform() * 8) - 3);
      pre.row(5).setConstant(1.0f);  // one value throughout: the lowest latents win
      std::vector<std::uint8_t> allowed(static_cast<std::size_t>(m));
      for (auto& a : allowed) a = r.uniform() < 0.3;
      for (const bool masked : {false, true}) {
        CAPTURE(masked);
        mint::detail::sparse_codes<float> codes;
        mint::detail::topk_scratch<float> scratch;
        mint::detail::select_topk(pre, k, masked ? allowed.data() : nullptr, codes, scratch);
        for (mint::index i = 0; i < pre.rows(); ++i) {
          std::vector<mint::index> order;
          for (mint::index j = 0; j < m; ++j)
            if (!masked || allowed[std::size_t(j)]) order.push_back(j);
          std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return pre(i, a) > pre(i, b); });
          order.resize(std::min<std::size_t>(order.size(), std::size_t(k)));
          std::sort(order.begin(), order.end());
          const std::vector<mint::index> got(codes.latent.begin() + codes.start[std::size_t(i)],
                                             codes.latent.begin() + codes.start[std::size_t(i + 1)]);
          CHECK(got == order);
          for (std::size_t e = 0; e < got.size(); ++e)
            CHECK(codes.value[std::size_t(codes.start[std::size_t(i)]) + e] == std::max(pre(i, got[e]), 0.0f));
        }
      }
    }
  }
  // NaN scattered through rows of distinct values (one in every few entries, so in the blocks
  // holding the winners too): NaN ranks below every number, masked or not.
  {
    mint::matrixf mixed(3, 500);
    mint::rng r(77);
    for (mint::index i = 0; i < mixed.size(); ++i)
      mixed.data()[i] = i % 7 == 3 ? std::numeric_limits<float>::quiet_NaN() : float(r.normal());
    std::vector<std::uint8_t> allowed(500);
    for (std::size_t j = 0; j < allowed.size(); ++j) allowed[j] = j % 3 != 0;
    for (const bool masked : {false, true}) {
      mint::detail::sparse_codes<float> got;
      mint::detail::topk_scratch<float> scratch;
      mint::detail::select_topk(mixed, 4, masked ? allowed.data() : nullptr, got, scratch);
      for (mint::index i = 0; i < mixed.rows(); ++i) {
        std::vector<mint::index> order;
        for (mint::index j = 0; j < 500; ++j)
          if ((!masked || allowed[std::size_t(j)]) && !std::isnan(mixed(i, j))) order.push_back(j);
        std::sort(order.begin(), order.end(), [&](auto a, auto b) { return mixed(i, a) > mixed(i, b); });
        order.resize(4);
        std::sort(order.begin(), order.end());
        CHECK(std::vector<mint::index>(got.latent.begin() + 4 * i, got.latent.begin() + 4 * i + 4) == order);
      }
    }
  }
#if defined(_OPENMP)
  // Enough rows to split across two threads (each with its own slice of the scratch): the
  // same codes as one thread.
  {
    mint::matrixf many(600, 1000);
    mint::rng(5).fill_normal(many);
    const int before = omp_get_max_threads();
    mint::detail::sparse_codes<float> one, two;
    mint::detail::topk_scratch<float> scratch;
    omp_set_num_threads(1);
    mint::detail::select_topk(many, 16, nullptr, one, scratch);
    omp_set_num_threads(2);
    mint::detail::select_topk(many, 16, nullptr, two, scratch);
    omp_set_num_threads(before);
    CHECK(one.latent == two.latent);
    CHECK(one.value == two.value);
  }
#endif
  // A row of NaN still gets k entries (the lowest latents) and nothing reads past the row.
  mint::matrixf nan_rows = mint::matrixf::Constant(2, 300, std::numeric_limits<float>::quiet_NaN());
  nan_rows(1, 7) = 2.0f;
  mint::detail::sparse_codes<float> codes;
  mint::detail::topk_scratch<float> scratch;
  mint::detail::select_topk(nan_rows, 3, nullptr, codes, scratch);
  CHECK(std::vector<mint::index>(codes.latent.begin(), codes.latent.begin() + 3) == std::vector<mint::index>{0, 1, 2});
  CHECK(std::vector<mint::index>(codes.latent.begin() + 3, codes.latent.end()) == std::vector<mint::index>{0, 1, 7});
}

TEST_CASE("normalization modes round-trip through forward when the SAE reconstructs perfectly") {
  // d_sae = d_in, identity encoder and decoder, zero biases: relu passes positives, so feed positive data.
  for (auto mode : {dict::normalization::none, dict::normalization::expected_average_only_in,
                    dict::normalization::constant_norm_rescale}) {
    dict::basic_sae<double> s({.d_in = 4, .d_sae = 4, .normalize_activations = mode}, 0);
    s.W_enc().setIdentity();
    s.W_dec().setIdentity();
    s.set_scaling_factor(3.0);
    mint::matrixd x(3, 4);
    mint::rng(1).fill_uniform(x, 0.5, 2.0);
    CHECK((s.forward(x) - x).cwiseAbs().maxCoeff() < 1e-12);
    mint::matrixd xn;
    dict::row_scaling<double> rows;
    s.normalize(x, xn, rows);
    if (mode == dict::normalization::constant_norm_rescale)
      for (mint::index i = 0; i < 3; ++i) CHECK(xn.row(i).norm() == doctest::Approx(2.0));
    if (mode == dict::normalization::expected_average_only_in) CHECK(xn(0, 0) == doctest::Approx(3 * x(0, 0)));
  }
  dict::basic_sae<double> ln({.d_in = 4, .d_sae = 4, .normalize_activations = dict::normalization::layer_norm}, 0);
  mint::matrixd x(2, 4), xn;
  x << 1, 2, 3, 4, -1, 0, 5, 2;
  dict::row_scaling<double> rows;
  ln.normalize(x, xn, rows);
  CHECK(xn.row(0).mean() == doctest::Approx(0.0));
  CHECK(xn(0, 3) == doctest::Approx(1.5 / (std::sqrt(5.0 / 3.0) + 1e-5)));
  // SAELens undoes layer_norm with the standard deviation alone (its ln_std), not std + 1e-5,
  // so normalizing then undoing scales x - mean by std / (std + 1e-5).
  mint::matrixd back = xn;
  ln.denormalize(back, rows);
  for (mint::index i = 0; i < 2; ++i) {
    const double mean = x.row(i).mean();
    const double std = std::sqrt((x.row(i).array() - mean).square().sum() / 3.0);
    for (mint::index j = 0; j < 4; ++j) CHECK(std::abs(back(i, j) - ((x(i, j) - mean) * std / (std + 1e-5) + mean)) < 1e-14);
  }
}

TEST_CASE("layer_norm's reconstruction is SAELens's: y * std + mean, with no epsilon on the way out") {
  // SAELens (v6.18, run_time_activation_ln_in/out): mu = mean(x), std = std(x - mu) with n - 1,
  // x_n = (x - mu) / (std + 1e-5), and the reconstruction y of x_n is undone as y * std + mu.
  // Computed here in double from the SAE's own weights; mint in double must agree to rounding
  // (1e-12 on values ~1). Undoing with std + 1e-5 (as mint once did) is off by 1e-5 * |y|.
  for (const auto arch : {sae_architecture::relu, sae_architecture::topk}) {
    CAPTURE(dict::to_string(arch));
    dict::basic_sae<double> s({.d_in = 6, .d_sae = 12, .architecture = arch, .k = 4,
                               .normalize_activations = dict::normalization::layer_norm}, 3);
    mint::rng r(8);
    for (auto& v : s.parameters().flat()) v += 0.3 * r.normal();
    mint::matrixd x(5, 6);
    r.fill_normal(x);
    x = (x * 0.7).array() + 0.4;
    const mint::matrixd got = s.forward(x);
    for (mint::index i = 0; i < x.rows(); ++i) {
      const double mu = x.row(i).mean();
      const double std = std::sqrt((x.row(i).array() - mu).square().sum() / double(x.cols() - 1));
      const Eigen::RowVectorXd xn = (x.row(i).array() - mu) / (std + 1e-5);
      Eigen::RowVectorXd pre = (xn - s.b_dec().transpose()) * s.W_enc() + s.b_enc().transpose();
      if (arch == sae_architecture::topk) {  // keep the 4 largest, then relu
        Eigen::RowVectorXd sorted = pre;
        std::sort(sorted.data(), sorted.data() + sorted.size(), std::greater<>());
        for (auto& v : pre) v = v >= sorted(3) ? v : 0.0;
      }
      const Eigen::RowVectorXd z = pre.cwiseMax(0.0);
      const Eigen::RowVectorXd y = z * s.W_dec() + s.b_dec().transpose();
      const Eigen::RowVectorXd expected = (y.array() * std + mu).matrix();
      CHECK((got.row(i) - expected).cwiseAbs().maxCoeff() < 1e-12);
    }
  }
}

TEST_CASE("bad SAE input gives mint errors") {
  CHECK_THROWS_AS(dict::sae({.d_in = 0, .d_sae = 4}), mint::argument_error);
  CHECK_THROWS_AS(dict::sae({.d_in = 4, .d_sae = 4, .architecture = sae_architecture::topk, .k = 5}), mint::argument_error);
  // Absurd sizes say what they would take, before anything is allocated (32 TiB here).
  CHECK_THROWS_WITH_AS(dict::sae({.d_in = mint::index(1) << 20, .d_sae = mint::index(1) << 22}),
                       doctest::Contains("options would take 32768"), mint::argument_error);
  CHECK_THROWS_WITH_AS(dict::sae({.d_in = mint::index(1) << 31, .d_sae = mint::index(1) << 31}),
                       doctest::Contains("needs sizes that fit in memory"), mint::argument_error);
  dict::sae s({.d_in = 4, .d_sae = 8}, 0);
  CHECK_THROWS_AS(s.encode(mint::matrixf(3, 5)), mint::shape_error);
  CHECK_THROWS_AS(s.decode(mint::matrixf(3, 4)), mint::shape_error);
  dict::sae_workspace<float> ws;
  auto g = dict::sae({.d_in = 4, .d_sae = 9}, 0).parameters().zeros_like();
  CHECK_THROWS_AS(s.loss(mint::matrixf(3, 4), {}, ws, &g), mint::shape_error);
  CHECK(s.parameters().contains("b_enc"));
  CHECK(dict::sae({.d_in = 4, .d_sae = 8, .architecture = sae_architecture::gated}, 0).parameters().contains("r_mag"));
  // A NaN or infinity in the input is named, not ranked into codes (TopK) or passed on as NaN.
  mint::matrixf x = mint::matrixf::Ones(3, 4);
  x(1, 2) = std::numeric_limits<float>::quiet_NaN();
  dict::sae topk({.d_in = 4, .d_sae = 8, .architecture = sae_architecture::topk, .k = 2}, 0);
  CHECK_THROWS_WITH_AS(topk.encode(x), doctest::Contains("mint::dictionary::sae::encode: x holds a NaN or infinity in row 1"),
                       mint::numeric_error);
  x(1, 2) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(s.forward(x), doctest::Contains("sae::forward"), mint::numeric_error);
}

TEST_CASE("inference encode and forward agree with the training loss's codes for every architecture") {
  for (auto arch : {sae_architecture::relu, sae_architecture::topk, sae_architecture::batchtopk, sae_architecture::jumprelu,
                    sae_architecture::gated}) {
    CAPTURE(dict::to_string(arch));
    auto s = random_sae(arch, 5, 8, 3, 21);
    const mint::matrixd x = random_rows(6, 5, 8);
    dict::sae_workspace<double> ws;
    const auto l = s.loss(x, {.bandwidth = 0.01}, ws);
    CHECK((s.forward(x) - ws.reconstruction()).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(double((s.encode(x).array() > 0).count()) == l.l0);
  }
}

TEST_CASE("latent_slots names exactly a latent's encoder column, decoder row and per-latent entries") {
  for (auto arch : {sae_architecture::relu, sae_architecture::topk, sae_architecture::batchtopk, sae_architecture::jumprelu,
                    sae_architecture::gated}) {
    CAPTURE(dict::to_string(arch));
    dict::basic_sae<float> sae({.d_in = 3, .d_sae = 5, .architecture = arch, .k = 2}, 4);
    const mint::index j = 2;
    auto flat = sae.parameters().flat();
    std::fill(flat.begin(), flat.end(), 0.0f);
    const auto slots = sae.latent_slots(j);
    for (auto p : slots) flat[std::size_t(p)] += 1.0f;
    // Each slot once; W_enc's column j and W_dec's row j whole; every [d_sae] vector at j, b_dec untouched.
    CHECK(sae.W_enc().col(j).sum() == 3);
    CHECK(sae.W_dec().row(j).sum() == 3);
    CHECK(sae.b_dec().sum() == 0);
    mint::index per_latent = 0;
    for (const auto& e : sae.parameters().entries())
      if (e.extents.size() == 1 && e.name != "b_dec") {
        ++per_latent;
        const auto v = sae.parameters()[e.name];
        CHECK(v.data()[j] == 1);
      }
    CHECK(per_latent == (arch == sae_architecture::gated ? 3 : arch == sae_architecture::jumprelu ? 2 : 1));
    CHECK(mint::index(slots.size()) == 2 * 3 + per_latent);
    CHECK(std::accumulate(flat.begin(), flat.end(), 0.0f) == float(slots.size()));
  }
  dict::basic_sae<float> sae({.d_in = 3, .d_sae = 5}, 4);
  CHECK_THROWS_WITH_AS(sae.latent_slots(5), doctest::Contains("needs 0 <= j < d_sae = 5"), mint::argument_error);
}
