// Portable one-lane "vectors": the scalar ISA runs the same generic kernels with W = 1.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "simd/half-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

template <class Tp, class Bits, int MantBits>
struct ScalarLane {
  using T = Tp;
  using V = Tp;
  using M = bool;
  static constexpr int W = 1;
  static constexpr bool kMaskedTail = false;
  static V load(const T* p) { return *p; }
  static V widen(const float* p) { return static_cast<V>(*p); }  // (F64: exact)
  // v rounded to float as the hardware rounds (+-inf beyond float's range, NaN kept), without
  // the out-of-range cast: below FLT_MAX + 2^103 (half its ulp; the tie goes to even, inf)
  static void narrow(float* p, V v) {
    const double x = static_cast<double>(v);
    const double lim = static_cast<double>(std::numeric_limits<float>::max()) + std::ldexp(1.0, 103);
    const float inf = std::numeric_limits<float>::infinity();
    *p = std::isnan(x) || std::fabs(x) < lim ? static_cast<float>(x) : x > 0 ? inf : -inf;
  }
  static void store(T* p, V v) { *p = v; }
  static void transpose(V (&)[W]) {}  // (a 1 x 1 block)
  static V set1(T x) { return x; }
  static V zero() { return T(0); }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  // Fused where the hardware fuses: std::fma is exact (a software fallback if needed),
  // which keeps the scalar path's rounding equal to the SIMD paths'.
  static V fma(V a, V b, V c) { return std::fma(a, b, c); }
  static V fnma(V a, V b, V c) { return std::fma(-a, b, c); }
  // Same NaN rule as x86 max/min: the second operand when either is NaN.
  static V max(V a, V b) { return a > b ? a : b; }
  static V min(V a, V b) { return a < b ? a : b; }
  static V abs(V a) { return std::fabs(a); }
  static M lt(V a, V b) { return a < b; }
  static M gt(V a, V b) { return a > b; }
  static M ge(V a, V b) { return a >= b; }
  static M eq(V a, V b) { return a == b; }
  static V select(M m, V a, V b) { return m ? a : b; }
  static V zero_if(M m, V a) { return m ? T(0) : a; }
  static bool all(M m) { return m; }
  static bool none(M m) { return !m; }
  // Lane counters (see vec_avx2.hpp); the one lane counts in the value itself.
  static V count_if(M m, V acc) { return m ? acc + T(1) : acc; }
  static int64_t count_total(V acc) { return static_cast<int64_t>(acc); }
  static V pow2_from_biased(V vn) {
    Bits b;
    std::memcpy(&b, &vn, sizeof b);
    b = static_cast<Bits>(b << MantBits);
    V r;
    std::memcpy(&r, &b, sizeof r);
    return r;
  }
  // exp's table step (see vec_avx2.hpp; used by float32 only): tab[j], j the low 3 bits of
  // idx's bits; pow2_frac8 adds k's bits << (MantBits - 3) to the integer entry tab[j].
  static V lookup8(const T* tab, V idx) {
    Bits b;
    std::memcpy(&b, &idx, sizeof b);
    return tab[b & 7];
  }
  static V pow2_frac8(V k, const uint32_t* tab) {
    Bits b;
    std::memcpy(&b, &k, sizeof b);
    b = static_cast<Bits>(static_cast<Bits>(b << (MantBits - 3)) + tab[b & 7]);
    V r;
    std::memcpy(&r, &b, sizeof r);
    return r;
  }
  // x > 0 normal: its unbiased exponent and its mantissa scaled into [1, 2).
  static V exponent(V x) {
    Bits b;
    std::memcpy(&b, &x, sizeof b);
    const Bits bias = (Bits(1) << (sizeof(Bits) * 8 - 2 - MantBits)) - 1;
    return static_cast<T>(static_cast<int64_t>(b >> MantBits)) - static_cast<T>(bias);
  }
  static V mantissa(V x) {
    Bits b;
    std::memcpy(&b, &x, sizeof b);
    const Bits one_bits = ((Bits(1) << (sizeof(Bits) * 8 - 2 - MantBits)) - 1) << MantBits;
    b = static_cast<Bits>((b & ((Bits(1) << MantBits) - 1)) | one_bits);
    V r;
    std::memcpy(&r, &b, sizeof r);
    return r;
  }
  static T reduce_add(V v) { return v; }
  // Sums of lanes in double (see vec_avx2.hpp).
  using Wide = double;
  static Wide wide_zero() { return 0.0; }
  static Wide wide_add(Wide w, V v) { return w + static_cast<double>(v); }
  static double wide_total(Wide w) { return w; }
  static T reduce_max(V v) { return v; }
  static V load_tail(const T* p, int64_t, T) { return *p; }
  static void store_tail(T* p, V v, int64_t) { *p = v; }
  // Half storage (float lanes only): the software conversions of half-inl.hpp.
  static V load_f16(const uint16_t* p) { return soft_f16_to_f32(*p); }
  static V load_f16_tail(const uint16_t* p, int64_t) { return soft_f16_to_f32(*p); }
  static void store_f16(uint16_t* p, V v) { *p = soft_f32_to_f16(v); }
  static void store_f16_tail(uint16_t* p, V v, int64_t) { *p = soft_f32_to_f16(v); }
  static V load_bf16(const uint16_t* p) { return soft_bf16_to_f32(*p); }
  static V load_bf16_tail(const uint16_t* p, int64_t) { return soft_bf16_to_f32(*p); }
  static void store_bf16(uint16_t* p, V v) { *p = soft_f32_to_bf16(v); }
  static void store_bf16_tail(uint16_t* p, V v, int64_t) { *p = soft_f32_to_bf16(v); }
};

using F32 = ScalarLane<float, uint32_t, 23>;
using F64 = ScalarLane<double, uint64_t, 52>;

}  // namespace XENT_ISA_NS
}  // namespace xent
