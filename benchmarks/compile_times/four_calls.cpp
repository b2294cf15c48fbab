// Row "adapter + linear_cka + omp + lasso": a user's own tensor type and three algorithms.
#include <vector>

#include <mint/mint.hpp>

struct user_tensor {
  std::vector<float> values;
  std::vector<mint::index> shape;
};

template <>
struct mint::tensor_adapter<user_tensor> {
  static mint::tensor_view<float> view(user_tensor& t) { return {t.values.data(), t.shape}; }
  static mint::tensor_view<const float> view(const user_tensor& t) { return {t.values.data(), t.shape}; }
};

int main() {
  user_tensor x{std::vector<float>(20 * 8, 1.0f), {20, 8}}, d{std::vector<float>(12 * 8, 0.5f), {12, 8}};
  const double cka = mint::linear_cka(x, x);
  const auto codes = mint::dictionary::omp(x, d, {.nonzeros = 3});
  const auto lasso = mint::dictionary::lasso(x, d, {.alpha = 0.1});
  return cka >= 0 && codes.rows() == lasso.rows() ? 0 : 1;
}
