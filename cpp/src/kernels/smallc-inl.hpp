// The softmax family for small C ("rows in lanes"): integer-label cross-entropy
// (lanes_xent_label; with label smoothing, and with target distributions, lanes_xent_soft),
// the poly-1 and focal losses (integer labels: lanes_xent_label with lanes_factor; target
// distributions: lanes_target_factor),
// and logsumexp, softmax and log_softmax (lanes_normalize), with or without a soft cap
// (lanes_softcap), W rows at a time, one row per
// vector lane, so a row of 1..kLanesMaxC classes costs no horizontal reduction, no block
// bookkeeping and no scalar libm call. The row kernels of xent-inl.hpp / softmax-inl.hpp do
// the opposite (classes in lanes), which wastes most of each vector and pays a fixed cost
// per row when C is a few dozen classes or fewer (which C: jobs.hpp, lanes_rows).
//
// A group of n <= W rows is moved into a tile t[c * W + lane] (lanes_tile_in: any class
// stride); then, per lane:
//   m = max_c z_c,  e_c = exp(z_c - m),  ones = #{c : z_c == m},  rest = sum of the other e_c,
//   loss = (m - z_y) + log(ones + rest) (+ zl * lse^2),  grad = f * e - gscale * w * onehot(y),
//   f = gscale * w * (1 + 2 zl lse) / (ones + rest).
// As in row_lse, the exp(0) = 1 terms are counted apart from the rest, so a confident row
// (rest tiny) keeps the full relative accuracy of log1p(rest). `rest` is summed in partial
// sums of kSumLane (16) terms, as in block_expsum, so float32 lanes stay within the accuracy
// contract without its flushes to double (equal terms, the worst case of a float32 sum:
// log(s) within 3.7e-7 at C = 96, 2.6e-7 at 40; one sum of 96 terms gave 1.6e-6). Half
// storage (S = f16_t / bf16_t, float lanes): each row is converted to float32 on its way
// into the tile and rounded back on its way out (half-inl.hpp), with the label's term
// finished in float32 first, as for float32 input.
// NaN and +inf propagate to their own lane (row) only, as in the row kernels: a NaN loss and
// an all-NaN gradient; a lane whose logits are all -inf gives +inf and a zero gradient; a row
// of weight 0 gives 0 and zeros.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/softcap-inl.hpp"
#include "kernels/xent_more-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

// (kLanesMaxC and the choice of this path: jobs.hpp, lanes_rows)

// log(s) for s in [1, 256) (s = ones + rest here); `rest` is used directly when
// ones == 1 and rest < 1: log(1 + rest) = log1p(rest) without rounding 1 + rest.
template <class D>
XENT_FORCE_INLINE typename D::V log_sum_ge1(typename D::V ones, typename D::V rest) {
  using T = typename D::T;
  using V = typename D::V;
  const V one = D::set1(T(1));
  V s = D::add(ones, rest), k = D::zero();
  // s = 2^k f with f in [1, 2): halvings by exact powers of two
  const T steps[4] = {T(16), T(16), T(4), T(2)};
  const T logs[4] = {T(4), T(4), T(2), T(1)};
  for (int i = 0; i < 4; ++i) {
    const auto big = D::ge(s, D::set1(steps[i]));
    s = D::select(big, D::mul(s, D::set1(T(1) / steps[i])), s);
    k = D::add(k, D::select(big, D::set1(logs[i]), D::zero()));
  }
  const auto direct = D::lt(D::add(ones, rest), D::set1(T(2)));  // then ones == 1 (ones >= 1)
  const V u = D::select(direct, rest, D::sub(s, one));
  const V ln2 = D::set1(T(0.693147180559945309417232121458176568));
  return D::fma(k, ln2, log1p_unit<D>(u));
}

// The tile's moves, for a group of n (1..W) rows: row i's class c at tile[c * W + i].
// A vector per class where the W rows are adjacent (class-major: a Fortran-order array),
// W x W register transposes where they are contiguous rows (C order; the last C % W classes
// too where the ISA's masked loads and stores are cheap, D::kMaskedTail: AVX-512, where rows
// of 10 classes took 0.57-0.64x the time so; AVX2's masked moves made rows of 2-20 classes
// up to 1.20x slower), else element by element. Half rows (S) take the same moves, converted
// in their vector loads and stores (Io; rounded to nearest even on the way out): converted
// a row at a time into a float32 row and moved element by element, they took 1.3-2.1x
// float32's time at 10-64 classes.
// Lanes n..W-1 of the tile get 0 (a finite row of no one's).
template <class D, class S>
inline void lanes_tile_in(const S* const* zr, int64_t zcs, int n, int64_t C, typename D::T* tile) {
  using T = typename D::T;
  using V = typename D::V;
  using L = Io<D, S>;
  constexpr int W = D::W;
  bool adjacent = n == W && W > 1;
  for (int i = 1; i < n && adjacent; ++i) adjacent = zr[i] == zr[0] + i;
  if (adjacent) {
    for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, L::load(zr[0] + c * zcs));
    return;
  }
  const int64_t cw = n == W && zcs == 1 && W > 1 ? C - C % W : 0;  // classes moved by transposes
  if (cw) {
    // the next group's rows, if they follow at the same stride (a guess: a prefetch never
    // faults), while this one computes: the transposes read W rows' lines a row apart,
    // which the hardware prefetchers did not keep up with (2**24 logits, 1 thread: AVX-512
    // float32 64 classes, a group of 4 KiB, 0.72-0.82x the time; float64 32-64 classes
    // 0.64-0.92x on AVX-512 and AVX2). Float groups of 2 KiB (AVX2 at 64 classes, AVX-512
    // at 32) came out 1.06-1.18x slower with it in some runs: not there.
    const int64_t s = zr[1] - zr[0], bytes = W * s * static_cast<int64_t>(sizeof(S));
    if (s >= C && s <= 2 * C && (sizeof(S) == 8 || bytes >= 4096)) {
      const char* next = reinterpret_cast<const char*>(zr[W - 1] + s);
      for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(next + b);
    }
  }
  for (int64_t c0 = 0; c0 < cw; c0 += W) {
    V v[W];
    for (int i = 0; i < W; ++i) v[i] = L::load(zr[i] + c0);
    D::transpose(v);
    for (int k = 0; k < W; ++k) D::store(tile + (c0 + k) * W, v[k]);
  }
  if (const int64_t r = C - cw; r > 0 && D::kMaskedTail && n == W && zcs == 1) {  // the rest: masked
    V v[W];
    for (int i = 0; i < W; ++i) v[i] = L::load_tail(zr[i] + cw, r);
    D::transpose(v);
    for (int64_t k = 0; k < r; ++k) D::store(tile + (cw + k) * W, v[k]);
  } else {
    for (int i = 0; i < n; ++i)
      for (int64_t c = cw; c < C; ++c) tile[c * W + i] = L::get(zr[i][c * zcs]);
  }
  for (int i = n; i < W; ++i)
    for (int64_t c = 0; c < C; ++c) tile[c * W + i] = T(0);
}

