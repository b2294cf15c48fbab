// The toy transformer saved and loaded as safetensors, and training resumed from a checkpoint.
#include "mint/toy/files.hpp"

#include <doctest/doctest.h>

#include "mint/core/eigen.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/toy/train.hpp"

#include <filesystem>
#include <fstream>

namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "mint_toy_files";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

const mint::toy::induction_task small_task{.vocab = 12, .length = 4, .sequence = 12};
const mint::toy::transformer_config config{.vocab = 12, .context = 12, .d_model = 16, .layers = 2, .heads = 2,
                                           .kv_heads = 1, .d_head = 8, .d_mlp = 24,
                                           .activation = mint::toy::activation_fn::gelu_tanh, .split_qkv_input = true};
const mint::toy::train_options short_training{.steps = 30, .batch = 8, .optimizer = {.lr = 3e-3, .warmup = 5}, .seed = 2};

}  // namespace

TEST_CASE("a saved model loads with the same config and the same outputs, bit for bit") {
  mint::toy::transformer<float> model(config);
  model.initialize(3);
  const std::string path = temp_path("model.safetensors");
  mint::toy::save(model, path);
  auto loaded = mint::toy::load_transformer(path);
  CHECK(loaded.config().kv_heads == 1);
  CHECK(loaded.config().activation == mint::toy::activation_fn::gelu_tanh);
  CHECK(loaded.config().split_qkv_input);
  const auto tokens = mint::token_batch::from_rows({{0, 3, 5, 7, 3, 5}});
  CHECK(mint::to_matrix(model.forward(tokens)) == mint::to_matrix(loaded.forward(tokens)));
  // Any safetensors reader sees TransformerLens names and shapes.
  const mint::safetensors_file file(path);
  CHECK(file.entry("blocks.1.attn.W_K").shape == mint::shape_t{1, 16, 8});
  CHECK(file.contains("ln_final.w"));
}

TEST_CASE("training resumed from a checkpoint matches an uninterrupted run") {
  mint::toy::transformer<float> straight(config), resumed(config);
  straight.initialize(1);
  resumed.initialize(1);
  mint::toy::trainer(straight, small_task, short_training).run();

  const std::string path = temp_path("checkpoint.safetensors");
  {
    mint::toy::trainer first(resumed, small_task, short_training);
    for (int i = 0; i < 12; ++i) first.step();
    mint::toy::save_checkpoint(resumed, first.optimizer(), path);
  }
  mint::toy::transformer<float> fresh(config);  // as a new process would: nothing in memory
  mint::toy::trainer second(fresh, small_task, short_training);
  mint::toy::load_checkpoint(path, fresh, second.optimizer());
  CHECK(second.optimizer().steps() == 12);
  second.run();
  const auto a = straight.parameters().flat(), b = fresh.parameters().flat();
  CHECK(std::equal(a.begin(), a.end(), b.begin()));
}

TEST_CASE("files that are not what they claim are refused") {
  mint::toy::transformer<float> model(config);
  const std::string plain = temp_path("plain.safetensors");
  const float one = 1.0f;
  mint::write_safetensors(plain, {{"x", mint::array_ref(mint::dtype::float32, {1}, &one)}});
  CHECK_THROWS_WITH_AS(mint::toy::load_transformer(plain), doctest::Contains("has no 'mint.toy.config' metadata"),
                       mint::format_error);
  const std::string path = temp_path("small.safetensors");
  mint::toy::save(model, path);
  mint::toy::transformer<float> other({.vocab = 12, .context = 12, .d_model = 8, .heads = 2, .d_head = 4});
  mint::adam<float> optimizer(std::size_t(other.parameters().size()), {});
  CHECK_THROWS_WITH_AS(mint::toy::load_checkpoint(path, other, optimizer), doctest::Contains("lacks"), mint::format_error);
  // A truncated file is a format_error from the reader, never a crash.
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  CHECK_THROWS_AS(mint::toy::load_transformer(path), mint::format_error);
}

TEST_CASE("the config converts to and from JSON by field name; an unknown activation or a missing field is refused") {
  const mint::json j = config;
  CHECK(j.at("activation") == "gelu_tanh");
  CHECK(j.at("d_model") == 16);
  CHECK(j.size() == 12);  // every field of transformer_config
  const auto back = j.get<mint::toy::transformer_config>();
  CHECK(mint::json(back) == j);
  const float one = 1.0f;
  const std::string path = temp_path("odd_config.safetensors");
  auto write_with = [&](const mint::json& c) {
    mint::write_safetensors(path, {{"x", mint::array_ref(mint::dtype::float32, {1}, &one)}}, {{"mint.toy.config", c.dump()}});
  };
  mint::json odd = j;
  odd["activation"] = "swish";
  write_with(odd);
  CHECK_THROWS_WITH_AS(mint::toy::load_transformer(path), doctest::Contains("names activation \"swish\""), mint::format_error);
  odd = j;
  odd.erase("d_head");
  write_with(odd);
  CHECK_THROWS_WITH_AS(mint::toy::load_transformer(path), doctest::Contains("has a config that does not parse"),
                       mint::format_error);
}
