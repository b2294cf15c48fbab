// libFuzzer harness for the .npz reader: the zip directory, zip64 records,
// inflation and the members' .npy headers.
#include <mint/io/npz.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = mint::mapped_file::from_bytes("fuzz.npz", {reinterpret_cast<const std::byte*>(data), size});
  try {
    const mint::npz_file z(file);
    for (const auto& name : z.names()) {
      try {
        const auto h = z.header(name);
        const auto a = z.read<double>(name, {.convert = true});
        (void)a.size();
        mint::detail::visit_dtype(h.type, [&](auto x) { (void)z.map<decltype(x)>(name).size(); });
      } catch (const mint::error&) {
      }
    }
  } catch (const mint::error&) {
  }
  return 0;
}