// The tile's lanes 0..n-1 back to their rows (the inverse of lanes_tile_in; half rows
// rounded to nearest even).
template <class D, class S>
inline void lanes_tile_out(const typename D::T* tile, int n, int64_t C, S* const* outr, int64_t ocs) {
  using V = typename D::V;
  using L = Io<D, S>;
  constexpr int W = D::W;
  bool adjacent = n == W && W > 1;
  for (int i = 1; i < n && adjacent; ++i) adjacent = outr[i] == outr[0] + i;
  if (adjacent) {
    for (int64_t c = 0; c < C; ++c) L::store(outr[0] + c * ocs, D::load(tile + c * W));
    return;
  }
  const int64_t cw = n == W && ocs == 1 && W > 1 ? C - C % W : 0;
  for (int64_t c0 = 0; c0 < cw; c0 += W) {
    V v[W];
    for (int k = 0; k < W; ++k) v[k] = D::load(tile + (c0 + k) * W);
    D::transpose(v);
    for (int i = 0; i < W; ++i) L::store(outr[i] + c0, v[i]);
  }
  if (const int64_t r = C - cw; r > 0 && D::kMaskedTail && n == W && ocs == 1) {
    V v[W];
    for (int k = 0; k < W; ++k) v[k] = k < r ? D::load(tile + (cw + k) * W) : D::zero();
    D::transpose(v);
    for (int i = 0; i < W; ++i) L::store_tail(outr[i] + cw, v[i], r);
  } else {
    for (int i = 0; i < n; ++i)
      for (int64_t c = cw; c < C; ++c) outr[i][c * ocs] = L::put(tile[c * W + i]);
  }
}

// Each lane's max over the tile's C classes. Max ignores NaN (the x86 rule, on every ISA):
// NaNs are counted apart, and the max of a lane holding one is NaN, so that its whole row
// is NaN even if its other logits are all -inf. With kLow, also each lane's min into *lo
// (a -inf there: a masked class; NaN lanes may give either).
template <class D, bool kLow = false>
XENT_FORCE_INLINE typename D::V lanes_max(const typename D::T* tile, int64_t C, typename D::V* lo = nullptr) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1)), zero = D::zero();
  V m = D::load(tile), nans = D::select(D::eq(m, m), zero, one), l = m;
  for (int64_t c = 1; c < C; ++c) {
    const V zc = D::load(tile + c * W);
    m = D::max(zc, m);
    if (kLow) l = D::min(zc, l);
    nans = D::add(nans, D::select(D::eq(zc, zc), zero, one));
  }
  if (kLow) *lo = l;
  return D::select(D::gt(nans, zero), D::set1(std::numeric_limits<T>::quiet_NaN()), m);
}

// Each lane's sum of exp(z_c - m) as ones (the terms with z_c == m, each exactly 1) and
// rest (the others); with kStore, the exponentials replace the logits in the tile.
template <class D, bool kStore>
XENT_FORCE_INLINE void lanes_expsum(typename D::T* tile, int64_t C, typename D::V m, typename D::V& ones,
                                    typename D::V& rest) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1)), zero = D::zero();
  ones = zero;
  rest = zero;
  for (int64_t c0 = 0; c0 < C; c0 += kSumLane) {  // partial sums of kSumLane terms
    const int64_t end = C - c0 < kSumLane ? C : c0 + kSumLane;
    V acc = zero;
    for (int64_t c = c0; c < end; ++c) {
      const V zc = D::load(tile + c * W);
      const V e = exp_nonpos<D>(D::sub(zc, m));
      const auto top = D::eq(zc, m);
      ones = D::add(ones, D::select(top, one, zero));
      acc = D::add(acc, D::zero_if(top, e));
      if (kStore) D::store(tile + c * W, e);
    }
    rest = D::add(rest, acc);
  }
}

