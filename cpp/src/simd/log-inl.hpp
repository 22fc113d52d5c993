// Vector natural log on (0, 1], written over a lane type D with the existing lane ops only
// (no bit casts): the focal loss needs log(1 - p_t) for soft targets (kernels/sigmoid_focal-inl.hpp).
//
// Contract (tested by cpp/tests/test_sigmoid_opt.hpp through KernelTable::vlog on every ISA,
// by dense sweeps from the smallest subnormal to 1): log_unit(x) for x in (0, 1] has a
// relative error <= 2 ulp (measured: 1.05 ulp float, 1.41 ulp double); log_unit(1) == 0.
// Inputs outside (0, 1] give unspecified values (callers select them away).
//
// x = 2**k * m with m in [sqrt2/2, sqrt2): k is found by exact binary scaling steps (multiply
// by 2**s while x < 2**-s, s = 64, 64, 32, ..., 1 in float; 512, 512, 256, ..., 1 in double,
// the repeated first step covering subnormals), then log x = k ln2 + 2 atanh(f / (2 + f)),
// f = m - 1 (exact, Sterbenz), by the atanh series of log1p_unit (same range of f / (2 + f)).
// k ln2 uses a Cody-Waite split whose high part has enough trailing zeros that k*ln2_hi is
// exact for every k here.
#pragma once

namespace xent {
namespace XENT_ISA_NS {

template <class T>
struct LogConst;

// 2**e, evaluated at compile time in the constant tables below.
template <class T>
constexpr T pow2i(int e) {
  T r = 1;
  for (int i = 0; i < e; ++i) r *= 2;
  for (int i = 0; i < -e; ++i) r /= 2;
  return r;
}

template <>
struct LogConst<float> {
  static constexpr int n_steps = 8;
  static constexpr int steps[8] = {64, 64, 32, 16, 8, 4, 2, 1};
  static constexpr float up[8] = {pow2i<float>(64), pow2i<float>(64), pow2i<float>(32), pow2i<float>(16),
                                  pow2i<float>(8),  pow2i<float>(4),  pow2i<float>(2),  pow2i<float>(1)};
  static constexpr float below[8] = {pow2i<float>(-64), pow2i<float>(-64), pow2i<float>(-32), pow2i<float>(-16),
                                     pow2i<float>(-8),  pow2i<float>(-4),  pow2i<float>(-2),  pow2i<float>(-1)};
  static constexpr float ln2_hi = 0.693145751953125f;  // 16 significant bits: k*ln2_hi exact, |k| < 256
  static constexpr float ln2_lo = 1.428606765330187e-06f;
};

template <>
struct LogConst<double> {
  static constexpr int n_steps = 11;
  static constexpr int steps[11] = {512, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1};
  static constexpr double up[11] = {pow2i<double>(512), pow2i<double>(512), pow2i<double>(256), pow2i<double>(128),
                                    pow2i<double>(64),  pow2i<double>(32),  pow2i<double>(16),  pow2i<double>(8),
                                    pow2i<double>(4),   pow2i<double>(2),   pow2i<double>(1)};
  static constexpr double below[11] = {pow2i<double>(-512), pow2i<double>(-512), pow2i<double>(-256),
                                       pow2i<double>(-128), pow2i<double>(-64),  pow2i<double>(-32),
                                       pow2i<double>(-16),  pow2i<double>(-8),   pow2i<double>(-4),
                                       pow2i<double>(-2),   pow2i<double>(-1)};
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // fdlibm: 32 bits, exact for |k| < 2**21
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
};

template <class D>
inline typename D::V log_unit(typename D::V x) {
  using T = typename D::T;
  using V = typename D::V;
  using K = MathConst<T>;
  using L = LogConst<T>;
  V k = D::zero();
  for (int i = 0; i < L::n_steps; ++i) {
    const auto small = D::lt(x, D::set1(L::below[i]));
    x = D::select(small, D::mul(x, D::set1(L::up[i])), x);
    k = D::select(small, D::sub(k, D::set1(T(L::steps[i]))), k);
  }
  // x in [1/2, 1]: to [sqrt2/2, sqrt2)
  const auto low = D::lt(x, D::set1(T(0.70710678118654752440)));
  x = D::select(low, D::add(x, x), x);
  k = D::select(low, D::sub(k, D::set1(T(1))), k);
  const V f = D::sub(x, D::set1(T(1)));
  const V s = D::div(f, D::add(D::set1(T(2)), f));
  const V z = D::mul(s, s);
  V q = D::set1(K::log_c[K::log_terms - 1]);
  for (int i = K::log_terms - 2; i >= 0; --i) q = D::fma(q, z, D::set1(K::log_c[i]));
  const V two_s = D::add(s, s);
  const V series = D::fma(D::mul(two_s, z), q, two_s);
  return D::fma(k, D::set1(L::ln2_hi), D::fma(k, D::set1(L::ln2_lo), series));
}

}  // namespace XENT_ISA_NS
}  // namespace xent
