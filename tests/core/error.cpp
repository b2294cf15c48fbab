// Errors: their hierarchy and the four parts of every message.
#include "mint/core/error.hpp"

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("an error names the function, the argument, what it got and what it needs") {
  const mint::shape_error e("mint::linear_cka", "y", "has 90 rows", "needs 100, the rows of x");
  CHECK(std::string(e.what()) == "mint::linear_cka: y has 90 rows; needs 100, the rows of x");
  CHECK(e.function() == "mint::linear_cka");
  CHECK(e.argument() == "y");
}

TEST_CASE("every error kind is a mint::error and a std::runtime_error") {
  auto throws = [](int kind) {
    switch (kind) {
      case 0: throw mint::shape_error("f", "a", "got", "needs");
      case 1: throw mint::argument_error("f", "a", "got", "needs");
      case 2: throw mint::format_error("f", "file 'x.npy'", "got", "needs");
      default: throw mint::numeric_error("f", "a", "got", "needs");
    }
  };
  for (int kind = 0; kind < 4; ++kind) {
    CHECK_THROWS_AS(throws(kind), mint::error);
    CHECK_THROWS_AS(throws(kind), std::runtime_error);
  }
  CHECK_THROWS_AS(throws(0), mint::shape_error);
  CHECK_THROWS_AS(throws(1), mint::argument_error);
  CHECK_THROWS_AS(throws(2), mint::format_error);
  CHECK_THROWS_AS(throws(3), mint::numeric_error);
}

TEST_CASE("shape_string prints extents the way messages show them") {
  const std::vector<long> extents = {3, 4, 5};
  CHECK(mint::detail::shape_string(std::span<const long>(extents)) == "[3, 4, 5]");
  CHECK(mint::detail::shape_string({7}) == "[7]");
}