// The soft cap (cap > 0) on a group's tile, whose C x W values are one run for softcap_row
// (softcap-inl.hpp: elementwise, so each value gets the row kernels' bits), and the cap's
// derivatives into d (if not null). `full` is softcap_row's mode, kept from group to group.
template <class D>
XENT_FORCE_INLINE void lanes_softcap(typename D::T* tile, int64_t C, double cap, typename D::T* d, bool* full) {
  if (cap > 0.0) softcap_row<D>(tile, 1, C * D::W, cap, tile, d, full);
}

// Poly-1 and focal losses of integer labels (FactorKind, xent_more-inl.hpp): their
// per-row multipliers, and the per-lane stage that turns each lane's cross-entropy into them.
// param: poly-1's epsilon or focal's gamma; a: one multiplier per lane (focal's alpha[y]),
// null for 1.
struct LanesFactor {
  double param;
  const double* a;
};

// From each lane's cross-entropy nlp = -log p_y (lv: T's lanes, +inf for a row of -inf only,
// NaN), its max m, z_y, ones and rest, computes in double lanes (F64) what the row kernels
// compute (label_factor_lanes, xent_more-inl.hpp): the loss (times a, then the row weight w,
// into r), the label's gradient term gy = gscale w a G and the factor fw = gy / s of the
// exponentials (0 for a row of -inf only), by factor_terms (xent_more-inl.hpp) on F64 lanes:
// q = 1 - p_y from the sums, not from 1 - exp(-nlp) (p_y near 1: no cancellation), and for
// gamma = 0 the loss is cross-entropy's nlp itself. As in the row kernels, a = 0 weighs any loss
// (even +inf or NaN) 0, not its gradient.
template <class D, FactorKind K>
inline void lanes_factor(const LanesFactor& fac, const typename D::T* lv, const typename D::T* mv,
                         const typename D::T* zyv, typename D::V ones, typename D::V rest, const double* w,
                         double gscale, int n, double* r, double* gy, double* fw) {
  using T = typename D::T;
  constexpr int W = D::W;
  static_assert(W % F64::W == 0, "whole F64 vectors per group");
  alignas(64) T ov[W], rv[W];
  D::store(ov, ones);
  D::store(rv, rest);
  alignas(64) double nl[W], md[W], dd[W], od[W], rd[W], ad[W];
  for (int i = 0; i < W; ++i) {  // lanes n..W-1: a row of one class (q = 0, finite everywhere)
    const bool live = i < n;
    nl[i] = live ? static_cast<double>(lv[i]) : 0.0;
    md[i] = live ? static_cast<double>(mv[i]) : 0.0;
    dd[i] = live ? static_cast<double>(zyv[i]) - md[i] : 0.0;  // z_y - m (NaN for z_y = m = +inf)
    od[i] = live ? static_cast<double>(ov[i]) : 1.0;
    rd[i] = live ? static_cast<double>(rv[i]) : 0.0;
    ad[i] = live && fac.a ? fac.a[i] : 1.0;
  }
  alignas(64) double lo[W], gv[W];
  label_factor_lanes<K>(dd, nl, od, rd, W, fac.param, lo, gv);
  for (int i = 0; i < n; ++i) {
    const bool flat = mv[i] == -std::numeric_limits<T>::infinity();  // +inf, zero gradient
    const double ri = ad[i] == 0.0 ? 0.0 : flat ? std::numeric_limits<double>::infinity() : ad[i] * lo[i];
    r[i] = w[i] == 1.0 ? ri : ri * w[i];
    gy[i] = gscale * w[i] * ad[i] * gv[i];
    fw[i] = flat ? 0.0 : gy[i] / (od[i] + rd[i]);
  }
  for (int i = n; i < W; ++i) gy[i] = fw[i] = 0.0;
}

