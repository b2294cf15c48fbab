// Activation shards: every row once per epoch, a seeded shuffle that mixes
// files, exact resume, mixed dtypes and shapes, and the checks on bad folders.
#include "mint/io/activation_shards.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common.hpp"
#include "mint/adapters/eigen.hpp"
#include "mint/core/eigen.hpp"

namespace {

/// Writes files of `rows[f]` rows x 3 values; row r of file f holds f * 1000 + r in its first column.
void write_shards(const io_test::temp_folder& tmp, const std::vector<int>& rows) {
  for (std::size_t f = 0; f < rows.size(); ++f) {
    mint::ndarray<float> a({rows[f], 3});
    for (int r = 0; r < rows[f]; ++r) {
      a.view()(r, 0) = float(f * 1000 + std::size_t(r));
      a.view()(r, 1) = float(r);
      a.view()(r, 2) = -1;
    }
    mint::write_npy(tmp / ("shard" + std::to_string(f) + ".npy"), a);
  }
}

/// The first column of every row of an epoch, batch by batch.
std::vector<float> drain(mint::activation_shards& s, mint::index batch_rows) {
  mint::matrixf batch(batch_rows, s.dim());
  std::vector<float> out;
  for (mint::index n; (n = s.next(mint::view(batch))) > 0;)
    for (mint::index i = 0; i < n; ++i) out.push_back(batch(i, 0));
  return out;
}

}  // namespace


TEST_CASE("shards stream every row once per epoch, shuffled across files, the same for a seed") {
  io_test::temp_folder tmp;
  write_shards(tmp, {50, 7, 30, 1});
  mint::activation_shards s(tmp.path.string(), {.shuffle_buffer_rows = 16, .seed = 5});
  CHECK(s.rows() == 88);
  CHECK(s.dim() == 3);
  const auto first = drain(s, 10);
  CHECK(s.rows_read() == 88);
  auto sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // no row twice
  CHECK(sorted.size() == 88);
  CHECK(first != sorted);  // shuffled
  s.start_epoch(0);
  CHECK(drain(s, 7) == first);  // the same seed and epoch give the same order, whatever the batch size
  s.start_epoch(1);
  CHECK(drain(s, 10) != first);
  mint::activation_shards other(tmp.path.string(), {.shuffle_buffer_rows = 16, .seed = 6});
  CHECK(drain(other, 10) != first);
}

TEST_CASE("without a shuffle buffer rows come in file order") {
  io_test::temp_folder tmp;
  write_shards(tmp, {3, 2});
  mint::activation_shards s(tmp.path.string(), {.shuffle_buffer_rows = 0});
  CHECK(drain(s, 4) == std::vector<float>{0, 1, 2, 1000, 1001});
}

TEST_CASE("seek resumes a shuffled stream exactly where it stopped") {
  io_test::temp_folder tmp;
  write_shards(tmp, {40, 25, 35});
  mint::activation_shards s(tmp.path.string(), {.shuffle_buffer_rows = 32, .seed = 11});
  s.start_epoch(2);
  const auto epoch = drain(s, 9);
  for (const std::uint64_t at : {0, 1, 31, 70, 99, 100}) {
    mint::activation_shards resumed(tmp.path.string(), {.shuffle_buffer_rows = 32, .seed = 11});
    resumed.seek(2, at);
    const auto rest = drain(resumed, 9);
    CHECK(std::equal(rest.begin(), rest.end(), epoch.begin() + std::ptrdiff_t(at), epoch.end()));
    CHECK(rest.size() == 100 - at);
  }
}

TEST_CASE("shards of other dtypes and ranks are converted and flattened into rows") {
  io_test::temp_folder tmp;
  mint::ndarray<mint::float16> h({2, 2, 3});  // [batch, pos, d]
  for (mint::index k = 0; k < h.size(); ++k) h.data()[k] = mint::float16(float(k));
  mint::write_npy(tmp / "a.npy", h);
  mint::write_npy(tmp / "b.npy", mint::ndarray<double>({1, 3}, {7, 8, 9}));
  mint::activation_shards s(tmp.path.string(), {.shuffle_buffer_rows = 0});
  CHECK(s.rows() == 5);
  mint::matrixf batch(8, 3);
  CHECK(s.next(mint::view(batch)) == 5);
  CHECK(batch(3, 2) == 11.0f);
  CHECK(batch(4, 1) == 8.0f);
  CHECK(s.next(mint::view(batch)) == 0);
}

TEST_CASE("bad shard folders and batches give errors") {
  io_test::temp_folder tmp;
  CHECK_THROWS_AS(mint::activation_shards(tmp.path.string()), mint::argument_error);  // no .npy files
  mint::write_npy(tmp / "a.npy", mint::ndarray<float>({4, 3}));
  mint::write_npy(tmp / "b.npy", mint::ndarray<float>({4, 5}));
  io_test::check_format_error([&] { mint::activation_shards s(tmp.path.string()); }, "rows of 5 values");
  std::filesystem::remove(tmp / "b.npy");
  mint::write_npy(tmp / "c.npy", mint::ndarray<float>({4}));
  io_test::check_format_error([&] { mint::activation_shards s(tmp.path.string()); }, "rank 1");
  std::filesystem::remove(tmp / "c.npy");
  mint::activation_shards s(tmp.path.string());
  mint::matrixf wrong(2, 4);
  CHECK_THROWS_AS(s.next(mint::view(wrong)), mint::shape_error);
  CHECK_THROWS_AS(s.seek(0, 5), mint::argument_error);
}
