// .npz: round trips through npz_writer, mapping of stored members, and broken
// archives (truncated, bad CRC, lying directory) giving format errors.
#include "mint/io/npz.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

TEST_CASE("npz round trips named arrays of mixed dtypes, and maps stored members aligned") {
  io_test::temp_folder tmp;
  const mint::ndarray<float> a({2, 3}, {1, 2, 3, 4, 5, 6});
  const mint::ndarray<std::int64_t> b({4}, {1, -2, 3, -4});
  const mint::ndarray<mint::float16> h({1}, {mint::float16(0.5f)});
  mint::write_npz(tmp / "x.npz", {{"a", a}, {"b", b}, {"t", a.view().transposed()}, {"h", h}});
  const mint::npz_file z(tmp / "x.npz");
  CHECK(z.names() == std::vector<std::string>{"a", "b", "t", "h"});
  CHECK(z.member("a").method == 0);
  for (const auto& name : z.names()) CHECK(z.header(name).data_offset % 64 == 0);  // the writer's alignment
  const auto ma = z.map<float>("a");
  CHECK(ma.view()(1, 2) == 6);
  CHECK(z.map<float>("t").view()(2, 1) == 6);
  CHECK(z.read<std::int64_t>("b").view()(3) == -4);
  CHECK(z.read<float>("h", {.convert = true}).view()(0) == 0.5f);
  const auto all = mint::read_npz<double>(tmp / "x.npz", {.convert = true});
  CHECK(all.size() == 4);
  CHECK(all.at("a").view()(1, 0) == 4.0);
  CHECK_THROWS_AS(z.read<float>("missing"), mint::argument_error);
  CHECK_THROWS_AS(mint::write_npz(tmp / "y.npz", {{"a", a}, {"a", b}}), mint::argument_error);
}

TEST_CASE("an npz writer stopped before commit leaves the previous file whole") {
  io_test::temp_folder tmp;
  const mint::ndarray<float> old({2}, {1, 2});
  mint::write_npz(tmp / "x.npz", {{"old", old}});
  const auto before = io_test::read_bytes(tmp / "x.npz");
  try {
    mint::npz_writer w(tmp / "x.npz");
    w.add("new", mint::ndarray<float>({1000}));
    throw std::runtime_error("killed mid-way");  // as a crash between members would
  } catch (const std::runtime_error&) {
  }
  CHECK(io_test::read_bytes(tmp / "x.npz") == before);
  CHECK(tmp.entries() == 1);  // no temporary left behind
  CHECK(mint::npz_file(tmp / "x.npz").names() == std::vector<std::string>{"old"});
}

TEST_CASE("broken npz archives give format errors") {
  io_test::temp_folder tmp;
  mint::write_npz(tmp / "x.npz", {{"a", mint::ndarray<float>({3}, {1, 2, 3})}});
  const auto bytes = io_test::read_bytes(tmp / "x.npz");
  io_test::check_every_truncation_fails(bytes, [](const mint::file_ptr& f) {
    const mint::npz_file z(f);
    z.read<float>("a");
  });
  // The directory points its member past the end of the file.
  auto lying = bytes;
  const std::size_t end = lying.size() - 22;
  lying[end + 16] = std::byte{0xf0};  // central directory offset
  io_test::check_format_error([&] { mint::npz_file z(io_test::memory_file(lying)); }, "central directory");
  io_test::check_format_error([&] { mint::npz_file z(io_test::memory_file(io_test::bytes_of(std::string(40, 'x')))); },
                              "no end-of-central-directory record");
}

TEST_CASE("NumPy's npz archives read, stored and deflated, with CRC checked") {
  const std::string folder = io_test::numpy_folder();
  REQUIRE_MESSAGE(!folder.empty(), "MINT_NUMPY_FILES is unset: run through meson test, with python3-numpy installed");
  for (const std::string name : {"stored.npz", "deflated.npz"}) {
    const mint::npz_file z(folder + "/" + name);
    CHECK(z.names().size() == 3);
    const auto a = z.read<float>("a");
    CHECK(a.shape() == mint::shape_t{3, 4});
    CHECK(a.view()(2, 3) == float(io_test::rule(mint::dtype::float32, 11)));
    CHECK(z.read<std::int64_t>("b").view()(4) == std::int64_t(io_test::rule(mint::dtype::int64, 4)));
    CHECK(z.read<float>("c", {.convert = true}).view()(1, 2) == float(io_test::rule(mint::dtype::float16, 5)));
    CHECK(z.header("c").type == mint::dtype::float16);
    if (name == "stored.npz") {
      CHECK(z.member("a").method == 0);
      // NumPy does not align members (mint's npz_writer does): mapping works only when the data happens to be aligned.
      if (z.header("a").data_offset % 4 == 0) CHECK(z.map<float>("a").view()(1, 1) == float(io_test::rule(mint::dtype::float32, 5)));
      else io_test::check_format_error([&] { z.map<float>("a"); }, "needs aligned data to be mapped");
    } else {
      CHECK(z.member("a").method == 8);
      io_test::check_format_error([&] { z.map<float>("a"); }, "deflated");
    }
  }
  // Flip one byte inside a deflated member: zlib or the CRC-32 must catch it.
  auto bytes = io_test::read_bytes(folder + "/deflated.npz");
  const mint::npz_file original(folder + "/deflated.npz");
  const auto& m = original.member("a");
  bytes[std::size_t(m.data_offset + m.compressed_size / 2)] ^= std::byte{0x55};
  const mint::npz_file corrupt(io_test::memory_file(bytes));
  CHECK_THROWS_AS(corrupt.read<float>("a"), mint::format_error);
}
