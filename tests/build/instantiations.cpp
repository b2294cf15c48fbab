// Every public class template mint ships, explicitly instantiated for float and double: each
// member's body compiles, not only the members some test happens to call. And what each runtime
// mint ships is, as the concepts see it, so a change that drops a capability fails to build.
#include <mint/attribution/result.hpp>
#include <mint/core/array.hpp>
#include <mint/core/parameters.hpp>
#include <mint/core/tensor_view.hpp>
#include <mint/dictionary/ksvd.hpp>
#include <mint/dictionary/sae.hpp>
#include <mint/dictionary/width_sweep.hpp>
#include <mint/diffing/crosscoder.hpp>
#include <mint/explain/tuned_lens.hpp>
#include <mint/model/cache.hpp>
#include <mint/model/head_weights.hpp>
#include <mint/model/hooks.hpp>
#include <mint/model/runtime.hpp>
#include <mint/model/unembedding.hpp>
#include <mint/steering/probe.hpp>
#include <mint/steering/reading.hpp>
#include <mint/steering/vector.hpp>
#include <mint/toy/lstm.hpp>
#include <mint/toy/transformer.hpp>

#define MINT_FOR_FLOAT_AND_DOUBLE(name) \
  template class name<float>;           \
  template class name<double>;
#define MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(name) \
  template struct name<float>;                 \
  template struct name<double>;

template class mint::tensor_view<float>;
template class mint::tensor_view<const float>;
template class mint::tensor_view<double>;
template class mint::tensor_view<const double>;
MINT_FOR_FLOAT_AND_DOUBLE(mint::array)
MINT_FOR_FLOAT_AND_DOUBLE(mint::parameter_store)
MINT_FOR_FLOAT_AND_DOUBLE(mint::hook_set)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::hook_call)
MINT_FOR_FLOAT_AND_DOUBLE(mint::activation_cache)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::cached_run)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::attribution_result)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::unembedding_weights)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::attention_matrices)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::mlp_matrices)
MINT_FOR_FLOAT_AND_DOUBLE(mint::diffing::basic_crosscoder)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::tuned_lens)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::dictionary::row_scaling)
MINT_FOR_FLOAT_AND_DOUBLE(mint::dictionary::sae_workspace)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::dictionary::width_result)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::dictionary::ksvd_result)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::steering_vector)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::steering_sequence)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::contrastive_activations)
MINT_FOR_FLOAT_AND_DOUBLE_STRUCT(mint::probe_result)
// (The toy runtimes, the SAE, its trainer and every algorithm core are instantiated by
// mint/src/*.hpp, which the compiled cores build.)

// The runtimes mint ships and the capabilities each offers (docs/runtime.md lists them).
template <class T>
constexpr bool transformer_is_everything = [] {
  using R = mint::toy::transformer<T>;
  return mint::runtime<R> && mint::differentiable_runtime<R> && mint::incremental_runtime<R> &&
         mint::resumable_runtime<R> && mint::branching_runtime<R> && mint::output_trimming_runtime<R> &&
         mint::decodable_runtime<R> && mint::attention_weight_runtime<R>;
}();
static_assert(transformer_is_everything<float> && transformer_is_everything<double>);

// The LSTM has no residual stream to resume at and no unembedding to decode with; it branches
// off its carried state from the tokens only.
template <class T>
constexpr bool lstm_is_recurrent = [] {
  using R = mint::toy::lstm<T>;
  return mint::runtime<R> && mint::differentiable_runtime<R> && mint::incremental_runtime<R> &&
         mint::branching_runtime<R> && !mint::resumable_runtime<R> && !mint::output_trimming_runtime<R> &&
         !mint::decodable_runtime<R> && !mint::attention_weight_runtime<R>;
}();
static_assert(lstm_is_recurrent<float> && lstm_is_recurrent<double>);

int main() { return 0; }
