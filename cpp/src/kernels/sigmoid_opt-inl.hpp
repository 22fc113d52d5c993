// Sigmoid cross-entropy with options over a contiguous run of elements (the plain loss
// without options keeps its own kernel in sigmoid-inl.hpp).
//
// Options (python/xent/_sigmoid.py states them for users):
//   label smoothing (Keras): t <- (1 - eps) t + eps/2, and 1 - t <- (1 - eps)(1 - t) + eps/2,
//     each a sum of terms >= 0 (1 - t is not recomputed from the rounded t: for large z the
//     loss is z (1 - t) and would lose digits).
//   pos_weight q (PyTorch): l = (1 - t) z + b softplus(-z), b = (1 - t) + q t; split by the
//     sign of z like the plain loss, with e = exp(-|z|) and L = log1p(e):
//       z >= 0: l = z (1 - t) + b L,   dl/dz = (1 - t) - b e/(1+e)
//       z <  0: l = -z q t   + b L,    dl/dz = b e/(1+e) - q t
//     (q = 1 gives the plain loss); every term is >= 0 for t in [0, 1], so nothing cancels.
//   soft-capping (as the softmax losses): z <- c tanh(z / c) first, and the gradient is
//     multiplied by sech^2(z / c) (tanh_v's cancellation-free second result); -inf stays -inf
//     (a logit of probability 0) with derivative 0, +inf becomes c.
//   weights: the element loss and gradient are multiplied by class_w * elem_w * row_w, one
//     factor at a time (apply_weights); an element of weight 0 contributes exactly 0 (even
//     with an infinite or NaN loss).
//
// The focal loss, which shares SigmoidRunOpts, is in sigmoid_focal-inl.hpp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include "kernels/softcap-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

// Per-run options: element-aligned pointers (nullable) and scalars.
template <class T>
struct SigmoidRunOpts {
  const T* cw = nullptr;  // class weight of each element
  const T* pw = nullptr;  // pos_weight of each element
  const T* ew = nullptr;  // element weight (sample weight broadcast), contiguous
  // or one element weight per row (not with ew; not read by the focal loss): rows of row_len
  // elements, the run starting row_at elements into the row of weight rws[0]; row_len at
  // least the vector width, so that a vector spans at most two rows, and rws readable one
  // weight past the run's last row (a vector's lanes past the run read it)
  const T* rws = nullptr;
  int64_t row_len = 0, row_at = 0;
  T rw = T(1);            // one weight for the whole run
  double eps = 0.0;       // label smoothing
  bool focal = false;
  double gamma = 0.0, alpha = -1.0;
  double softcap = 0.0;   // > 0: z -> c tanh(z / c) first (not with focal)
  T cw_min = T(0);        // no class weight is below it (0: unknown; the zero tests run)
  T ew_min = T(0);        // no element weight is below it (0: unknown; the zero tests run)
  bool general = false;   // tests: the kAny loop whatever the options (run_sigmoid_opt)
  bool prefetch = false;  // each block's z, t and gradient prefetched kPrefetchAhead bytes on
                          // (the option loops and the integer-gamma focal loop), and ew in
                          // the option loops (10M float32 elements, 1 thread: 0.95x the time
                          // with the weights' check, float64 0.93x)
};

