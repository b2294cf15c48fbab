// Steering vectors to and from llama.cpp control vectors (blocks.N.hook_resid_post is
// direction.N; resid_pre of block N+1 is the same tensor), through a file and back.
#include "mint/steering/application.hpp"
#include "mint/steering/control_vectors.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <vector>

#include "mint/io/control_vector.hpp"
#include "mint/toy/transformer.hpp"

namespace {

mint::toy::transformer<float> exchange_model() {
  mint::toy::transformer<float> m({.vocab = 12, .context = 16, .d_model = 8, .layers = 3, .heads = 2, .d_head = 4,
                                   .d_mlp = 16});
  m.initialize(4);
  return m;
}

}  // namespace


TEST_CASE("steering vectors go to llama.cpp control vectors by block output, through a file and back") {
  auto model = exchange_model();
  const std::vector<float> a{1, 2, 3, 4, 5, 6, 7, 8}, b{0.5f, 0, 0, 0, 0, 0, 0, -1};
  mint::steering_vector<float> v{{"blocks.1.hook_resid_post", a}, {"blocks.2.hook_resid_pre", b}, {"blocks.2.hook_resid_post", b}};
  v.model_hint = "toy";
  const auto file = mint::to_control_vector(v, model.sites());
  REQUIRE(file.directions.size() == 2);  // resid_pre of block 2 is block 1's output: summed into direction.1
  CHECK(file.model_hint == "toy");
  std::vector<float> sum(8);
  for (int i = 0; i < 8; ++i) sum[std::size_t(i)] = a[std::size_t(i)] + b[std::size_t(i)];
  CHECK(file.directions.at(1) == sum);
  CHECK(file.directions.at(2) == b);

  const auto path = (std::filesystem::temp_directory_path() / "mint_exchange_test.gguf").string();
  mint::write_control_vector(path, file);
  const auto back = mint::from_control_vector(mint::read_control_vector(path), model.sites());
  std::filesystem::remove(path);
  CHECK(back.model_hint == "toy");
  REQUIRE(back.size() == 2);
  CHECK(back["blocks.1.hook_resid_post"] == sum);
  CHECK(back["blocks.2.hook_resid_post"] == b);

  // Block 0's output and sites inside a block have no llama.cpp layer.
  CHECK_THROWS_AS(mint::to_control_vector(mint::steering_vector<float>{{"blocks.0.hook_resid_post", a}}, model.sites()),
                  mint::argument_error);
  CHECK_THROWS_AS(mint::to_control_vector(mint::steering_vector<float>{{"blocks.1.hook_resid_pre", a}}, model.sites()),
                  mint::argument_error);
  CHECK_THROWS_AS(mint::to_control_vector(mint::steering_vector<float>{{"blocks.1.hook_resid_mid", a}}, model.sites()),
                  mint::argument_error);
  // A direction for a block the model lacks, or of the wrong length.
  mint::control_vector far{"toy", {{7, a}}, {}};
  CHECK_THROWS_AS(mint::from_control_vector(far, model.sites()), mint::argument_error);
  mint::control_vector wide{"toy", {{1, std::vector<float>(9, 1.0f)}}, {}};
  CHECK_THROWS_AS(mint::from_control_vector(wide, model.sites()), mint::shape_error);
}
