// Sites: the named places in a model where an activation can be read, written,
// added to, or given a gradient. A runtime lists its sites in a site_table;
// names follow TransformerLens where it has one ("blocks.3.attn.hook_z").
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor_view.hpp"

namespace mint {

/// What a site holds, whatever the runtime calls it.
enum class site_role : std::uint8_t {
  embed, pos_embed, resid_pre, resid_mid, resid_post,
  q_input, k_input, v_input, ln_scale, ln_normalized,
  attn_q, attn_k, attn_v, attn_pattern, attn_z, attn_result, attn_out,
  mlp_in, mlp_pre, mlp_post, mlp_out, logits, other
};

/// Logical axes of a site's activation, in the order of its view's axes.
enum class axis : std::uint8_t { batch, pos, key_pos, head, kv_head, qkv_head, d_model, d_head, d_mlp, vocab };

/// What may be done at a site (a bit set).
enum class access : std::uint8_t { none = 0, read = 1, write = 2, add = 4, gradient = 8 };

constexpr access operator|(access a, access b) noexcept { return access(std::uint8_t(a) | std::uint8_t(b)); }
constexpr access operator&(access a, access b) noexcept { return access(std::uint8_t(a) & std::uint8_t(b)); }
/// True when every capability in `needed` is in `offered`.
constexpr bool allows(access offered, access needed) noexcept { return (offered & needed) == needed; }

/// Read, overwrite, add and differentiate: what the toy transformer offers everywhere.
inline constexpr access full_access = access::read | access::write | access::add | access::gradient;

/// "read|write": how messages name capabilities.
inline std::string to_string(access a) {
  std::string out;
  const std::pair<access, const char*> names[] = {
      {access::read, "read"}, {access::write, "write"}, {access::add, "add"}, {access::gradient, "gradient"}};
  for (const auto& [bit, name] : names)
    if ((a & bit) != access::none) {
      if (!out.empty()) out += '|';
      out += name;
    }
  return out.empty() ? "none" : out;
}

/// Index of a site in its runtime's site_table.
using site_id = std::int32_t;

/// Everything mint knows about a site before a run.
struct site_info {
  std::string name;                    ///< e.g. "blocks.3.attn.hook_z"
  int layer = -1;                      ///< block index, -1 outside the blocks
  site_role role = site_role::other;
  int heads = 0;                       ///< query heads at this site's layer (0 outside attention)
  int kv_heads = 0;                    ///< key/value heads (fewer than heads under grouped-query attention)
  std::vector<axis> axes;              ///< logical axes, e.g. {batch, pos, head, d_head}
  std::vector<index> sizes;            ///< extent per axis; batch, pos and key_pos are set per run (0 here)
  access capabilities = full_access;

  /// The extents of this site's activation for a run of `batch` rows of `positions` tokens.
  std::vector<index> extents(index batch, index positions) const {
    std::vector<index> out(axes.size());
    for (std::size_t a = 0; a < axes.size(); ++a)
      out[a] = axes[a] == axis::batch ? batch : (axes[a] == axis::pos || axes[a] == axis::key_pos) ? positions : sizes[a];
    return out;
  }

  /// Position of a logical axis in the view, or -1.
  int axis_of(axis which) const {
    const auto it = std::find(axes.begin(), axes.end(), which);
    return it == axes.end() ? -1 : int(it - axes.begin());
  }
};

namespace detail {

/// Edit distance, for suggesting the names nearest a misspelt one.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace detail

/// The sites of one runtime, in the order its forward pass reaches them.
class site_table {
public:
  /// Adds a site; names must be unique.
  site_id add(site_info info) {
    if (info.sizes.size() != info.axes.size())
      throw argument_error("mint::site_table::add", "info.sizes",
                           detail::str("has ", info.sizes.size(), " entries for site '", info.name, "'"),
                           detail::str("needs one per axis (", info.axes.size(), ")"));
    if (by_name_.count(info.name))
      throw argument_error("mint::site_table::add", "info.name", "'" + info.name + "' is already a site",
                           "needs a unique name");
    const auto id = site_id(sites_.size());
    by_name_.emplace(info.name, id);
    sites_.push_back(std::move(info));
    return id;
  }

  /// The site of that name, if there is one.
  std::optional<site_id> find(std::string_view name) const {
    const auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? std::nullopt : std::optional<site_id>(it->second);
  }

  /// The site of that name; an argument_error naming the nearest valid names otherwise.
  site_id at(std::string_view name, const char* function = "mint::site_table::at") const {
    if (const auto id = find(name)) return *id;
    throw argument_error(function, "site", "'" + std::string(name) + "' is not a site of this runtime",
                         "needs one of its sites; nearest: " + nearest(name, 3));
  }

  /// The site of that id; an argument_error for an id outside the table.
  const site_info& operator[](site_id id) const {
    if (id < 0 || std::size_t(id) >= sites_.size())
      throw argument_error("mint::site_table", "site id", detail::str("is ", id),
                           detail::str("needs an id in [0, ", sites_.size(), ")"));
    return sites_[std::size_t(id)];
  }
  std::size_t size() const noexcept { return sites_.size(); }
  auto begin() const noexcept { return sites_.begin(); }
  auto end() const noexcept { return sites_.end(); }

  /// The `count` names closest to `name` by edit distance, quoted and comma-separated.
  std::string nearest(std::string_view name, std::size_t count) const {
    std::vector<std::pair<std::size_t, const std::string*>> scored;
    for (const auto& s : sites_) scored.emplace_back(detail::edit_distance(name, s.name), &s.name);
    std::sort(scored.begin(), scored.end(),
              [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : *a.second < *b.second; });
    std::string out;
    for (std::size_t i = 0; i < std::min(count, scored.size()); ++i) {
      out += i ? ", '" : "'";
      out += *scored[i].second;
      out += '\'';
    }
    return out;
  }

private:
  std::vector<site_info> sites_;
  std::unordered_map<std::string, site_id> by_name_;
};

/// `given`, or when it is empty the residual stream at each block boundary: the first block's
/// resid_pre and every block's resid_post, in table order (where the logit lens, the tuned lens
/// and layer probes read). An argument_error naming `function` and options.sites when none is found.
inline std::vector<std::string> block_boundary_sites(const site_table& sites, const std::vector<std::string>& given,
                                                     const char* function) {
  if (!given.empty()) return given;
  std::vector<std::string> names;
  for (const auto& info : sites)
    if ((info.role == site_role::resid_pre && info.layer == 0) || info.role == site_role::resid_post) names.push_back(info.name);
  if (names.empty())
    throw argument_error(function, "options.sites", "is empty and the runtime has no resid_pre or resid_post site",
                         "needs residual site names");
  return names;
}

}  // namespace mint