// The weights of consecutive vectors of a run over rows of len >= D::W elements, one weight
// per row (w[0] the row the run starts in, at element at of it; w readable one past the run's
// last row): a broadcast for a vector in one row, the two rows' weights blended for a vector
// spanning two. next() gives the next vector's; call it once per vector, in order.
template <class D>
struct RowWeights {
  using T = typename D::T;
  using V = typename D::V;
  const T* w;
  int64_t len, left;  // the current row's elements from the next vector on
  V lane;             // lane indices
  // Whether rows of len elements can take it: a vector spans at most two of them, and (2 or
  // more elements) a unit's buffer of its elements holds their weights and the one past them.
  static bool fits(int64_t row_len) { return row_len >= std::max<int64_t>(D::W, 2); }
  RowWeights(const T* rows, int64_t row_len, int64_t at) : w(rows), len(row_len), left(row_len - at) {
    alignas(64) T idx[D::W];
    for (int l = 0; l < D::W; ++l) idx[l] = static_cast<T>(l);
    lane = D::load(idx);
  }
  XENT_FORCE_INLINE V next() {
    if (left >= D::W) {  // the vector in one row
      const V v = D::set1(*w);
      left -= D::W;
      if (left == 0) {
        ++w;
        left = len;
      }
      return v;
    }
    const V v = D::select(D::ge(lane, D::set1(static_cast<T>(left))), D::set1(w[1]), D::set1(w[0]));
    ++w;
    left += len - D::W;
    return v;
  }
};

// The weights of an element's loss and gradient, applied after the unweighted values one
// finite factor at a time, never as a product of weights formed first (which can overflow
// where the weighted result does not, and give inf * 0 = NaN): loss * e * c * r and
// g * e * (gscale r) * c, with e the element (sample) weight, c the class weight (times any
// other factor of the element), r the run's one weight. For a weighted "mean" e gscale <= 1
// and r gscale <= 1 (Python rescales the sample weights so, _weights.py), so the gradient
// overflows only where its exact value does; a lane whose factors' product is 0 is exactly 0.
// has_e / has_c / has_r: which factors exist (an absent one is 1 and costs nothing).
// zero_test false: the caller knows no product of the factors is 0 (then the test is the
// identity and is skipped).
// Forced inline: called per vector with loop-invariant flags (a call measured ~20% slower).
template <class D>
XENT_FORCE_INLINE void apply_weights(typename D::V& loss, typename D::V& g, bool want_grad, bool has_e, typename D::V e,
                                     bool has_c, typename D::V c, bool has_r, typename D::V r, typename D::V gsr,
                                     bool zero_test = true) {
  using V = typename D::V;
  V w = has_e ? e : c;  // the factors' product, for the zero test only
  if (zero_test) {
    if (has_e && has_c) w = D::mul(w, c);
    if (has_r) w = (has_e || has_c) ? D::mul(w, r) : r;
  }
  const auto w0 = D::eq(w, D::zero());
  V l = loss;
  if (has_e) l = D::mul(l, e);
  if (has_c) l = D::mul(l, c);
  if (has_r) l = D::mul(l, r);
  loss = zero_test ? D::zero_if(w0, l) : l;
  if (want_grad) {
    V q = has_e ? D::mul(g, e) : g;
    q = D::mul(q, gsr);
    if (has_c) q = D::mul(q, c);
    g = zero_test ? D::zero_if(w0, q) : q;
  }
}

template <class D>
struct SigmoidOptStep {
  using T = typename D::T;
  using V = typename D::V;
  V loss, grad;
  // t: smoothed target, omt: 1 - t (each computed from the raw target), q: pos_weight.
  static XENT_FORCE_INLINE SigmoidOptStep bce(V z, V t, V omt, V q, bool has_q, bool want_grad) {
    const V e = exp_nonpos<D>(D::sub(D::zero(), D::abs(z)));
    return bce_from(z, t, omt, q, has_q, want_grad, e, log1p_unit<D>(e));
  }
  // the rest, from e = exp(-|z|) and l1p = log1p(e) (sigmoid_exp_log_stages)
  static XENT_FORCE_INLINE SigmoidOptStep bce_from(V z, V t, V omt, V q, bool has_q, bool want_grad, V e, V l1p) {
    const V one = D::set1(T(1)), zero = D::zero();
    const auto pos = D::ge(z, zero);
    const V qt = has_q ? D::mul(q, t) : t;
    const V a = D::select(pos, omt, D::sub(zero, qt));
    const V lin = D::zero_if(D::eq(a, zero), D::mul(z, a));
    SigmoidOptStep r;
    if (has_q) {
      const V b = D::add(omt, qt);
      r.loss = D::add(lin, D::mul(b, l1p));
      if (want_grad) {
        const V bq = D::div(D::mul(b, e), D::add(one, e));
        r.grad = D::select(pos, D::sub(omt, bq), D::sub(bq, qt));
      }
    } else {
      r.loss = D::add(lin, l1p);
      if (want_grad) {
        const V qe = D::div(e, D::add(one, e));
        r.grad = D::select(pos, D::sub(omt, qe), D::sub(qe, t));
      }
    }
    return r;
  }
};

}  // namespace XENT_ISA_NS
}  // namespace xent

