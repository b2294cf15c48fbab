// .npy: round trips of every dtype and layout through write/read/map, and every
// kind of broken or lying file giving a format_error.
#include "mint/io/npy.hpp"
#include "mint/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

template <class T>
mint::ndarray<T> rule_array(mint::shape_t shape) {
  auto a = mint::ndarray<T>::uninitialized(shape);
  for (mint::index k = 0; k < a.size(); ++k) {
    const double v = io_test::rule(mint::dtype_of<T>, k);
    if constexpr (std::is_same_v<T, mint::float16> || std::is_same_v<T, mint::bfloat16>) a.data()[k] = T(float(v));
    else a.data()[k] = static_cast<T>(v);
  }
  return a;
}

template <class T>
double as_double(T x) {
  if constexpr (std::is_same_v<T, mint::float16> || std::is_same_v<T, mint::bfloat16>) return double(float(x));
  else return double(x);
}

/// A hand-made .npy file: magic, version 1.0, the given dict (unpadded), then `data` bytes.
std::vector<std::byte> npy_bytes(const std::string& dict, std::size_t data, int version = 1) {
  std::string out("\x93NUMPY", 6);
  out += char(version);
  out += char(0);
  const std::string text = dict + "\n";
  out += char(text.size() & 0xff);
  out += char(text.size() >> 8);
  if (version != 1) out += std::string(2, '\0');
  out += text;
  out += std::string(data, '\1');
  return io_test::bytes_of(out);
}

}  // namespace

TEST_CASE_TEMPLATE("npy round trips C order, Fortran order and strided views", T, bool, std::int8_t, std::int16_t,
                   std::int32_t, std::int64_t, std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t, mint::float16,
                   mint::bfloat16, float, double) {
  io_test::temp_folder tmp;
  const auto a = rule_array<T>({3, 4});
  mint::write_npy(tmp / "c.npy", a);
  const auto c = mint::read_npy<T>(tmp / "c.npy");
  const auto m = mint::map_npy<T>(tmp / "c.npy");
  CHECK(c.shape() == mint::shape_t{3, 4});
  CHECK(!c.is_fortran_order());
  for (mint::index i = 0; i < 3; ++i)
    for (mint::index j = 0; j < 4; ++j) {
      CHECK(as_double(c.view()(i, j)) == as_double(a.view()(i, j)));
      CHECK(as_double(m.view()(i, j)) == as_double(a.view()(i, j)));
    }
  // A transposed view is Fortran-contiguous: written as fortran_order, read back with column-major strides.
  mint::write_npy(tmp / "f.npy", a.view().transposed());
  CHECK(mint::read_npy_header(tmp / "f.npy").fortran_order);
  const auto f = mint::read_npy<T>(tmp / "f.npy");
  const auto fm = mint::map_npy<T>(tmp / "f.npy");
  CHECK(f.shape() == mint::shape_t{4, 3});
  CHECK(f.is_fortran_order());
  // Every other column: neither layout, written in C order through a gather.
  const auto strided = mint::tensor_view<const T>(a.data(), {3, 2}, {4, 2});
  mint::write_npy(tmp / "s.npy", strided);
  const auto s = mint::read_npy<T>(tmp / "s.npy");
  for (mint::index i = 0; i < 3; ++i) {
    for (mint::index j = 0; j < 4; ++j) {
      CHECK(as_double(f.view()(j, i)) == as_double(a.view()(i, j)));
      CHECK(as_double(fm.view()(j, i)) == as_double(a.view()(i, j)));
    }
    for (mint::index j = 0; j < 2; ++j) CHECK(as_double(s.view()(i, j)) == as_double(a.view()(i, 2 * j)));
  }
}

TEST_CASE("npy keeps scalars, empty arrays and ranks above 4") {
  io_test::temp_folder tmp;
  mint::write_npy(tmp / "scalar.npy", mint::array_ref(mint::dtype::float64, {}, std::vector<double>{2.5}.data()));
  const auto s = mint::read_npy<double>(tmp / "scalar.npy");
  CHECK(s.rank() == 0);
  CHECK(s.size() == 1);
  CHECK(s.view()(0) == 2.5);

  mint::write_npy(tmp / "empty.npy", mint::ndarray<float>({0, 7}));
  const auto e = mint::map_npy<float>(tmp / "empty.npy");
  CHECK(e.shape() == mint::shape_t{0, 7});
  CHECK(e.view().size() == 0);

  const auto big = rule_array<float>({2, 1, 3, 1, 2});
  mint::write_npy(tmp / "rank5.npy", big);
  const auto r = mint::read_npy<float>(tmp / "rank5.npy");
  CHECK(r.shape() == big.shape());
  CHECK(r.values()[11] == big.values()[11]);
  CHECK_THROWS_AS(r.view(), mint::shape_error);  // views stop at rank 4
}

TEST_CASE("npy converts dtypes only when asked") {
  io_test::temp_folder tmp;
  mint::write_npy(tmp / "h.npy", rule_array<mint::float16>({2, 3}));
  io_test::check_format_error([&] { mint::read_npy<float>(tmp / "h.npy"); }, "holds float16; needs float32, or read_options{.convert = true}");
  const auto x = mint::read_npy<float>(tmp / "h.npy", {.convert = true});
  CHECK(x.view()(1, 2) == float(io_test::rule(mint::dtype::float32, 5)));
  io_test::check_format_error([&] { mint::map_npy<float>(tmp / "h.npy"); }, "to be mapped without a copy");
}

