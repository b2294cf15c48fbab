// GGUF: metadata of every type round trips; tensor infos and plain data read and
// mapped; quantized tensors listed; llama.cpp's parser rules enforced on files
// built byte by byte.
#include "mint/io/gguf.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"

using io_test::gguf_builder;

TEST_CASE("gguf round trips every metadata type, nested arrays and plain tensors") {
  io_test::temp_folder tmp;
  const mint::ndarray<float> w({2, 3}, {1, 2, 3, 4, 5, 6});
  const mint::ndarray<mint::bfloat16> b({3}, {mint::bfloat16(1.0f), mint::bfloat16(-2.0f), mint::bfloat16(0.5f)});
  mint::gguf_writer out(tmp / "x.gguf");
  out.set("general.architecture", "llama");
  out.set("u8", std::uint8_t(200));
  out.set("i8", std::int8_t(-100));
  out.set("u16", std::uint16_t(60000));
  out.set("i16", std::int16_t(-30000));
  out.set("u32", std::uint32_t(4000000000u));
  out.set("i32", std::int32_t(-2000000000));
  out.set("f32", 1.5f);
  out.set("bool", true);
  out.set("u64", std::uint64_t(1) << 60);
  out.set("i64", std::int64_t(-1) << 60);
  out.set("f64", 0.25);
  out.set("tokens", mint::gguf_array{mint::gguf_type::string, {"<s>", "</s>", "hello"}});
  out.set("nested", mint::gguf_array{mint::gguf_type::array,
                                     {mint::gguf_array{mint::gguf_type::int32, {std::int32_t(1), std::int32_t(2)}},
                                      mint::gguf_array{mint::gguf_type::int32, {}}}});
  out.add_tensor("w", w);
  out.add_tensor("b", b);
  out.commit();

  const mint::gguf_file f(tmp / "x.gguf");
  CHECK(f.version() == 3);
  CHECK(f.metadata().size() == 14);
  CHECK(f.metadata()[0].first == "general.architecture");
  CHECK(f.string("general.architecture") == "llama");
  CHECK(f.find("u8")->get<std::uint8_t>() == 200);
  CHECK(f.integer("i8") == -100);
  CHECK(f.integer("u16") == 60000);
  CHECK(f.integer("i16") == -30000);
  CHECK(f.integer("u32") == 4000000000);
  CHECK(f.integer("i32") == -2000000000);
  CHECK(f.find("f32")->get<float>() == 1.5f);
  CHECK(f.find("bool")->get<bool>());
  CHECK(f.integer("u64") == std::int64_t(1) << 60);
  CHECK(f.integer("i64") == -(std::int64_t(1) << 60));
  CHECK(*f.find("f64")->as_number() == 0.25);
  const auto* tokens = f.find("tokens")->as_array();
  REQUIRE(tokens != nullptr);
  CHECK(tokens->element_type == mint::gguf_type::string);
  CHECK(tokens->values[2].get<std::string>() == "hello");
  const auto& nested = f.find("nested")->get<mint::gguf_array>();
  CHECK(nested.values[0].as_array()->values[1].get<std::int32_t>() == 2);
  CHECK(nested.values[1].as_array()->values.empty());
  CHECK_THROWS_AS(f.integer("f32"), mint::argument_error);
  CHECK_THROWS_AS(f.string("missing"), mint::argument_error);
  CHECK(f.find("missing") == nullptr);

  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensor("w").dims == std::vector<std::int64_t>{3, 2});  // ggml order: fastest first
  CHECK(f.tensor("w").shape() == mint::shape_t{2, 3});
  CHECK(f.tensor("b").type_name() == "BF16");
  CHECK(f.tensor("b").offset == 32);  // 24 bytes of w padded to 32
  CHECK(f.data_offset() % 32 == 0);
  CHECK(f.map<float>("w").view()(1, 2) == 6);
  CHECK(f.read<float>("b", {.convert = true}).view()(1) == -2.0f);
  CHECK(f.map<mint::bfloat16>("b").view()(2) == mint::bfloat16(0.5f));

  std::ostringstream printed;
  mint::print_gguf_value(printed, *f.find("tokens"), 2);
  CHECK(printed.str() == R"(["<s>", "</s>", ... (3 items)])");
}

TEST_CASE("gguf lists quantized tensors with their byte ranges without decoding them") {
  gguf_builder g;
  g.header(3, 2, 1).string("general.alignment").raw(std::uint32_t(4)).raw(std::uint32_t(64));
  g.alignment = 64;
  g.tensor("q", {64, 2}, 2, 0);         // Q4_0: 2 rows of 2 blocks of 18 bytes = 72 bytes, padded to 128
  g.tensor("k", {256}, 12, 128);        // Q4_K: one block of 144 bytes
  g.pad().data(128 + 144);
  const auto f = g.open();
  CHECK(f.alignment() == 64);
  CHECK(f.tensor("q").type_name() == "Q4_0");
  CHECK(f.tensor("q").data_bytes == 72);
  CHECK(f.tensor("k").data_bytes == 144);
  CHECK(f.tensor_bytes("k").size() == 144);
  io_test::check_format_error([&] { f.read<float>("q", {.convert = true}); }, "quantized types are listed, not decoded");
}

