// AVX-512 vector wrappers (F, DQ, BW, VL: the x86-64-v4 set; Skylake-X, Ice Lake and later,
// AMD Zen 4 and later). Included only by isa_avx512*.cpp, compiled with those flags
// (dispatch.cpp requires all four of the CPU and the OS's ZMM state); nothing here may leak
// into code that runs before CPU detection.
//
// Same interface and semantics as vec_avx2.hpp, with twice its lanes (16 floats, 8 doubles)
// and the mask registers as M: select and zero_if are masked moves, tails masked loads and
// stores (which never touch the lanes they leave out).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace xent {
namespace XENT_ISA_NS {

namespace avx512_detail {
// A 4 x 4 transpose of 128-bit blocks: a[g] block l <-> a[l] block g (x: the block shuffle
// of the element type, _mm512_shuffle_f32x4 or _mm512_shuffle_f64x2).
template <class V, class X>
inline void transpose_blocks(V& a0, V& a1, V& a2, V& a3, X x) {
  const V p0 = x(a0, a1, 0x44), p1 = x(a0, a1, 0xEE);  // [a0.0 a0.1 a1.0 a1.1], [a0.2 a0.3 a1.2 a1.3]
  const V p2 = x(a2, a3, 0x44), p3 = x(a2, a3, 0xEE);
  a0 = x(p0, p2, 0x88), a1 = x(p0, p2, 0xDD);  // [a0.0 a1.0 a2.0 a3.0], [a0.1 a1.1 a2.1 a3.1]
  a2 = x(p1, p3, 0x88), a3 = x(p1, p3, 0xDD);
}
}  // namespace avx512_detail

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  // masked loads and stores cost about a vector move (kernels/smallc-inl.hpp)
  static constexpr bool kMaskedTail = true;
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a*b + c
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a*b
  // max/min: if either lane is NaN the second operand is returned (x86 rule).
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V abs(V a) { return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
  static V zero_if(M m, V a) { return _mm512_maskz_mov_ps(static_cast<M>(~m), a); }  // m ? 0 : a
  static bool all(M m) { return m == 0xFFFF; }
  static bool none(M m) { return m == 0; }
  // Lane counters (see vec_avx2.hpp): integers in acc's bits, 1 added where m is set.
  static V count_if(M m, V acc) {
    const __m512i a = _mm512_castps_si512(acc);
    return _mm512_castsi512_ps(_mm512_mask_sub_epi32(a, m, a, _mm512_set1_epi32(-1)));
  }
  static int64_t count_total(V acc) {
    const __m512i a = _mm512_castps_si512(acc);
    const __m512i lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(a));
    const __m512i hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(a, 1));
    return static_cast<int64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(lo, hi)));
  }
  // 2**n from a value whose low mantissa bits hold n + bias (the magic-bias trick).
  static V pow2_from_biased(V vn) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(vn), 23)); }
  // exp's table step (math-inl.hpp): the table of eight in both halves of a register, so
  // that the permute's fourth index bit picks the same entry.
  static V lookup8(const T* tab, V idx) {
    const __m512 t = _mm512_broadcast_f32x8(_mm256_loadu_ps(tab));
    return _mm512_permutexvar_ps(_mm512_castps_si512(idx), t);
  }
  static V pow2_frac8(V k, const uint32_t* tab) {
    const __m512i kb = _mm512_castps_si512(k);
    const __m512i t =
        _mm512_permutexvar_epi32(kb, _mm512_broadcast_i32x8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tab))));
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(kb, 20), t));
  }
  // x > 0 normal: its unbiased exponent (as a float) and its mantissa scaled into [1, 2).
  static V exponent(V x) {
    const __m512i e = _mm512_srli_epi32(_mm512_castps_si512(x), 23);
    return _mm512_sub_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(127.0f));
  }
  static V mantissa(V x) {
    const __m512i m = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x007fffff));
    return _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_set1_epi32(0x3f800000)));
  }
  // Horizontal sums and maxima in a fixed order: the 256-bit halves, then as vec_avx2.hpp.
  static __m256 fold_add(V v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static T reduce_add(V v) {
    const __m256 h = fold_add(v);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Sums of float lanes in double lanes: wide_add widens exactly, wide_total reduces once.
  struct Wide {
    __m512d lo, hi;
  };
  static Wide wide_zero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  static Wide wide_add(Wide w, V v) {
    return {_mm512_add_pd(w.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v))),
            _mm512_add_pd(w.hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))))};
  }
  static double wide_total(Wide w) {
    const __m512d s = _mm512_add_pd(w.lo, w.hi);
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    return _mm_cvtsd_f64(t);
  }
  static T reduce_max(V v) {
    const __m256 h =
        _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // r[k] lane i <-> r[i] lane k (a 16 x 16 block: 4 x 4 transposes within 128-bit blocks,
  // then the blocks of each four rows transposed)
  static void transpose(V (&r)[W]) {
    V t[16];
    for (int k = 0; k < 16; k += 2) {
      t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 16; k += 4) {  // block l of r[k + j]: column 4l + j of rows k..k+3
      r[k] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    const auto x = [](V a, V b, int imm) {
      switch (imm) {  // (the shuffle's selector must be a constant)
        case 0x44: return _mm512_shuffle_f32x4(a, b, 0x44);
        case 0xEE: return _mm512_shuffle_f32x4(a, b, 0xEE);
        case 0x88: return _mm512_shuffle_f32x4(a, b, 0x88);
        default: return _mm512_shuffle_f32x4(a, b, 0xDD);
      }
    };
    V o[16];
    for (int j = 0; j < 4; ++j) {  // blocks g of r[4g + j] -> column 4l + j
      V a0 = r[j], a1 = r[4 + j], a2 = r[8 + j], a3 = r[12 + j];
      avx512_detail::transpose_blocks(a0, a1, a2, a3, x);
      o[j] = a0, o[4 + j] = a1, o[8 + j] = a2, o[12 + j] = a3;
    }
    for (int k = 0; k < 16; ++k) r[k] = o[k];
  }
  static __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }  // lanes [0, n), 0 < n < W
  // Loads lanes [0, n) and fills the rest with `fill`; never touches memory past p[n-1].
  static V load_tail(const T* p, int64_t n, T fill) { return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p); }
  static void store_tail(T* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  // Half storage: float16 by the AVX-512 conversions (exact widening; narrowing rounds to
  // nearest even), bfloat16 by integer arithmetic (its bits are the top half of a float32's).
  static V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static void store_f16(uint16_t* p, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static V bf16_widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static V load_bf16(const uint16_t* p) { return bf16_widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m256i bf16_narrow(V v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    // NaN: truncated, with the quiet bit set (no rounding into the exponent)
    r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), u, _mm512_set1_epi32(0x00400000));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
  }
  static void store_bf16(uint16_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bf16_narrow(v)); }
  static V load_f16_tail(const uint16_t* p, int64_t n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }
  static V load_bf16_tail(const uint16_t* p, int64_t n) { return bf16_widen(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }
  static void store_f16_tail(uint16_t* p, V v, int64_t n) {
    _mm256_mask_storeu_epi16(p, tail_mask(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store_bf16_tail(uint16_t* p, V v, int64_t n) { _mm256_mask_storeu_epi16(p, tail_mask(n), bf16_narrow(v)); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int W = 8;
  static constexpr bool kMaskedTail = true;
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V widen(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }  // W floats, exactly
  // W floats rounded from v (+-inf beyond float's range, NaN kept)
  static void narrow(float* p, V v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V min(V a, V b) { return _mm512_min_pd(a, b); }
  static V abs(V a) {
    return _mm512_castsi512_pd(_mm512_and_epi64(_mm512_castpd_si512(a), _mm512_set1_epi64(0x7fffffffffffffffLL)));
  }
  static M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_pd(m, b, a); }
  static V zero_if(M m, V a) { return _mm512_maskz_mov_pd(static_cast<M>(~m), a); }
  static bool all(M m) { return m == 0xFF; }
  static bool none(M m) { return m == 0; }
  static V count_if(M m, V acc) {
    const __m512i a = _mm512_castpd_si512(acc);
    return _mm512_castsi512_pd(_mm512_mask_sub_epi64(a, m, a, _mm512_set1_epi64(-1)));
  }
  static int64_t count_total(V acc) { return static_cast<int64_t>(_mm512_reduce_add_epi64(_mm512_castpd_si512(acc))); }
  static V pow2_from_biased(V vn) { return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(vn), 52)); }
  // the unbiased exponent as a double (exact: an integer below 2**11)
  static V exponent(V x) {
    const __m512i e = _mm512_srli_epi64(_mm512_castpd_si512(x), 52);
    return _mm512_sub_pd(_mm512_cvtepi64_pd(e), _mm512_set1_pd(1023.0));
  }
  static V mantissa(V x) {
    const __m512i m = _mm512_and_si512(_mm512_castpd_si512(x), _mm512_set1_epi64(0x000fffffffffffffLL));
    return _mm512_castsi512_pd(_mm512_or_si512(m, _mm512_set1_epi64(0x3ff0000000000000LL)));
  }
  static T reduce_add(V v) {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  using Wide = V;  // (see F32)
  static Wide wide_zero() { return zero(); }
  static Wide wide_add(Wide w, V v) { return add(w, v); }
  static double wide_total(Wide w) { return reduce_add(w); }
  static T reduce_max(V v) {
    const __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  // (see F32) an 8 x 8 block: 2 x 2 transposes within 128-bit blocks, then the blocks
  static void transpose(V (&r)[W]) {
    V t[8];
    for (int k = 0; k < 8; k += 2) {  // block l of t[k + j]: column 2l + j of rows k, k+1
      t[k] = _mm512_unpacklo_pd(r[k], r[k + 1]);
      t[k + 1] = _mm512_unpackhi_pd(r[k], r[k + 1]);
    }
    const auto x = [](V a, V b, int imm) {
      switch (imm) {
        case 0x44: return _mm512_shuffle_f64x2(a, b, 0x44);
        case 0xEE: return _mm512_shuffle_f64x2(a, b, 0xEE);
        case 0x88: return _mm512_shuffle_f64x2(a, b, 0x88);
        default: return _mm512_shuffle_f64x2(a, b, 0xDD);
      }
    };
    for (int j = 0; j < 2; ++j) {  // blocks g of t[2g + j] -> column 2l + j
      V a0 = t[j], a1 = t[2 + j], a2 = t[4 + j], a3 = t[6 + j];
      avx512_detail::transpose_blocks(a0, a1, a2, a3, x);
      r[j] = a0, r[2 + j] = a1, r[4 + j] = a2, r[6 + j] = a3;
    }
  }
  static __mmask8 tail_mask(int64_t n) { return static_cast<__mmask8>((1u << n) - 1u); }
  static V load_tail(const T* p, int64_t n, T fill) { return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), tail_mask(n), p); }
  static void store_tail(T* p, V v, int64_t n) { _mm512_mask_storeu_pd(p, tail_mask(n), v); }
};

}  // namespace XENT_ISA_NS
}  // namespace xent