#include "kernels/sigmoid_focal-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

// Which options a run has: bits of SigOpt, fixed at compile time for the common
// combinations (the dead branches compile away: fewer live constants and tests per vector),
// or kAny: read at run time (softcap, and the combinations not instantiated).
// kZeroTest: some product of the weights can be 0 (apply_weights' zero_test). kRowW (with
// kElemW): the element weights come one per row (SigmoidRunOpts::rws, through RowWeights).
enum SigOpt : int {
  kSmooth = 1, kPosW = 2, kElemW = 4, kClassW = 8, kRunW = 16, kZeroTest = 32, kCap = 64, kAny = 128, kRowW = 256
};

// Whether a loop of option set F can have the softcap.
constexpr bool capped_max(int F) { return (F & (kAny | kCap)) != 0; }

// Returns total0 plus the sum of the weighted element losses (float sums of kSumLane terms per
// lane, added in double, a block of kSumLane vectors at a time: a run split at multiples of
// kSumLane * W, each part given the previous parts' total, sums to the same bits).
// loss_elem (nullable) receives each element's weighted loss; grad (nullable) gscale * its
// derivative.
template <class D, bool Grad, int F>
inline double run_sigmoid_opt_f(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                                typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o,
                                double total0 = 0.0) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr bool any = (F & kAny) != 0;
  const V gs = D::set1(static_cast<T>(gscale)), one = D::set1(T(1));
  constexpr bool want_grad = Grad;
  const bool smooth = any ? o.eps != 0.0 : (F & kSmooth) != 0;
  const bool has_q = any ? o.pw != nullptr : (F & kPosW) != 0;
  const bool has_e = any ? (o.ew != nullptr || o.rws != nullptr) : (F & kElemW) != 0;
  const bool by_row = any ? o.rws != nullptr : (F & kRowW) != 0;
  const bool has_c = any ? o.cw != nullptr : (F & kClassW) != 0;
  const bool has_rw = any ? o.rw != T(1) : (F & kRunW) != 0;
  const bool capped = any ? o.softcap > 0.0 : (F & kCap) != 0;
  const bool zero_test = any || (F & kZeroTest) != 0;
  const V c1 = D::set1(static_cast<T>(1.0 - o.eps)), c0 = D::set1(static_cast<T>(0.5 * o.eps));
  const V rw = D::set1(o.rw), gsr = D::set1(static_cast<T>(gscale * static_cast<double>(o.rw)));
  const bool has_w = has_c || has_e || has_rw;
  // e = exp(-|z|) and log1p(e) of a block's full vectors, staged; with the cap, the block's
  // capped logits and their derivatives first (softcap_row, as the softmax losses cap them:
  // zcb, dcb), and e of those
  constexpr int64_t kB = kSumLane * W;
  alignas(64) T eb[kB], lb[kB], zcb[capped_max(F) ? kB : 1], dcb[capped_max(F) ? kB : 1];
  bool cap_full = false;  // softcap_row's mode, kept from block to block
  int64_t b0 = 0;
  RowWeights<D> row_w(o.rws, by_row ? o.row_len : W, by_row ? o.row_at : 0);
  // one vector of W elements starting at i; k < W lanes valid (padding: z = t = 0, w = 0 or a
  // row weight; never stored or summed);
  // a full vector takes e and log1p(e) from eb and lb
  auto step = [&](int64_t i, int64_t k) -> V {
    const bool full = k == W;
    auto ld = [&](const T* p, T fill) { return full ? D::load(p + i) : D::load_tail(p + i, k, fill); };
    V zv = ld(z, T(0));
    const V tv = ld(t, T(0));
    V dcap = one;  // d(capped z)/dz
    if (capped_max(F) && capped) {
      zv = full ? D::load(zcb + (i - b0)) : D::load_tail(zcb + (i - b0), k, T(0));
      dcap = full ? D::load(dcb + (i - b0)) : D::load_tail(dcb + (i - b0), k, T(0));
    }
    V tt = tv, omt = D::sub(one, tv);
    if (smooth) {
      tt = D::fma(tv, c1, c0);
      omt = D::fma(omt, c1, c0);
    }
    const V q = has_q ? ld(o.pw, T(0)) : one;
    const SigmoidOptStep<D> s =
        full ? SigmoidOptStep<D>::bce_from(zv, tt, omt, q, has_q, want_grad, D::load(eb + (i - b0)),
                                             D::load(lb + (i - b0)))
               : SigmoidOptStep<D>::bce(zv, tt, omt, q, has_q, want_grad);
    V loss = s.loss, g = s.grad;
    if (capped && want_grad) g = D::mul(g, dcap);
    if (has_w) {
      V ev = one;
      if (has_e && by_row) {  // (steps come in order)
        ev = row_w.next();
      } else if (has_e) {
        ev = ld(o.ew, T(0));
      }
      const V cv = has_c ? ld(o.cw, T(0)) : one;
      apply_weights<D>(loss, g, want_grad, has_e, ev, has_c, cv, has_rw, rw, gsr, zero_test);
    } else if (want_grad) {
      g = D::mul(g, gs);
    }
    if (full) {
      if (loss_elem) D::store(loss_elem + i, loss);
      if (want_grad) D::store(grad + i, g);
    } else {
      if (loss_elem) D::store_tail(loss_elem + i, loss, k);
      if (want_grad) D::store_tail(grad + i, g, k);
    }
    return loss;
  };
  double total = total0;
  for (; b0 < n; b0 += kB) {
    const int64_t end = n - b0 < kB ? n : b0 + kB;
    V acc = D::zero();
    int64_t i = b0;
    const int64_t nfull = (end - b0) / W * W;
    if (o.prefetch) {
      prefetch_ahead(z + b0, end - b0);
      prefetch_ahead(t + b0, end - b0);
      if (want_grad) prefetch_ahead<true>(grad + b0, end - b0);
      if (has_e && !by_row) prefetch_ahead(o.ew + b0, end - b0);
    }
    if (capped_max(F) && capped) {
      softcap_row<D>(z + b0, 1, end - b0, o.softcap, zcb, dcb, &cap_full);
      sigmoid_exp_log_stages<D>(zcb, nfull, eb, lb);
    } else {
      sigmoid_exp_log_stages<D>(z + b0, nfull, eb, lb);
    }
    for (; i + W <= end; i += W) acc = LossAcc<D>::add(acc, step(i, W));
    if (i < end) {
      const int64_t k = end - i;
      const V l = step(i, k);
      T lanes[W];
      D::store(lanes, l);
      for (int64_t j = 0; j < k; ++j) total += static_cast<double>(lanes[j]);  // padded lanes left out
    }
    total += LossAcc<D>::total(acc);
  }
  return total;
}

