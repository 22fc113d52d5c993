// Weight vectors (sample and class weights): their check, largest value and sum in one pass
// (api.cpp weight_stats / weight_sum, for the bindings' fast path and the weighted mean's
// denominator), and float64 weights narrowed to float32 for float32 logits.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace xent {
namespace XENT_ISA_NS {

constexpr int kWeightLanes = 16;         // element i of a block is added in lane i % 16
constexpr int64_t kWeightBlock = 1024;  // elements per block (a multiple of kWeightLanes)

// Returns the sum of w[0, n) in double; *top receives the largest value, or +inf if any
// value is NaN, negative or infinite. The sum: each block's elements in kWeightLanes double
// lanes (element i in lane i % kWeightLanes, in order), the lanes added in a fixed tree,
// the blocks' sums added with Neumaier's compensation. The order is the same on every ISA,
// and so are the bits (the fast path and the general path of a call divide by them). Its
// error is below (kWeightBlock / kWeightLanes + 6) eps of the sum of weights >= 0 (a single
// compensated chain was 3 cycles a weight: 4x the loss itself for one weight per element);
// +inf when the sum overflows.
template <class D>
double weight_stats(const typename D::T* w, int64_t n, typename D::T* top) {
  using T = typename D::T;
  using E = F64;  // the sums, and the checks, on the weights widened to double
  using V = typename E::V;
  constexpr int K = kWeightLanes / E::W;
  const double inf = std::numeric_limits<double>::infinity();
  const V zero = E::zero(), vinf = E::set1(inf);
  V hi[K];
  for (int k = 0; k < K; ++k) hi[k] = zero;
  double h = 0.0;  // the tail's largest value
  double s = 0.0, c = 0.0;
  for (int64_t b = 0; b < n; b += kWeightBlock) {
    const int64_t end = std::min(n, b + kWeightBlock);
    V acc[K];
    for (int k = 0; k < K; ++k) acc[k] = zero;
    int64_t i = b;
    for (; i + kWeightLanes <= end; i += kWeightLanes) {
      for (int k = 0; k < K; ++k) {
        V x;
        if constexpr (std::is_same_v<T, float>) x = E::widen(w + i + k * E::W);
        else x = E::load(w + i + k * E::W);
        acc[k] = E::add(acc[k], x);
        hi[k] = E::max(hi[k], E::select(E::ge(x, zero), x, vinf));  // NaN or < 0: +inf
      }
    }
    alignas(64) double lane[kWeightLanes];
    for (int k = 0; k < K; ++k) E::store(lane + k * E::W, acc[k]);
    for (; i < end; ++i) {  // the last block's tail, in the same lanes
      const double x = static_cast<double>(w[i]);
      lane[(i - b) % kWeightLanes] += x;
      const double y = x >= 0.0 ? x : inf;
      h = y > h ? y : h;
    }
    for (int m = kWeightLanes / 2; m >= 1; m /= 2)
      for (int l = 0; l < m; ++l) lane[l] += lane[l + m];
    const double t = lane[0], u = s + t;
    c += std::fabs(s) >= std::fabs(t) ? (s - u) + t : (t - u) + s;
    s = u;
  }
  alignas(64) double his[kWeightLanes];
  for (int k = 0; k < K; ++k) E::store(his + k * E::W, hi[k]);
  for (double v : his) h = v > h ? v : h;
  *top = static_cast<T>(h);  // (a value of w, or +inf)
  return std::isfinite(s) ? s + c : s;  // (c is NaN once s overflowed)
}

// dst[i] = src[i] rounded to T: float32 as NumPy's astype (+-inf beyond its range, NaN kept).
template <class D>
void weights_from_f64(const double* src, typename D::T* dst, int64_t n) {
  using T = typename D::T;
  if constexpr (std::is_same_v<T, double>) {
    std::copy(src, src + n, dst);
  } else {
    using E = F64;
    int64_t i = 0;
    for (; i + E::W <= n; i += E::W) E::narrow(dst + i, E::load(src + i));
    if (i < n) {  // the tail through a padded vector
      alignas(64) double a[E::W] = {};
      alignas(64) float f[E::W];
      std::copy(src + i, src + n, a);
      E::narrow(f, E::load(a));
      std::copy(f, f + (n - i), dst + i);
    }
  }
}

}  // namespace XENT_ISA_NS
}  // namespace xent
