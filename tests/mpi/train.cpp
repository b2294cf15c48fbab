// Data-parallel SAE training: N ranks with gradient blocks give the bits one process gives
// with the same blocks (float and double; TopK with AuxK, ReLU with resampling, BatchTopK,
// the scaling factor and the geometric median from the group's first batch), checkpoints
// written by rank 0 resume exactly, and ranks that disagree all stop with one message.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common.hpp"
#include "mint/dictionary/batches.hpp"
#include "mint/dictionary/synthetic.hpp"
#include "mint/dictionary/train.hpp"
#include "mint/io/npy.hpp"

namespace dict = mint::dictionary;
namespace dist = mint::distributed;
using dict::sae_architecture;
using mpi_test::world;

namespace {

// 48 true features in 16 dimensions, each firing with probability 0.05; the same on every rank.
const mint::matrixf& data() {
  static const mint::matrixf x = [] {
    const dict::synthetic_features gen({.features = 48, .dims = 16, .firing_probability = 0.05, .seed = 5});
    mint::rng r(6);
    mint::matrixf out;
    gen.sample(r, 3000, out);
    return out;
  }();
  return x;
}

// Six blocks: whole on 1, 2 and 3 ranks. Block b draws its own permutation of the data.
constexpr mint::index blocks = 6;
dict::batch_source source(dist::communicator_ref c) {
  return dict::block_batches([](mint::index b) { return dict::matrix_batches(data(), std::uint64_t(b)); }, blocks, c);
}

struct setting {
  const char* name;
  dict::sae_options sae;
  dict::sae_train_options train;
  mint::index silenced = 0;  // latents whose encoder bias starts at -100: dead from the start
};

std::vector<setting> settings() {
  std::vector<setting> out;
  // TopK: latents die after 240 rows, so AuxK trains them from step 3 on.
  out.push_back({"topk + auxk", {.d_in = 16, .d_sae = 64, .architecture = sae_architecture::topk, .k = 3},
                 {.batch_size = 120, .steps = 50, .dead_after_tokens = 240}});
  // ReLU: resampling every 10 steps of latents silent for 240 rows (8 silenced at the start), the
  // scaling factor set from the
  // group's first batch.
  out.push_back({"relu + resampling", {.d_in = 16, .d_sae = 64, .architecture = sae_architecture::relu,
                                       .normalize_activations = dict::normalization::expected_average_only_in},
                 {.batch_size = 120, .steps = 50, .dead_after_tokens = 240, .resample_every = 10}});
  out.back().silenced = 8;  // resampled at step 10, 20, ...
  out.push_back({"batchtopk", {.d_in = 16, .d_sae = 64, .architecture = sae_architecture::batchtopk, .k = 3},
                 {.batch_size = 120, .steps = 50}});
  for (auto& s : out) {
    s.train.adam.lr = 3e-3;
    s.train.gradient_blocks = blocks;
  }
  return out;
}

template <class T>
struct outcome {
  std::vector<T> parameters;
  std::vector<std::uint8_t> dead;
  std::uint64_t rows = 0;
  T batch_threshold = 0;
};

template <class T>
outcome<T> train(const setting& s, dist::communicator_ref c) {
  dict::basic_sae<T> sae(s.sae, 11);
  sae.b_enc().head(s.silenced).setConstant(T(-100));
  dict::sae_train_options o = s.train;
  o.communicator = c;
  dict::sae_trainer<T> trainer(sae, o);
  auto rows = source(c);
  trainer.train(rows);
  const auto p = sae.parameters().flat();
  return {std::vector<T>(p.begin(), p.end()), trainer.dead(), trainer.rows_seen(), sae.batch_threshold()};
}

template <class T>
void check_same_as_one_process() {
  for (const auto& s : settings()) {
    CAPTURE(std::string(s.name));
    const outcome<T> one = train<T>(s, {}), group = train<T>(s, world());
    double diff = 0;
    for (std::size_t i = 0; i < one.parameters.size(); ++i) diff = std::max(diff, std::abs(double(one.parameters[i]) - double(group.parameters[i])));
    CAPTURE(diff);
    CHECK(mpi_test::same_bits<T>(group.parameters, one.parameters));
    CHECK(group.dead == one.dead);
    CHECK(group.rows == 50 * 120);
    CHECK(group.batch_threshold == one.batch_threshold);
  }
}

std::string shared_path(const std::string& name) {
  // One path for the group (rank 0 writes it), another for each group size run side by side.
  return (std::filesystem::temp_directory_path() /
          ("mint_mpi_test_" + std::to_string(world().size()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("N ranks train the bits one process trains: float") { check_same_as_one_process<float>(); }
TEST_CASE("N ranks train the bits one process trains: double") { check_same_as_one_process<double>(); }

TEST_CASE("double batches of an odd width, normalized per row, give one process's bits") {
  // Row-wise normalizations sum each row: rows at other places in the batch (a rank's batch is a
  // part of one process's) must give the same bits. Width 7: rows off every SIMD boundary.
  for (const auto norm : {dict::normalization::layer_norm, dict::normalization::constant_norm_rescale}) {
    const dict::sae_options so{.d_in = 7, .d_sae = 20, .architecture = sae_architecture::topk, .k = 2, .normalize_activations = norm};
    mint::matrixd all(60, 7);
    mint::rng r(9);
    r.fill_normal(all);
    auto run = [&](dist::communicator_ref c) {
      dict::basic_sae<double> sae(so, 2);
      dict::sae_train_options o{.batch_size = 60, .steps = 3, .gradient_blocks = 6};
      o.communicator = c;
      dict::sae_trainer<double> t(sae, o);
      const mint::index n = 60 / c.size();
      const mint::matrixd mine = all.middleRows(c.rank() * n, n);
      for (int i = 0; i < 3; ++i) t.step(mine);
      const auto p = sae.parameters().flat();
      return std::vector<double>(p.begin(), p.end());
    };
    CHECK(mpi_test::same_bits<double>(run(world()), run({})));
  }
}

TEST_CASE("the settings exercise what they claim: dead latents, resampling, a threshold") {
  // Single-process runs, so a setting that stopped reaching AuxK or resampling shows here.
  const auto all = settings();
  dict::basic_sae<float> topk(all[0].sae, 11);
  dict::sae_trainer<float> t(topk, all[0].train);
  auto rows = source({});
  mint::matrixf batch(120, 16);
  bool auxk = false;
  for (int i = 0; i < 50; ++i) {
    rows.next(mint::view(batch));
    auxk = auxk || t.step(batch).auxiliary > 0;
  }
  CHECK(auxk);
  dict::basic_sae<float> relu(all[1].sae, 11);
  relu.b_enc().head(all[1].silenced).setConstant(-100.0f);
  dict::sae_trainer<float> r(relu, all[1].train);
  auto relu_rows = source({});
  relu_rows.next(mint::view(batch));
  r.step(batch);
  CHECK(relu.scaling_factor() != 1.0f);  // set from the first batch
  std::ptrdiff_t dead_before = 0;
  for (int i = 1; i < 10; ++i) {
    relu_rows.next(mint::view(batch));
    r.step(batch);
    if (i == 8) dead_before = std::count(r.dead().begin(), r.dead().end(), std::uint8_t(1));
  }
  CHECK(dead_before > 0);  // step 10 resamples them
  CHECK(std::count(r.dead().begin(), r.dead().end(), std::uint8_t(1)) == 0);
  const auto bt = train<float>(all[2], {});
  CHECK(bt.batch_threshold > 0);
}

TEST_CASE("a checkpoint written by rank 0 resumes the group exactly") {
  const setting s = settings()[0];
  const auto whole = train<float>(s, world());
  const std::string path = shared_path("checkpoint.safetensors");
  {
    dict::sae first(s.sae, 11);
    dict::sae_train_options o = s.train;
    o.communicator = world();
    dict::sae_trainer<float> t(first, o);
    auto rows = source(world());
    mint::matrixf batch(120 / world().size(), 16);
    for (int i = 0; i < 20; ++i) {
      rows.next(mint::view(batch));
      t.step(batch);
    }
    t.save_checkpoint(path);
  }
  CHECK(std::filesystem::exists(path));  // on every rank: save returns once the file is whole
  dict::sae second(s.sae, 99);  // other weights: the checkpoint replaces them
  dict::sae_train_options o = s.train;
  o.communicator = world();
  dict::sae_trainer<float> t(second, o);
  t.load_checkpoint(path);
  auto rows = source(world());
  t.train(rows);  // seeks every block's source to its rows
  const auto p = second.parameters().flat();
  CHECK(mpi_test::same_bits<float>(std::vector<float>(p.begin(), p.end()), whole.parameters));
  CHECK(t.dead() == whole.dead);
  world().barrier();
  if (world().rank() == 0) std::filesystem::remove(path);
  // A checkpoint one rank cannot read stops every rank.
  dict::sae third(s.sae, 1);
  dict::sae_trainer<float> t3(third, o);
  const std::string missing = world().rank() == world().size() - 1 ? shared_path("missing.safetensors") : path + ".absent";
  if (world().size() > 1) CHECK_THROWS_AS(t3.load_checkpoint(missing), dist::communication_error);
  else CHECK_THROWS_AS(t3.load_checkpoint(missing), mint::format_error);
}

TEST_CASE("ranks with other options or other shard folders all stop with one message") {
  dict::sae s({.d_in = 16, .d_sae = 32, .architecture = sae_architecture::topk, .k = 2}, 1);
  const bool last = world().rank() == world().size() - 1;
  dict::sae_train_options o{.batch_size = last && world().size() > 1 ? 240 : 120, .gradient_blocks = blocks};
  o.communicator = world();
  if (world().size() > 1) {
    try {
      dict::sae_trainer<float> t(s, o);
      FAIL("the trainer did not see the ranks' options differ");
    } catch (const dist::communication_error& e) {
      CHECK(std::string(e.what()).find("batch 240") != std::string::npos);
    }
  }
  o.batch_size = 120;
  if (world().size() > 1) {
    // Other starting weights (another seed) on one rank: caught, not trained apart.
    dict::sae other({.d_in = 16, .d_sae = 32, .architecture = sae_architecture::topk, .k = 2}, last ? 2 : 1);
    CHECK_THROWS_AS(dict::sae_trainer<float>(other, o), dist::communication_error);
    // A NaN in one rank's batch, and batches of other sizes: every rank throws, none waits.
    dict::sae_trainer<float> t(s, o);
    mint::matrixf batch = data().topRows(120 / world().size());
    if (last) batch(3, 2) = std::numeric_limits<float>::quiet_NaN();
    try {
      t.step(batch);
      FAIL("a rank's NaN went unseen");
    } catch (const dist::communication_error& e) {
      CHECK(std::string(e.what()).find("NaN or infinity in row 3") != std::string::npos);
    }
    const mint::matrixf other_rows = data().topRows(last ? 240 / world().size() : 120 / world().size());
    CHECK_THROWS_AS(t.step(other_rows), dist::communication_error);
  }
  o.gradient_blocks = 4;  // not a multiple of 3 ranks: an argument error, on every rank alike
  if (world().size() == 3) CHECK_THROWS_AS(dict::sae_trainer<float>(s, o), mint::argument_error);

  // Shards: a shared folder gives one process's rows; a folder that differs stops every rank.
  const auto folder = std::filesystem::path(shared_path("shards"));
  if (world().rank() == 0) {
    std::filesystem::remove_all(folder);
    std::filesystem::create_directories(folder);
    for (int f = 0; f < 7; ++f) {
      const mint::matrixf part = data().middleRows(f * 400, 400);
      mint::write_npy((folder / ("part" + std::to_string(f) + ".npy")).string(),
                      mint::array_ref(mint::dtype::float32, {400, 16}, part.data()));
    }
  }
  world().barrier();
  const mint::shard_options so{.shuffle_buffer_rows = 64, .seed = 3};
  auto group = dict::shard_block_batches(folder.string(), so, blocks, world());
  auto one = dict::shard_block_batches(folder.string(), so, blocks);
  mint::matrixf mine(60 / world().size(), 16), all(60, 16);
  for (int step = 0; step < 3; ++step) {
    group.next(mint::view(mine));
    one.next(mint::view(all));
    CHECK(mine == all.middleRows(world().rank() * mine.rows(), mine.rows()));
  }
  world().barrier();
  if (world().size() > 1) {
    const auto other = std::filesystem::path(shared_path("shards_rank" + std::to_string(world().rank())));
    std::filesystem::remove_all(other);
    std::filesystem::copy(folder, other);
    if (last) std::filesystem::remove(other / "part6.npy");
    try {
      dict::shard_block_batches(other.string(), so, blocks, world());
      FAIL("the ranks' folders differ");
    } catch (const dist::communication_error& e) {
      CHECK(std::string(e.what()).find("part6.npy") != std::string::npos);
    }
    std::filesystem::remove_all(other);
  }
  world().barrier();
  if (world().rank() == 0) std::filesystem::remove_all(folder);
}
