// llama.cpp control vectors: round trip, layer_count as u32 (repeng) or i32
// (llama.cpp), the byte layout llama.cpp's loader needs, files it would refuse,
// and files built byte by byte that it reads leniently (each rule quoted from
// llama.cpp's common/common.cpp, common_control_vector_load_one, or ggml/src/gguf.cpp).
#include "mint/io/control_vector.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
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

// common.cpp, common_control_vector_load_one, each of which refuses the file:
// "else if (layer_idx == 0)", "if (layer_idx < 0)" (a name that is not direction.N),
// "if (tensor->type != GGML_TYPE_F32)", "if (ggml_n_dims(tensor) != 1)",
// "else if (ggml_nelements(tensor) != result.n_embd)", and, with no tensors,
// "if (n_tensors == 0)" leaves n_embd at -1, which fails the load.
TEST_CASE("control vectors llama.cpp would refuse give errors") {
  io_test::temp_folder tmp;
  auto write = [&](const std::string& name, const mint::array_ref& a) {
    mint::gguf_writer w(tmp / "x.gguf");
    w.set("general.architecture", "controlvector");
    w.add_tensor(name, a);
    w.commit();
    return tmp / "x.gguf";
  };
  const mint::ndarray<float> d({4});
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.0", d)); }, "N >= 1");
  io_test::check_format_error([&] { mint::read_control_vector(write("blk.1.attn_q", d)); }, "direction.N");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1", mint::ndarray<mint::float16>({4}))); }, "F32 vector");
  io_test::check_format_error([&] { mint::read_control_vector(write("direction.1", mint::ndarray<float>({2, 2}))); }, "F32 vector");
  {
    mint::gguf_writer w(tmp / "y.gguf");
    w.add_tensor("direction.1", d);
    w.add_tensor("direction.2", mint::ndarray<float>({5}));
    w.commit();
    io_test::check_format_error([&] { mint::read_control_vector(tmp / "y.gguf"); }, "of one length");
  }
  {
    mint::gguf_writer w(tmp / "empty.gguf");
    w.set("general.architecture", "controlvector");
    w.commit();
    io_test::check_format_error([&] { mint::read_control_vector(tmp / "empty.gguf"); }, "holds no tensors");
  }
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {"", {{0, {1.0f}}}, {}}), mint::argument_error);
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {"", {{1, {1.0f}}, {2, {1.0f, 2.0f}}}, {}}), mint::shape_error);
  CHECK_THROWS_AS(mint::write_control_vector(tmp / "z.gguf", {}), mint::argument_error);
}

namespace {

struct cv_tensor {
  std::string name;
  std::vector<std::uint64_t> dims;  // ggml order
  std::vector<float> values;
};

/// A control-vector GGUF built by hand: F32 tensors in order, each padded to 32 bytes, the last
/// one too unless pad_last is false; `extra_kv` raw key-value bytes after general.architecture.
io_test::gguf_builder cv_bytes(const std::vector<cv_tensor>& tensors, bool pad_last = true, const std::string& extra_kv = "",
                               std::uint64_t n_extra = 0) {
  io_test::gguf_builder g;
  g.header(3, tensors.size(), 1 + n_extra).string("general.architecture").raw(std::uint32_t(8)).string("controlvector");
  g.out += extra_kv;
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    g.tensor(t.name, t.dims, 0, offset);
    offset += (t.values.size() * 4 + 31) / 32 * 32;
  }
  g.pad();
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    for (const float v : tensors[k].values) g.raw(v);
    if (k + 1 < tensors.size() || pad_last) g.pad();
  }
  return g;
}

mint::control_vector cv_read(const std::vector<cv_tensor>& tensors) {
  return mint::read_control_vector(cv_bytes(tensors).open("cv.gguf"));
}

}  // namespace

// common.cpp: "if (ggml_n_dims(tensor) != 1)" refuses the file, and ggml.c's ggml_n_dims is
// 1 + the last i >= 1 with "tensor->ne[i] > 1" (else 1): trailing extents of 1 are ignored,
// and gguf.cpp sets the extents a tensor does not list to 1 ("info.t.ne[j] = 1").
TEST_CASE("control vectors: trailing dims of 1 are ignored, as ggml_n_dims ignores them") {
  const auto v = cv_read({{"direction.1", {4, 1}, {1, 2, 3, 4}}, {"direction.2", {4, 1, 1, 1}, {5, 6, 7, 8}}});
  CHECK(v.n_embd() == 4);
  CHECK(v.directions.at(1) == std::vector<float>{1, 2, 3, 4});
  CHECK(v.directions.at(2) == std::vector<float>{5, 6, 7, 8});
  CHECK(cv_read({{"direction.1", {}, {2.5f}}}).directions.at(1) == std::vector<float>{2.5f});  // no dims: ne = [1, 1, 1, 1]
  io_test::check_format_error([] { cv_read({{"direction.1", {1, 4}, {1, 2, 3, 4}}}); }, "F32 vector");  // ne[1] = 4: 2-D
  io_test::check_format_error([] { cv_read({{"direction.1", {2, 2}, {1, 2, 3, 4}}}); }, "F32 vector");
  io_test::check_format_error([] { cv_read({{"direction.1", {4, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8}}}); }, "cv.gguf");
}

