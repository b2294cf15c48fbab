// safetensors: round trips of every dtype with metadata, the reference
// implementation's checks (header bound, contiguous offsets, sizes, coverage),
// and a file written by Python.
#include "mint/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

/// A safetensors file from a header text and `data` bytes of data.
std::vector<std::byte> safetensors_bytes(const std::string& header, std::size_t data) {
  std::string out;
  mint::detail::append_le(out, std::uint64_t(header.size()));
  out += header + std::string(data, '\0');
  return io_test::bytes_of(out);
}

mint::safetensors_file open(const std::vector<std::byte>& bytes) {
  return mint::safetensors_file(io_test::memory_file(bytes, "bad.safetensors"));
}

}  // namespace

TEST_CASE("safetensors round trips every dtype, aligned for mapping, with metadata") {
  io_test::temp_folder tmp;
  std::vector<std::pair<std::string, mint::array_ref>> tensors;
  std::vector<std::vector<std::byte>> storage;
  for (const auto d : mint::all_dtypes) {
    storage.emplace_back(3 * mint::dtype_size(d));
    for (std::size_t k = 0; k < storage.back().size(); ++k) storage.back()[k] = std::byte(k % 2);  // valid bools too
    tensors.emplace_back(std::string(mint::dtype_name(d)), mint::array_ref(d, {3}, storage.back().data()));
  }
  const mint::ndarray<float> w({2, 3}, {1, 2, 3, 4, 5, 6});
  tensors.emplace_back("W", w);
  tensors.emplace_back("W_T", w.view().transposed());
  mint::write_safetensors(tmp / "x.safetensors", tensors, {{"format", "pt"}});
  const mint::safetensors_file f(tmp / "x.safetensors");
  CHECK(f.names().size() == tensors.size());
  CHECK(f.metadata().at("format") == "pt");
  for (std::size_t k = 0; k < std::size(mint::all_dtypes); ++k) {
    const auto d = mint::all_dtypes[k];
    const auto& e = f.entry(mint::dtype_name(d));
    CHECK(e.type == d);
    CHECK(e.data_offset % mint::dtype_size(d) == 0);
    mint::detail::visit_dtype(d, [&](auto x) {
      using T = decltype(x);
      const auto m = f.map<T>(mint::dtype_name(d));
      CHECK(std::memcmp(m.data(), storage[k].data(), 3 * sizeof(T)) == 0);
    });
  }
  CHECK(f.map<float>("W_T").view()(2, 1) == 6);
  CHECK(f.read<double>("W", {.convert = true}).view()(1, 0) == 4.0);
  io_test::check_format_error([&] { f.read<double>("W"); }, "tensor 'W' of float32");
  CHECK_THROWS_AS(f.entry("nope"), mint::argument_error);
  CHECK_THROWS_AS(mint::write_safetensors(tmp / "y.safetensors", {{"__metadata__", w}}), mint::argument_error);
}

TEST_CASE("safetensors headers are checked as the reference implementation checks them") {
  using io_test::check_format_error;
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}})";
  CHECK(open(safetensors_bytes(good, 12)).names() == std::vector<std::string>{"a", "b"});
  check_format_error([&] { open(safetensors_bytes(good, 11)); }, "beyond its 11 bytes");
  check_format_error([&] { open(safetensors_bytes(good, 13)); }, "cover the data area exactly");
  check_format_error([&] { open(safetensors_bytes(" " + good, 12)); }, "does not start with '{'");
  check_format_error([&] { open(safetensors_bytes("{\"a\":", 0)); }, "not valid JSON");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)); }, "key 'a' twice");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)); }, "needs 0");  // a gap
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)); }, "no gaps or overlaps");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)); }, "needs end - begin = 3 elements");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1)); }, "F8_E4M3");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)); }, "non-negative integers");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4)); }, "non-negative integers");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})", 4)); }, "overflows");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1]}})", 4)); }, "without dtype, shape or data_offsets");
  check_format_error([&] { open(safetensors_bytes(R"({"__metadata__":{"k":1}})", 0)); }, "not a string");
  check_format_error([&] { open(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8)); }, "needs end - begin");
  // A header length past the file, and one above the reference's 100 MB bound.
  auto lying = safetensors_bytes(good, 12);
  lying[2] = std::byte{1};
  check_format_error([&] { open(lying); }, "inside the JSON header");
  lying[2] = std::byte{0};
  lying[3] = std::byte{0x10};
  check_format_error([&] { open(lying); }, "needs at most 100000000");
  io_test::check_every_truncation_fails(safetensors_bytes(good, 12), [](const mint::file_ptr& f) { mint::safetensors_file s(f); });
}

TEST_CASE("a safetensors file written by Python reads, with F16/BF16 converted on request") {
  const std::string folder = io_test::numpy_folder();
  REQUIRE_MESSAGE(!folder.empty(), "MINT_NUMPY_FILES is unset: run through meson test, with python3-numpy installed");
  const mint::safetensors_file f(folder + "/weights.safetensors");
  CHECK(f.metadata().at("model") == "toy");
  const auto w = f.map<float>("W_enc");
  CHECK(w.shape() == mint::shape_t{4, 6});
  CHECK(w.view()(3, 5) == float(io_test::rule(mint::dtype::float32, 23)));
  CHECK(f.read<float>("b_enc", {.convert = true}).view()(5) == float(io_test::rule(mint::dtype::float16, 5)));
  CHECK(f.entry("W_dec").type == mint::dtype::bfloat16);
  CHECK(f.read<float>("W_dec", {.convert = true}).view()(2, 3) == float(io_test::rule(mint::dtype::float32, 11)));
  CHECK(f.read<std::int64_t>("steps").view()(1) == std::int64_t(io_test::rule(mint::dtype::int64, 1)));
  const auto mask = f.read<bool>("mask");
  CHECK(mask.view()(3));
  CHECK_FALSE(mask.view()(4));
}
