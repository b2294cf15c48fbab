// The steering hooks allocate nothing when called: operator new is replaced here to count, and
// Eigen's own allocations (malloc) are refused through EIGEN_RUNTIME_NO_MALLOC with an
// eigen_assert that counts. Its own executable, header-only (no compiled cores built without
// these settings): both must be set before anything includes Eigen.
#include <atomic>

namespace {
std::atomic<long> allocation_count{0}, eigen_refusals{0};
}  // namespace

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) \
  do {                  \
    if (!(x)) ++eigen_refusals; \
  } while (false)

#include <doctest/doctest.h>

#include <cstdlib>
#include <new>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/steering/application.hpp"

// g++ sees the free() of what a new-expression returned and warns; these two are one allocator.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  ++allocation_count;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

// Calls every hook at `site` ten times on `view` and returns (new-expressions, Eigen mallocs).
std::pair<long, long> allocations_of(mint::hook_set<float>& hooks, mint::site_id site, const mint::tensor_view<float>& view,
                                     const std::vector<mint::index>& lengths) {
  hooks.call(site, view, lengths, {.first_position = 1});  // warm: nothing is built lazily on a first call
  const long before = allocation_count.load(), refused = eigen_refusals.load();
  Eigen::internal::set_is_malloc_allowed(false);
  for (int i = 0; i < 10; ++i) hooks.call(site, view, lengths, {.first_position = 1});
  Eigen::internal::set_is_malloc_allowed(true);
  return {allocation_count.load() - before, eigen_refusals.load() - refused};
}

}  // namespace

TEST_CASE("steering hooks allocate nothing when called, on contiguous and strided activations") {
  // Two sites as a runtime would list them: a residual stream and a head output.
  mint::site_table sites;
  using ax = mint::axis;
  const mint::site_id resid = sites.add({"blocks.1.hook_resid_mid", 1, mint::site_role::resid_mid, 0, 0,
                                         {ax::batch, ax::pos, ax::d_model}, {0, 0, 8}});
  const mint::site_id z = sites.add({"blocks.0.attn.hook_z", 0, mint::site_role::attn_z, 2, 2,
                                     {ax::batch, ax::pos, ax::head, ax::d_head}, {0, 0, 2, 4}});
  const std::vector<float> r{1, -1, 2, 0, 0.5f, 1, 1, -2};
  const auto attach = [&](mint::hook_set<float>& hooks, const std::string& site) {
    mint::add_steering(hooks, mint::steering_vector<float>{{site, r}}, 2.0, mint::generated_positions(std::vector<mint::index>{2, 3}));
    mint::add_steering(hooks, mint::steering_vector<float>{{site, r}}, 1.0, {.positions = mint::steer_positions::given, .given = {1, 3}});
    mint::add_projection_clamp(hooks, mint::steering_vector<float>{{site, r}}, 0.5);
    mint::add_directional_ablation(hooks, mint::steering_vector<float>{{site, r}});
    mint::steering_sequence<float> seq;
    seq.directions[site] = mint::matrixf::Ones(2, 8);
    seq.first_position = 1;
    mint::add_steering(hooks, seq, 1.0);
  };
  const std::vector<mint::index> lengths{5, 4};
  {  // a residual site, [2 rows, 4 positions from position 1, 8]
    mint::hook_set<float> hooks(sites);
    attach(hooks, "blocks.1.hook_resid_mid");
    std::vector<float> buffer(2 * 4 * 8, 0.25f);
    const auto [news, mallocs] = allocations_of(hooks, resid,
                                                mint::tensor_view<float>(buffer.data(), {2, 4, 8}), lengths);
    CHECK(news == 0);
    CHECK(mallocs == 0);
  }
  {  // a head site [2, 4, heads 2, d_head 4] stored head-major: each position's features are strided
    mint::hook_set<float> hooks(sites);
    attach(hooks, "blocks.0.attn.hook_z");
    std::vector<float> buffer(2 * 2 * 4 * 4, 0.25f);
    const std::vector<mint::index> extents{2, 4, 2, 4}, strides{32, 4, 16, 1};
    const mint::tensor_view<float> view(buffer.data(), extents, strides);
    REQUIRE(!view.subview(0).subview(0).is_contiguous());
    const auto [news, mallocs] = allocations_of(hooks, z, view, lengths);
    CHECK(news == 0);
    CHECK(mallocs == 0);
  }
  // The counters count: a vector's allocation shows, and so does an Eigen matrix's.
  const long before = allocation_count.load();
  std::vector<int> one(3);
  CHECK(allocation_count.load() - before == 1);
  const long refused = eigen_refusals.load();
  Eigen::internal::set_is_malloc_allowed(false);
  mint::matrixf m(4, 4);
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(eigen_refusals.load() - refused >= 1);
  CHECK(one.size() + std::size_t(m.size()) == 19);
}
