// AVX2 + FMA vector wrappers. Included only by isa_avx2.cpp, which is compiled with
// -mavx2 -mfma -mf16c (dispatch.cpp requires all three of the CPU); nothing here may leak into code that runs before CPU detection.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace xent {
namespace XENT_ISA_NS {

struct F32 {
  using T = float;
  using V = __m256;
  using M = __m256;
  static constexpr int W = 8;
  // masked loads / stores cost more than element moves (kernels/smallc-inl.hpp)
  static constexpr bool kMaskedTail = false;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a*b + c
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a*b
  // max/min: if either lane is NaN the second operand is returned (x86 rule).
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b
  static V zero_if(M m, V a) { return _mm256_andnot_ps(m, a); }        // m ? 0 : a
  static bool all(M m) { return _mm256_movemask_ps(m) == 0xFF; }
  static bool none(M m) { return _mm256_movemask_ps(m) == 0; }
  // Lane counters: acc holds integers in its bits (start from zero()); count_if adds 1 to
  // the lanes where m is set (an integer subtract of the all-ones mask); count_total sums.
  static V count_if(M m, V acc) {
    return _mm256_castsi256_ps(_mm256_sub_epi32(_mm256_castps_si256(acc), _mm256_castps_si256(m)));
  }
  static int64_t count_total(V acc) {
    return static_cast<int64_t>(reduce_add(_mm256_cvtepi32_ps(_mm256_castps_si256(acc))));
  }
  // 2**n from a value whose low mantissa bits hold n + bias (the magic-bias trick).
  static V pow2_from_biased(V vn) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(vn), 23));
  }
  // exp's table step (math-inl.hpp): lookup8 gives each lane tab[j], j the low 3 bits of
  // idx's bits (one permute); pow2_frac8 adds k's bits << 20 to the integer entry tab[j].
  static V lookup8(const T* tab, V idx) {
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(tab), _mm256_castps_si256(idx));
  }
  static V pow2_frac8(V k, const uint32_t* tab) {
    const __m256i kb = _mm256_castps_si256(k);
    const __m256i t = _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tab)), kb);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(kb, 20), t));
  }
  // x > 0 normal: its unbiased exponent (as a float) and its mantissa scaled into [1, 2).
  static V exponent(V x) {
    const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    return _mm256_sub_ps(_mm256_cvtepi32_ps(e), _mm256_set1_ps(127.0f));
  }
  static V mantissa(V x) {
    const __m256i m = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x007fffff));
    return _mm256_castsi256_ps(_mm256_or_si256(m, _mm256_set1_epi32(0x3f800000)));
  }
  static T reduce_add(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Sums of float lanes in double lanes: wide_add widens exactly, wide_total reduces once.
  struct Wide {
    __m256d lo, hi;
  };
  static Wide wide_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static Wide wide_add(Wide w, V v) {
    return {_mm256_add_pd(w.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v))),
            _mm256_add_pd(w.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)))};
  }
  static double wide_total(Wide w) {
    const __m256d s = _mm256_add_pd(w.lo, w.hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    t = _mm_add_sd(t, _mm_unpackhi_pd(t, t));
    return _mm_cvtsd_f64(t);
  }
  static T reduce_max(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // r[k] lane i <-> r[i] lane k (an 8 x 8 block transposed in registers: unpacks within
  // 128-bit halves, then the halves exchanged)
  static void transpose(V (&r)[W]) {
    __m256 t[8], s[8];
    for (int k = 0; k < 8; k += 4) {
      t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
      t[k + 2] = _mm256_unpacklo_ps(r[k + 2], r[k + 3]);
      t[k + 3] = _mm256_unpackhi_ps(r[k + 2], r[k + 3]);
      s[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
      s[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
      s[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
      s[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; ++k) {
      r[k] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x20);
      r[k + 4] = _mm256_permute2f128_ps(s[k], s[k + 4], 0x31);
    }
  }
  static __m256i tail_mask(int64_t n) {  // lanes [0, n) set, 0 < n < W
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
  }
  // Loads lanes [0, n) and fills the rest with `fill`; never touches memory past p[n-1].
  static V load_tail(const T* p, int64_t n, T fill) {
    const __m256i m = tail_mask(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void store_tail(T* p, V v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
  // Half storage: float16 through F16C (exact widening; narrowing rounds to nearest even),
  // bfloat16 by integer arithmetic (its bits are the top half of a float32's).
  static V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static void store_f16(uint16_t* p, V v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static V load_bf16(const uint16_t* p) {
    const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
  }
  static void store_bf16(uint16_t* p, V v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
    // NaN: truncated, with the quiet bit set (no rounding into the exponent)
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), nan);
    r = _mm256_srli_epi32(r, 16);
    const __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
  }
  static V load_f16_tail(const uint16_t* p, int64_t n) { return load_f16(pad16(p, n).data()); }
  static V load_bf16_tail(const uint16_t* p, int64_t n) { return load_bf16(pad16(p, n).data()); }
  static void store_f16_tail(uint16_t* p, V v, int64_t n) {
    Buf16 b;
    store_f16(b.h, v);
    std::memcpy(p, b.h, static_cast<size_t>(n) * 2);
  }
  static void store_bf16_tail(uint16_t* p, V v, int64_t n) {
    Buf16 b;
    store_bf16(b.h, v);
    std::memcpy(p, b.h, static_cast<size_t>(n) * 2);
  }
  struct Buf16 {
    uint16_t h[W] = {};
    const uint16_t* data() const { return h; }
  };
  static Buf16 pad16(const uint16_t* p, int64_t n) {  // lanes [0, n) of p, zeros after
    Buf16 b;
    std::memcpy(b.h, p, static_cast<size_t>(n) * 2);
    return b;
  }
};

struct F64 {
  using T = double;
  using V = __m256d;
  using M = __m256d;
  static constexpr int W = 4;
  static constexpr bool kMaskedTail = false;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V widen(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }  // W floats, exactly
  // W floats rounded from v (+-inf beyond float's range, NaN kept)
  static void narrow(float* p, V v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static M lt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static M eq(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_pd(b, a, m); }
  static V zero_if(M m, V a) { return _mm256_andnot_pd(m, a); }
  static bool all(M m) { return _mm256_movemask_pd(m) == 0xF; }
  static bool none(M m) { return _mm256_movemask_pd(m) == 0; }
  static V count_if(M m, V acc) {
    return _mm256_castsi256_pd(_mm256_sub_epi64(_mm256_castpd_si256(acc), _mm256_castpd_si256(m)));
  }
  static int64_t count_total(V acc) {
    alignas(32) int64_t c[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(c), _mm256_castpd_si256(acc));
    return c[0] + c[1] + c[2] + c[3];
  }
  static V pow2_from_biased(V vn) {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(vn), 52));
  }
  // e + 2**52 from the exponent bits (no int64 -> double conversion in AVX2), minus 2**52 + bias
  static V exponent(V x) {
    const __m256i e = _mm256_srli_epi64(_mm256_castpd_si256(x), 52);
    const __m256d big = _mm256_castsi256_pd(_mm256_or_si256(e, _mm256_set1_epi64x(0x4330000000000000LL)));
    return _mm256_sub_pd(big, _mm256_set1_pd(4503599627371519.0));  // 2**52 + 1023
  }
  static V mantissa(V x) {
    const __m256i m = _mm256_and_si256(_mm256_castpd_si256(x), _mm256_set1_epi64x(0x000fffffffffffffLL));
    return _mm256_castsi256_pd(_mm256_or_si256(m, _mm256_set1_epi64x(0x3ff0000000000000LL)));
  }
  static T reduce_add(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  using Wide = V;  // (see F32)
  static Wide wide_zero() { return zero(); }
  static Wide wide_add(Wide w, V v) { return add(w, v); }
  static double wide_total(Wide w) { return reduce_add(w); }
  static T reduce_max(V v) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static void transpose(V (&r)[W]) {  // (see F32) a 4 x 4 block
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
  static __m256i tail_mask(int64_t n) {
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
  }
  static V load_tail(const T* p, int64_t n, T fill) {
    const __m256i m = tail_mask(n);
    return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
  }
  static void store_tail(T* p, V v, int64_t n) { _mm256_maskstore_pd(p, tail_mask(n), v); }
};

}  // namespace XENT_ISA_NS
}  // namespace xent
