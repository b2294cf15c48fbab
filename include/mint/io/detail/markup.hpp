// Text for HTML or XML (SVG) element content and quoted attributes, for the files mint writes
// as pages and pictures.
#pragma once

#include <string>
#include <string_view>

namespace mint::detail {

/// `text` with & < > " ' replaced by their character references.
inline std::string markup_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace mint::detail
