// Separate compilation. mint is header-only: a translation unit that calls an algorithm compiles
// it, for its scalar type, in full. A program whose units call mint's algorithms can compile them
// once instead: define MINT_SEPARATE_COMPILATION in every unit (-DMINT_SEPARATE_COMPILATION) and
// compile <mint/src.hpp> in one .cpp file of the program. Units then compile only the thin layer
// that turns their tensors into mint views, and link mint's float and double cores.
//
// Every public algorithm is that thin layer over a core: a class template whose arguments form a
// closed set (an options type, float or double) and whose static functions do the work. A header
// lists its cores once, in a macro named after its path (similarity/linear_cka.hpp lists them in
// MINT_CORES_SIMILARITY_LINEAR_CKA(CORE)), and expands the list with MINT_CORE: nothing in a
// header-only build, an explicit instantiation declaration (extern template) under
// MINT_SEPARATE_COMPILATION. mint/src/*.hpp expand the same lists with MINT_INSTANTIATE. A core's
// functions are defined outside their class and not inline: an extern template does not stop a
// compiler from instantiating an inline function where it is called.
//
// Code with no scalar type to be generic over (file formats, JSON, the toy models' files) is a
// core over a key that is always `char` (json_core<char>), and its public functions and classes
// are templates over that key too (`template <class C = char> json parse_json(...)`, and
// `using gguf_file = detail::basic_gguf_file<char>`): a compiler compiles a plain inline
// function's body, and every template it uses, in every unit that includes its header; a
// template's body only in the units that use it.
#pragma once

#if defined(MINT_SEPARATE_COMPILATION)
#define MINT_CORE(...) extern template __VA_ARGS__;
#else
#define MINT_CORE(...)
#endif

/// The explicit instantiation of a core, for mint/src/*.hpp.
#define MINT_INSTANTIATE(...) template __VA_ARGS__;

/// A core over one scalar type, for float and double.
#define MINT_CORE_FD(CORE, ...) \
  CORE(struct __VA_ARGS__<float>) \
  CORE(struct __VA_ARGS__<double>)

/// A core over two scalar types, for every pair of float and double.
#define MINT_CORE_FD2(CORE, ...)         \
  CORE(struct __VA_ARGS__<float, float>)   \
  CORE(struct __VA_ARGS__<float, double>)  \
  CORE(struct __VA_ARGS__<double, float>)  \
  CORE(struct __VA_ARGS__<double, double>)

/// Before a function that is not a template but whose body instantiates templates (Eigen
/// expressions, nlohmann-json): makes it a template with nothing to deduce, so only the units
/// that call it compile its body, where as an inline function it costs every unit that includes
/// its header. Calls are unchanged.
#define MINT_LAZY template <class = void>