// The option sets compiled with fixed flags: every combination of smoothing, pos_weight and
// the weights without softcap (an element weight and a run weight never come together:
// sample_weight is one or the other; a run weight alone never needs the zero test:
// run_sigmoid_opt writes a run of weight 0 as zeros), the element weights' sets again with
// the weights one per row (kRowW), and the softcap alone (1.96x -> 1.67x the plain loss,
// 262,144 float32 elements).
using SigOptFixedSets = std::integer_sequence<int,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 24, 25, 26, 27, 36, 37, 38, 39, 40, 41,
    42, 43, 44, 45, 46, 47, 56, 57, 58, 59, 64, 260, 261, 262, 263, 268, 269, 270, 271, 292, 293, 294, 295, 300,
    301, 302, 303>;

// The loops of the fixed sets are compiled in a translation unit of their own per vector ISA
// (isa_<name>_sigopt.cpp, through sigopt_unit-inl.hpp): 64 loops, each inlining exp, log1p and
// a division, spent GCC's inlining budget of the ISA's unit, which then left hot helpers of
// other kernels as calls (the focal loss 1.2x slower). Computes the run, adding its sum to
// *total, and returns true when f is one of SigOptFixedSets; false, computing nothing, otherwise.
template <class D, bool Grad>
bool run_sigmoid_opt_fixed(int f, const typename D::T* z, const typename D::T* t, int64_t n,
                           typename D::T* loss_elem, typename D::T* grad, double gscale,
                           const SigmoidRunOpts<typename D::T>& o, double* total);

