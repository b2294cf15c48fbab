// libFuzzer harness for the .npy reader: any bytes either read (copied,
// converted and mapped) or give a mint::error; anything else is a bug.
#include <mint/io/npy.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = mint::mapped_file::from_bytes("fuzz.npy", {reinterpret_cast<const std::byte*>(data), size});
  try {
    const auto h = mint::read_npy_header(file);
    const auto a = mint::read_npy<float>(file, {.convert = true});
    volatile float sink = a.size() > 0 ? a.values()[std::size_t(a.size() - 1)] : 0.0f;
    (void)sink;
    mint::detail::visit_dtype(h.type, [&](auto x) {
      const auto m = mint::map_npy<decltype(x)>(file);
      if (m.size() > 0) (void)m.view();
    });
  } catch (const mint::error&) {
  }
  return 0;
}