TEST_CASE("npy headers that lie, overflow or are cut short give format errors") {
  using io_test::check_format_error;
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  auto open = [](const std::vector<std::byte>& b) { return mint::read_npy<float>(io_test::memory_file(b, "bad.npy")); };
  CHECK(open(npy_bytes(ok, 24)).size() == 6);
  check_format_error([&] { open(npy_bytes(ok, 23)); }, "only 23 bytes follow the header");
  check_format_error([&] { open(io_test::bytes_of("\x93NUMPZ\x01\x00")); }, "does not start with \\x93NUMPY");
  check_format_error([&] { open(npy_bytes(ok, 24, 4)); }, "format version 4");
  check_format_error([&] { open(npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 48)); }, "dtype '<c8'");
  check_format_error([&] { open(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8)); }, "structured dtype");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8)); }, "repeats the key 'descr'");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'shape': (2,), }", 8)); }, "lacks one of");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8)); }, "unknown key 'x'");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8)); }, "neither True nor False");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8)); }, "in its shape");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8)); }, "too large");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8)); }, "overflows");
  check_format_error([&] { open(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }", 8)); }, "overflows 64 bits");
  check_format_error([&] { open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } junk", 8)); }, "after the header's closing brace");
  // Found by the fuzzer: an empty array whose other extents multiply past 2^63 reads as empty.
  CHECK(open(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4611686018427387904), }", 0)).size() == 0);
  check_format_error([&] { open(npy_bytes("{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8)); }, "needs");
  // A header length field larger than the file, and one over the 1 MiB bound.
  auto lying = npy_bytes(ok, 24);
  lying[8] = std::byte{0xff};
  lying[9] = std::byte{0xff};
  check_format_error([&] { open(lying); }, "inside the header");
  auto huge = npy_bytes(ok, 24, 2);
  huge[11] = std::byte{0x7f};
  check_format_error([&] { open(huge); }, "claims a header of");
  io_test::check_every_truncation_fails(npy_bytes(ok, 24), [](const mint::file_ptr& f) { mint::read_npy<float>(f); });
}

TEST_CASE("npy mapping refuses misaligned data and the other byte order, which reading accepts") {
  // Spaces after the dict put the data at an offset that is 1 more than a multiple of 4.
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,),}";
  while ((10 + dict.size() + 1) % 4 != 1) dict += ' ';
  const auto file = io_test::memory_file(npy_bytes(dict, 8), "odd.npy");
  CHECK(mint::read_npy_header(file).data_offset % 4 == 1);
  io_test::check_format_error([&] { mint::map_npy<float>(file); }, "not a multiple of 4");
  CHECK(mint::read_npy<float>(file).size() == 2);
  const auto be = npy_bytes("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", 0);
  auto with_data = be;
  for (const int b : {0, 0, 1, 2}) with_data.push_back(std::byte(b));  // 258 big-endian
  const auto bf = io_test::memory_file(with_data, "be.npy");
  CHECK(mint::read_npy<std::int32_t>(bf).values()[0] == 258);
  io_test::check_format_error([&] { mint::map_npy<std::int32_t>(bf); }, "byte order");
  // bool bytes other than 0/1 cannot be mapped as bool, but read as true.
  auto flags = npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 0);
  flags.push_back(std::byte{0});
  flags.push_back(std::byte{5});
  const auto ff = io_test::memory_file(flags, "flags.npy");
  CHECK(mint::read_npy<bool>(ff).values()[1]);
  io_test::check_format_error([&] { mint::map_npy<bool>(ff); }, "neither 0 nor 1");
}

TEST_CASE("ndarray owns its elements and is a mint tensor") {
  mint::ndarray<float> a({2, 2}, {1, 2, 3, 4});
  mint::ndarray<float> b = a;
  b.view()(0, 0) = 9;
  CHECK(a.view()(0, 0) == 1);
  static_assert(mint::tensor_of<mint::ndarray<float>, float>);
  static_assert(mint::mutable_tensor<mint::ndarray<float>&>);
  static_assert(mint::tensor<const mint::mapped_array<double>>);
  CHECK(mint::view(a)(1, 1) == 4);
  CHECK_THROWS_AS(mint::ndarray<float>({2, 2}, {1, 2, 3}), mint::shape_error);
  const auto copy = mint::ndarray<float>::copy_of(a.view().transposed());
  CHECK(copy.view()(0, 1) == 3);
  CHECK(!copy.is_fortran_order());
}

TEST_CASE("writers refuse an array whose byte count or furthest offset overflows, and write nothing") {
  io_test::temp_folder tmp;
  const float one = 1.0f;
  const mint::index huge = mint::index(1) << 62;  // elements fit a ptrdiff_t, their bytes do not
  for (const mint::shape_t& shape : {mint::shape_t{huge}, mint::shape_t{huge + 1000}}) {
    const mint::array_ref a(mint::dtype::float32, shape, &one);
    CHECK_THROWS_AS(mint::write_npy(tmp / "huge.npy", a), mint::shape_error);
    CHECK_THROWS_AS(mint::write_safetensors(tmp / "huge.safetensors", {{"x", a}}), mint::shape_error);
  }
  // A small array whose strides reach past what an offset can hold.
  const mint::array_ref strided(mint::dtype::float32, {2, 2}, {huge, huge}, &one);
  CHECK_THROWS_AS(mint::write_npy(tmp / "strided.npy", strided), mint::shape_error);
  CHECK(tmp.entries() == 0);  // no file, no temporary left behind
}
