// Row "adapter + linear_cka + omp + lasso": a user's own tensor type and three algorithms.
#include <cmath>
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

// Deterministic values that vary, so every call has something to measure.
static std::vector<float> wave(std::size_t n, float phase) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::sin(0.7f * static_cast<float>(i) + phase);
  return v;
}

int main() {
  user_tensor x{wave(20 * 8, 0.0f), {20, 8}}, d{wave(12 * 8, 1.0f), {12, 8}};
  const double cka = mint::linear_cka(x, x);
  const auto codes = mint::dictionary::omp(x, d, {.nonzeros = 3});
  const auto lasso = mint::dictionary::lasso(x, d, {.alpha = 0.1});
  return cka >= 0 && codes.rows() == lasso.rows() ? 0 : 1;
}
