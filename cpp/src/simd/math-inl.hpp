// Vector exp and log1p, written once over a lane type D (F32 or F64 of an ISA namespace).
// Included by each isa_*.cpp inside its own namespace.
//
// Contracts (each is tested by tests/test_math.py through xent._core.vmath and by
// cpp/tests/test_kernels.cpp on every ISA, NEON included):
//   exp_nonpos(x), x <= 0 (the only inputs a max-subtracted softmax or exp(-|z|) produces):
//     float32: x in [-87.336, 0]: relative error <= 2 ulp; x < -87.336: the true value is
//              below FLT_MIN and the result is within FLT_MIN (1.2e-38) of it: a subnormal
//              down to x = -87.68, exactly 0 below (x <= -88 and -inf included).
//     float64: x in [-708.39, 0]: relative error <= 2 ulp; below: within DBL_MIN (2.3e-308)
//              of the true value, exactly 0 for x <= -709 (and -inf).
//     exp_nonpos(0) == 1 exactly; NaN gives NaN.
//   log1p_unit(u), u in [0, 1] (the only inputs softplus(-|z|) = log1p(exp(-|z|)) needs):
//     relative error <= 3 ulp in both precisions; log1p_unit(0) == 0.
//   tanh_v(x), any x: relative error <= 2 ulp in both precisions (1.5 measured over
//     |x| <= 30 and tiny |x|); odd, -0 kept; large |x| gives exactly +-1; NaN gives NaN.
//     Its optional second result sech^2(x) = 1 - tanh^2(x) is computed without the
//     cancellation of 1 - t*t (as 4e/(1+e)^2, e = exp(-2|x|)) for the softcap gradient.
//   log_unit(x), x in (0, 1], subnormals included (the clipped probabilities of the
//     from-probabilities losses):
//     relative error <= 3 ulp in both precisions (measured: 1.93 ulp float64, 1.66 float32);
//     log_unit(1) == 0; NaN gives NaN. x = 0 gives a finite garbage value (callers clip first).
//   log_1m(p) = log(1 - p), p in [0, 1): relative error <= 3 ulp of the true log(1 - p)
//     (1 - p is never rounded first; measured: 1.93 ulp float64, 1.66 float32); log_1m(0) == 0;
//     NaN gives NaN.
#pragma once
#include <cstdint>

// The functions below are called once per vector in the hot loops and are always inlined:
// GCC stops inlining them once an ISA's translation unit has grown by its budget (measured:
// with the sigmoid options' loops compiled per option set, log1p_unit and log_unit were left
// as calls, the float64 weighted sigmoid loss 1.3x and the focal loss 1.2x slower).
// XENT_NOINLINE: a call kept a call (a kernel whose stack frame would otherwise join its
// caller's; kernels/smallc-inl.hpp).
#if defined(__GNUC__) || defined(__clang__)
#define XENT_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define XENT_NOINLINE __declspec(noinline)
#else
#define XENT_NOINLINE
#endif
#ifndef XENT_FORCE_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define XENT_FORCE_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define XENT_FORCE_INLINE __forceinline
#else
#define XENT_FORCE_INLINE inline
#endif
#endif