TEST_CASE("gguf files that break llama.cpp's rules give format errors") {
  using io_test::check_format_error;
  auto one_tensor = [](gguf_builder g, std::uint64_t data) { return g.pad().data(data); };
  gguf_builder ok;
  ok.header(3, 1, 0).tensor("t", {4}, 0, 0);
  CHECK(one_tensor(ok, 32).open().tensors().size() == 1);
  check_format_error([&] { one_tensor(ok, 15).open(); }, "past its end");
  check_format_error([&] { gguf_builder g; g.raw(std::uint32_t(0x12345678)).open(); }, "does not start with GGUF");
  check_format_error([&] { gguf_builder g; g.header(1, 0, 0).open(); }, "version 1");
  check_format_error([&] { gguf_builder g; g.header(4, 0, 0).open(); }, "version 4");
  check_format_error([&] { gguf_builder g; g.header(0x03000000, 0, 0).open(); }, "big-endian");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1u << 30).open(); }, "metadata keys");
  check_format_error([&] { gguf_builder g; g.header(3, 1u << 30, 0).open(); }, "tensors");
  check_format_error([&] {
    gguf_builder g;
    g.header(3, 0, 2).string("k").raw(std::uint32_t(4)).raw(std::uint32_t(1)).string("k").raw(std::uint32_t(4)).raw(std::uint32_t(2));
    g.open();
  }, "key 'k' twice");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1).string("general.alignment").raw(std::uint32_t(5)).raw(std::int32_t(32)).open(); }, "u32 power of two");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1).string("general.alignment").raw(std::uint32_t(4)).raw(std::uint32_t(48)).open(); }, "u32 power of two");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1).string("x").raw(std::uint32_t(13)).open(); }, "value type 13");
  // gguf.cpp reads a bool as "dst = tmp != 0": any non-zero byte is true, not an error.
  {
    gguf_builder g;
    g.header(3, 0, 1).string("x").raw(std::uint32_t(7)).raw(std::uint8_t(2));
    CHECK(g.open().find("x")->get<bool>());
  }
  // gguf.cpp: "if (ok && ctx->version == 0)" and "if (ok && key.empty())" fail the file.
  check_format_error([&] { gguf_builder g; g.header(0, 0, 0).open(); }, "version 0");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1).string("").raw(std::uint32_t(4)).raw(std::uint32_t(1)).open(); }, "empty key");
  check_format_error([&] {
    gguf_builder g;
    g.header(3, 0, 1).string("x").raw(std::uint32_t(9)).raw(std::uint32_t(8)).raw(std::uint64_t(1) << 40);
    g.open();
  }, "claims an array of");
  check_format_error([&] {
    gguf_builder g;
    g.header(3, 0, 1).string("x").raw(std::uint32_t(9));
    for (int depth = 0; depth < 20; ++depth) g.raw(std::uint32_t(9)).raw(std::uint64_t(1));
    g.data(64).open();
  }, "nests arrays deeper");
  check_format_error([&] { gguf_builder g; g.header(3, 0, 1).string("x").raw(std::uint32_t(8)).raw(std::uint64_t(1000)).open(); }, "inside a string value");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor(std::string(64, 'n'), {4}, 0, 0); one_tensor(g, 16).open(); }, "fewer than 64");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0); one_tensor(g, 16).open(); }, "at most 4");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {4}, 0, 32); one_tensor(g, 64).open(); }, "packed in order");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {4}, 4, 0); one_tensor(g, 64).open(); }, "ggml type 4");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {33}, 2, 0); one_tensor(g, 64).open(); }, "block size 32");
  // A tensor of no dims has ne[0] = 1 in ggml, which "info.t.ne[0] % blck_size != 0" refuses for Q4_0.
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {}, 2, 0); one_tensor(g, 64).open(); }, "block size 32");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {std::uint64_t(1) << 63}, 0, 0); one_tensor(g, 64).open(); }, "sane shape");
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {std::uint64_t(1) << 62, 4}, 0, 0); one_tensor(g, 64).open(); }, "sane shape");
  // Found by the fuzzer: 2^62 F32 elements fit an int64, their 2^64 bytes do not.
  check_format_error([&] { gguf_builder g; g.header(3, 1, 0).tensor("t", {std::uint64_t(1) << 31, std::uint64_t(1) << 31}, 0, 0); one_tensor(g, 64).open(); }, "overflows 64 bits");
  check_format_error([&] {
    gguf_builder g;
    g.header(3, 2, 0).tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32);
    one_tensor(g, 64).open();
  }, "tensor 't' twice");
  // gguf_file does not need the padding after the last tensor: llama.cpp's model loader maps the
  // file and never reads it (read_control_vector needs it, as llama.cpp's control-vector loader does).
  auto bytes = io_test::bytes_of(one_tensor(ok, 16).out);
  io_test::check_every_truncation_fails(bytes, [](const mint::file_ptr& f) { mint::gguf_file g(f); });
}

TEST_CASE("the gguf writer refuses what GGUF cannot hold") {
  io_test::temp_folder tmp;
  mint::gguf_writer out(tmp / "x.gguf");
  CHECK_THROWS_AS(out.add_tensor(std::string(64, 'n'), mint::ndarray<float>({2})), mint::argument_error);
  CHECK_THROWS_AS(out.add_tensor("u", mint::ndarray<std::uint32_t>({2})), mint::argument_error);
  CHECK_THROWS_AS(out.add_tensor("s", mint::ndarray<float>({1, 1, 1, 1, 1})), mint::shape_error);
  CHECK_THROWS_AS(out.set("general.alignment", std::int32_t(32)), mint::argument_error);
  CHECK_THROWS_AS(out.set("mixed", mint::gguf_array{mint::gguf_type::int32, {1.5f}}), mint::argument_error);
  out.set("general.alignment", std::uint32_t(64));
  out.add_tensor("t", mint::ndarray<float>({3}));
  out.commit();
  const mint::gguf_file f(tmp / "x.gguf");
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  CHECK(io_test::read_bytes(tmp / "x.gguf").size() == f.data_offset() + 64);  // the last tensor's padding is written
}
