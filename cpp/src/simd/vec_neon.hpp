// AArch64 Advanced SIMD (NEON) vector wrappers. Included only by isa_neon.cpp; Advanced
// SIMD is mandatory on AArch64, so no extra compiler flags are needed.
//
// Same interface and semantics as vec_avx2.hpp. Two ARM-specific points:
// - vfmaq_f32(c, a, b) is c + a*b (accumulator first): fma/fnma reorder the operands.
// - vmaxq/vminq propagate NaN, unlike x86 maxps/minps; max/min here are a compare and a
//   select instead, so that they return the second operand when either lane is NaN,
//   exactly as the x86 and scalar kernels do.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace xent {
namespace XENT_ISA_NS {

struct F32 {
  using T = float;
  using V = float32x4_t;
  using M = uint32x4_t;
  static constexpr int W = 4;
  // (load_tail / store_tail go through memory: kernels/smallc-inl.hpp)
  static constexpr bool kMaskedTail = false;
  static V load(const T* p) { return vld1q_f32(p); }
  static void store(T* p, V v) { vst1q_f32(p, v); }
  static V set1(T x) { return vdupq_n_f32(x); }
  static V zero() { return vdupq_n_f32(0.0f); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }   // a*b + c
  static V fnma(V a, V b, V c) { return vfmsq_f32(c, a, b); }  // c - a*b
  // max/min: if either lane is NaN the second operand is returned (x86 rule).
  static V max(V a, V b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static V min(V a, V b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static V abs(V a) { return vabsq_f32(a); }
  static M lt(V a, V b) { return vcltq_f32(a, b); }
  static M gt(V a, V b) { return vcgtq_f32(a, b); }
  static M ge(V a, V b) { return vcgeq_f32(a, b); }
  static M eq(V a, V b) { return vceqq_f32(a, b); }
  static V select(M m, V a, V b) { return vbslq_f32(m, a, b); }  // m ? a : b
  static V zero_if(M m, V a) {                                   // m ? 0 : a
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(a), m));
  }
  static bool all(M m) { return vminvq_u32(m) != 0; }  // every lane set
  static bool none(M m) { return vmaxvq_u32(m) == 0; }
  // Lane counters (see vec_avx2.hpp): the all-ones mask subtracted as an integer.
  static V count_if(M m, V acc) { return vreinterpretq_f32_u32(vsubq_u32(vreinterpretq_u32_f32(acc), m)); }
  static int64_t count_total(V acc) { return static_cast<int64_t>(vaddvq_u32(vreinterpretq_u32_f32(acc))); }
  // 2**n from a value whose low mantissa bits hold n + bias (the magic-bias trick).
  // r[k] lane i <-> r[i] lane k (a 4 x 4 block: pairs transposed, then halves combined)
  static void transpose(V (&r)[W]) {
    const float32x4x2_t a = vtrnq_f32(r[0], r[1]), b = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
  }
  static V pow2_from_biased(V vn) {
    return vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(vn), 23));
  }
  // exp's table step (see vec_avx2.hpp): a byte lookup in the table's 32 bytes, lane i
  // taking bytes 4j .. 4j + 3, j the low 3 bits of idx's bits.
  static uint32x4_t lookup8_bits(const void* tab, V idx) {
    const uint8_t* b = static_cast<const uint8_t*>(tab);
    const uint8x16x2_t t = {{vld1q_u8(b), vld1q_u8(b + 16)}};
    const uint32x4_t j = vandq_u32(vreinterpretq_u32_f32(idx), vdupq_n_u32(7));
    const uint32x4_t bytes = vmlaq_n_u32(vdupq_n_u32(0x03020100u), j, 0x04040404u);
    return vreinterpretq_u32_u8(vqtbl2q_u8(t, vreinterpretq_u8_u32(bytes)));
  }
  static V lookup8(const T* tab, V idx) { return vreinterpretq_f32_u32(lookup8_bits(tab, idx)); }
  static V pow2_frac8(V k, const uint32_t* tab) {
    const uint32x4_t kb = vshlq_n_u32(vreinterpretq_u32_f32(k), 20);
    return vreinterpretq_f32_u32(vaddq_u32(kb, lookup8_bits(tab, k)));
  }
  // x > 0 normal: its unbiased exponent (as a float) and its mantissa scaled into [1, 2).
  static V exponent(V x) {
    const uint32x4_t e = vshrq_n_u32(vreinterpretq_u32_f32(x), 23);
    return vsubq_f32(vcvtq_f32_u32(e), vdupq_n_f32(127.0f));
  }
  static V mantissa(V x) {
    const uint32x4_t m = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x007fffffu));
    return vreinterpretq_f32_u32(vorrq_u32(m, vdupq_n_u32(0x3f800000u)));
  }
  static T reduce_add(V v) { return vaddvq_f32(v); }  // fixed pairwise order
  // Sums of float lanes in double lanes: wide_add widens exactly, wide_total reduces once.
  struct Wide {
    float64x2_t lo, hi;
  };
  static Wide wide_zero() { return {vdupq_n_f64(0.0), vdupq_n_f64(0.0)}; }
  static Wide wide_add(Wide w, V v) {
    return {vaddq_f64(w.lo, vcvt_f64_f32(vget_low_f32(v))), vaddq_f64(w.hi, vcvt_high_f64_f32(v))};
  }
  static double wide_total(Wide w) { return vaddvq_f64(vaddq_f64(w.lo, w.hi)); }
  static T reduce_max(V v) { return vmaxvq_f32(v); }
  // Loads lanes [0, n) and fills the rest with `fill`; never touches memory past p[n-1].
  static V load_tail(const T* p, int64_t n, T fill) {
    T buf[W] = {fill, fill, fill, fill};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(T));
    return vld1q_f32(buf);
  }
  static void store_tail(T* p, V v, int64_t n) {
    T buf[W];
    vst1q_f32(buf, v);
    std::memcpy(p, buf, static_cast<size_t>(n) * sizeof(T));
  }
  // Half storage: float16 by FCVTL/FCVTN (exact widening; narrowing rounds to nearest even
  // under the default FPCR), bfloat16 by integer arithmetic (the top half of a float32).
  static V load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static void store_f16(uint16_t* p, V v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v))); }
  static V load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static void store_bf16(uint16_t* p, V v) {
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    uint32x4_t r = vaddq_u32(u, vaddq_u32(vdupq_n_u32(0x7fff), odd));
    // NaN: truncated, with the quiet bit set (no rounding into the exponent)
    const uint32x4_t num = vceqq_f32(v, v);
    r = vbslq_u32(num, r, vorrq_u32(u, vdupq_n_u32(0x00400000)));
    vst1_u16(p, vshrn_n_u32(r, 16));
  }
  static V load_f16_tail(const uint16_t* p, int64_t n) {
    uint16_t b[W] = {};
    std::memcpy(b, p, static_cast<size_t>(n) * 2);
    return load_f16(b);
  }
  static V load_bf16_tail(const uint16_t* p, int64_t n) {
    uint16_t b[W] = {};
    std::memcpy(b, p, static_cast<size_t>(n) * 2);
    return load_bf16(b);
  }
  static void store_f16_tail(uint16_t* p, V v, int64_t n) {
    uint16_t b[W];
    store_f16(b, v);
    std::memcpy(p, b, static_cast<size_t>(n) * 2);
  }
  static void store_bf16_tail(uint16_t* p, V v, int64_t n) {
    uint16_t b[W];
    store_bf16(b, v);
    std::memcpy(p, b, static_cast<size_t>(n) * 2);
  }
};