// One group of n (1..W) rows. zr[i]/outr[i]: row i's logits / gradient (outr null: no
// gradient), class strides zcs/ocs; y[i] its label (in range), w[i] its weight (> 0).
// Writes row i's weighted loss to r[i].
// kCap: with the soft cap (cap > 0; else cap is not read), whose derivatives take a
// tile of their own (kept out of the plain path's stack frame). kFac: the poly-1 or focal
// loss K (fac; zl is 0) instead of cross-entropy (lanes_factor).
template <class D, class S, bool kCap = false, bool kFac = false, FactorKind K = FactorKind::kPoly1>
inline void lanes_xent_label(const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs,
                             const int64_t* y, const double* w, int n, int64_t C, double gscale, double zl,
                             double cap, bool* full, double* r, const LanesFactor* fac = nullptr) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];
  alignas(64) T zy[W], gw[W];  // z[y] and gscale * w per lane
  alignas(64) T dcap[kCap ? kLanesMaxC * W : 1];  // the cap's derivatives (with a gradient)
  lanes_tile_in<D, S>(zr, zcs, n, C, tile);
  if (kCap) lanes_softcap<D>(tile, C, cap, outr ? dcap : nullptr, full);
  for (int i = 0; i < n; ++i) {
    zy[i] = tile[y[i] * W + i];
    gw[i] = static_cast<T>(gscale * w[i]);
  }
  for (int i = n; i < W; ++i) zy[i] = gw[i] = T(0);
  const V one = D::set1(T(1)), zero = D::zero();
  const V m = lanes_max<D>(tile, C);
  V ones, rest;
  if (outr)
    lanes_expsum<D, true>(tile, C, m, ones, rest);
  else
    lanes_expsum<D, false>(tile, C, m, ones, rest);
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  const auto flat = D::eq(m, ninf);  // every logit -inf: +inf loss, zero gradient
  const V log_s = log_sum_ge1<D>(ones, rest);
  const V lse = D::add(m, log_s);
  V loss = D::add(D::sub(m, D::load(zy)), log_s);
  V pf = one;  // factor of p in the gradient: 1 + 2 zl lse
  if (zl != 0.0) {
    const V zlv = D::set1(static_cast<T>(zl));
    loss = D::fma(D::mul(zlv, lse), lse, loss);
    pf = D::fma(D::add(zlv, zlv), lse, one);
  }
  alignas(64) T lv[W];
  // a +inf logit: a NaN loss and gradient, as the row kernels give (inf - inf) and PyTorch
  const V pinf_v = D::sub(zero, ninf), nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  const auto pinf = D::eq(m, pinf_v);
  const bool any_pinf = !D::none(pinf);  // (the mask itself is not kept across the loops)
  D::store(lv, D::select(pinf, nan, D::select(flat, D::sub(zero, ninf), loss)));
  alignas(64) T mv[W];
  D::store(mv, m);
  alignas(64) double gy[W], fw[W];  // the label's term per lane, and (kFac) the factor in double
  if constexpr (kFac) {
    lanes_factor<D, K>(*fac, lv, mv, zy, ones, rest, w, gscale, n, r, gy, fw);
  } else {
    for (int i = 0; i < n; ++i) {
      r[i] = w[i] == 1.0 ? static_cast<double>(lv[i]) : static_cast<double>(lv[i]) * w[i];
      gy[i] = gscale * w[i];
    }
  }
  if (!outr) return;
  bool wide = false;  // kFac: a factor beyond T's range (a huge epsilon), applied in double
  V f;
  if constexpr (kFac) {
    alignas(64) T ft[W];
    for (int i = 0; i < W; ++i) {
      ft[i] = static_cast<T>(fw[i]);
      wide = wide || factor_overflows<T>(fw[i]);
    }
    f = D::load(ft);
  } else {
    f = D::zero_if(flat, D::div(D::mul(D::load(gw), pf), D::add(ones, rest)));
  }
  // e = 0 gives 0 even where f overflowed to inf (z-loss with a huge lse): no 0 * inf = NaN
  if (!wide) {
    for (int64_t c = 0; c < C; ++c) {
      const V e = D::load(tile + c * W);
      D::store(tile + c * W, D::zero_if(flat, D::zero_if(D::eq(e, zero), D::mul(e, f))));
    }
  } else {  // as row_scale_exps scales by a factor that overflows T (scale_wide)
    for (int64_t c = 0; c < C; ++c)
      for (int i = 0; i < W; ++i)
        tile[c * W + i] = mv[i] == -std::numeric_limits<T>::infinity() ? T(0) : scale_wide(tile[c * W + i], fw[i]);
  }
  if (any_pinf)  // rare: no test per vector above (e = 0 at the finite logits of such a row)
    for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, D::select(D::eq(m, pinf_v), nan, D::load(tile + c * W)));
  // the label's term, finished in double and rounded once (to float32 first for half rows)
  for (int i = 0; i < n; ++i)
    if (mv[i] != -std::numeric_limits<T>::infinity())
      tile[y[i] * W + i] = static_cast<T>(static_cast<double>(tile[y[i] * W + i]) - gy[i]);
  if (kCap && cap > 0.0) mul_rows<D>(tile, dcap, C * W);  // the chain rule through the cap
  lanes_tile_out<D, S>(tile, n, C, outr, ocs);
}
template <class D, class S>
XENT_NOINLINE void lanes_xent_label_capped(const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs,
                                           const int64_t* y, const double* w, int n, int64_t C, double gscale,
                                           double zl, double cap, bool* full, double* r) {
  lanes_xent_label<D, S, true>(zr, zcs, outr, ocs, y, w, n, C, gscale, zl, cap, full, r);
}
// the poly-1 and focal losses (with or without a cap: cap 0 is none)
template <class D, class S, FactorKind K>
XENT_NOINLINE void lanes_xent_label_factor(const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs,
                                           const int64_t* y, const double* w, int n, int64_t C, double gscale,
                                           double cap, bool* full, double* r, const LanesFactor& fac) {
  lanes_xent_label<D, S, true, true, K>(zr, zcs, outr, ocs, y, w, n, C, gscale, 0.0, cap, full, r, &fac);
}

