// Half-precision storage (float16, bfloat16): software conversions to and from float32,
// and the row conversions the kernels use to read and write half arrays. The maths always
// runs in float32; half is only how the numbers are stored.
//
// Rounding float32 -> half is to nearest, ties to even (IEEE 754's default, as F16C with
// _MM_FROUND_TO_NEAREST_INT, AArch64's FCVT under the default FPCR, NumPy's astype and
// ml_dtypes); overflow gives +-inf; NaN stays NaN (made quiet, sign and top payload bits
// kept, as F16C does). float16 -> float32 and bfloat16 -> float32 are exact.
//
// Included by every ISA file, inside its namespace (XENT_ISA_NS): no inline function here
// may be shared between files compiled with different flags (see tools/check_isa_leak.py).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "xent/jobs.hpp"

namespace xent {
namespace XENT_ISA_NS {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float16 bits -> float32 (exact; signalling NaNs are quieted, as F16C and FCVT do).
inline float soft_f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  if (em >= 0x7c00u) {  // inf or NaN
    const uint32_t mant = static_cast<uint32_t>(em & 0x3ffu) << 13;
    return f32_from_bits(sign | 0x7f800000u | mant | (mant ? 0x00400000u : 0u));
  }
  if (em >= 0x0400u) return f32_from_bits(sign | ((em << 13) + 0x38000000u));  // normal: rebias 15 -> 127
  // zero or subnormal: em * 2^-24, exact in float32
  const float v = static_cast<float>(em) * 5.9604644775390625e-8f;
  return f32_from_bits(sign | f32_bits(v));
}

// float32 -> float16 bits, round to nearest even (F. Giesen's float_to_half_fast3_rtne).
inline uint16_t soft_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  uint32_t o;
  if (u >= 0x47800000u) {  // |f| >= 65536: inf; NaN quiet with its top payload bits
    o = u > 0x7f800000u ? (0x7e00u | ((u >> 13) & 0x3ffu)) : 0x7c00u;
  } else if (u < 0x38800000u) {  // below 2^-14: subnormal or zero
    // adding 0.5 puts the float16 subnormal's bits at the bottom of the mantissa,
    // rounded by the float addition itself (to nearest even)
    o = f32_bits(f32_from_bits(u) + 0.5f) - 0x3f000000u;
  } else {  // normal (65520 and above round up into the inf encoding, as they should)
    const uint32_t odd = (u >> 13) & 1u;
    o = (u - 0x38000000u + 0xfffu + odd) >> 13;
  }
  return static_cast<uint16_t>(o | sign);
}

inline float soft_bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// float32 -> bfloat16 bits: round to nearest even by integer arithmetic; NaN kept (quiet).
inline uint16_t soft_f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Per storage type: the scalar conversions and D's vector loads and stores (W lanes, or the
// first n < W of them for the tails, never touching memory past them).
template <class D, class S>
struct Io;

template <class D>
struct Io<D, f16_t> {
  static float get(f16_t x) { return soft_f16_to_f32(x.bits); }
  static f16_t put(float x) { return f16_t{soft_f32_to_f16(x)}; }
  static typename D::V load(const f16_t* p) { return D::load_f16(&p->bits); }
  static typename D::V load_tail(const f16_t* p, int64_t n) { return D::load_f16_tail(&p->bits, n); }
  static void store(f16_t* p, typename D::V v) { D::store_f16(&p->bits, v); }
  static void store_tail(f16_t* p, typename D::V v, int64_t n) { D::store_f16_tail(&p->bits, v, n); }
};

template <class D>
struct Io<D, bf16_t> {
  static float get(bf16_t x) { return soft_bf16_to_f32(x.bits); }
  static bf16_t put(float x) { return bf16_t{soft_f32_to_bf16(x)}; }
  static typename D::V load(const bf16_t* p) { return D::load_bf16(&p->bits); }
  static typename D::V load_tail(const bf16_t* p, int64_t n) { return D::load_bf16_tail(&p->bits, n); }
  static void store(bf16_t* p, typename D::V v) { D::store_bf16(&p->bits, v); }
  static void store_tail(bf16_t* p, typename D::V v, int64_t n) { D::store_bf16_tail(&p->bits, v, n); }
};

// Native storage: the same interface over D's own lanes, so that a kernel written over a
// storage type S reads float/double rows and half rows alike.
template <class D>
struct NativeIo {
  using T = typename D::T;
  static T get(T x) { return x; }
  static T put(T x) { return x; }
  static typename D::V load(const T* p) { return D::load(p); }
  static typename D::V load_tail(const T* p, int64_t n) { return D::load_tail(p, n, T(0)); }
  static void store(T* p, typename D::V v) { D::store(p, v); }
  static void store_tail(T* p, typename D::V v, int64_t n) { D::store_tail(p, v, n); }
};
template <class D>
struct Io<D, float> : NativeIo<D> {};
template <class D>
struct Io<D, double> : NativeIo<D> {};

// Lanes [0, n) of the row at p (converted to D's lanes), `fill` in the others.
template <class D, class S>
inline typename D::V load_tail_fill(const S* p, int64_t n, typename D::T fill) {
  if constexpr (std::is_same_v<S, typename D::T>) {
    return D::load_tail(p, n, fill);
  } else {
    typename D::T buf[D::W];
    for (int j = 0; j < D::W; ++j) buf[j] = j < n ? Io<D, S>::get(p[j]) : fill;
    return D::load(buf);
  }
}

// How far ahead of its loads load_row prefetches a contiguous row, in bytes.
constexpr int64_t kLoadRowAhead = 4096;

// dst[i] = float(src[i * cs]) for i < n: vector conversions when contiguous.
// A contiguous row is also prefetched kLoadRowAhead bytes ahead (into the next row or unit
// when they follow in memory), and with `wpre` (the half row that the caller writes from
// dst's results afterwards, contiguous) that row's lines are brought into cache too.
// A conversion pass has little else to do: it waited on memory at each unit of a sigmoid
// loss and each row of a softmax, where the hardware prefetchers stop at page boundaries
// and a cold output line waits on its read for ownership (1 thread, AVX-512, float16:
// 10000 x 1000 sigmoid loss 5.5 -> 4.4 ms; 256 x 50304 log_softmax 5.2 -> 4.4 ms).
template <class D, class S>
inline void load_row(const S* src, int64_t cs, int64_t n, float* dst, S* wpre = nullptr) {
  constexpr int W = D::W;
  if (cs != 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] = Io<D, S>::get(src[i * cs]);
    return;
  }
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    __builtin_prefetch(reinterpret_cast<const char*>(src + i) + kLoadRowAhead);
    if (wpre) __builtin_prefetch(wpre + i);
    D::store(dst + i, Io<D, S>::load(src + i));
  }
  if (i < n) D::store_tail(dst + i, Io<D, S>::load_tail(src + i, n - i), n - i);
}

// dst[i * cs] = half(src[i]) for i < n, rounded to nearest even.
template <class D, class S>
inline void store_row(const float* src, int64_t n, S* dst, int64_t cs) {
  constexpr int W = D::W;
  if (cs != 1) {
    for (int64_t i = 0; i < n; ++i) dst[i * cs] = Io<D, S>::put(src[i]);
    return;
  }
  int64_t i = 0;
  for (; i + W <= n; i += W) Io<D, S>::store(dst + i, D::load(src + i));
  if (i < n) Io<D, S>::store_tail(dst + i, D::load_tail(src + i, n - i, 0.0f), n - i);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