// common.cpp: "if (dotpos != std::string::npos && name.substr(0, dotpos) == "direction")" then
// "layer_idx = std::stoi(name.substr(dotpos + 1))" (an exception gives -1); "if (layer_idx < 0)"
// and "else if (layer_idx == 0)" refuse the file. std::stoi is strtol in base 10: leading spaces
// and a sign, then digits, the rest ignored; no digits or a value outside int throw.
TEST_CASE("control vectors: layer numbers are read as std::stoi reads them") {
  const auto v = cv_read({{"direction.01", {2}, {1, 1}},
                          {"direction.2.weight", {2}, {2, 2}},
                          {"direction.3x", {2}, {3, 3}},
                          {"direction. 4", {2}, {4, 4}},
                          {"direction.+5", {2}, {5, 5}},
                          {"direction.\t06", {2}, {6, 6}},
                          {"direction.2147483647", {2}, {7, 7}}});
  REQUIRE(v.directions.size() == 7);
  for (const int layer : {1, 2, 3, 4, 5, 6})
    CHECK(v.directions.at(layer) == std::vector<float>(2, float(layer)));
  CHECK(v.directions.at(std::numeric_limits<int>::max()) == std::vector<float>{7, 7});
  // A name llama.cpp cannot read refuses the whole file (it is not skipped), even beside good ones.
  for (const std::string bad : {"direction.0", "direction.-0", "direction.0x5", "direction.-1", "direction.x", "direction.",
                                "direction..1", "direction", "Direction.1", "directions.1", "foo.1", "blk.1.direction.1",
                                "direction.2147483648", "direction.99999999999999999999", "direction.+-1", "direction_1"}) {
    INFO("name: " << bad);
    io_test::check_format_error([&] { cv_read({{"direction.1", {2}, {1, 1}}, {bad, {2}, {1, 1}}}); }, "direction.N tensors with N >= 1");
  }
}

// common.cpp's loader asks gguf.cpp for the data (no_alloc false), and gguf.cpp then reads
// the whole data block, "ctx->size += padded_size" for every tensor:
// "ok = ok && gr.read(data->data, ctx->size)" fails a file without the last tensor's padding.
TEST_CASE("control vectors: the data block must hold the padding after the last tensor") {
  const auto unpadded = cv_bytes({{"direction.1", {4}, {1, 2, 3, 4}}}, false);
  CHECK(unpadded.open("cv.gguf").tensors().size() == 1);  // gguf_file itself opens it (see gguf.cpp's tests)
  io_test::check_format_error([&] { mint::read_control_vector(unpadded.open("cv.gguf")); }, "padding");
  io_test::check_format_error([&] { mint::read_control_vector(unpadded.open("cv.gguf")); }, "file 'cv.gguf'");
  CHECK(mint::read_control_vector(cv_bytes({{"direction.1", {4}, {1, 2, 3, 4}}}).open()).n_embd() == 4);
  // 8 floats fill 32 bytes: nothing to pad, nothing missing.
  CHECK(mint::read_control_vector(cv_bytes({{"direction.1", {8}, std::vector<float>(8, 1.0f)}}, false).open()).n_embd() == 8);
  io_test::temp_folder tmp;
  io_test::write_bytes(tmp / "short.gguf", io_test::bytes_of(unpadded.out));
  io_test::check_format_error([&] { mint::read_control_vector(tmp / "short.gguf"); }, "short.gguf");
}

// common.cpp: "dst[j] += src[j] * load_info.strength;  // allows multiple directions for same
// layer in same file", into "result.data.resize(..., 0.0f)", tensor by tensor in file order.
TEST_CASE("control vectors: tensors of one layer are summed in file order") {
  const float a = 1e8f, b = 1.0f, c = -1e8f;  // (a + b) + c = 0 in floats; (a + c) + b would be 1
  const auto v = cv_read({{"direction.2", {2}, {a, 1}}, {"direction.1", {2}, {0, 0}}, {"direction.02", {2}, {b, 2}},
                          {"direction.2.x", {2}, {c, 4}}});
  REQUIRE(v.directions.size() == 2);
  CHECK(v.directions.at(2)[0] == ((0.0f + a) + b) + c);
  CHECK(v.directions.at(2)[0] == 0.0f);
  CHECK(v.directions.at(2)[1] == 7.0f);
  // The sum starts from +0.0, so a -0.0 reads as +0.0, as llama.cpp adds it.
  CHECK_FALSE(std::signbit(cv_read({{"direction.1", {1}, {-0.0f}}}).directions.at(1)[0]));
  // The writer writes that one summed direction per layer.
  io_test::temp_folder tmp;
  mint::write_control_vector(tmp / "sum.gguf", v);
  const mint::gguf_file f(tmp / "sum.gguf");
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.tensors()[1].name == "direction.2");
  CHECK(mint::read_control_vector(f).directions == v.directions);
}

