// The scalar kernel set: the generic kernels compiled in their own namespace with this
// file's flags only (see CMakeLists.txt).
#define XENT_ISA_NS scalar
#include "simd/vec_scalar.hpp"
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
const Isa* isa_scalar() {
  static const Isa isa = {"scalar", scalar::make_table<scalar::F32>(), scalar::make_table<scalar::F64>()};
  return &isa;
}
}  // namespace xent