namespace xent {
namespace XENT_ISA_NS {

template <class T>
struct MathConst;

template <>
struct MathConst<float> {
  // exp(x) = 2**(k/8) p(r), k = round(8 x / ln2) = 8n + j, r = x - k ln2/8 in [-ln2/16, ln2/16]
  // (tools/fit_exp_coefficients.py). Adding `magic` = 1.5 * 2**23 + 8 * 127 rounds 8 x / ln2
  // to k with the bias of 2**n, 8 * 127, in its low mantissa bits: j is their low 3 bits.
  static constexpr bool exp_table = true;
  static constexpr float log2e8 = 11.541560173034668f;  // 8 / ln2
  static constexpr float magic8 = 12583928.0f;
  // ln2 = ln2_hi + ln2_lo (Cody-Waite). x - k ln2_hi / 8 is exact: for k != 0, x and
  // k ln2_hi / 8 are multiples of 2**-28 and |r| < 2**-4, so r fits in 24 bits.
  static constexpr float ln2_hi = 0.693147182464599609375f;
  static constexpr float ln2_lo = -1.904654323148236e-09f;
  static constexpr float ln2_hi8 = ln2_hi / 8;
  static constexpr float ln2_lo8 = ln2_lo / 8;
  // 2**(j/8): float32's nearest, as bits less the bias and j << 20 (so that adding k's
  // biased bits << 20 gives 2**n 2**(j/8)), and its relative rounding error, added to the
  // polynomial's part: the table costs no accuracy.
  static constexpr uint32_t exp_tab_bits[8] = {0x00000000u, 0xfffb95c2u, 0xfff837f0u, 0xfff5fed7u,
                                               0xfff504f3u, 0xfff5672au, 0xfff744fdu, 0xfffac0c7u};
  static constexpr float exp_tab_corr[8] = {0.0f,
                                            -1.199215748926008e-08f,
                                            3.1934181521364735e-08f,
                                            -3.0990719324108795e-08f,
                                            1.7114270889351246e-08f,
                                            5.233334210430485e-09f,
                                            -1.4719605090363075e-08f,
                                            -6.128259677495862e-09f};
  // p(r) = 1 + r + c2 r^2 + c3 r^3, minimax relative error 2.6e-8 on the interval; an
  // exhaustive float32 sweep measured 1.10 ulp (the former degree-6 polynomial over
  // [-ln2/2, ln2/2] with one 2**n, 1.05, and 5 dependent FMAs where this has 2).
  static constexpr float exp_c2 = 0.500064492225647f;
  static constexpr float exp_c3 = 0.1666685789823532f;
  static constexpr float exp_cutoff = -87.33654475f;  // ln(FLT_MIN)
  // exp_nonpos clamps its argument here: k = -1016, n = -127, j = 0, so 2**(k/8) built
  // from the biased exponent is +0 and the result exactly 0 (one max instead of compare + mask).
  static constexpr float exp_floor = -88.0f;
  // 2*atanh(s) = 2s + 2s*z*q(z), z = s*s <= 0.0295, q = 1/3 + z/5 + ...: q's Chebyshev
  // interpolant (tools/fit_chebyshev_coefficients.py; relative error 2.5e-9, where the Taylor
  // series needed 4 terms for 2e-9).
  static constexpr int log_terms = 3;
  static constexpr float log_c[3] = {0.33333343267440796f, 0.1999439001083374f, 0.14789974689483643f};
  static constexpr float sqrt2m1 = 0.41421356237f;
  // tanh(x) = x + x^3 q(x^2) for |x| < tanh_small: q's Chebyshev interpolant on [0, 0.3025]
  // (tools/fit_chebyshev_coefficients.py; relative error of x + x^3 q 5.4e-9 with the coefficients
  // rounded, 8 Taylor terms before). Above, 1 - e with e = exp(-2|x|) <= 1/3 cancels little.
  static constexpr float tanh_small = 0.55f;
  static constexpr int tanh_terms = 5;
  static constexpr float tanh_c[5] = {-0.3333333134651184f, 0.13333113491535187f, -0.05390942841768265f,
                                      0.021309388801455498f, -0.00661022774875164f};
  // log_unit: mantissas above sqrt2 are halved; subnormals are scaled by 2**24 first.
  static constexpr float sqrt2 = 1.41421356237f;
  static constexpr float tiny = 1.17549435e-38f;  // FLT_MIN
  static constexpr float sub_scale = 16777216.0f;
  static constexpr float sub_shift = 24.0f;
};

template <>
struct MathConst<double> {
  static constexpr bool exp_table = false;
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double magic = 6755399441056767.0;  // 1.5 * 2**52 + 1023
  static constexpr double ln2_hi = 0.6931471805599453;  // round(ln2)
  static constexpr double ln2_lo = 2.3190468138462996e-17;
  static constexpr double exp_cutoff = -708.3964185322641;  // ln(DBL_MIN)
  static constexpr double exp_floor = -709.0;  // n = -1023: 2**n from the bits is +0
  // p(r) = 1 + r q(r), q's Chebyshev interpolant on [-ln2/2, ln2/2] (degree 11:
  // tools/fit_chebyshev_coefficients.py; relative error 9.8e-18, where the Taylor series
  // needed degree 13 for 4.2e-18).
  static constexpr int exp_degree = 11;
  static constexpr double exp_c[11] = {1.0,
                                       0.5000000000000006,
                                       0.1666666666666667,
                                       0.04166666666657314,
                                       0.008333333333326141,
                                       0.0013888888932488599,
                                       0.00019841269874800493,
                                       2.4801504346997686e-05,
                                       2.7557255425746435e-06,
                                       2.7626357241447223e-07,
                                       2.510520637395701e-08};
  // q's Chebyshev interpolant (see the float case): relative error 4.6e-18 (the atanh series
  // needed 9 terms for 1e-18)
  static constexpr int log_terms = 7;
  static constexpr double log_c[7] = {0.3333333333333335,  0.19999999999949752, 0.14285714312987743,
                                      0.1111110556739754,  0.09091444562630861, 0.07665860800278021,
                                      0.07308224842521703};
  static constexpr double sqrt2m1 = 0.41421356237309503;
  // q's Chebyshev interpolant (see the float case): relative error 5.1e-18 (18 Taylor terms before)
  static constexpr double tanh_small = 0.55;
  static constexpr int tanh_terms = 11;
  static constexpr double tanh_c[11] = {-0.3333333333333333,     0.13333333333332714,    -0.053968253967434016,
                                        0.021869488493666944,    -0.008863234397814355,  0.003592110378689024,
                                        -0.001455661830100716,   0.0005889360520074057,  -0.0002346347410887237,
                                        8.511313685577672e-05,   -2.060276537636634e-05};
  static constexpr double sqrt2 = 1.4142135623730951;
  static constexpr double tiny = 2.2250738585072014e-308;  // DBL_MIN
  static constexpr double sub_scale = 18014398509481984.0;  // 2**54
  static constexpr double sub_shift = 54.0;
};

// e**x for x <= 0 (see the contract above).
// float32: exp(x) = 2**(k/8) p(r), r = x - k ln2/8, 2**(k/8) from the biased exponent and a
// table of eight (D::pow2_frac8, D::lookup8; tools/fit_exp_coefficients.py). The chain from
// x to the result is 7 dependent operations instead of 11, 2 fewer on the FMA pipes, the
// same accuracy (1.10 ulp measured over every float32 input). A sum loop of it alone took
// 0.85-0.90x the cycles per vector; in the kernels less (with block_expsum's split loop
// of one vector per iteration, 1 thread: 4096 x 1000 loss + grad 0.93-0.96x the time,
// 2048 x 256 0.88x, logsumexp 0.98x; bench/README.md).
// float64: exp(x) = 2**n p(r), r = x - n ln2, p of degree 11.
template <class D>
XENT_FORCE_INLINE typename D::V exp_nonpos(typename D::V x) {
  using K = MathConst<typename D::T>;
  using V = typename D::V;
  // max returns its second operand when either is NaN (every ISA's D::max): NaN stays NaN
  x = D::max(D::set1(K::exp_floor), x);
  if constexpr (K::exp_table) {
    const V magic = D::set1(K::magic8);
    V k = D::fma(x, D::set1(K::log2e8), magic);
    // 2**(k/8) rounded to float32, from k <= magic (x <= 0): a NaN k takes magic (D::min's
    // NaN rule), so that s is not built from a NaN's bits and the NaN that comes out is x's
    // own, whatever the ISA's rule for which NaN operand an FMA returns (off the chain: s
    // is needed last)
    const V s = D::pow2_frac8(D::min(k, magic), K::exp_tab_bits);
    const V c = D::lookup8(K::exp_tab_corr, k);  // its relative rounding error (finite for any k)
    k = D::sub(k, magic);
    const V r = D::fnma(k, D::set1(K::ln2_hi8), x);  // exact
    // the low part of k ln2/8 joins c, off the chain (r's r^2 and r^3 terms miss it:
    // below 1e-8 relative). As c + k (-lo), not c - k lo: NEON's fused multiply-subtract
    // flips a NaN's sign, and w's NaN and r's must be the same for r + w to give the same
    // bits in either operand order
    const V w = D::fma(k, D::set1(-K::ln2_lo8), c);
    const V q = D::fma(D::set1(K::exp_c3), r, D::set1(K::exp_c2));
    const V u = D::fma(D::mul(r, r), q, D::add(r, w));  // p(r) - 1 + c
    return D::fma(s, u, s);
  } else {
    const V magic = D::set1(K::magic);
    V n = D::fma(x, D::set1(K::log2e), magic);
    const V s = D::pow2_from_biased(n);
    n = D::sub(n, magic);
    V r = D::fnma(n, D::set1(K::ln2_hi), x);
    r = D::fnma(n, D::set1(K::ln2_lo), r);
    // p(r) = 1 + r q(r), q = c0 + r Q(r) with Q's even and odd terms as two Horner chains
    // in r^2 side by side, for the latency (2048 x 256 softmax loss + grad 0.93 -> 0.87 ms,
    // logsumexp 0.78 -> 0.71; the same accuracy, 0.93 ulp measured; Estrin's scheme over
    // all of q, as fast, measured 1.28). c0 = 1 is added last, in one rounding.
    constexpr int N = K::exp_degree;
    const V r2 = D::mul(r, r);
    constexpr int ta = (N - 1) / 2 * 2, tb = (N - 2) / 2 * 2 + 1;  // highest even / odd index
    V a = D::set1(K::exp_c[ta]), b = D::set1(K::exp_c[tb]);         // Q = b(r^2) + r a(r^2)
    for (int k = ta - 2; k >= 2; k -= 2) a = D::fma(a, r2, D::set1(K::exp_c[k]));
    for (int k = tb - 2; k >= 1; k -= 2) b = D::fma(b, r2, D::set1(K::exp_c[k]));
    const V q = D::fma(D::fma(a, r, b), r, D::set1(K::exp_c[0]));
    return D::fma(D::mul(r, s), q, s);  // s + s*r*q
  }
}

// log(1 + u) for u in [0, 1] (see the contract above). Reduce to x in [sqrt2/2 - 1, sqrt2 - 1]:
// log1p(u) = k*ln2 + log1p(x) with k = 0, x = u, or k = 1, x = (u - 1)/2 (one rounding,
// through the FMA); then log1p(x) = 2*atanh(s), s = x / (2 + x).
template <class D>
XENT_FORCE_INLINE typename D::V log1p_unit(typename D::V u) {
  using K = MathConst<typename D::T>;
  using V = typename D::V;
  const V half = D::set1(typename D::T(0.5));
  const auto big = D::gt(u, D::set1(K::sqrt2m1));
  const V x = D::select(big, D::fma(u, half, D::set1(typename D::T(-0.5))), u);
  const V s = D::div(x, D::add(D::set1(typename D::T(2)), x));
  const V z = D::mul(s, s);
  V q = D::set1(K::log_c[K::log_terms - 1]);
  for (int k = K::log_terms - 2; k >= 0; --k) q = D::fma(q, z, D::set1(K::log_c[k]));
  const V two_s = D::add(s, s);
  V l = D::fma(D::mul(two_s, z), q, two_s);
  // + k*ln2 (hi + lo) where k = 1
  const V lo = D::add(l, D::set1(K::ln2_lo));
  l = D::select(big, D::add(lo, D::set1(K::ln2_hi)), l);
  return l;
}

// tanh(x) (see the contract above); if sech2, also *sech2 = 1 - tanh(x)^2.
// tanh for |x| < tanh_small (tanh_small_v below): x (1 + s q(s)), s = x^2, and sech^2 =
// 1 - t*t (t <= tanh(0.55) = 0.5: no cancellation). The product form keeps -0 without a
// select (x + x^3 q needed one), two operations fewer per vector, for 1.22 ulp instead of
// 0.77 at most on the polynomial's range.
template <class D>
XENT_FORCE_INLINE typename D::V tanh_small_v(typename D::V x, typename D::V* sech2 = nullptr) {
  using K = MathConst<typename D::T>;
  using V = typename D::V;
  const V s = D::mul(x, x);
  V q = D::set1(K::tanh_c[K::tanh_terms - 1]);
  for (int k = K::tanh_terms - 2; k >= 0; --k) q = D::fma(q, s, D::set1(K::tanh_c[k]));
  const V t = D::mul(x, D::fma(s, q, D::set1(typename D::T(1))));  // x (1 + s q): keeps -0
  if (sech2) *sech2 = D::fnma(t, t, D::set1(typename D::T(1)));
  return t;
}

// The lanes where tanh_v takes the polynomial (false for NaN).
template <class D>
XENT_FORCE_INLINE typename D::M tanh_small(typename D::V x) {
  return D::lt(D::abs(x), D::set1(MathConst<typename D::T>::tanh_small));
}

// tanh_v from tanh_small_v's results ts, s2s (sech^2, read only if sech2): where |x| is
// not small, tanh|x| = (1 - e) / (1 + e) with e = exp(-2|x|) from exp_nonpos (e -> 0 for
// large |x|: exactly 1), sign restored, and sech^2 = 4e / (1 + e)^2.
template <class D>
XENT_FORCE_INLINE typename D::V tanh_finish(typename D::V x, typename D::V ts, typename D::V s2s,
                                            typename D::V* sech2) {
  using T = typename D::T;
  using V = typename D::V;
  const V one = D::set1(T(1));
  const V e = exp_nonpos<D>(D::mul(D::abs(x), D::set1(T(-2))));
  const V den = D::add(one, e);
  const V tl = D::div(D::sub(one, e), den);
  const auto small = tanh_small<D>(x);  // NaN: tl is NaN
  if (sech2) *sech2 = D::select(small, s2s, D::div(D::mul(D::set1(T(4)), e), D::mul(den, den)));
  return D::select(small, ts, D::select(D::lt(x, D::zero()), D::sub(D::zero(), tl), tl));
}

// tanh(x), and sech^2(x) if sech2.
template <class D>
XENT_FORCE_INLINE typename D::V tanh_v(typename D::V x, typename D::V* sech2 = nullptr) {
  typename D::V s2s = x;
  const typename D::V ts = tanh_small_v<D>(x, sech2 ? &s2s : nullptr);
  return tanh_finish<D>(x, ts, s2s, sech2);
}

// e*ln2 + log(1 + f) for f in [sqrt2/2 - 1, sqrt2 - 1]: 2*atanh(s), s = f / (2 + f), with the
// series of log1p_unit; e*ln2 is added through two FMAs (ln2 = ln2_hi + ln2_lo), one rounding each.
template <class D>
XENT_FORCE_INLINE typename D::V log_reduced(typename D::V e, typename D::V f) {
  using K = MathConst<typename D::T>;
  using V = typename D::V;
  const V s = D::div(f, D::add(D::set1(typename D::T(2)), f));
  const V z = D::mul(s, s);
  V q = D::set1(K::log_c[K::log_terms - 1]);
  for (int k = K::log_terms - 2; k >= 0; --k) q = D::fma(q, z, D::set1(K::log_c[k]));
  const V two_s = D::add(s, s);
  const V l = D::fma(D::mul(two_s, z), q, two_s);
  return D::fma(e, D::set1(K::ln2_hi), D::fma(e, D::set1(K::ln2_lo), l));
}

// x = 2**e * m with m in (sqrt2/2, sqrt2]; f = m - 1 is exact (Sterbenz).
template <class D>
XENT_FORCE_INLINE void log_split(typename D::V x, typename D::V& e, typename D::V& f) {
  using K = MathConst<typename D::T>;
  using T = typename D::T;
  const auto sub = D::lt(x, D::set1(K::tiny));
  x = D::select(sub, D::mul(x, D::set1(K::sub_scale)), x);
  e = D::exponent(x);
  e = D::select(sub, D::sub(e, D::set1(K::sub_shift)), e);
  typename D::V m = D::mantissa(x);
  const auto hi = D::gt(m, D::set1(K::sqrt2));
  m = D::select(hi, D::mul(m, D::set1(T(0.5))), m);
  e = D::select(hi, D::add(e, D::set1(T(1))), e);
  f = D::sub(m, D::set1(T(1)));
}

// log(x) for x in (0, 1] (see the contract above).
template <class D>
XENT_FORCE_INLINE typename D::V log_unit(typename D::V x) {
  typename D::V e, f;
  log_split<D>(x, e, f);
  return D::select(D::eq(x, x), log_reduced<D>(e, f), x);  // NaN stays NaN
}

// log(1 - p) for p in [0, 1) (see the contract above). 1 - p is rounded for p < 1/2, so the
// reduced argument is recomputed from p exactly there: f = -p where e = 0 (1 - p >= sqrt2/2),
// f = 1 - 2p where e = -1 (2p in [1/2, 2]: exact by Sterbenz). For p >= 1/2, 1 - p is exact.
template <class D>
XENT_FORCE_INLINE typename D::V log_1m(typename D::V p) {
  using T = typename D::T;
  using V = typename D::V;
  V e, f;
  const V one = D::set1(T(1));
  log_split<D>(D::sub(one, p), e, f);
  f = D::select(D::eq(e, D::set1(T(-1))), D::fnma(D::set1(T(2)), p, one), f);
  f = D::select(D::eq(e, D::zero()), D::sub(D::zero(), p), f);
  return D::select(D::eq(p, p), log_reduced<D>(e, f), p);  // NaN stays NaN
}

}  // namespace XENT_ISA_NS
}  // namespace xent