#ifdef XENT_SIGOPT_UNIT
template <class D, bool Grad, int... Fs>
bool run_sigmoid_opt_sets(int f, const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                          typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o, double* total,
                          std::integer_sequence<int, Fs...>) {
  return ((f == Fs && (*total = run_sigmoid_opt_f<D, Grad, Fs>(z, t, n, loss_elem, grad, gscale, o, *total), true)) ||
          ...);
}

template <class D, bool Grad>
bool run_sigmoid_opt_fixed(int f, const typename D::T* z, const typename D::T* t, int64_t n,
                           typename D::T* loss_elem, typename D::T* grad, double gscale,
                           const SigmoidRunOpts<typename D::T>& o, double* total) {
  return run_sigmoid_opt_sets<D, Grad>(f, z, t, n, loss_elem, grad, gscale, o, total, SigOptFixedSets{});
}
#endif

// total0 plus the run's sum (see run_sigmoid_opt_f).
template <class D>
inline double run_sigmoid_opt(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                              typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o,
                              double total0 = 0.0) {
  using T = typename D::T;
  if (o.focal) return run_sigmoid_focal<D>(z, t, n, loss_elem, grad, gscale, o, total0);
  if (o.rw == T(0)) {  // every factor product is 0: exactly what the zero test gives
    for (int64_t i = 0; i < n; ++i) {
      if (loss_elem) loss_elem[i] = T(0);
      if (grad) grad[i] = T(0);
    }
    return total0;
  }
  if constexpr (D::W > 1) {  // (the scalar ISA, a fallback, keeps the general loop only)
    // some weight product can be 0 (rounding is monotonic, so a product of the factors'
    // lower bounds > 0 bounds every product away from 0): an element weight times the class
    // weight, or a class weight times the run's
    const T cw_lo = o.cw ? o.cw_min : T(1);
    const bool has_e = o.ew || o.rws;
    const bool zero_test = (has_e && !(static_cast<T>(o.ew_min * cw_lo) > T(0))) ||
                           (o.cw && !(static_cast<T>(o.cw_min * o.rw) > T(0)));
    const int f = (o.eps != 0.0 ? kSmooth : 0) | (o.pw ? kPosW : 0) | (has_e ? kElemW : 0) | (o.rws ? kRowW : 0) |
                  (o.cw ? kClassW : 0) | (o.rw != T(1) ? kRunW : 0) | (zero_test ? kZeroTest : 0) |
                  (o.softcap > 0.0 ? kCap : 0) | (o.general ? kAny : 0);
    double total = total0;
    if (grad ? run_sigmoid_opt_fixed<D, true>(f, z, t, n, loss_elem, grad, gscale, o, &total)
             : run_sigmoid_opt_fixed<D, false>(f, z, t, n, loss_elem, grad, gscale, o, &total))
      return total;
  }
  if (grad) return run_sigmoid_opt_f<D, true, kAny>(z, t, n, loss_elem, grad, gscale, o, total0);
  return run_sigmoid_opt_f<D, false, kAny>(z, t, n, loss_elem, grad, gscale, o, total0);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