// Label smoothing and target distributions, a group of n (1..W) rows, with the row
// kernels' rules (xent-inl.hpp, row_xent_label / row_xent_target): a row's target is
//   kTarget: (1 - eps) t_c w_c + eps / K w_c,   else: (1 - eps) w_y onehot(y) + eps / K w_c,
// the eps / K terms over the K classes of the row that are not masked (z > -inf), w_c the
// class weights (kW; else 1). With tsum the target's sum and a = sum_c target_c (m - z_c)
// (a term of target 0 adds 0, as 0 log 0):
//   loss = tsum log(s) + a (+ zl lse^2),  grad = gscale w ((tsum + 2 zl lse) p - target).
// The statistics (K, SW = sum w_c and SA = sum w_c (m - z_c) over the unmasked classes, and
// the targets' sum and a) are taken in the exponentials' pass, in partial sums of kSumLane
// terms as `rest`; the loss and the gradient's factors in T's lanes. Where no lane holds a
// -inf logit (the common case), K = C and SW = wsum (the class weights' sum) and the
// passes test no class; else the logits are kept in a second tile for the gradient's mask.
// A row of -inf only: +inf (label; targets: +inf for target mass > 0, 0 for none) and a zero
// gradient; a +inf or NaN logit: a NaN gradient and loss (but 0 for targets of no mass
// without a z-loss: 0 log 0 on every class, as in row_xent_target).
template <class D, bool kTarget, bool kW, bool kMasked>
inline void lanes_soft_pass(typename D::T* tile, const typename D::T* ttile, const typename D::T* cw, int64_t C,
                            bool smooth, bool store, typename D::V m, typename D::V& ones, typename D::V& rest,
                            typename D::V& k, typename D::V& sw, typename D::V& sa, typename D::V& ts,
                            typename D::V& ta) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1)), zero = D::zero(), ninf = D::set1(-std::numeric_limits<T>::infinity());
  ones = rest = k = sw = sa = ts = ta = zero;
  for (int64_t c0 = 0; c0 < C; c0 += kSumLane) {
    const int64_t end = C - c0 < kSumLane ? C : c0 + kSumLane;
    V acc = zero, sa_acc = zero, sw_acc = zero, ts_acc = zero, ta_acc = zero;
    for (int64_t c = c0; c < end; ++c) {
      const V zc = D::load(tile + c * W);
      const V d = D::sub(zc, m);  // <= 0: w_c (m - z_c) = -(w_c d) exactly
      const V e = exp_nonpos<D>(d);
      const auto top = D::eq(zc, m);
      ones = D::add(ones, D::select(top, one, zero));
      acc = D::add(acc, D::zero_if(top, e));
      if (store) D::store(tile + c * W, e);
      // a class of weight 0 adds nothing (its m - z_c may overflow to inf: no 0 * inf)
      const bool wc_zero = kW && cw[c] == T(0);
      const V wc = kW ? D::set1(cw[c]) : one;
      if (smooth && !wc_zero) {
        const V term = kW ? D::mul(wc, d) : d;
        if constexpr (kMasked) {
          const auto live = D::gt(zc, ninf);
          k = D::add(k, D::select(live, one, zero));
          if (kW) sw_acc = D::add(sw_acc, D::select(live, wc, zero));
          sa_acc = D::add(sa_acc, D::select(live, term, zero));
        } else {
          sa_acc = D::add(sa_acc, term);
        }
      } else if (smooth && kMasked) {
        k = D::add(k, D::select(D::gt(zc, ninf), one, zero));
      }
      if constexpr (kTarget) {
        const V tc = kW ? D::mul(D::load(ttile + c * W), wc) : D::load(ttile + c * W);
        ts_acc = D::add(ts_acc, tc);
        ta_acc = D::add(ta_acc, D::zero_if(D::eq(tc, zero), D::mul(tc, d)));
      }
    }
    rest = D::add(rest, acc);
    sa = D::add(sa, sa_acc);
    if (kW) sw = D::add(sw, sw_acc);
    if (kTarget) ts = D::add(ts, ts_acc), ta = D::add(ta, ta_acc);
  }
  sa = D::sub(zero, sa), ta = D::sub(zero, ta);  // sums of w_c (m - z_c), t_c (m - z_c)
}

