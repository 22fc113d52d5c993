// The avx512 loops of the sigmoid loss with options compiled per option set, in a translation
// unit of their own (kernels/sigmoid_opt-inl.hpp says why), with isa_avx512.cpp's flags only
// (see CMakeLists.txt).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values that -W(maybe-)uninitialized
// takes for uninitialized (GCC bug 105593, fixed in 13); the kernels' own warnings are seen
// in the other kernel sets' files, which compile the same code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define XENT_ISA_NS avx512
#include "simd/vec_avx512.hpp"
#include "kernels/sigopt_unit-inl.hpp"
