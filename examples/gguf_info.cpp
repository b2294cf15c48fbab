// Lists a GGUF file's metadata and tensors without reading the tensors (the
// file is memory-mapped; only the header's pages are touched), like
// gguf-py's gguf-dump. Usage: gguf_info MODEL.gguf [--all]
#include <mint/io/gguf.hpp>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gguf_info FILE.gguf [--all]\n");
    return 2;
  }
  const bool all = argc > 2 && std::string(argv[2]) == "--all";
  try {
    const mint::gguf_file file(argv[1]);
    std::cout << argv[1] << ": GGUF v" << file.version() << ", " << file.metadata().size() << " keys, "
              << file.tensors().size() << " tensors, data at byte " << file.data_offset() << " (alignment "
              << file.alignment() << ")\n";
    for (const auto& [key, value] : file.metadata()) {
      std::cout << "  " << key << " (" << mint::gguf_type_name(value.type()) << ") = ";
      mint::print_gguf_value(std::cout, value, all ? ~std::size_t(0) : 8);
      std::cout << '\n';
    }
    std::size_t shown = 0;
    for (const auto& t : file.tensors()) {
      if (!all && ++shown > 20) {
        std::cout << "  ... " << file.tensors().size() - 20 << " more tensors (--all lists them)\n";
        break;
      }
      std::cout << "  " << t.name << "  " << t.type_name() << "  [";
      for (std::size_t d = 0; d < t.dims.size(); ++d) std::cout << (d ? ", " : "") << t.dims[d];
      std::cout << "]  " << t.data_bytes << " bytes at " << t.data_offset << '\n';
    }
  } catch (const mint::error& e) {
    std::cerr << e.what() << '\n';
    return 1;
  }
  return 0;
}