// common.cpp: "if (result.n_embd == -1) { result.n_embd = ggml_nelements(tensor); }" takes a
// tensor of 0 values, but llama-adapter.cpp's apply then fails every model:
// "if (n_embd != (int) hparams.n_embd)".
TEST_CASE("control vectors: a direction of no values is refused") {
  io_test::check_format_error([] { cv_read({{"direction.1", {0}, {}}}); }, "no values");
  io_test::check_format_error([] { cv_read({{"direction.1", {4, 0}, {}}}); }, "no values");  // ggml_n_dims 1, 0 elements
}

// llama.cpp reads no metadata in the loader (controlvector.layer_count is for humans), so a
// wrong type there is no error; gguf.cpp does refuse an array of arrays:
// "case GGUF_TYPE_ARRAY: default: ... has invalid GGUF type".
TEST_CASE("control vectors: metadata is not checked, but nested arrays are refused") {
  io_test::gguf_builder kv;
  kv.string("controlvector.layer_count").raw(std::uint32_t(8)).string("three");
  kv.string("controlvector.model_hint").raw(std::uint32_t(4)).raw(std::uint32_t(7));
  const auto v = mint::read_control_vector(cv_bytes({{"direction.1", {2}, {1, 2}}}, true, kv.out, 2).open());
  CHECK(v.layer_count == std::nullopt);
  CHECK(v.model_hint.empty());
  CHECK(v.directions.at(1) == std::vector<float>{1, 2});
  io_test::gguf_builder nested;
  nested.string("x").raw(std::uint32_t(9)).raw(std::uint32_t(9)).raw(std::uint64_t(1));
  nested.raw(std::uint32_t(4)).raw(std::uint64_t(1)).raw(std::uint32_t(3));
  const auto g = cv_bytes({{"direction.1", {2}, {1, 2}}}, true, nested.out, 1);
  CHECK(g.open().find("x") != nullptr);  // gguf_file reads nested arrays, as gguf-py does
  io_test::check_format_error([&] { mint::read_control_vector(g.open()); }, "array of arrays");
}

// gguf.cpp: "ggml_set_name(&info.t, name.c_str())" keeps a name up to its first NUL, and
// "if (strcmp(info.t.name, ctx->info[j].t.name) == 0)" refuses a duplicate.
TEST_CASE("control vectors: tensor names are read up to a NUL byte, as ggml's C strings") {
  using namespace std::string_literals;
  CHECK(cv_read({{"direction.3\0junk"s, {2}, {1, 2}}}).directions.at(3) == std::vector<float>{1, 2});
  io_test::check_format_error([] { cv_read({{"direction.1\0a"s, {2}, {1, 2}}, {"direction.1\0b"s, {2}, {1, 2}}}); }, "NUL");
}

// llama-adapter.cpp copies direction.N only "for (size_t il = 1; il < hparams.n_layer; il++)":
// N >= n_layer is dropped when applied. mint knows no model and keeps it.
TEST_CASE("control vectors: layers beyond any model are kept") {
  CHECK(cv_read({{"direction.4096", {2}, {1, 2}}}).directions.count(4096) == 1);
}

// llama.cpp adds what it loads to every activation, NaN and infinity included (nothing in
// common.cpp checks them): mint's writer refuses them and leaves the old file in place.
TEST_CASE("control vectors: the writer refuses NaN and infinity and writes nothing") {
  io_test::temp_folder tmp;
  const mint::control_vector good{"llama", {{1, {1, 2, 3}}, {3, {4, 5, 6}}}, {}};
  mint::write_control_vector(tmp / "cv.gguf", good);
  const auto before = io_test::read_bytes(tmp / "cv.gguf");
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
    mint::control_vector v = good;
    v.directions[3][2] = bad;
    v.directions[5] = {bad, 0, 0};  // a later layer: the first bad value is named
    try {
      mint::write_control_vector(tmp / "cv.gguf", v);
      FAIL("no argument_error for " << bad);
    } catch (const mint::argument_error& e) {
      const std::string message = e.what();
      INFO("message: " << message);
      CHECK(e.function() == "mint::write_control_vector");
      CHECK(e.argument() == "vector");
      CHECK(message.find("at layer 3, index 2") != std::string::npos);
      CHECK(message.find("needs finite values") != std::string::npos);
    }
    CHECK(io_test::read_bytes(tmp / "cv.gguf") == before);
    CHECK(tmp.entries() == 1);
  }
}
