// SAE training: unit-norm decoder, exact resume, data sources, and recovery of known
// features (MMCS >= 0.99) by every architecture.
#include "mint/dictionary/train.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/io/npy.hpp"

namespace dict = mint::dictionary;
using dict::sae_architecture;

namespace {

// 64 true features in 32 dimensions, each firing with probability 0.04 (L0 about 2.6).
const dict::synthetic_features& toy_features() {
  static const dict::synthetic_features gen({.features = 64, .dims = 32, .firing_probability = 0.04, .seed = 1});
  return gen;
}

const mint::matrixf& toy_data() {
  static const mint::matrixf data = [] {
    mint::rng r(2);
    mint::matrixf x;
    toy_features().sample(r, 20000, x);
    return x;
  }();
  return data;
}

}  // namespace

TEST_CASE("the geometric median is the center of a square and ignores a far outlier in 1-D") {
  mint::matrixd square(4, 2);
  square << 0, 0, 1, 0, 0, 1, 1, 1;
  const auto c = dict::geometric_median(square);
  CHECK(c(0) == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(c(1) == doctest::Approx(0.5).epsilon(1e-6));
  mint::matrixd line(3, 1);
  line << 0, 1, 1000;
  CHECK(dict::geometric_median(line, 500)(0) == doctest::Approx(1.0).epsilon(1e-3));
}

TEST_CASE("decoder rows stay at unit norm, b_dec starts at the geometric median, progress reports") {
  dict::sae s({.d_in = 32, .d_sae = 64, .architecture = sae_architecture::relu, .decoder_init_norm = 0.1}, 1);
  std::vector<std::string> lines;
  dict::sae_train_options o{.batch_size = 64, .steps = 20, .adam = {.lr = 1e-2}};
  o.progress = [&](const mint::progress& p) { lines.push_back(std::string(p.task) + " " + std::to_string(p.step)); };
  o.progress_interval = 0;
  dict::sae_trainer<float> t(s, o);
  auto source = dict::matrix_batches(toy_data(), 3);
  // The first batch, drawn the way the trainer will draw it, gives b_dec.
  auto peek = dict::matrix_batches(toy_data(), 3);
  mint::matrixf first(64, 32);
  peek.next(mint::view(first));
  const Eigen::VectorXf median = dict::geometric_median(first).cast<float>();
  t.step(first);
  // After one Adam step b_dec moved at most lr per coordinate from the median.
  CHECK((s.b_dec() - median).cwiseAbs().maxCoeff() <= 1.01e-2f);
  t.train(source);
  CHECK(t.steps_done() == 20);
  for (mint::index j = 0; j < 64; ++j) CHECK(s.W_dec().row(j).norm() == doctest::Approx(1.0).epsilon(1e-5));
  REQUIRE(!lines.empty());
  CHECK(lines.back() == "train relu 20");
}

TEST_CASE("a checkpointed run resumes to identical weights (matrix and shard sources)") {
  const auto folder = dictionary_test::temp_folder("resume");
  // Two shards of the toy data for the streaming source.
  mint::write_npy((folder / "a.npy").string(), mint::matrixf(toy_data().topRows(3000)));
  mint::write_npy((folder / "b.npy").string(), mint::matrixf(toy_data().middleRows(3000, 2000)));
  for (auto arch : {sae_architecture::topk, sae_architecture::relu, sae_architecture::batchtopk}) {
    CAPTURE(dict::to_string(arch));
    const bool shards = arch != sae_architecture::topk;
    const dict::sae_options so{.d_in = 32, .d_sae = 48, .architecture = arch, .k = 3,
                               .normalize_activations = dict::normalization::expected_average_only_in};
    dict::sae_train_options o{.batch_size = 100, .steps = 16,
                              .adam = {.lr = 3e-3, .warmup = 4, .decay = mint::lr_decay::cosine, .total_steps = 16}};
    o.dead_after_tokens = 300;  // latents die within the run, so AuxK and resampling act
    o.resample_every = arch == sae_architecture::relu ? 5 : 0;
    o.loss.l1_coefficient = 0.3;
    auto make_source = [&](mint::activation_shards& stream) {
      return shards ? dict::shard_batches(stream) : dict::matrix_batches(toy_data(), 9);
    };
    mint::activation_shards stream1(folder.string(), {.shuffle_buffer_rows = 500, .seed = 4});
    dict::sae straight(so, 5);
    dict::sae_trainer<float> t1(straight, o);
    auto s1 = make_source(stream1);
    t1.train(s1);

    mint::activation_shards stream2(folder.string(), {.shuffle_buffer_rows = 500, .seed = 4});
    dict::sae first(so, 5);
    auto half = o;
    half.steps = 7;
    dict::sae_trainer<float> t2(first, half);
    auto s2 = make_source(stream2);
    t2.train(s2);
    const std::string path = (folder / "checkpoint.safetensors").string();
    t2.save_checkpoint(path);

    mint::activation_shards stream3(folder.string(), {.shuffle_buffer_rows = 500, .seed = 4});
    dict::sae resumed(so, 77);  // different start: everything must come from the file
    dict::sae_trainer<float> t3(resumed, o);
    t3.load_checkpoint(path);
    CHECK(t3.steps_done() == 7);
    auto s3 = make_source(stream3);
    t3.train(s3);
    CHECK(t1.dead_fraction() == t3.dead_fraction());
    CHECK(straight.scaling_factor() == resumed.scaling_factor());
    CHECK(straight.batch_threshold() == resumed.batch_threshold());
    const auto a = straight.parameters().flat(), b = resumed.parameters().flat();
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    // The data was rescaled so E||x||^2 = d_in.
    CHECK(straight.scaling_factor() != 1.0f);
    // A checkpoint of another shape is refused.
    dict::sae other({.d_in = 32, .d_sae = 40, .architecture = arch, .k = 3}, 0);
    dict::sae_trainer<float> t4(other, o);
    CHECK_THROWS_AS(t4.load_checkpoint(path), mint::argument_error);
  }
  std::filesystem::remove_all(folder);
}

TEST_CASE("dead latents are found and resampled toward badly reconstructed inputs") {
  dict::sae s({.d_in = 32, .d_sae = 16, .architecture = sae_architecture::relu}, 1);
  s.b_enc().head(4).setConstant(-100.0f);  // latents 0-3 can never fire
  dict::sae_train_options o{.batch_size = 50, .steps = 2, .adam = {.lr = 1e-4}};
  o.dead_after_tokens = 50;
  dict::sae_trainer<float> t(s, o);
  auto source = dict::matrix_batches(toy_data(), 1);
  mint::matrixf batch(50, 32);
  source.next(mint::view(batch));
  t.step(batch);
  CHECK(t.dead()[0] == 1);
  CHECK(t.dead()[3] == 1);
  CHECK(t.dead_fraction() >= 0.25);
  // Resampling after every step: the dead latents get new directions from the batch.
  dict::sae_trainer<float> r(s, {.batch_size = 50, .steps = 2, .adam = {.lr = 1e-4}, .dead_after_tokens = 50, .resample_every = 1});
  r.step(batch);
  CHECK(r.dead()[0] == 0);
  CHECK(s.b_enc()(0) == 0.0f);
  CHECK(s.W_dec().row(0).norm() == doctest::Approx(1.0).epsilon(1e-5));
  // The new decoder row is one of the batch's inputs (minus b_dec), normalized.
  double best = 0;
  for (mint::index i = 0; i < 50; ++i) {
    const Eigen::VectorXf v = batch.row(i).transpose() - s.b_dec();
    best = std::max(best, double(v.normalized().dot(s.W_dec().row(0).transpose())));
  }
  CHECK(best > 0.999);
}

TEST_CASE("gradient blocks: the same step to rounding, checked options; callbacks feed batches") {
  // One step on 60 rows as 1 and as 3 blocks of 20: the same gradient added in another order,
  // so weights within float rounding of the update (1e-6 of unit-norm rows after one Adam step).
  // BatchTopK selects within each block (as data-parallel Python trainers select per device):
  // k x rows entries per block, a different selection from the whole batch's, so only checked
  // for its count.
  for (const auto arch : {sae_architecture::topk, sae_architecture::relu, sae_architecture::batchtopk}) {
    const dict::sae_options so{.d_in = 32, .d_sae = 24, .architecture = arch, .k = 3};
    dict::sae one(so, 4), three(so, 4);
    dict::sae_trainer<float> t1(one, {.batch_size = 60, .steps = 2}), t3(three, {.batch_size = 60, .steps = 2, .gradient_blocks = 3});
    const mint::matrixf batch = toy_data().topRows(60);
    const auto s1 = t1.step(batch), s3 = t3.step(batch);
    if (arch == sae_architecture::batchtopk) {
      CHECK(s3.l0 == 3.0);
      continue;
    }
    CHECK(s3.loss == doctest::Approx(s1.loss).epsilon(1e-5));
    CHECK(s3.l0 == s1.l0);
    CHECK((three.W_dec() - one.W_dec()).cwiseAbs().maxCoeff() < 1e-6f);
    CHECK((three.W_enc() - one.W_enc()).cwiseAbs().maxCoeff() < 1e-6f);
  }
  {
    dict::sae s3({.d_in = 32, .d_sae = 24, .architecture = sae_architecture::topk, .k = 3}, 4);
    dict::sae_trainer<float> t3(s3, {.batch_size = 60, .steps = 2, .gradient_blocks = 3});
    const mint::matrixf fifty = toy_data().topRows(50);
    CHECK_THROWS_AS(t3.step(fifty), mint::shape_error);  // 50 rows are not 3 blocks
  }
  dict::sae s({.d_in = 32, .d_sae = 16, .architecture = sae_architecture::topk, .k = 2}, 1);
  CHECK_THROWS_AS(dict::sae_trainer<float>(s, {.batch_size = 50, .gradient_blocks = 3}), mint::argument_error);
  CHECK_THROWS_AS(dict::sae_trainer<float>(s, {.batch_size = 50, .gradient_blocks = 0}), mint::argument_error);
  dict::sae_train_options o{.batch_size = 50, .steps = 3, .gradient_blocks = 5};
  dict::sae_trainer<float> t(s, o);
  mint::index offset = 0;
  auto source = dict::callback_batches([&](const mint::tensor_view<float>& batch) {
    for (mint::index i = 0; i < batch.extent(0); ++i, ++offset)
      for (mint::index j = 0; j < 32; ++j) batch(i, j) = toy_data()(offset, j);
    return batch.extent(0);
  });
  t.train(source);
  CHECK(t.rows_seen() == 150);
  CHECK(offset == 150);
  const auto path = (dictionary_test::temp_folder("callback") / "c.safetensors").string();
  t.save_checkpoint(path);
  dict::sae_trainer<float> t2(s, o);
  t2.load_checkpoint(path);
  CHECK_THROWS_AS(t2.train(source), mint::argument_error);  // a callback cannot seek to resume
}

TEST_CASE("every architecture learns the true features (MMCS >= 0.99)") {
  // Stated settings per architecture (seeds fixed): widths 128-192 for 64 true features,
  // batches of 128-256 rows, 800-1200 Adam steps. Measured MMCS 0.993-0.998.
  struct setting {
    sae_architecture arch;
    mint::index width, batch;
    std::int64_t steps, resample;
    double lr, penalty;
  };
  for (const setting& c : {setting{sae_architecture::relu, 128, 128, 1200, 250, 3e-3, 0.3},
                           setting{sae_architecture::topk, 128, 128, 1200, 250, 3e-3, 0},
                           setting{sae_architecture::batchtopk, 192, 256, 800, 0, 1e-2, 0},
                           setting{sae_architecture::jumprelu, 128, 256, 1000, 250, 3e-3, 0.05},
                           setting{sae_architecture::gated, 128, 256, 1000, 0, 1e-2, 1.0}}) {
    CAPTURE(dict::to_string(c.arch));
    dict::sae s({.d_in = 32, .d_sae = c.width, .architecture = c.arch, .k = 3, .initial_threshold = 0.01}, 3);
    dict::sae_train_options o{.batch_size = c.batch, .steps = c.steps, .adam = {.lr = c.lr, .warmup = 20}};
    o.loss.l1_coefficient = c.penalty;
    o.loss.l0_coefficient = c.penalty;
    o.loss.bandwidth = 0.02;
    o.dead_after_tokens = 5000;
    o.resample_every = c.resample;
    dict::sae_trainer<float> t(s, o);
    auto source = dict::matrix_batches(toy_data(), 4);
    t.train(source);
    CHECK(dict::mmcs(s.W_dec(), toy_features().dictionary()) >= 0.99);
  }
}

TEST_CASE("a NaN batch or an empty one is named as the batch, and leaves the trainer as it was") {
  dict::sae s({.d_in = 32, .d_sae = 64, .architecture = sae_architecture::relu}, 1);
  dict::sae_trainer<float> t(s, {.batch_size = 8, .steps = 4});
  mint::matrixf batch = toy_data().topRows(8);
  batch(3, 5) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(t.step(batch), doctest::Contains("sae_trainer::step: batch holds a NaN or infinity in row 3"),
                       mint::numeric_error);
  CHECK_THROWS_WITH_AS(t.step(mint::matrixf(0, 32)), doctest::Contains("batch has 0 rows"), mint::shape_error);
  // Nothing was initialised from the bad batch: a clean one trains, with b_dec from its median.
  const mint::matrixf clean = toy_data().topRows(8);
  const auto stats = t.step(clean);
  CHECK(std::isfinite(stats.loss));
  CHECK(s.b_dec().allFinite());
  CHECK(t.steps_done() == 1);
  mint::matrixf nan_rows = mint::matrixf::Ones(3, 2);
  nan_rows(2, 0) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(dict::geometric_median(nan_rows), doctest::Contains("holds a NaN or infinity in row 2"), mint::numeric_error);
}

TEST_CASE("matrix_batches refuses rows of another width than the batch (no read past a row)") {
  const mint::matrixf narrow = mint::matrixf::Ones(10, 16), wide = mint::matrixf::Ones(10, 48);
  mint::matrixf batch(4, 32);
  auto from_narrow = dict::matrix_batches(narrow, 1);
  CHECK_THROWS_WITH_AS(from_narrow.next(mint::view(batch)), doctest::Contains("has rows of 16 values"), mint::shape_error);
  auto from_wide = dict::matrix_batches(wide, 1);
  CHECK_THROWS_AS(from_wide.next(mint::view(batch)), mint::shape_error);
  // Through the trainer, the same error before any step.
  dict::sae s({.d_in = 32, .d_sae = 64, .architecture = sae_architecture::relu}, 1);
  dict::sae_trainer<float> t(s, {.batch_size = 4, .steps = 1});
  auto source = dict::matrix_batches(narrow, 1);
  CHECK_THROWS_AS(t.train(source), mint::shape_error);
}

#if defined(_OPENMP)
TEST_CASE("every architecture trains to the same bits on 1, 2 and 3 threads, resampling on") {
  // Big enough that the loss's loops and Eigen's products go parallel (n d_sae well above
  // mint::parallel_threshold), with latents dying and being resampled along the way.
  const int before = omp_get_max_threads();
  for (auto arch : {sae_architecture::relu, sae_architecture::topk, sae_architecture::batchtopk,
                    sae_architecture::jumprelu, sae_architecture::gated}) {
    CAPTURE(dict::to_string(arch));
    std::vector<std::vector<float>> runs;
    auto train = [&](int threads, std::int64_t resample_every) {
      omp_set_num_threads(threads);
      dict::sae s({.d_in = 32, .d_sae = 512, .architecture = arch, .k = 4}, 3);
      s.b_enc().head(64).setConstant(-100.0f);  // latents that never fire, for resampling to find
      dict::sae_train_options o{.batch_size = 1024, .steps = 12, .adam = {.lr = 1e-3}};
      o.dead_after_tokens = 2048;
      o.resample_every = resample_every;
      o.loss.sparse_density = 0;  // the dense path for ReLU and JumpReLU
      dict::sae_trainer<float> t(s, o);
      auto source = dict::matrix_batches(toy_data(), 5);
      t.train(source);
      const auto flat = s.parameters().flat();
      runs.emplace_back(flat.begin(), flat.end());
    };
    for (int threads : {1, 2, 3}) train(threads, 4);
    train(1, 0);  // without resampling: it must differ, or the runs above resampled nothing
    omp_set_num_threads(before);
    CHECK(runs[0] == runs[1]);
    CHECK(runs[0] == runs[2]);
    CHECK(runs[0] != runs[3]);
  }
}
#endif
