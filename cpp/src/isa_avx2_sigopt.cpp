// The avx2 loops of the sigmoid loss with options compiled per option set, in a translation
// unit of their own (kernels/sigmoid_opt-inl.hpp says why), with isa_avx2.cpp's flags only
// (see CMakeLists.txt).
#define XENT_ISA_NS avx2
#include "simd/vec_avx2.hpp"
#include "kernels/sigopt_unit-inl.hpp"
