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
#pragma once
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

template <class D>
inline double run_sigmoid_focal(const typename D::T* z, const typename D::T* t, int64_t n, typename D::T* loss_elem,
                                typename D::T* grad, double gscale, const SigmoidRunOpts<typename D::T>& o) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr int64_t kB = kSumLane * W;
  alignas(64) T ce_b[kB], g0_b[kB], gr_b[kB], x_b[kB], base_b[kB], w_b[kB];
  const V one = D::set1(T(1)), zero = D::zero(), inf = D::set1(std::numeric_limits<T>::infinity());
  const V gs = D::set1(static_cast<T>(gscale)), vg = D::set1(static_cast<T>(o.gamma));
  const V rw = D::set1(o.rw), gsr = D::set1(static_cast<T>(gscale * static_cast<double>(o.rw)));
  const V c1 = D::set1(static_cast<T>(1.0 - o.eps)), c0 = D::set1(static_cast<T>(0.5 * o.eps));
  const V va = D::set1(static_cast<T>(o.alpha)), vna = D::set1(static_cast<T>(1.0 - o.alpha));
  const bool want_grad = grad != nullptr, smooth = o.eps != 0.0, has_alpha = o.alpha >= 0.0;
  const bool has_gamma = static_cast<T>(o.gamma) != T(0);
  const bool has_rw = o.rw != T(1), has_w = o.cw || o.ew || has_rw || has_alpha;
  double total = 0.0;
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
      const V a = D::select(pos, omt, D::sub(zero, tt));
      const V l1p = log1p_unit<D>(e);
      const V ce = D::add(D::zero_if(D::eq(a, zero), D::mul(zv, a)), l1p);
      const V ope = D::add(one, e);
      D::store(ce_b + j, ce);
      if (want_grad) {
        const V qe = D::div(e, ope);
        D::store(g0_b + j, D::select(pos, D::sub(omt, qe), D::sub(qe, tt)));
      }
      if (has_gamma) {
        const V A = D::select(pos, omt, tt), B = D::select(pos, tt, omt);
        const auto a0 = D::eq(A, zero);
        const V xs = D::select(a0, one, D::fma(e, B, A));  // A + e B, or 1 (log 0) where A = 0
        D::store(x_b + j, xs);
        D::store(base_b + j, D::sub(D::select(a0, D::sub(zero, az), zero), l1p));
        if (want_grad) {
          const V num = D::mul(D::fnma(D::set1(T(2)), tt, one), D::select(a0, one, e));  // (1 - 2t) e
          D::store(gr_b + j, D::mul(vg, D::div(num, D::mul(ope, xs))));
        }
      }
      if (o.ew || has_alpha) {  // the element's weight without the class and run weights: <= its sample weight
        V w = o.ew ? ld(o.ew) : one;
        if (has_alpha) w = D::mul(w, D::fma(va, tt, D::mul(vna, omt)));
        D::store(w_b + j, w);
      }
    }
    // stage 2: gamma log m, in place over x_b
    if (has_gamma)
      for (int64_t j = 0; j < m; j += W)
        D::store(x_b + j, D::mul(vg, D::add(log_unit<D>(D::load(x_b + j)), D::load(base_b + j))));
    // stage 3: the focal factor, loss, gradient, weights; outputs and the block's sum
    V acc = zero;
    for (int64_t j = 0; j < m; j += W) {
      const int64_t k = m - j < W ? m - j : W, i = b0 + j;
      const V ce = D::load(ce_b + j);
      const V f = has_gamma ? exp_nonpos<D>(D::load(x_b + j)) : one;
      V loss = has_gamma ? D::select(D::eq(ce, inf), inf, D::mul(f, ce)) : ce;
      V g = zero;
      if (want_grad) {
        g = D::load(g0_b + j);
        if (has_gamma) {
          const V gr = D::load(gr_b + j);
          g = D::mul(f, D::add(D::zero_if(D::eq(gr, zero), D::mul(gr, ce)), g));
        }
      }
      if (has_w) {
        const V cv = o.cw ? (k == W ? D::load(o.cw + i) : D::load_tail(o.cw + i, k, T(0))) : one;
        apply_weights<D>(loss, g, want_grad, o.ew || has_alpha, D::load(w_b + j), o.cw != nullptr, cv, has_rw, rw, gsr);
      } else if (want_grad) {
        g = D::mul(g, gs);
      }
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
    total += LossAcc<D>::total(acc);
  }
  return total;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
