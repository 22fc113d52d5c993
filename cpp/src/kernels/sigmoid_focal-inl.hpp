// Sigmoid focal loss over a contiguous run of elements (torchvision / optax form):
//   FL = alpha_t (1 - p_t)^gamma CE,  p = sigmoid(z),  p_t = p t + (1 - p)(1 - t),
//   alpha_t = alpha t + (1 - alpha)(1 - t) (alpha < 0: 1),  CE the sigmoid cross-entropy.
// With e = exp(-|z|), L = log1p(e) and (A, B) = (1 - t, t) for z >= 0, (t, 1 - t) for z < 0:
//   m = 1 - p_t = (A + e B) / (1 + e),   log m = log(A + e B) - L,
// in log space: A = 0 (a hard target on the side of z's sign) gives log(A + e B) = -|z|
// exactly, otherwise log_unit(A + e B) (A + e B in [A, 1]; no clipping anywhere). Then
// f = exp(gamma log m) and, with s = sigmoid(z), dm/dz = s (1 - s)(1 - 2t),
//   dFL/dz = alpha_t f (gamma r CE + (s - t)),   r = (dm/dz)/m = e (1 - 2t) / ((1 + e)(A + e B)),
// where e cancels when A = 0: r = (1 - 2t) / (1 + e). gamma r CE counts 0 when gamma r = 0
// (an infinite CE there has r = 0 exactly); gamma = 0 gives f = 1 (0^0 = 1) and exactly the
// cross-entropy's arithmetic. An infinite CE costs +inf even where f underflows to 0 (CE is
// infinite only where the true f is > 0).
//
// Three stages over a block of kSumLane vectors, through small buffers in L1: the chain
// exp -> log1p -> log -> exp of one element is long, and short stage bodies let out-of-order
// execution overlap successive vectors (measured faster than one step per vector here).
//
// An integer gamma in [0, kMaxIntGamma] (2, the usual one, or 0, 1, 3, 4) takes one pass
// without logs: m = (A + e B) / (1 + e) directly, f = m^gamma by products, and the gradient's
// f r = gamma m^(gamma - 1) dm/dz with dm/dz = e (1 - 2t) / (1 + e)^2: no division by
// A + e B. Its error is a few ulp of m per factor (the log space's grows with |gamma log m|);
// it underflows to 0 where the log space's exp does, and gamma = 0 is the cross-entropy's
// arithmetic as above.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