// zr / tr / outr, zcs / tcs / ocs as for lanes_xent_label (tr: the target rows, kTarget;
// y: the labels, else); w[i] the row's weight (> 0; the class weights act inside the row),
// cw the class weights (kW) and wsum their sum in double.
template <class D, class S, bool kTarget, bool kW>
XENT_NOINLINE void lanes_xent_soft(const S* const* zr, int64_t zcs, const S* const* tr, int64_t tcs,
                                   S* const* outr, int64_t ocs, const int64_t* y, const double* w, int n, int64_t C,
                                   const typename D::T* cw, double wsum, double eps, double gscale, double zl,
                                   double cap, bool* full, double* r) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];
  alignas(64) T ttile[kTarget ? kLanesMaxC * W : 1];
  alignas(64) T ztile[kLanesMaxC * W];  // the logits, where a lane holds a -inf and a gradient is due
  alignas(64) T dcap[kLanesMaxC * W];  // the cap's derivatives (cap > 0 and a gradient)
  alignas(64) T zy[W], wy[W], gw[W];  // z[y], (1 - eps) w_y and gscale * w per lane
  double wyd[W];                      // (1 - eps) w_y in double (the label's gradient term)
  lanes_tile_in<D, S>(zr, zcs, n, C, tile);
  lanes_softcap<D>(tile, C, cap, outr ? dcap : nullptr, full);
  if constexpr (kTarget) lanes_tile_in<D, S>(tr, tcs, n, C, ttile);
  for (int i = 0; i < W; ++i) {
    const bool in = i < n;
    wyd[i] = !kTarget && in ? (kW ? static_cast<double>(cw[y[i]]) : 1.0) * (1.0 - eps) : 0.0;
    zy[i] = !kTarget && in ? tile[y[i] * W + i] : T(0);
    wy[i] = static_cast<T>(wyd[i]);
    gw[i] = in ? static_cast<T>(gscale * w[i]) : T(0);
  }
  const V one = D::set1(T(1)), zero = D::zero();
  const V ninf = D::set1(-std::numeric_limits<T>::infinity()), pinf_v = D::sub(zero, ninf);
  const V nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  V lo;
  const V m = lanes_max<D, true>(tile, C, &lo);
  const bool masked = !D::none(D::eq(lo, ninf));
  const bool smooth = eps != 0.0, grad = outr != nullptr;
  if (masked && grad && smooth)
    for (int64_t c = 0; c < C; ++c) D::store(ztile + c * W, D::load(tile + c * W));
  V ones, rest, k, sw, sa, ts, ta;
  if (masked)
    lanes_soft_pass<D, kTarget, kW, true>(tile, ttile, cw, C, smooth, grad, m, ones, rest, k, sw, sa, ts, ta);
  else
    lanes_soft_pass<D, kTarget, kW, false>(tile, ttile, cw, C, smooth, grad, m, ones, rest, k, sw, sa, ts, ta);
  // K = C and SW = wsum in the lanes without a masked class, whatever their group holds: a
  // row's bits do not depend on its neighbours (nor, so, on the layout or the threads)
  const V vc = D::set1(static_cast<T>(C)), vw = D::set1(static_cast<T>(wsum));
  if (!masked) k = vc;
  sw = !kW ? k : masked ? D::select(D::eq(k, vc), vw, sw) : vw;
  const auto flat = D::eq(m, ninf);  // every logit -inf
  const auto pinf = D::eq(m, pinf_v);
  const V log_s = log_sum_ge1<D>(ones, rest);
  const V lse = D::add(m, log_s);
  const V ek = smooth ? D::div(D::set1(static_cast<T>(eps)), k) : zero;  // eps / K (K = 0: a flat row, set below)
  V tsum, a;
  if constexpr (kTarget) {
    // eps = 1 replaces the targets: their mass on a masked class (a = inf) must give 0
    const V keep = D::set1(static_cast<T>(1.0 - eps));
    tsum = eps == 1.0 ? zero : eps == 0.0 ? ts : D::mul(keep, ts);
    a = eps == 1.0 ? zero : eps == 0.0 ? ta : D::mul(keep, ta);
  } else {
    const V wyv = D::load(wy);
    tsum = wyv;
    a = D::zero_if(D::eq(wyv, zero), D::mul(wyv, D::sub(m, D::load(zy))));
  }
  if (smooth) {
    tsum = D::fma(ek, sw, tsum);
    a = D::fma(ek, sa, a);
  }
  V loss = D::add(D::zero_if(D::eq(tsum, zero), D::mul(tsum, log_s)), a);
  V pf = tsum;  // factor of p in the gradient: tsum + 2 zl lse
  if (zl != 0.0) {
    const V zlv = D::set1(static_cast<T>(zl));
    loss = D::fma(D::mul(zlv, lse), lse, loss);
    pf = D::fma(D::add(zlv, zlv), lse, pf);
  }
  // a flat row: +inf for a label; for targets +inf where their mass is > 0, 0 where none
  // (NaN targets: NaN)
  const V flat_loss = kTarget ? D::select(D::gt(ts, zero), pinf_v, D::select(D::eq(ts, zero), zero, ts)) : pinf_v;
  // a +inf logit: NaN, but for targets of no mass (nor z-loss), whose terms are all 0 log 0
  // as in row_xent_target (a NaN logit gives the same through the arithmetic)
  const V to_nan = D::select(pinf, kTarget && zl == 0.0 ? D::select(D::eq(tsum, zero), zero, one) : one, zero);
  alignas(64) T lv[W];
  D::store(lv, D::select(D::gt(to_nan, zero), nan, D::select(flat, flat_loss, loss)));
  for (int i = 0; i < n; ++i) r[i] = w[i] == 1.0 ? static_cast<double>(lv[i]) : static_cast<double>(lv[i]) * w[i];
  if (!grad) return;
  const V gwv = D::load(gw);
  const V f = D::zero_if(flat, D::div(D::mul(gwv, pf), D::add(ones, rest)));
  const V coef = D::mul(gwv, ek);                                // gscale w eps / K
  const V gtv = D::mul(gwv, D::set1(static_cast<T>(1.0 - eps)));  // gscale w (1 - eps), on t_c w_c
  for (int64_t c = 0; c < C; ++c) {
    const V e = D::load(tile + c * W);
    V g = D::zero_if(D::eq(e, zero), D::mul(e, f));  // (e = 0: 0, where f may be inf)
    if (smooth) {
      V cwc = kW ? D::set1(cw[c]) : coef;
      if (masked) cwc = D::select(D::gt(D::load(ztile + c * W), ninf), cwc, zero);
      g = kW ? D::fnma(coef, cwc, g) : D::sub(g, cwc);
    }
    if constexpr (kTarget) {
      if (eps != 1.0) {
        const V tc = kW ? D::mul(D::load(ttile + c * W), D::set1(cw[c])) : D::load(ttile + c * W);
        g = D::fnma(tc, gtv, g);
      }
    }
    D::store(tile + c * W, D::zero_if(flat, g));
  }
  if (!D::none(pinf))
    for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, D::select(pinf, nan, D::load(tile + c * W)));
  if constexpr (!kTarget) {
    // the label's term, finished in double and rounded once, as in row_xent_label
    alignas(64) T mv[W];
    D::store(mv, m);
    for (int i = 0; i < n; ++i)
      if (mv[i] != -std::numeric_limits<T>::infinity())
        tile[y[i] * W + i] = static_cast<T>(static_cast<double>(tile[y[i] * W + i]) - gscale * w[i] * wyd[i]);
  }
  if (cap > 0.0) mul_rows<D>(tile, dcap, C * W);  // the chain rule through the cap
  lanes_tile_out<D, S>(tile, n, C, outr, ocs);
}

