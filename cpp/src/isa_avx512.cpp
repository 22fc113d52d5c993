// The avx512 kernel set (AVX-512 F, DQ, BW and VL): the generic kernels compiled in their own
// namespace with this file's flags only (see CMakeLists.txt).
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values that -W(maybe-)uninitialized
// takes for uninitialized (GCC bug 105593, fixed in 13); the kernels' own warnings are seen
// in the other kernel sets' files, which compile the same code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define XENT_ISA_NS avx512
#include "simd/vec_avx512.hpp"
#include "simd/math-inl.hpp"
#include "simd/half-inl.hpp"
#include "kernels/softmax-inl.hpp"
#include "kernels/xent-inl.hpp"
#include "kernels/xent_more-inl.hpp"
#include "kernels/sigmoid-inl.hpp"
#include "kernels/smallc-inl.hpp"
#include "kernels/inner-inl.hpp"
#include "kernels/hessian-inl.hpp"
#include "kernels/proba-inl.hpp"  // (before the units: the binary loss runs on the sigmoid units)
#include "kernels/units-inl.hpp"
#include "kernels/proba_units-inl.hpp"

namespace xent {
const Isa* isa_avx512() {
  static const Isa isa = {"avx512", avx512::make_table<avx512::F32>(), avx512::make_table<avx512::F64>()};
  return &isa;
}
}  // namespace xent
