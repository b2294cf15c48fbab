// The L1 weight over blocks of the decoder row (sae_loss_options::decoder_norm_blocks, what a
// crosscoder penalises): the weights it gives, its gradient against finite differences, and
// that one block is the whole-row weight of before.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>

#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/dictionary/train.hpp"

namespace dict = mint::dictionary;
using dict::sae_architecture;

namespace {

dict::basic_sae<double> shifted_sae(sae_architecture arch, mint::index d, mint::index m, std::uint64_t seed) {
  dict::basic_sae<double> s({.d_in = d, .d_sae = m, .architecture = arch}, seed);
  mint::rng r(seed + 100);
  for (auto& v : s.parameters().flat()) v += 0.3 * r.normal();  // away from encoder = decoder^T, zero biases
  return s;
}

// Central differences, step 1e-6 in double: truncation ~1e-12 and rounding ~1e-10 of the loss,
// so 1e-6 relative separates a right gradient from a wrong one by orders of magnitude.
int check_block_gradient(dict::basic_sae<double>& s, const mint::parameter_store<double>& g, const std::function<double()>& f) {
  const double h = 1e-6;
  auto flat = s.parameters().flat();
  int checked = 0;
  for (const auto& e : s.parameters().entries())
    for (mint::index p = e.offset; p < e.offset + e.size; ++p) {
      const double keep = flat[std::size_t(p)];
      flat[std::size_t(p)] = keep + h;
      const double up = f();
      flat[std::size_t(p)] = keep - h;
      const double down = f();
      flat[std::size_t(p)] = keep;
      const double fd = (up - down) / (2 * h), exact = g.flat()[std::size_t(p)];
      INFO(e.name, " [", p - e.offset, "]: fd ", fd, " exact ", exact);
      CHECK(std::abs(fd - exact) <= 1e-6 * std::max(1.0, std::abs(fd)));
      ++checked;
    }
  return checked;
}

// lambda sum_ij z_ij sum_b ||W_dec[j, block b]||, written out.
double block_penalty(const dict::basic_sae<double>& s, const mint::matrixd& z, double lambda, mint::index blocks) {
  const mint::index w = s.d_in() / blocks;
  double total = 0;
  for (mint::index j = 0; j < s.d_sae(); ++j) {
    double weight = 0;
    for (mint::index b = 0; b < blocks; ++b) weight += s.W_dec().row(j).segment(b * w, w).norm();
    total += z.col(j).sum() * weight;
  }
  return lambda * total;
}

}  // namespace

TEST_CASE("decoder_norm_blocks: the penalty sums block norms and its gradient matches finite differences") {
  const mint::index d = 6, m = 8, n = 7;
  mint::matrixd x(n, d);
  mint::rng(3).fill_normal(x);
  for (auto arch : {sae_architecture::relu, sae_architecture::gated})
    for (mint::index blocks : {1, 2, 3})
      for (double density : {0.0, 1.0}) {  // relu: dense path, then sparse
        if (arch == sae_architecture::gated && density > 0) continue;
        CAPTURE(dict::to_string(arch));
        CAPTURE(blocks);
        CAPTURE(density);
        auto s = shifted_sae(arch, d, m, 11);
        const dict::sae_loss_options o{.l1_coefficient = 0.3, .decoder_norm_blocks = blocks, .sparse_density = density};
        dict::sae_workspace<double> ws;
        auto g = s.parameters().zeros_like();
        const auto l = s.loss(x, o, ws, &g);
        // The penalty, from the codes (ReLU) or the gate (Gated: relu of the gate pre-activation).
        const mint::matrixd pre = (x.rowwise() - s.b_dec().transpose()) * s.W_enc();
        const mint::matrixd penalised = (pre.rowwise() + s.b_enc().transpose()).cwiseMax(0.0);
        CHECK(l.sparsity > 0);
        CHECK(l.sparsity == doctest::Approx(block_penalty(s, penalised, 0.3, blocks)).epsilon(1e-12));
        if (arch == sae_architecture::gated) continue;  // Gated's auxiliary term needs a frozen decoder (tests/dictionary/sae.cpp)
        CHECK(check_block_gradient(s, g, [&] { return s.loss(x, o, ws).total(); }) > 100);
      }
}

TEST_CASE("decoder_norm_blocks = 1 is the default and the whole-row weight; a non-divisor is an argument_error") {
  auto s = shifted_sae(sae_architecture::relu, 6, 8, 5);
  mint::matrixd x(5, 6);
  mint::rng(4).fill_normal(x);
  dict::sae_workspace<double> ws;
  auto g_default = s.parameters().zeros_like(), g_one = s.parameters().zeros_like();
  const auto l_default = s.loss(x, {.l1_coefficient = 0.3}, ws, &g_default);
  const auto l_one = s.loss(x, {.l1_coefficient = 0.3, .decoder_norm_blocks = 1}, ws, &g_one);
  CHECK(l_default.sparsity == l_one.sparsity);
  for (std::size_t i = 0; i < g_one.flat().size(); ++i) CHECK(g_default.flat()[i] == g_one.flat()[i]);
  // The whole-row weight, written out: lambda sum_ij z_ij ||W_dec[j]||.
  const mint::matrixd z = s.encode(x);
  CHECK(l_one.sparsity == doctest::Approx(0.3 * (z.colwise().sum().transpose().cwiseProduct(s.W_dec().rowwise().norm())).sum())
                              .epsilon(1e-12));
  CHECK_THROWS_WITH_AS(s.loss(x, {.decoder_norm_blocks = 4}, ws),
                       doctest::Contains("mint::dictionary::sae::loss: o.decoder_norm_blocks is 4"), mint::argument_error);
  CHECK_THROWS_AS(s.loss(x, {.decoder_norm_blocks = 0}, ws), mint::argument_error);
  CHECK_THROWS_WITH_AS(dict::sae_trainer<double>(s, {.loss = {.decoder_norm_blocks = 4}}),
                       doctest::Contains("options.loss.decoder_norm_blocks is 4"), mint::argument_error);
}
