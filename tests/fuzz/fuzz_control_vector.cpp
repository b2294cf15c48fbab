// libFuzzer harness for the control-vector reader (llama.cpp's GGUF layout: the
// controlvector.* metadata, direction.<layer> tensors), from control-vector seeds so the
// fuzzer spends its time past the GGUF header.
#include <mint/io/control_vector.hpp>
#include <mint/io/gguf.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = mint::mapped_file::from_bytes("fuzz.gguf", {reinterpret_cast<const std::byte*>(data), size});
  try {
    const mint::gguf_file f(file);
    const auto v = mint::read_control_vector(f);
    (void)v.n_embd();
  } catch (const mint::error&) {
  }
  return 0;
}
