// Softmax cross-entropy with integer labels along a class axis that is not the last one
// (PyTorch's (N, C, H, W) with axis=1, or (C, N) with axis=0), where rows are adjacent in
// memory and their classes far apart. Rows in lanes, as smallc-inl.hpp, but on a tile
// t[c * ts + row] that the caller (units-inl.hpp, softmax_units_inner) fills with vector
// copies of adjacent rows: W rows are one vector load per class, with no transpose and no
// limit on C. Per lane:
//   m = max_c z_c,  e_c = exp(z_c - m),  ones = #{c : z_c == m},  rest = sum of the other e_c,
//   loss = (m - z_y) + log(ones + rest) (+ zl lse^2),  grad = f e - gscale w onehot(y),
//   f = gscale w (1 + 2 zl lse) / (ones + rest),
// with the row kernels' rules (softmax-inl.hpp): the exp(0) = 1 terms counted apart from
// the rest (a confident row keeps log1p(rest)'s relative accuracy), each lane's partial
// sums adding at most kSumLane terms before they join a compensated (two-sum) total, NaN
// and +inf confined to their row (a NaN loss and an all-NaN gradient), a row of -inf logits
// +inf with a zero gradient.
// The exponentials go into the gradient's place (the tile) in the class loop and are scaled
// there in a second loop.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

// One group of k (1..W) adjacent rows: row i's logits at z[i + c * zcs], its gradient (if
// g) at g[i + c * gcs]; y[i] its label (in range), gw[i] = T(gscale w_i), 0 for a dead lane
// (an ignored row, or one the caller computes apart), whose gradient is written as zeros.
// Writes each lane's unweighted loss to loss[i] and whether its logits are all -inf to
// masked[i]; the caller subtracts gscale w_i at the label of the others (the scaled
// exponential is then at g[i + y[i] * gcs]). g may be z itself (gcs == zcs). With next, the
// exponentials' loop prefetches the line at next + c * next_cs for each class c (the caller's
// next data).
template <class D>
inline void inner_xent_label(const typename D::T* z, int64_t zcs, typename D::T* g, int64_t gcs, int k,
                             const int64_t* y, const typename D::T* gw, int64_t C, double zl, typename D::T* loss,
                             bool* masked, const typename D::T* next = nullptr, int64_t next_cs = 0) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const bool full = k == W;
  auto ld = [&](const T* p) { return full ? D::load(p) : D::load_tail(p, k, T(0)); };
  auto st = [&](T* p, V v) {
    if (full) D::store(p, v); else D::store_tail(p, v, k);
  };
  alignas(64) T zy[W];  // read first: g may be z itself
  for (int i = 0; i < k; ++i) zy[i] = z[i + y[i] * zcs];
  for (int i = k; i < W; ++i) zy[i] = T(0);
  const V one = D::set1(T(1)), zero = D::zero();
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  // max ignores NaN (the x86 rule, on every ISA): NaNs are counted apart and make the max
  // NaN, so the whole row is NaN even if its other logits are all -inf
  // (two of each accumulator, alternate classes: the NaN count's additions are a chain)
  V m0 = ninf, m1 = ninf, nans0 = zero, nans1 = zero;
  auto max_step = [&](int64_t c, V& m, V& nans) {
    const V zc = ld(z + c * zcs);
    m = D::max(zc, m);
    nans = D::add(nans, D::select(D::eq(zc, zc), zero, one));
  };
  int64_t c1 = 0;
  for (; c1 + 2 <= C; c1 += 2) {
    max_step(c1, m0, nans0);
    max_step(c1 + 1, m1, nans1);
  }
  if (c1 < C) max_step(c1, m0, nans0);
  const V m = D::select(D::gt(D::add(nans0, nans1), zero), D::set1(std::numeric_limits<T>::quiet_NaN()),
                        D::max(m0, m1));
  // exponentials: two accumulators, alternate classes, each lane's kSumLane terms at a time
  // into a two-sum total (hi, lo)
  V ones0 = zero, ones1 = zero, hi = zero, lo = zero;
  auto add_total = [&](V b) {  // hi + lo += b, the rounding error of hi + b kept in lo
    const V s = D::add(hi, b);
    const V bb = D::sub(s, hi);
    lo = D::add(lo, D::add(D::sub(hi, D::sub(s, bb)), D::sub(b, bb)));
    hi = s;
  };
  auto step = [&](int64_t c, V& acc, V& ones) {
    if (next) __builtin_prefetch(next + c * next_cs);
    const V zc = ld(z + c * zcs);
    const V e = exp_nonpos<D>(D::sub(zc, m));
    const auto top = D::eq(zc, m);
    ones = D::add(ones, D::select(top, one, zero));
    acc = D::add(acc, D::zero_if(top, e));
    if (g) st(g + c * gcs, e);
  };
  for (int64_t c0 = 0; c0 < C; c0 += 2 * kSumLane) {
    const int64_t end = C - c0 < 2 * kSumLane ? C : c0 + 2 * kSumLane;
    V r0 = zero, r1 = zero;
    int64_t c = c0;
    for (; c + 2 <= end; c += 2) {
      step(c, r0, ones0);
      step(c + 1, r1, ones1);
    }
    if (c < end) step(c, r0, ones0);
    add_total(D::add(r0, r1));
  }
  const V rest = D::add(hi, lo), ones = D::add(ones0, ones1);
  const auto flat = D::eq(m, ninf);  // every logit -inf: +inf loss, zero gradient
  // a +inf logit: NaN loss and gradient, as the row kernels give (inf - inf) and PyTorch
  const V nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  const auto pinf = D::eq(m, D::sub(zero, ninf));
  const V log_s = log_ones_rest<D>(ones, rest);
  const V lse = D::add(m, log_s);
  V lv = D::add(D::sub(m, D::load(zy)), log_s);
  V pf = one;  // the factor of p in the gradient: 1 + 2 zl lse
  if (zl != 0.0) {
    const V zlv = D::set1(static_cast<T>(zl));
    lv = D::fma(D::mul(zlv, lse), lse, lv);
    pf = D::fma(D::add(zlv, zlv), lse, one);
  }
  alignas(64) T out[W], mv[W];
  D::store(out, D::select(pinf, nan, D::select(flat, D::sub(zero, ninf), lv)));
  D::store(mv, m);
  for (int i = 0; i < k; ++i) loss[i] = out[i], masked[i] = mv[i] == -std::numeric_limits<T>::infinity();
  if (!g) return;
  alignas(64) T gwb[W];
  for (int i = 0; i < W; ++i) gwb[i] = i < k ? gw[i] : T(0);
  const V gwv = D::load(gwb);
  const auto dead = D::eq(gwv, zero);
  // e = 0 gives 0 even where f overflowed to inf (z-loss with a huge lse): no 0 * inf = NaN
  const V f = D::zero_if(flat, D::div(D::mul(gwv, pf), D::add(ones, rest)));
  for (int64_t c = 0; c < C; ++c) {
    T* p = g + c * gcs;
    const V e = ld(p);
    st(p, D::zero_if(dead, D::zero_if(flat, D::zero_if(D::eq(e, zero), D::mul(e, f)))));
  }
  if (!D::none(pinf))  // a +inf logit (rare: no test per vector above); dead lanes stay 0
    for (int64_t c = 0; c < C; ++c) st(g + c * gcs, D::zero_if(dead, D::select(pinf, nan, ld(g + c * gcs))));
}

}  // namespace XENT_ISA_NS
}  // namespace xent
