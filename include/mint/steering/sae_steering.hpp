// Steering through an SAE's features: at a site, encode the activation with the SAE, change
// chosen latents (set, scale or add), and add the change's decoding back:
//   x' = x + decode(z') - decode(z) = decode(z') + (x - decode(z)),
// the edited reconstruction plus the SAE's reconstruction error, so nothing the SAE does not
// capture moves. Only the edited latents' decoder rows enter the change, and a change of zero
// leaves x untouched bit for bit. Cost per call: one encode of the steered rows (rows x d x
// d_sae) and O(rows x edits x d).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mint/core/eigen.hpp"
#include "mint/core/error.hpp"
#include "mint/dictionary/sae.hpp"
#include "mint/model/hooks.hpp"
#include "mint/steering/application.hpp"

namespace mint {

/// What an SAE steering edit does to its latent's activation z.
enum class latent_edit_kind : std::uint8_t {
  set,    ///< z' = value (clamping; 0 turns the feature off)
  scale,  ///< z' = value x z
  add     ///< z' = z + value
};

/// One latent's edit, in the SAE's normalized units (those of its codes).
struct latent_edit {
  index latent = 0;
  latent_edit_kind kind = latent_edit_kind::set;
  double value = 0;
};

/// Attaches the SAE edit at `site` ([batch, pos, d_in] or any site of d_in features a position)
/// at the positions `at` chooses. The SAE's scalar type is the runtime's. Needs read and write.
/// The hook refers to `sae`, which must outlive the hook set (a temporary is refused), and keeps
/// buffers between calls, so one hook set serves one forward at a time.
template <class T>
void add_sae_steering(hook_set<T>& hooks, const std::string& site, const dictionary::basic_sae<T>& sae,
                      std::vector<latent_edit> edits, const position_policy& at = {}) {
  const char* fn = "mint::add_sae_steering";
  if (edits.empty()) throw argument_error(fn, "edits", "are empty", "needs at least one latent edit");
  for (std::size_t i = 0; i < edits.size(); ++i) {
    const auto& e = edits[i];
    if (e.latent < 0 || e.latent >= sae.d_sae())
      throw argument_error(fn, "edits", detail::str("edit latent ", e.latent), detail::str("needs latents in [0, ", sae.d_sae(), ")"));
    if (!std::isfinite(e.value)) throw argument_error(fn, "edits", detail::str("hold value ", e.value), "needs finite values");
    for (std::size_t j = 0; j < i; ++j)
      if (edits[j].latent == e.latent)
        throw argument_error(fn, "edits", detail::str("edit latent ", e.latent, " twice"), "needs one edit per latent");
  }
  const site_id id = detail::steering_site(hooks, site, sae.d_in(), fn);
  struct state {
    const dictionary::basic_sae<T>* sae;
    std::vector<latent_edit> edits;
    detail::position_test test;
    std::vector<std::pair<index, index>> rows;  // (row, view index) steered in this call
    matrix<T> x, xn, z, change;
    dictionary::row_scaling<T> scaling;
  };
  auto st = std::make_shared<state>(state{&sae, std::move(edits), detail::position_test(at, fn), {}, {}, {}, {}, {}, {}});
  hooks.add(
      id,
      [st](hook_call<T>& c) {
        const index d = st->sae->d_in();
        st->test.check_rows(c);
        st->rows.clear();
        for (index b = 0; b < c.activation.extent(0); ++b)
          for (index i = 0; i < c.activation.extent(1); ++i)
            if (st->test(c, b, i)) st->rows.emplace_back(b, i);
        if (st->rows.empty()) return;
        const index n = index(st->rows.size());
        st->x.resize(n, d);
        for (index r = 0; r < n; ++r)
          detail::with_features(c.activation, st->rows[std::size_t(r)].first, st->rows[std::size_t(r)].second,
                                [&](auto& v, index o) { st->x.row(r).segment(o, v.size()) = v.transpose(); });
        st->sae->normalize(st->x, st->xn, st->scaling);
        st->sae->encode_normalized(st->xn, st->z);
        // The change of the normalized reconstruction: only edited latents' decoder rows.
        st->change.setZero(n, d);
        const auto W_dec = st->sae->W_dec();
        bool moved = false;
        for (index r = 0; r < n; ++r)
          for (const auto& e : st->edits) {
            const double z = double(st->z(r, e.latent));
            const double edited = e.kind == latent_edit_kind::set ? e.value : e.kind == latent_edit_kind::scale ? e.value * z : z + e.value;
            const double delta = edited - z;
            if (delta == 0) continue;
            st->change.row(r) += T(delta) * W_dec.row(e.latent);
            moved = true;
          }
        if (!moved) return;
        // The normalization undone on the change: its linear part (a layer-norm SAE's shift
        // cancels in decode(z') - decode(z), and adding and removing it would cost digits).
        st->sae->denormalize_difference(st->change, st->scaling);
        for (index r = 0; r < n; ++r)
          detail::with_features(c.activation, st->rows[std::size_t(r)].first, st->rows[std::size_t(r)].second,
                                [&](auto& v, index o) { v += st->change.row(r).segment(o, v.size()).transpose(); });
      },
      {access::read | access::write, {}});
}

/// The SAE must outlive the hooks: a temporary is refused.
template <class T>
void add_sae_steering(hook_set<T>&, const std::string&, const dictionary::basic_sae<T>&&, std::vector<latent_edit>,
                      const position_policy& = {}) = delete;

}  // namespace mint
