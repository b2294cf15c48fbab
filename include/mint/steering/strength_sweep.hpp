// Choosing a strength: for each scale, the behaviour metric on steered prompts and a fluency
// cost, the KL divergence from the unsteered to the steered next-token distribution averaged
// over every valid position of neutral text. A strength that moves the behaviour while the KL
// stays small steers without breaking the model (the refusal-direction work keeps KL < 0.1).
// Cost: one unsteered forward of the neutral text, then two forwards per scale.
#pragma once

#include <cmath>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/model/hooks.hpp"
#include "mint/model/metrics.hpp"
#include "mint/model/runtime.hpp"
#include "mint/steering/application.hpp"
#include "mint/steering/vector.hpp"

namespace mint {

/// What strength_sweep tries.
struct strength_sweep_options {
  std::vector<double> scales{};  ///< the strengths tried (required), e.g. -8 to 8
  position_policy at{};          ///< where the prompts are steered; the neutral text is steered at every position
};

/// One strength's effect.
struct strength_point {
  double scale = 0;
  double behaviour = 0;  ///< the metric on the steered prompts
  double fluency_kl = 0; ///< KL(unsteered || steered) on the neutral text, mean over its positions
};

/// The behaviour metric (any mint::metric of the prompts' logits, e.g. token_probability) and
/// the fluency cost at each scale of options.scales, in that order.
template <runtime R, class M, class U>
std::vector<strength_point> strength_sweep(R& model, const steering_vector<U>& vector, const token_batch& prompts,
                                           const M& behaviour, const token_batch& neutral,
                                           const strength_sweep_options& options) {
  using T = scalar_t<R>;
  const char* fn = "mint::strength_sweep";
  if (options.scales.empty()) throw argument_error(fn, "options.scales", "are empty", "needs at least one scale");
  for (double s : options.scales)
    if (!std::isfinite(s)) throw argument_error(fn, "options.scales", detail::str("hold ", s), "needs finite scales");
  hook_set<T> none;
  const tensor_view<const T> reference = model.forward(neutral, none);
  if (reference.empty()) throw argument_error(fn, "model", "returned no logits for the neutral text", "needs logits");
  const kl_divergence fluency(reference, neutral, true);
  std::vector<strength_point> out;
  for (double s : options.scales) {
    strength_point p;
    p.scale = s;
    hook_set<T> steer(model.sites());
    add_steering(steer, vector, s, options.at);
    p.behaviour = behaviour.value(model.forward(prompts, steer), prompts);
    hook_set<T> everywhere(model.sites());
    add_steering(everywhere, vector, s);
    p.fluency_kl = fluency.value(model.forward(neutral, everywhere), neutral);
    out.push_back(p);
  }
  return out;
}

}  // namespace mint
