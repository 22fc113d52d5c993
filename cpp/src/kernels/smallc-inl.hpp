// The softmax family for small C ("rows in lanes"): integer-label cross-entropy, and
// logsumexp, softmax and log_softmax (lanes_normalize), W rows at a time, one row per
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
// up to 1.20x slower), else element by element; half rows converted to float32 a row at a time (row:
// kLanesMaxC floats). Lanes n..W-1 of the tile get 0 (a finite row of no one's).
template <class D, class S>
inline void lanes_tile_in(const S* const* zr, int64_t zcs, int n, int64_t C, typename D::T* tile,
                          typename D::T* row) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  if constexpr (!std::is_same_v<S, T>) {
    for (int i = 0; i < n; ++i) {
      load_row<D, S>(zr[i], zcs, C, row);
      for (int64_t c = 0; c < C; ++c) tile[c * W + i] = row[c];
    }
  } else {
    (void)row;
    bool adjacent = n == W && W > 1;
    for (int i = 1; i < n && adjacent; ++i) adjacent = zr[i] == zr[0] + i;
    if (adjacent) {
      for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, D::load(zr[0] + c * zcs));
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
      const int64_t s = zr[1] - zr[0], bytes = W * s * static_cast<int64_t>(sizeof(T));
      if (s >= C && s <= 2 * C && (sizeof(T) == 8 || bytes >= 4096)) {
        const char* next = reinterpret_cast<const char*>(zr[W - 1] + s);
        for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(next + b);
      }
    }
    for (int64_t c0 = 0; c0 < cw; c0 += W) {
      V v[W];
      for (int i = 0; i < W; ++i) v[i] = D::load(zr[i] + c0);
      D::transpose(v);
      for (int k = 0; k < W; ++k) D::store(tile + (c0 + k) * W, v[k]);
    }
    if (const int64_t r = C - cw; r > 0 && D::kMaskedTail && n == W && zcs == 1) {  // the rest: masked
      V v[W];
      for (int i = 0; i < W; ++i) v[i] = D::load_tail(zr[i] + cw, r, T(0));
      D::transpose(v);
      for (int64_t k = 0; k < r; ++k) D::store(tile + (cw + k) * W, v[k]);
    } else {
      for (int i = 0; i < n; ++i)
        for (int64_t c = cw; c < C; ++c) tile[c * W + i] = zr[i][c * zcs];
    }
  }
  for (int i = n; i < W; ++i)
    for (int64_t c = 0; c < C; ++c) tile[c * W + i] = T(0);
}

// The tile's lanes 0..n-1 back to their rows (the inverse of lanes_tile_in; half rows
// rounded to nearest even).
template <class D, class S>
inline void lanes_tile_out(const typename D::T* tile, int n, int64_t C, S* const* outr, int64_t ocs,
                           typename D::T* row) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  if constexpr (!std::is_same_v<S, T>) {
    for (int i = 0; i < n; ++i) {
      for (int64_t c = 0; c < C; ++c) row[c] = tile[c * W + i];
      store_row<D, S>(row, C, outr[i], ocs);
    }
  } else {
    (void)row;
    bool adjacent = n == W && W > 1;
    for (int i = 1; i < n && adjacent; ++i) adjacent = outr[i] == outr[0] + i;
    if (adjacent) {
      for (int64_t c = 0; c < C; ++c) D::store(outr[0] + c * ocs, D::load(tile + c * W));
      return;
    }
    const int64_t cw = n == W && ocs == 1 && W > 1 ? C - C % W : 0;
    for (int64_t c0 = 0; c0 < cw; c0 += W) {
      V v[W];
      for (int k = 0; k < W; ++k) v[k] = D::load(tile + (c0 + k) * W);
      D::transpose(v);
      for (int i = 0; i < W; ++i) D::store(outr[i] + c0, v[i]);
    }
    if (const int64_t r = C - cw; r > 0 && D::kMaskedTail && n == W && ocs == 1) {
      V v[W];
      for (int k = 0; k < W; ++k) v[k] = k < r ? D::load(tile + (cw + k) * W) : D::zero();
      D::transpose(v);
      for (int i = 0; i < W; ++i) D::store_tail(outr[i] + cw, v[i], r);
    } else {
      for (int i = 0; i < n; ++i)
        for (int64_t c = cw; c < C; ++c) outr[i][c * ocs] = tile[c * W + i];
    }
  }
}