namespace xent {
namespace XENT_ISA_NS {

constexpr int kMaxIntGamma = 4;

// The focal loss's integer gamma in [0, kMaxIntGamma], or -1.
inline int focal_int_gamma(double gamma) {
  for (int k = 0; k <= kMaxIntGamma; ++k)
    if (gamma == k) return k;
  return -1;
}

// The outputs and the sum of a vector of (weighted) losses and gradient terms, k lanes at i
// (want_grad: grad is not null).
template <class D>
XENT_FORCE_INLINE void focal_store(typename D::V loss, typename D::V g, int64_t k, int64_t i, typename D::V& acc,
                                   double& total, typename D::T* loss_elem, typename D::T* grad, bool want_grad) {
  using T = typename D::T;
  constexpr int W = D::W;
  if (k == W) {
    acc = LossAcc<D>::add(acc, loss);
    if (loss_elem) D::store(loss_elem + i, loss);
    if (want_grad) D::store(grad + i, g);
  } else {
    T lanes[W];
    D::store(lanes, loss);
    for (int64_t q = 0; q < k; ++q) total += static_cast<double>(lanes[q]);  // padded lanes left out
    if (loss_elem) D::store_tail(loss_elem + i, loss, k);
    if (want_grad) D::store_tail(grad + i, g, k);
  }
}

// The weights, the outputs and the sum of a vector of losses and gradient terms (k lanes at i),
// as the focal loss's paths share them: wv is the element weight (times alpha_t).
template <class D>
XENT_FORCE_INLINE void focal_emit(typename D::V loss, typename D::V g, int64_t k, int64_t i, typename D::V wv,
                                  typename D::V& acc, double& total, const SigmoidRunOpts<typename D::T>& o,
                                  typename D::T* loss_elem, typename D::T* grad, double gscale) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const bool want_grad = grad != nullptr, has_alpha = o.alpha >= 0.0, has_rw = o.rw != T(1);
  if (o.cw || o.ew || has_rw || has_alpha) {
    const V cv = o.cw ? (k == W ? D::load(o.cw + i) : D::load_tail(o.cw + i, k, T(0))) : D::set1(T(1));
    apply_weights<D>(loss, g, want_grad, o.ew || has_alpha, wv, o.cw != nullptr, cv, has_rw, D::set1(o.rw),
                     D::set1(static_cast<T>(gscale * static_cast<double>(o.rw))));
  } else if (want_grad) {
    g = D::mul(g, D::set1(static_cast<T>(gscale)));
  }
  focal_store<D>(loss, g, k, i, acc, total, loss_elem, grad, want_grad);
}

// The integer-gamma path (see the top): one step per vector, the power unrolled. Compiled
// per gamma, with and without a gradient and alpha, and for the plain case (no smoothing,
// no weights but alpha's) apart: the runtime tests of the others measured 1.2x the time
// (float32, gamma = 2, with gradient and alpha).
template <class D, int kG, bool kGrad, bool kAlpha, bool kPlain>
inline double run_focal_int(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                            typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& opts,
                            double total0) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr int64_t kB = kSumLane * W;
  const SigmoidRunOpts<T> o = opts;  // a local copy: the stores below cannot alias it
  const V one = D::set1(T(1)), zero = D::zero(), inf = D::set1(std::numeric_limits<T>::infinity());
  const V vg = D::set1(static_cast<T>(kG)), two = D::set1(T(2));
  const V c1 = D::set1(static_cast<T>(1.0 - o.eps)), c0 = D::set1(static_cast<T>(0.5 * o.eps));
  const V va = D::set1(static_cast<T>(o.alpha)), vna = D::set1(static_cast<T>(1.0 - o.alpha));
  constexpr bool want_grad = kGrad, has_alpha = kAlpha;
  const bool smooth = !kPlain && o.eps != 0.0;
  const T* const ew = kPlain ? nullptr : o.ew;
  const V gs = D::set1(static_cast<T>(gscale));
  const bool alpha_zero = static_cast<T>(o.alpha) == T(0) || static_cast<T>(1.0 - o.alpha) == T(0);
  double total = total0;
  alignas(64) T eb[kB], lb[kB];  // e and log1p(e) of a block's full vectors, staged
  int64_t b0 = 0;
  auto step = [&](int64_t i, int64_t k, V& acc) {
    auto ld = [&](const T* p) { return k == W ? D::load(p + i) : D::load_tail(p + i, k, T(0)); };
    const V zv = ld(z), tv = ld(t);
    V tt = tv, omt = D::sub(one, tv);
    if (smooth) {
      tt = D::fma(tv, c1, c0);
      omt = D::fma(omt, c1, c0);
    }
    // the cross-entropy and its gradient
    const bool staged = k == W;
    const V e = staged ? D::load(eb + (i - b0)) : exp_nonpos<D>(D::sub(zero, D::abs(zv)));
    const auto pos = D::ge(zv, zero);
    const SigmoidOptStep<D> s = SigmoidOptStep<D>::bce_from(zv, tt, omt, one, false, want_grad, e,
                                                            staged ? D::load(lb + (i - b0)) : log1p_unit<D>(e));
    const V ce = s.loss;
    V loss = ce, g = want_grad ? s.grad : zero;
    const V qe = D::div(e, D::add(one, e));  // (the one of s.grad)
    if constexpr (kG > 0) {
      const V rec = D::sub(one, qe);  // 1 / (1 + e)
      const V A = D::select(pos, omt, tt), B = D::select(pos, tt, omt);
      const V m = D::mul(D::fma(e, B, A), rec);  // 1 - p_t
      V f1 = m;                                  // m^(gamma - 1) when gamma > 1
      for (int q = 2; q < kG; ++q) f1 = D::mul(f1, m);
      const V f = kG == 1 ? m : D::mul(f1, m);
      loss = D::select(D::eq(ce, inf), inf, D::mul(f, ce));
      if (want_grad) {
        // gamma m^(gamma - 1) dm/dz, dm/dz = e / (1 + e)^2 (1 - 2t); its CE term counts 0 where it is 0
        const V dm = D::mul(D::mul(qe, rec), D::fnma(two, tt, one));
        const V fr = kG == 1 ? dm : D::mul(D::mul(vg, f1), dm);
        g = D::add(D::zero_if(D::eq(fr, zero), D::mul(fr, ce)), D::mul(f, g));
      }
    }
    V wv = one;
    if (ew || has_alpha) {
      wv = ew ? ld(ew) : one;
      if (has_alpha) wv = D::mul(wv, D::fma(va, tt, D::mul(vna, omt)));
    }
    if constexpr (kPlain) {  // focal_emit's arithmetic with alpha's weight alone
      // alpha_t >= min(alpha, 1 - alpha) for t in [0, 1]: 0 only where alpha is 0 or 1
      if (kAlpha) apply_weights<D>(loss, g, kGrad, true, wv, false, one, false, one, gs, alpha_zero);
      else if (kGrad) g = D::mul(g, gs);
      focal_store<D>(loss, g, k, i, acc, total, loss_elem, grad, kGrad);
    } else {
      focal_emit<D>(loss, g, k, i, wv, acc, total, o, loss_elem, grad, gscale);
    }
  };
  for (; b0 < n; b0 += kB) {
    const int64_t end = n - b0 < kB ? n : b0 + kB;
    V acc = zero;
    int64_t i = b0;
    if (o.prefetch) {
      prefetch_ahead(z + b0, end - b0);
      prefetch_ahead(t + b0, end - b0);
      if (kGrad) prefetch_ahead<true>(grad + b0, end - b0);
    }
    sigmoid_exp_log_stages<D>(z + b0, (end - b0) / W * W, eb, lb);
    for (; i + W <= end; i += W) step(i, W, acc);
    if (i < end) step(i, end - i, acc);
    total += LossAcc<D>::total(acc);
  }
  return total;
}

