// float16 and bfloat16 conversions (exact where the format is exact, round to
// nearest even otherwise) and the dtype tables.
#include "mint/io/dtype.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

TEST_CASE("float16 converts known values exactly and rounds to nearest even") {
  using mint::float16;
  CHECK(float16(1.0f).bits == 0x3c00);
  CHECK(float16(-2.0f).bits == 0xc000);
  CHECK(float16(65504.0f).bits == 0x7bff);               // largest finite half
  CHECK(float16(65519.0f).bits == 0x7bff);               // below the halfway point to 65536
  CHECK(float16(65520.0f).bits == 0x7c00);               // halfway, ties to even: infinity
  CHECK(float16(0x1p-24f).bits == 0x0001);               // smallest subnormal
  CHECK(float16(0x1p-25f).bits == 0x0000);               // halfway to it: ties to even (0)
  CHECK(float16(0x1.8p-24f).bits == 0x0002);            // 1.5 units: ties to even (2)
  CHECK(float16(0x1p-14f).bits == 0x0400);               // smallest normal
  CHECK(float16(1.0f + 0x1p-11f).bits == 0x3c00);        // halfway between 1 and 1 + 2^-10: stays even
  CHECK(float16(1.0f + 0x1.8p-11f).bits == 0x3c01);      // above halfway: rounds up
  CHECK(float16(-0.0f).bits == 0x8000);
  CHECK(float16(std::numeric_limits<float>::infinity()).bits == 0x7c00);
  CHECK(std::isnan(float(float16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(float(float16::from_bits(0x3555)) == 0.333251953125f);  // exactly representable
}

TEST_CASE("every finite float16 survives a trip through float") {
  int mismatches = 0;
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = mint::float16::from_bits(std::uint16_t(bits));
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0) continue;  // NaN payloads are not kept bit for bit
    if (mint::float16(float(h)).bits != bits) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("bfloat16 keeps the top half of a float, rounding to nearest even") {
  using mint::bfloat16;
  CHECK(bfloat16(1.0f).bits == 0x3f80);
  CHECK(bfloat16(std::bit_cast<float>(0x3f808000u)).bits == 0x3f80);  // tie, even stays
  CHECK(bfloat16(std::bit_cast<float>(0x3f818000u)).bits == 0x3f82);  // tie, odd rounds up
  CHECK(bfloat16(std::bit_cast<float>(0x3f808001u)).bits == 0x3f81);  // above the tie
  CHECK(float(bfloat16::from_bits(0xc0a0)) == -5.0f);
  CHECK(std::isnan(float(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(float(bfloat16(std::numeric_limits<float>::max()))));  // rounds past the largest bfloat16
}

TEST_CASE("dtype tables agree with the C++ types") {
  CHECK(mint::dtype_of<float> == mint::dtype::float32);
  CHECK(mint::dtype_of<const std::int16_t> == mint::dtype::int16);
  CHECK(mint::dtype_of<mint::bfloat16> == mint::dtype::bfloat16);
  CHECK(mint::dtype_of<long long> == mint::dtype::int64);
  for (const auto d : mint::all_dtypes)
    mint::detail::visit_dtype(d, [&](auto x) {
      CHECK(sizeof(x) == mint::dtype_size(d));
      CHECK(mint::dtype_of<decltype(x)> == d);
    });
  CHECK(mint::dtype_name(mint::dtype::boolean) == "bool");
  CHECK(mint::is_floating(mint::dtype::bfloat16));
  CHECK_FALSE(mint::is_floating(mint::dtype::uint64));
}

TEST_CASE("convert_elements swaps byte order and converts between dtypes") {
  const unsigned char big_one[] = {0x3f, 0x80, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00};  // 1.0f, -2.0f big-endian
  double out[2];
  mint::detail::convert_elements(mint::dtype::float32, std::endian::big, reinterpret_cast<const std::byte*>(big_one), 4, out, 2);
  CHECK(out[0] == 1.0);
  CHECK(out[1] == -2.0);
  const unsigned char flags[] = {0, 1, 7};
  bool b[3];
  mint::detail::convert_elements(mint::dtype::boolean, std::endian::little, reinterpret_cast<const std::byte*>(flags), 1, b, 3);
  CHECK(!b[0]);
  CHECK(b[1]);
  CHECK(b[2]);  // any non-zero byte reads as true
}
