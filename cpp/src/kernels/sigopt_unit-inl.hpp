// The body of isa_<name>_sigopt.cpp: the sigmoid loss's loops compiled for fixed option sets
// (run_sigmoid_opt_fixed, kernels/sigmoid_opt-inl.hpp), for float32 and float64, in the ISA's
// namespace, with and without a gradient. Included once per vector ISA after XENT_ISA_NS and
// its vector header.
#pragma once
#define XENT_SIGOPT_UNIT
#include "simd/math-inl.hpp"
#include "simd/half-inl.hpp"
#include "kernels/softmax-inl.hpp"
#include "kernels/sigmoid-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

#define XENT_SIGOPT_INSTANTIATE(D, G)                                                                       \
  template bool run_sigmoid_opt_fixed<D, G>(int, const D::T*, const D::T*, int64_t, D::T*, D::T*, double, \
                                            const SigmoidRunOpts<D::T>&, double*);
XENT_SIGOPT_INSTANTIATE(F32, true)
XENT_SIGOPT_INSTANTIATE(F32, false)
XENT_SIGOPT_INSTANTIATE(F64, true)
XENT_SIGOPT_INSTANTIATE(F64, false)
#undef XENT_SIGOPT_INSTANTIATE

}  // namespace XENT_ISA_NS
}  // namespace xent
