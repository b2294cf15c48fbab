// libFuzzer harness for the GGUF reader (header, metadata of every type, tensor
// infos), the plain tensors' data, and the control-vector reader on top.
#include <mint/io/control_vector.hpp>
#include <mint/io/gguf.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = mint::mapped_file::from_bytes("fuzz.gguf", {reinterpret_cast<const std::byte*>(data), size});
  try {
    const mint::gguf_file f(file);
    std::ostringstream out;
    for (const auto& [key, value] : f.metadata()) mint::print_gguf_value(out, value);
    for (const auto& t : f.tensors()) {
      (void)f.tensor_bytes(t.name).size();
      try {
        (void)f.read<float>(t.name, {.convert = true}).size();
      } catch (const mint::error&) {
      }
    }
    (void)mint::read_control_vector(f).n_embd();
  } catch (const mint::error&) {
  }
  return 0;
}
