// Which run a patching method patches, shared by activation and path patching.
#pragma once

namespace mint {

/// Which run is patched: the corrupt one with clean activations (denoising: which components
/// suffice to restore the behaviour) or the clean one with corrupt activations (noising: which
/// are necessary).
enum class patch_direction { denoising, noising };

}  // namespace mint
