// Softmax cross-entropy with integer labels for small C ("rows in lanes"): W rows at a
// time, one row per vector lane, so a row of 2..kLanesMaxC classes costs no horizontal
// reduction, no block bookkeeping and no scalar libm call. The row kernels of xent-inl.hpp
// do the opposite (classes in lanes), which wastes most of each vector and pays a fixed
// cost per row when C is a handful of classes.
//
// A group of n <= W rows is transposed (scalar loads through the class stride, so any
// class axis works) into a tile t[c * W + lane]; then, per lane:
//   m = max_c z_c,  e_c = exp(z_c - m),  ones = #{c : z_c == m},  rest = sum of the other e_c,
//   loss = (m - z_y) + log(ones + rest) (+ zl * lse^2),  grad = f * e - gscale * w * onehot(y),
//   f = gscale * w * (1 + 2 zl lse) / (ones + rest).
// As in row_lse, the exp(0) = 1 terms are counted apart from the rest, so a confident row
// (rest tiny) keeps the full relative accuracy of log1p(rest). Sums have at most
// kLanesMaxC terms, so float32 lanes stay within the accuracy contract without the double
// flushes of block_expsum. Half storage (S = f16_t / bf16_t, float lanes): each row is
// converted to float32 on its way into the tile and rounded back on its way out
// (half-inl.hpp), with the label's term finished in float32 first, as for float32 input.
// NaN and +inf propagate to their own lane (row) only; a lane whose
// logits are all -inf gives +inf and a zero gradient; a row of weight 0 gives 0 and zeros.
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
  // The tile's moves: a vector per class where the W rows are adjacent (class-major: a
  // Fortran-order array), W x W register transposes where they are contiguous rows (C order),
  // else element by element
  bool adjacent = false, contiguous = false;
  if constexpr (!kHalf) {
    adjacent = n == W && W > 1;
    for (int i = 1; i < n && adjacent; ++i) adjacent = zr[i] == zr[0] + i;
    contiguous = !adjacent && n == W && zcs == 1 && W > 1;
  }
  const int64_t cw = contiguous ? C - C % W : 0;  // classes moved by transposes
  if constexpr (!kHalf) {
    if (adjacent) {
      for (int64_t c = 0; c < C; ++c) D::store(tile + c * W, D::load(zr[0] + c * zcs));
    } else if (contiguous) {
      for (int64_t c0 = 0; c0 < cw; c0 += W) {
        V v[W];
        for (int i = 0; i < W; ++i) v[i] = D::load(zr[i] + c0);
        D::transpose(v);
        for (int k = 0; k < W; ++k) D::store(tile + (c0 + k) * W, v[k]);
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if constexpr (kHalf) {
      load_row<D, S>(zr[i], zcs, C, row);
      for (int64_t c = 0; c < C; ++c) tile[c * W + i] = row[c];
      zy[i] = row[y[i]];
    } else {
      const T* z = zr[i];
      if (!adjacent)
        for (int64_t c = cw; c < C; ++c) tile[c * W + i] = z[c * zcs];
      zy[i] = z[y[i] * zcs];
    }
    gw[i] = static_cast<T>(gscale * w[i]);
  }
  for (int i = n; i < W; ++i) {
    for (int64_t c = 0; c < C; ++c) tile[c * W + i] = T(0);
    zy[i] = gw[i] = T(0);
  }
  const V one = D::set1(T(1)), zero = D::zero();
  // max ignores NaN (the x86 rule, on every ISA): count NaNs apart, and make the max of a
  // lane holding one NaN, so the whole row is NaN even if its other logits are all -inf
  V m = D::load(tile), nans = D::select(D::eq(m, m), zero, one);
  for (int64_t c = 1; c < C; ++c) {
    const V zc = D::load(tile + c * W);
    m = D::max(zc, m);
    nans = D::add(nans, D::select(D::eq(zc, zc), zero, one));
  }
  m = D::select(D::gt(nans, zero), D::set1(std::numeric_limits<T>::quiet_NaN()), m);
  V ones = zero, rest = zero;
  for (int64_t c = 0; c < C; ++c) {
    const V zc = D::load(tile + c * W);
    const V e = exp_nonpos<D>(D::sub(zc, m));
    const auto top = D::eq(zc, m);
    ones = D::add(ones, D::select(top, one, zero));
    rest = D::add(rest, D::zero_if(top, e));
    if (outr) D::store(tile + c * W, e);
  }
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  const auto flat = D::eq(m, ninf);  // every logit -inf: +inf loss, zero gradient
  const V log_s = log_sum_ge1<D>(ones, rest);
  const V lse = D::add(m, log_s);  // +inf for a +inf logit
  V loss = D::add(D::sub(m, D::load(zy)), log_s);
  V pf = one;  // factor of p in the gradient: 1 + 2 zl lse
  if (zl != 0.0) {
    const V zlv = D::set1(static_cast<T>(zl));
    loss = D::fma(D::mul(zlv, lse), lse, loss);
    pf = D::fma(D::add(zlv, zlv), lse, one);
  }
  alignas(64) T lv[W];
  D::store(lv, D::select(flat, D::sub(zero, ninf), loss));
  for (int i = 0; i < n; ++i) r[i] = w[i] == 1.0 ? static_cast<double>(lv[i]) : static_cast<double>(lv[i]) * w[i];
  if (!outr) return;
  const V f = D::zero_if(flat, D::div(D::mul(D::load(gw), pf), D::add(ones, rest)));
  // e = 0 gives 0 even where f overflowed to inf (z-loss with a huge lse): no 0 * inf = NaN
  for (int64_t c = 0; c < C; ++c) {
    const V e = D::load(tile + c * W);
    D::store(tile + c * W, D::zero_if(flat, D::zero_if(D::eq(e, zero), D::mul(e, f))));
  }
  alignas(64) T mv[W];
  D::store(mv, m);
  bool out_adjacent = false, out_contiguous = false;  // (as the logits' moves above)
  if constexpr (!kHalf) {
    out_adjacent = n == W && W > 1;
    for (int i = 1; i < n && out_adjacent; ++i) out_adjacent = outr[i] == outr[0] + i;
    out_contiguous = !out_adjacent && n == W && ocs == 1 && W > 1;
    if (out_adjacent) {
      for (int64_t c = 0; c < C; ++c) D::store(outr[0] + c * ocs, D::load(tile + c * W));
    } else if (out_contiguous) {
      for (int64_t c0 = 0; c0 + W <= C; c0 += W) {
        V v[W];
        for (int k = 0; k < W; ++k) v[k] = D::load(tile + (c0 + k) * W);
        D::transpose(v);
        for (int i = 0; i < W; ++i) D::store(outr[i] + c0, v[i]);
      }
    }
  }
  const int64_t ocw = out_adjacent ? C : out_contiguous ? C - C % W : 0;  // classes already written
  for (int i = 0; i < n; ++i) {
    if constexpr (kHalf) {
      for (int64_t c = 0; c < C; ++c) row[c] = tile[c * W + i];
      if (mv[i] != -std::numeric_limits<T>::infinity())
        row[y[i]] = static_cast<T>(static_cast<double>(row[y[i]]) - gscale * w[i]);
      store_row<D, S>(row, C, outr[i], ocs);
    } else {
      T* g = outr[i];
      for (int64_t c = ocw; c < C; ++c) g[c * ocs] = tile[c * W + i];
      if (mv[i] != -std::numeric_limits<T>::infinity())
        g[y[i] * ocs] = static_cast<T>(static_cast<double>(tile[y[i] * W + i]) - gscale * w[i]);
    }
  }
}

}  // namespace XENT_ISA_NS
}  // namespace xent