// The poly-1 and focal losses of target distributions, a group of n (1..W) rows: every
// class's term as row_target_factor (xent_more-inl.hpp) computes it, in T's lanes, one
// vector per class for W rows. With G_c = a_c t_c g(p_c) (a: the class multipliers, focal's
// alpha times the class weights or poly-1's class weights; nullable) and -log p_c =
// (m - z_c) + log(s):
//   loss = sum_c a_c t_c f(p_c),  grad = gscale w ((sum_c G_c) p - G),
// terms of a_c t_c = 0 adding nothing (0 log 0), the loss summed in partial sums of kSumLane
// classes, q_c = 1 - p_c from the sums (the rest of the sum where z_c is the lane's max).
// A row of -inf only: +inf where a target has mass (a negative target adds itself), a
// zero gradient; a +inf or NaN logit: a NaN loss where a target has mass (0 for none) and
// a NaN gradient, as on the row kernels.
template <class D, class S, FactorKind K>
XENT_NOINLINE void lanes_target_factor(const S* const* zr, int64_t zcs, const S* const* tr, int64_t tcs,
                                       S* const* outr, int64_t ocs, const double* w, int n, int64_t C,
                                       const typename D::T* ca, double param, double gscale, double cap, bool* full,
                                       double* r) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];   // the logits, then their exponentials
  alignas(64) T ttile[kLanesMaxC * W];  // the targets, then G_c
  alignas(64) T dcap[kLanesMaxC * W];  // the cap's derivatives (cap > 0 and a gradient)
  lanes_tile_in<D, S>(zr, zcs, n, C, tile);
  lanes_softcap<D>(tile, C, cap, outr ? dcap : nullptr, full);
  lanes_tile_in<D, S>(tr, tcs, n, C, ttile);
  const V one = D::set1(T(1)), zero = D::zero(), prm = D::set1(static_cast<T>(param));
  const V ninf = D::set1(-std::numeric_limits<T>::infinity()), nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  const V m = lanes_max<D>(tile, C);
  V ones, rest;
  lanes_expsum<D, false>(tile, C, m, ones, rest);
  const V s = D::add(ones, rest), log_s = log_sum_ge1<D>(ones, rest);
  const V qtop = D::div(D::add(D::sub(ones, one), rest), s);
  const int ig = K == FactorKind::kFocal ? int_gamma(param) : 0;
  const auto flat = D::eq(m, ninf);
  const auto odd = D::eq(m, D::sub(zero, ninf));  // +inf (a NaN max: NaN arithmetic below)
  V loss = zero, gsum = zero, mass = zero;  // mass: the lanes' count of terms a_c t_c != 0
  for (int64_t c0 = 0; c0 < C; c0 += kSumLane) {
    const int64_t end = C - c0 < kSumLane ? C : c0 + kSumLane;
    V acc = zero;
    for (int64_t c = c0; c < end; ++c) {
      const V zc = D::load(tile + c * W);
      V tc = D::load(ttile + c * W);
      if (ca) tc = D::mul(tc, D::set1(ca[c]));
      const V d = D::sub(zc, m), e = exp_nonpos<D>(d);
      V lc, g;
      factor_terms<D, K>(d, e, D::add(D::sub(m, zc), log_s), s, qtop, prm, ig, lc, g);
      const auto none = D::eq(tc, zero);  // 0 log 0 = 0 (a NaN target is not 0: it propagates)
      // a fully masked lane: +inf per positive target (a negative one adds itself)
      const V term = D::select(flat, D::select(D::gt(tc, zero), D::sub(zero, ninf), tc), D::mul(tc, lc));
      acc = D::add(acc, D::zero_if(none, term));
      mass = D::add(mass, D::zero_if(none, one));
      const V gt = D::zero_if(none, D::mul(tc, g));
      gsum = D::add(gsum, gt);
      D::store(tile + c * W, e);
      D::store(ttile + c * W, gt);
    }
    loss = D::add(loss, acc);
  }
  // a +inf logit: NaN where a target has mass, as (inf - inf) gives on the row kernels
  loss = D::select(odd, D::select(D::gt(mass, zero), nan, zero), loss);
  alignas(64) T lv[W];
  D::store(lv, loss);
  for (int i = 0; i < n; ++i) r[i] = w[i] == 1.0 ? static_cast<double>(lv[i]) : static_cast<double>(lv[i]) * w[i];
  if (!outr) return;
  alignas(64) T gw[W];
  for (int i = 0; i < W; ++i) gw[i] = i < n ? static_cast<T>(gscale * w[i]) : T(0);
  const V vgw = D::load(gw);
  const V f = D::mul(vgw, D::div(gsum, s));
  for (int64_t c = 0; c < C; ++c) {
    const V e = D::load(tile + c * W);
    const V gc = D::sub(D::zero_if(D::eq(e, zero), D::mul(e, f)), D::mul(vgw, D::load(ttile + c * W)));
    D::store(tile + c * W, D::select(odd, nan, D::zero_if(flat, gc)));
  }
  if (cap > 0.0) mul_rows<D>(tile, dcap, C * W);  // the chain rule through the cap
  lanes_tile_out<D, S>(tile, n, C, outr, ocs);
}

