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
//
// An extern template stops a unit from instantiating a core's functions, not from parsing them:
// a compiler still checks every non-dependent expression in a core's body where it is defined,
// and instantiates the class templates those name (Eigen expressions over double, nlohmann-json,
// std::variant). So under MINT_SEPARATE_COMPILATION a header hides its cores' out-of-class
// function definitions, and the detail helpers only those use, inside #if MINT_CORE_BODIES from
// every unit but those that compile the cores (mint/src/*.hpp and the build's generated units
// define MINT_COMPILING_CORES before any include). Such a unit must include mint/src.hpp (or the
// mint/src/*.hpp it compiles) before any other mint header; each part stops with an #error
// otherwise. Everything a user's unit calls or instantiates itself (the thin layer, templates
// that are not cores, static data and in-class members of cores) stays visible, and a
// header-only build sees every body (MINT_CORE_BODIES is 1). The other units compile faster:
// they parse declarations where they parsed whole algorithms.
#pragma once

/// Whether this unit sees the cores' function bodies (see above): 1 header-only and in the units
/// that compile the cores, 0 in the other units of a separately compiled program.
#if !defined(MINT_SEPARATE_COMPILATION) || defined(MINT_COMPILING_CORES)
#define MINT_CORE_BODIES 1
#else
#define MINT_CORE_BODIES 0
#endif

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
