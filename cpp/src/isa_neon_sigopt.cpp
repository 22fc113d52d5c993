// The neon loops of the sigmoid loss with options compiled per option set, in a translation
// unit of their own (kernels/sigmoid_opt-inl.hpp says why), with isa_neon.cpp's flags only
// (see CMakeLists.txt).
#define XENT_ISA_NS neon
#include "simd/vec_neon.hpp"
#include "kernels/sigopt_unit-inl.hpp"