// Which lanes kernel a call's rows take, and its options (softmax_units_lanes).
template <class T>
struct LanesXent {
  int64_t C;
  const T* cw;  // class weights acting inside the row (smoothing, targets; else applied by the caller)
  double wsum;  // their sum
  double eps;   // label smoothing
  double zl;    // z-loss
  double cap;   // soft cap (0: none)
  bool target;  // target distributions (tr), else integer labels (y)
  // the poly-1 or focal loss of integer labels (`kind`, of parameter `param`) instead of
  // cross-entropy; a per-row multiplier a (focal's alpha[y]) is given to lanes_xent
  bool factor = false;
  FactorKind kind = FactorKind::kPoly1;
  double param = 0.0;
  const T* ca = nullptr;  // with targets: the class multipliers (jobs.hpp's class_a)
};
// One group of rows (kept a call: softmax_units_lanes calls it from its group fill of rows of
// weight 1 and from its general loop; inlined at both, the code layout made loss-only calls
// at 3-10 float32 classes 1.3-1.4x slower in one build, 1 thread, AVX-512).
template <class D, class S>
XENT_NOINLINE void lanes_xent(const LanesXent<typename D::T>& o, const S* const* zr, int64_t zcs,
                              const S* const* tr, int64_t tcs, S* const* outr, int64_t ocs, const int64_t* y,
                              const double* w, int n, double gscale, bool* full, double* r,
                              const double* a = nullptr) {
  if (o.factor && o.target) {
    if (o.kind == FactorKind::kFocal)
      lanes_target_factor<D, S, FactorKind::kFocal>(zr, zcs, tr, tcs, outr, ocs, w, n, o.C, o.ca, o.param, gscale,
                                                    o.cap, full, r);
    else
      lanes_target_factor<D, S, FactorKind::kPoly1>(zr, zcs, tr, tcs, outr, ocs, w, n, o.C, o.ca, o.param, gscale,
                                                    o.cap, full, r);
  } else if (o.factor) {
    const LanesFactor fac{o.param, a};
    if (o.kind == FactorKind::kFocal)
      lanes_xent_label_factor<D, S, FactorKind::kFocal>(zr, zcs, outr, ocs, y, w, n, o.C, gscale, o.cap, full, r, fac);
    else
      lanes_xent_label_factor<D, S, FactorKind::kPoly1>(zr, zcs, outr, ocs, y, w, n, o.C, gscale, o.cap, full, r, fac);
  } else if (o.target) {
    if (o.cw) lanes_xent_soft<D, S, true, true>(zr, zcs, tr, tcs, outr, ocs, y, w, n, o.C, o.cw, o.wsum, o.eps, gscale, o.zl, o.cap, full, r);
    else lanes_xent_soft<D, S, true, false>(zr, zcs, tr, tcs, outr, ocs, y, w, n, o.C, o.cw, o.wsum, o.eps, gscale, o.zl, o.cap, full, r);
  } else if (o.eps != 0.0) {
    if (o.cw) lanes_xent_soft<D, S, false, true>(zr, zcs, tr, tcs, outr, ocs, y, w, n, o.C, o.cw, o.wsum, o.eps, gscale, o.zl, o.cap, full, r);
    else lanes_xent_soft<D, S, false, false>(zr, zcs, tr, tcs, outr, ocs, y, w, n, o.C, o.cw, o.wsum, o.eps, gscale, o.zl, o.cap, full, r);
  } else if (o.cap > 0.0) {
    lanes_xent_label_capped<D, S>(zr, zcs, outr, ocs, y, w, n, o.C, gscale, o.zl, o.cap, full, r);
  } else {
    lanes_xent_label<D, S>(zr, zcs, outr, ocs, y, w, n, o.C, gscale, o.zl, 0.0, full, r);
  }
}

// logsumexp (r[i], outr unused), softmax or log_softmax (into outr[i]; r[i] = 0) of a group of n
// (1..W) rows, with the row kernels' special values (softmax-inl.hpp): a row of -inf only
// gives lse -inf, softmax 0 and log_softmax -inf; a +inf logit lse +inf and a softmax /
// log_softmax of NaN; a NaN, NaN everywhere. The arithmetic is the loss's above, in T's
// lanes (float32 rows sum in float32, as above), so a row's results depend
// neither on its group nor on the memory layout.
template <class D, class S>
inline void lanes_normalize(SoftmaxOp op, const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs, int n,
                            int64_t C, double cap, bool* full, double* r) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];
  lanes_tile_in<D, S>(zr, zcs, n, C, tile);
  lanes_softcap<D>(tile, C, cap, nullptr, full);
  const V m = lanes_max<D>(tile, C);
  V ones, rest;
  if (op == SoftmaxOp::kSoftmax)
    lanes_expsum<D, true>(tile, C, m, ones, rest);
  else
    lanes_expsum<D, false>(tile, C, m, ones, rest);
  const V ninf = D::set1(-std::numeric_limits<T>::infinity()), nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  const auto flat = D::eq(m, ninf);
  const auto pinf = D::eq(m, D::sub(D::zero(), ninf));
  const V log_s = log_sum_ge1<D>(ones, rest);
  if (op == SoftmaxOp::kLogsumexp) {  // m + log(s) in double, rounded once to T by the caller
    alignas(64) T mv[W], lv[W];
    D::store(mv, m);
    D::store(lv, log_s);
    for (int i = 0; i < n; ++i) r[i] = static_cast<double>(mv[i]) + static_cast<double>(lv[i]);
    return;  // (-inf, +inf and NaN rows as they come)
  }
  for (int i = 0; i < n; ++i) r[i] = 0.0;
  if (op == SoftmaxOp::kSoftmax) {
    const V f = D::select(pinf, nan, D::div(D::set1(T(1)), D::add(ones, rest)));
    for (int64_t c = 0; c < C; ++c)
      D::store(tile + c * W, D::zero_if(flat, D::mul(D::load(tile + c * W), f)));
  } else {
    const V l = D::select(pinf, nan, log_s);
    for (int64_t c = 0; c < C; ++c)
      D::store(tile + c * W, D::select(flat, ninf, D::sub(D::sub(D::load(tile + c * W), m), l)));
  }
  lanes_tile_out<D, S>(tile, n, C, outr, ocs);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
