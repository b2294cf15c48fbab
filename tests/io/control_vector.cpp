// llama.cpp control vectors: round trip, layer_count as u32 (repeng) or i32
// (llama.cpp), the byte layout llama.cpp's loader needs, and files it would refuse.
#include "mint/io/control_vector.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

TEST_CASE("a control vector round trips, with layer_count as i32 or u32") {
  io_test::temp_folder tmp;
  const mint::control_vector v{"llama", {{1, {1, 2, 3, 4}}, {12, {-1, 0.5f, 0, 2}}, {3, {0, 0, 0, 1}}}, {}};
  for (const auto type : {mint::gguf_type::int32, mint::gguf_type::uint32}) {
    mint::write_control_vector(tmp / "cv.gguf", v, {.layer_count_type = type});
    const mint::gguf_file f(tmp / "cv.gguf");
    CHECK(f.string("general.architecture") == "controlvector");
    CHECK(f.find("controlvector.layer_count")->type() == type);
    const auto r = mint::read_control_vector(tmp / "cv.gguf");
    CHECK(r.model_hint == "llama");
    CHECK(r.layer_count == 3);
    CHECK(r.n_embd() == 4);
    CHECK(r.directions == v.directions);
  }
}

TEST_CASE("a written control vector has the layout llama.cpp's parser needs") {
  io_test::temp_folder tmp;
  mint::write_control_vector(tmp / "cv.gguf", {"mistral", {{2, std::vector<float>(5, 1.0f)}, {1, std::vector<float>(5, 2.0f)}}, {}});
  const mint::gguf_file f(tmp / "cv.gguf");
  CHECK(f.version() == 3);
  CHECK(f.data_offset() % 32 == 0);
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors()[0].name == "direction.1");  // in layer order
  CHECK(f.tensors()[1].offset == 32);          // 20 bytes padded to 32
  CHECK(f.tensors()[1].type_name() == "F32");
  // The whole data block, padding after the last tensor included, is in the file.
  CHECK(io_test::read_bytes(tmp / "cv.gguf").size() == f.data_offset() + 64);
}

TEST_CASE("control vectors llama.cpp would refuse give errors") {
  io_test::temp_folder tmp;
  auto write = [&](const std::string& name, const mint::array_ref& a, const std::string& extra = "") {
    mint::gguf_writer w(tmp / "x.gguf");
    w.set("general.architecture", "controlvector");
    if (!extra.empty()) w.set("controlvector.layer_count", extra);
    w.add_tensor(name, a);
    w.commit();
    return tmp / "x.gguf";
  };
  const mint::ndarray<float> d({4});
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.0", d)); }, "N >= 1");
  io_test::check_format_error([&] { mint::read_control_vector(write("blk.1.attn_q", d)); }, "direction.N");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1x", d)); }, "direction.N");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1", mint::ndarray<mint::float16>({4}))); }, "F32 vector");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1", mint::ndarray<float>({2, 2}))); }, "F32 vector");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1", d, "three")); }, "needs an integer");
  {
    mint::gguf_writer w(tmp / "y.gguf");
    w.add_tensor("direction.1", d);
    w.add_tensor("direction.2", mint::ndarray<float>({5}));
    w.commit();
    io_test::check_format_error([&] { mint::read_control_vector(tmp / "y.gguf"); }, "of one length");
  }
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {"", {{0, {1.0f}}}, {}}), mint::argument_error);
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {"", {{1, {1.0f}}, {2, {1.0f, 2.0f}}}, {}}), mint::shape_error);
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {}), mint::argument_error);
}