struct F64 {
  using T = double;
  using V = float64x2_t;
  using M = uint64x2_t;
  static constexpr int W = 2;
  static constexpr bool kMaskedTail = false;
  static V load(const T* p) { return vld1q_f64(p); }
  static V widen(const float* p) { return vcvt_f64_f32(vld1_f32(p)); }  // W floats, exactly
  // W floats rounded from v (+-inf beyond float's range, NaN kept)
  static void narrow(float* p, V v) { vst1_f32(p, vcvt_f32_f64(v)); }
  static void store(T* p, V v) { vst1q_f64(p, v); }
  static V set1(T x) { return vdupq_n_f64(x); }
  static V zero() { return vdupq_n_f64(0.0); }
  static V add(V a, V b) { return vaddq_f64(a, b); }
  static V sub(V a, V b) { return vsubq_f64(a, b); }
  static V mul(V a, V b) { return vmulq_f64(a, b); }
  static V div(V a, V b) { return vdivq_f64(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f64(c, a, b); }
  static V fnma(V a, V b, V c) { return vfmsq_f64(c, a, b); }
  static V max(V a, V b) { return vbslq_f64(vcgtq_f64(a, b), a, b); }
  static V min(V a, V b) { return vbslq_f64(vcltq_f64(a, b), a, b); }
  static V abs(V a) { return vabsq_f64(a); }
  static M lt(V a, V b) { return vcltq_f64(a, b); }
  static M gt(V a, V b) { return vcgtq_f64(a, b); }
  static M ge(V a, V b) { return vcgeq_f64(a, b); }
  static M eq(V a, V b) { return vceqq_f64(a, b); }
  static V select(M m, V a, V b) { return vbslq_f64(m, a, b); }
  static V zero_if(M m, V a) {
    return vreinterpretq_f64_u64(vbicq_u64(vreinterpretq_u64_f64(a), m));
  }
  static bool all(M m) { return vminvq_u32(vreinterpretq_u32_u64(m)) != 0; }
  static bool none(M m) { return vmaxvq_u32(vreinterpretq_u32_u64(m)) == 0; }
  static V count_if(M m, V acc) { return vreinterpretq_f64_u64(vsubq_u64(vreinterpretq_u64_f64(acc), m)); }
  static int64_t count_total(V acc) { return static_cast<int64_t>(vaddvq_u64(vreinterpretq_u64_f64(acc))); }
  static void transpose(V (&r)[W]) {  // (see F32) a 2 x 2 block
    const V a = vzip1q_f64(r[0], r[1]), b = vzip2q_f64(r[0], r[1]);
    r[0] = a;
    r[1] = b;
  }
  static V pow2_from_biased(V vn) {
    return vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(vn), 52));
  }
  static V exponent(V x) {
    const uint64x2_t e = vshrq_n_u64(vreinterpretq_u64_f64(x), 52);
    return vsubq_f64(vcvtq_f64_u64(e), vdupq_n_f64(1023.0));
  }
  static V mantissa(V x) {
    const uint64x2_t m = vandq_u64(vreinterpretq_u64_f64(x), vdupq_n_u64(0x000fffffffffffffull));
    return vreinterpretq_f64_u64(vorrq_u64(m, vdupq_n_u64(0x3ff0000000000000ull)));
  }
  static T reduce_add(V v) { return vaddvq_f64(v); }
  using Wide = V;  // (see F32)
  static Wide wide_zero() { return zero(); }
  static Wide wide_add(Wide w, V v) { return add(w, v); }
  static double wide_total(Wide w) { return reduce_add(w); }
  static T reduce_max(V v) { return vmaxvq_f64(v); }
  static V load_tail(const T* p, int64_t n, T fill) {
    T buf[W] = {fill, fill};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(T));
    return vld1q_f64(buf);
  }
  static void store_tail(T* p, V v, int64_t n) {
    T buf[W];
    vst1q_f64(buf, v);
    std::memcpy(p, buf, static_cast<size_t>(n) * sizeof(T));
  }
};

}  // namespace XENT_ISA_NS
}  // namespace xent
