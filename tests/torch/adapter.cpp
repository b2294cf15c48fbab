// at::Tensor as a mint tensor: views share memory and strides (transposes, slices, steps), float
// by default and double through torch_tensor<double>; the tensors mint cannot view are named.
#include <doctest/doctest.h>

#include <mint/adapters/eigen.hpp>
#include <mint/similarity.hpp>

#include "common.hpp"

TEST_CASE("at::Tensor views: strides, transposes and slices without copies") {
  const at::Tensor x = torch::arange(24, torch::kFloat).reshape({2, 3, 4});
  const auto v = mint::view(x);
  CHECK(v.data() == x.data_ptr<float>());
  CHECK(v(1, 2, 3) == 23.0f);
  const at::Tensor t = x.transpose(0, 2);  // [4, 3, 2], not contiguous
  const auto vt = mint::view(t);
  CHECK(vt.extent(0) == 4);
  CHECK(vt(3, 2, 1) == 23.0f);
  CHECK(vt(1, 0, 1) == x[1][0][1].item<float>());
  const at::Tensor s = x.index({torch::indexing::Slice(), torch::indexing::Slice(1, 3), torch::indexing::Slice(0, 4, 2)});
  const auto vs = mint::view(s);  // [2, 2, 2] with step 2 on the last axis
  CHECK(vs.extent(2) == 2);
  CHECK(vs(1, 1, 1) == x[1][2][2].item<float>());
  // Writes go through to the tensor.
  mint::view(s)(0, 0, 0) = -1.0f;
  CHECK(x[0][1][0].item<float>() == -1.0f);
  // float64 through torch_tensor<double>; to_torch copies a view back.
  const at::Tensor d = torch::rand({3, 5}, torch::kDouble).t();
  const mint::torch_tensor<double> td{d};
  const auto vd = mint::view(td);
  CHECK(vd(4, 2) == d[4][2].item<double>());
  const at::Tensor back = mint::to_torch<double>(vd);
  CHECK(back.is_contiguous());
  CHECK(torch::equal(back, d));
}

TEST_CASE("algorithms take torch tensors as they take Eigen matrices") {
  const at::Tensor a = torch::randn({50, 6}, torch::kDouble), b = torch::randn({6, 50}, torch::kDouble).t();
  const mint::matrixd ea = mint::to_matrix(mint::torch_view<double>(a)), eb = mint::to_matrix(mint::torch_view<double>(b));
  CHECK(mint::linear_cka(mint::torch_tensor<double>{a}, mint::torch_tensor<double>{b}) == doctest::Approx(mint::linear_cka(ea, eb)).epsilon(1e-12));
  const at::Tensor f = a.to(torch::kFloat);
  CHECK(mint::linear_cka(f, f) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("tensors mint cannot view are named errors") {
  const auto refused = [](const at::Tensor& x) -> std::string {
    try {
      (void)mint::view(x);
    } catch (const mint::argument_error& e) {
      return e.what();
    }
    return "viewed";
  };
  CHECK(refused(at::Tensor()).find("undefined") != std::string::npos);
  CHECK(refused(torch::ones({2, 2}, torch::kInt)).find("has dtype Int") != std::string::npos);
  CHECK(refused(torch::ones({2, 2}, torch::kDouble)).find("torch_tensor<double>") != std::string::npos);
  CHECK(refused(torch::empty({2, 2}, torch::TensorOptions().device(torch::kMeta))).find("is on device 'meta'") != std::string::npos);
  CHECK(refused(torch::ones({2, 2}).to_sparse()).find("not strided") != std::string::npos);
  CHECK(refused(torch::ones({1, 1, 1, 1, 2})).find("5 dimensions") != std::string::npos);
  CHECK(refused(torch::tensor(1.0f)).find("0 dimensions") != std::string::npos);
  const mint::torch_tensor<double> single{torch::ones({2, 2})};
  CHECK_THROWS_WITH_AS((void)mint::view(single), doctest::Contains("float64"), mint::argument_error);
}
