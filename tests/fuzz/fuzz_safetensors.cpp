// libFuzzer harness for the safetensors reader: the header length, the JSON
// header and every offset check, then reads and maps of each tensor.
#include <mint/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = mint::mapped_file::from_bytes("fuzz.safetensors", {reinterpret_cast<const std::byte*>(data), size});
  try {
    const mint::safetensors_file f(file);
    for (const auto& name : f.names()) {
      const auto a = f.read<float>(name, {.convert = true});
      (void)a.size();
      try {
        mint::detail::visit_dtype(f.entry(name).type, [&](auto x) { (void)f.map<decltype(x)>(name).size(); });
      } catch (const mint::error&) {
      }
    }
  } catch (const mint::error&) {
  }
  return 0;
}