// Each lane's max over the tile's C classes. Max ignores NaN (the x86 rule, on every ISA):
// NaNs are counted apart, and the max of a lane holding one is NaN, so that its whole row
// is NaN even if its other logits are all -inf.
template <class D>
XENT_FORCE_INLINE typename D::V lanes_max(const typename D::T* tile, int64_t C) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1)), zero = D::zero();
  V m = D::load(tile), nans = D::select(D::eq(m, m), zero, one);
  for (int64_t c = 1; c < C; ++c) {
    const V zc = D::load(tile + c * W);
    m = D::max(zc, m);
    nans = D::add(nans, D::select(D::eq(zc, zc), zero, one));
  }
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

// One group of n (1..W) rows. zr[i]/outr[i]: row i's logits / gradient (outr null: no
// gradient), class strides zcs/ocs; y[i] its label (in range), w[i] its weight (> 0).
// Writes row i's weighted loss to r[i].
template <class D, class S>
inline void lanes_xent_label(const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs,
                             const int64_t* y, const double* w, int n, int64_t C, double gscale, double zl,
                             double* r) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];
  alignas(64) T zy[W], gw[W];  // z[y] and gscale * w per lane
  constexpr bool kHalf = !std::is_same_v<S, T>;
  alignas(64) T row[kHalf ? kLanesMaxC : 1];  // one row in float32 (half storage)
  lanes_tile_in<D, S>(zr, zcs, n, C, tile, row);
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
  for (int i = 0; i < n; ++i) r[i] = w[i] == 1.0 ? static_cast<double>(lv[i]) : static_cast<double>(lv[i]) * w[i];
  if (!outr) return;
  const V f = D::zero_if(flat, D::div(D::mul(D::load(gw), pf), D::add(ones, rest)));
  // e = 0 gives 0 even where f overflowed to inf (z-loss with a huge lse): no 0 * inf = NaN
  for (int64_t c = 0; c < C; ++c) {
    const V e = D::load(tile + c * W);
    D::store(tile + c * W, D::zero_if(flat, D::zero_if(D::eq(e, zero), D::mul(e, f))));
  }
  if (any_pinf)  // rare: no test per vector above (e = 0 at the finite logits of such a row)
    for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, D::select(D::eq(m, pinf_v), nan, D::load(tile + c * W)));
  alignas(64) T mv[W];
  D::store(mv, m);
  // the label's term, finished in double and rounded once (to float32 first for half rows)
  for (int i = 0; i < n; ++i)
    if (mv[i] != -std::numeric_limits<T>::infinity())
      tile[y[i] * W + i] = static_cast<T>(static_cast<double>(tile[y[i] * W + i]) - gscale * w[i]);
  lanes_tile_out<D, S>(tile, n, C, outr, ocs, row);
}

// logsumexp (r[i], outr unused), softmax or log_softmax (into outr[i]; r[i] = 0) of a group of n
// (1..W) rows, with the row kernels' special values (softmax-inl.hpp): a row of -inf only
// gives lse -inf, softmax 0 and log_softmax -inf; a +inf logit lse +inf and a softmax /
// log_softmax of NaN; a NaN, NaN everywhere. The arithmetic is the loss's above, in T's
// lanes (float32 rows sum in float32, as above), so a row's results depend
// neither on its group nor on the memory layout.
template <class D, class S>
inline void lanes_normalize(SoftmaxOp op, const S* const* zr, int64_t zcs, S* const* outr, int64_t ocs, int n,
                            int64_t C, double* r) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  alignas(64) T tile[kLanesMaxC * W];
  alignas(64) T row[std::is_same_v<S, T> ? 1 : kLanesMaxC];
  lanes_tile_in<D, S>(zr, zcs, n, C, tile, row);
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
  lanes_tile_out<D, S>(tile, n, C, outr, ocs, row);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