// run_focal_int's instance for a run's options.
template <class D, int kG>
inline double run_focal_int_g(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                              typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o,
                              double total0) {
  const bool plain = o.eps == 0.0 && !o.ew && !o.cw && o.rw == typename D::T(1);
  const int key = (grad ? 4 : 0) | (o.alpha >= 0.0 ? 2 : 0) | (plain ? 1 : 0);
  switch (key) {
    case 7: return run_focal_int<D, kG, true, true, true>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 6: return run_focal_int<D, kG, true, true, false>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 5: return run_focal_int<D, kG, true, false, true>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 4: return run_focal_int<D, kG, true, false, false>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 3: return run_focal_int<D, kG, false, true, true>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 2: return run_focal_int<D, kG, false, true, false>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 1: return run_focal_int<D, kG, false, false, true>(z, t, n, loss_elem, grad, gscale, o, total0);
    default: return run_focal_int<D, kG, false, false, false>(z, t, n, loss_elem, grad, gscale, o, total0);
  }
}

template <class D>
inline double run_sigmoid_focal(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                                typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o,
                                double total0 = 0.0) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr int64_t kB = kSumLane * W;
  alignas(64) T ce_b[kB], g0_b[kB], gr_b[kB], x_b[kB], base_b[kB], w_b[kB];
  const V one = D::set1(T(1)), zero = D::zero(), inf = D::set1(std::numeric_limits<T>::infinity());
  const V vg = D::set1(static_cast<T>(o.gamma));
  const V c1 = D::set1(static_cast<T>(1.0 - o.eps)), c0 = D::set1(static_cast<T>(0.5 * o.eps));
  const V va = D::set1(static_cast<T>(o.alpha)), vna = D::set1(static_cast<T>(1.0 - o.alpha));
  const bool want_grad = grad != nullptr, smooth = o.eps != 0.0, has_alpha = o.alpha >= 0.0;
  double total = total0;
  switch (focal_int_gamma(static_cast<double>(static_cast<T>(o.gamma)))) {
    case 0: return run_focal_int_g<D, 0>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 1: return run_focal_int_g<D, 1>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 2: return run_focal_int_g<D, 2>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 3: return run_focal_int_g<D, 3>(z, t, n, loss_elem, grad, gscale, o, total0);
    case 4: return run_focal_int_g<D, 4>(z, t, n, loss_elem, grad, gscale, o, total0);
    default: break;
  }
  // log space: gamma is not an integer from 0 to 4 here (so not 0)
  for (int64_t b0 = 0; b0 < n; b0 += kB) {
    const int64_t m = n - b0 < kB ? n - b0 : kB;
    // stage 1: the cross-entropy, its gradient, the argument of the log, the weights
    for (int64_t j = 0; j < m; j += W) {
      const int64_t k = m - j < W ? m - j : W, i = b0 + j;
      auto ld = [&](const T* p) { return k == W ? D::load(p + i) : D::load_tail(p + i, k, T(0)); };
      const V zv = ld(z), tv = ld(t);
      V tt = tv, omt = D::sub(one, tv);
      if (smooth) {
        tt = D::fma(tv, c1, c0);
        omt = D::fma(omt, c1, c0);
      }
      const V az = D::abs(zv);
      const V e = exp_nonpos<D>(D::sub(zero, az));
      const auto pos = D::ge(zv, zero);
      const V l1p = log1p_unit<D>(e);
      const SigmoidOptStep<D> s = SigmoidOptStep<D>::bce_from(zv, tt, omt, one, false, want_grad, e, l1p);
      const V ope = D::add(one, e);
      D::store(ce_b + j, s.loss);
      if (want_grad) D::store(g0_b + j, s.grad);
      const V A = D::select(pos, omt, tt), B = D::select(pos, tt, omt);
      const auto a0 = D::eq(A, zero);
      const V xs = D::select(a0, one, D::fma(e, B, A));  // A + e B, or 1 (log 0) where A = 0
      D::store(x_b + j, xs);
      D::store(base_b + j, D::sub(D::select(a0, D::sub(zero, az), zero), l1p));
      if (want_grad) {
        const V num = D::mul(D::fnma(D::set1(T(2)), tt, one), D::select(a0, one, e));  // (1 - 2t) e
        D::store(gr_b + j, D::mul(vg, D::div(num, D::mul(ope, xs))));
      }
      if (o.ew || has_alpha) {  // the element's weight without the class and run weights: <= its sample weight
        V w = o.ew ? ld(o.ew) : one;
        if (has_alpha) w = D::mul(w, D::fma(va, tt, D::mul(vna, omt)));
        D::store(w_b + j, w);
      }
    }
    // stage 2: gamma log m, in place over x_b
    for (int64_t j = 0; j < m; j += W)
      D::store(x_b + j, D::mul(vg, D::add(log_unit<D>(D::load(x_b + j)), D::load(base_b + j))));
    // stage 3: the focal factor, loss, gradient, weights; outputs and the block's sum
    V acc = zero;
    for (int64_t j = 0; j < m; j += W) {
      const int64_t k = m - j < W ? m - j : W, i = b0 + j;
      const V ce = D::load(ce_b + j);
      const V f = exp_nonpos<D>(D::load(x_b + j));
      V loss = D::select(D::eq(ce, inf), inf, D::mul(f, ce));
      V g = zero;
      if (want_grad) {
        const V gr = D::load(gr_b + j);
        g = D::mul(f, D::add(D::zero_if(D::eq(gr, zero), D::mul(gr, ce)), D::load(g0_b + j)));
      }
      focal_emit<D>(loss, g, k, i, (o.ew || has_alpha) ? D::load(w_b + j) : one, acc, total, o, loss_elem, grad, gscale);
    }
    total += LossAcc<D>::total(acc);
  }
  return total;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
