// More softmax-family row kernels: soft-capping of the logits, poly-1 and focal losses
// (from logits), NLL and KL divergence (from log-probabilities). Row weights (class weight
// of the label, sample weight, ignored rows) are applied by the caller (units-inl.hpp), as
// for the cross-entropy kernels of xent-inl.hpp.
//
// Poly-1 and focal losses share the gradient shape of cross-entropy. With lp_c = log p_c
// and q_c = 1 - p_c, the term f_c(z) of class c has d f_c / d z_j = G_c (p_j - [j == c]),
// so grad = p * sum_c G_c - G, where the "effective target" G_c is
//   poly-1 (CE + eps sum t (1 - p)):           G_c = t_c (1 + eps p_c)
//   focal (-sum a t (1 - p)^g log p):          G_c = a_c t_c q_c^g (1 + g p_c (-lp_c) / q_c)
// For an integer label only G_y is non-zero and grad = G_y (p - onehot(y)).
// An integer label's terms are computed in double lanes (label_factor_lanes: a batch of
// rows in LogBatch, one row, or a group in smallc-inl.hpp's lanes_factor);
// a target distribution's, one per class, in T's vector lanes (row_target_factor; rows of
// at most 128 classes: smallc-inl.hpp's lanes_target_factor, the same formulas). The
// passes over all C classes are the vector ones of softmax-inl.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/softcap-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

enum class FactorKind { kPoly1, kFocal };

// q^gamma for q in [0, 1] (or NaN) and gamma >= 0, per lane: products for an integer gamma
// ig of 1 to 4 (2 is the usual one: a rounding per product), 1 for gamma = 0 (ig == 0), else
// (ig < 0) exp(gamma log q), 0 at q = 0.
template <class D>
XENT_FORCE_INLINE typename D::V pow_unit(typename D::V q, typename D::V gamma, int ig) {
  using T = typename D::T;
  if (ig == 0) return D::set1(T(1));
  if (ig > 0) {
    typename D::V r = q;
    for (int k = 1; k < ig; ++k) r = D::mul(r, q);
    return r;
  }
  return D::zero_if(D::eq(q, D::zero()), exp_nonpos<D>(D::mul(gamma, log_unit<D>(q))));
}
inline int int_gamma(double gamma) {
  for (int k = 0; k <= 4; ++k)
    if (gamma == k) return k;
  return -1;
}

// One vector of classes' terms in D's lanes: from d = z - m (m the
// row's max), e = exp(d), nlp = -log p = (m - z) + log(s), s and qtop = (ones - 1 + rest) / s,
// the loss term f(p) (lc) and the effective target per unit of target g. p = e / s, and
// q = 1 - p comes from the sums without cancellation: qtop where z is the max (d = 0), else
// (s - e) / s (then s - e >= 1, the max's term). NaN or +inf logits make d, e and q NaN,
// so lc and g are NaN too. ig: int_gamma(gamma) (focal).
template <class D, FactorKind K>
XENT_FORCE_INLINE void factor_terms(typename D::V d, typename D::V e, typename D::V nlp, typename D::V s,
                                    typename D::V qtop, typename D::V prm, int ig, typename D::V& lc,
                                    typename D::V& g) {
  using V = typename D::V;
  const V one = D::set1(typename D::T(1)), zero = D::zero();
  const V q = D::select(D::eq(d, zero), qtop, D::div(D::sub(s, e), s));
  const V p = D::div(e, s);
  if constexpr (K == FactorKind::kPoly1) {
    lc = D::fma(prm, q, nlp);
    g = D::fma(prm, p, one);
  } else {
    const V qg = pow_unit<D>(q, prm, ig);
    lc = D::zero_if(D::eq(qg, zero), D::mul(qg, nlp));
    const V ratio = D::select(D::gt(q, zero), D::div(nlp, q), one);  // -log(1 - q) / q -> 1 as q -> 0
    g = D::select(D::eq(p, zero), qg, D::mul(qg, D::fma(D::mul(prm, p), ratio, one)));
  }
}

// factor_terms of integer labels on F64 lanes, n rows (a multiple of F64::W): from each
// row's d = z_y - m, nlp = -log p_y = (m - z_y) + log(s), ones and rest (s = ones + rest,
// RowLse's), its loss term f(p_y) and effective target G_y, into loss and g. The rows-in-lanes
// kernel (smallc-inl.hpp's lanes_factor), the row kernel below and the rows whose log waits
// (LogBatch, units-inl.hpp) all compute their factors here, each lane on its own.
template <FactorKind K>
inline void label_factor_lanes(const double* d, const double* nlp, const double* ones, const double* rest, int n,
                               double param, double* loss, double* g) {
  using E = F64;
  using U = typename E::V;
  const U one = E::set1(1.0), prm = E::set1(param);
  const int ig = K == FactorKind::kFocal ? int_gamma(param) : 0;
  for (int k = 0; k < n; k += E::W) {
    const U on = E::load(ones + k), re = E::load(rest + k), s = E::add(on, re), dv = E::load(d + k);
    U lc, gv;
    factor_terms<E, K>(dv, exp_nonpos<E>(dv), E::load(nlp + k), s, E::div(E::add(E::sub(on, one), re), s), prm, ig,
                       lc, gv);
    E::store(loss + k, lc);
    E::store(g + k, gv);
  }
}

// Poly-1 or focal loss of an integer label y (a = alpha_y for focal, 1 for poly-1).
// Writes gscale * G_y * (softmax(z) - onehot(y)) if grad (grad may alias z). The factor's
// chain (log(s), then p_y, q^gamma, G_y: about 80 ns) would hold up the next row: with
// `later` (LogLater, the caller's LogBatch) a row whose log can wait leaves it and the
// factor to the batch, and so does the gradient's rescaling pass of a row of one block
// whose gradient is final (the batch ends at kLogBatchBytes of such rows: 1 thread, AVX-512,
// rows of 700-2000 float32 1.08-1.17x cross-entropy's time against 1.21-1.30x when only rows
// of log_batch_max_c classes waited); the row returns 0 then, its value being the batch's.
// Other rows compute theirs here, on one row's F64 lanes.
template <class D, FactorKind K>
inline double row_label_factor(const typename D::T* z, int64_t C, int64_t y, double a, double param,
                               typename D::T* grad, typename D::T* refs, double gscale,
                               LogLater<typename D::T>* later = nullptr) {
  using T = typename D::T;
  const double zy = static_cast<double>(z[y]);
  RowLse r = grad ? row_lse<D, true, T, false, false>(z, C, grad, refs)
                  : row_lse<D, false, T, false, false>(z, C, nullptr, nullptr);
  if (r.masked()) {
    if (grad) fill(grad, C, T(0));
    return a == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  if (later && r.vector_log() && (!grad || (later->grad_ok && C <= kBlock))) {
    later->set(r);
    later->fac = true, later->d = zy - r.m, later->a = a;
    if (grad) later->grad = grad, later->C = C, later->y = y, later->gscale = gscale;
    return 0.0;
  }
  r.finish();
  constexpr int W = F64::W;
  alignas(64) double d[W], nlp[W], on[W], re[W], loss[W], g[W];
  for (int i = 0; i < W; ++i) d[i] = zy - r.m, nlp[i] = (r.m - zy) + r.log_s, on[i] = r.ones, re[i] = r.rest;
  label_factor_lanes<K>(d, nlp, on, re, W, param, loss, g);
  if (grad) {
    const double f = gscale * a * g[0];
    row_scale_exps<D>(grad, C, refs, r, f);
    grad[y] = static_cast<T>(static_cast<double>(grad[y]) - f);
  }
  return a == 0.0 ? 0.0 : a * loss[0];  // alpha_y = 0 weighs even an infinite loss (a masked label) 0
}

// Poly-1 or focal loss of a target distribution t, each term weighted by a_c (nullable).
// gbuf: C elements of scratch. grad may not alias z or t (z is read again after it).
// Every class's term is computed in T's lanes (factor_terms, above, on the vector exp
// and log): with e_c = exp(z_c - m) and s = ones + rest (row_lse),
// -log p_c = (m - z_c) + log(s), p_c = e_c / s, and q_c = 1 - p_c from the sums, without
// cancellation: (ones - 1 + rest) / s where z_c is the row max, else (s - e_c) / s (then
// s - e_c >= 1, the max's term). Terms of t_c a_c = 0 add nothing (0 log 0 = 0); the loss
// is summed in T's lanes kSumLane vectors at a time, then in double, as the row sums are.
// A fully masked row: +inf where a target has mass (a negative target adds itself), a zero
// gradient.
template <class D, FactorKind K>
inline double row_target_factor(const typename D::T* z, const typename D::T* t, const typename D::T* a, int64_t C,
                                double param, typename D::T* grad, typename D::T* refs, typename D::T* gbuf,
                                double gscale) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const RowLse r = grad ? row_lse<D, true>(z, C, grad, refs) : row_lse<D, false>(z, C, nullptr, nullptr);
  if (r.masked()) {
    double loss = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double tc = static_cast<double>(t[c]) * (a ? static_cast<double>(a[c]) : 1.0);
      if (tc != 0.0) loss += tc > 0 ? std::numeric_limits<double>::infinity() : tc;  // (NaN propagates)
    }
    if (grad) fill(grad, C, T(0));
    return loss;
  }
  const double s = r.ones + r.rest;
  const V vm = D::set1(static_cast<T>(r.m)), vls = D::set1(static_cast<T>(r.log_s));
  const V vs = D::set1(static_cast<T>(s)), qtop = D::set1(static_cast<T>(((r.ones - 1.0) + r.rest) / s));
  const V zero = D::zero(), prm = D::set1(static_cast<T>(param));
  const V gs = D::set1(static_cast<T>(gscale));
  const int ig = K == FactorKind::kFocal ? int_gamma(param) : 0;
  typename D::Wide lw = D::wide_zero(), gw = D::wide_zero();
  V lacc = zero, gacc = zero;
  int64_t nv = 0;
  // k (<= W) classes from c: their loss terms and effective targets into the accumulators
  auto step = [&](int64_t c, int64_t k) {
    const bool full = k == W;
    const V zc = full ? D::load(z + c) : D::load_tail(z + c, k, T(0));
    V tc = full ? D::load(t + c) : D::load_tail(t + c, k, T(0));
    if (a) tc = D::mul(tc, full ? D::load(a + c) : D::load_tail(a + c, k, T(0)));
    const V d = D::sub(zc, vm), e = exp_nonpos<D>(d);
    V lc, g;
    factor_terms<D, K>(d, e, D::add(D::sub(vm, zc), vls), vs, qtop, prm, ig, lc, g);
    const auto none = D::eq(tc, zero);  // 0 log 0 = 0 (a NaN target is not 0: it propagates)
    lacc = D::add(lacc, D::zero_if(none, D::mul(tc, lc)));
    const V gt = D::zero_if(none, D::mul(tc, g));
    gacc = D::add(gacc, gt);
    if (grad) {
      if (full) D::store(gbuf + c, D::mul(gt, gs));
      else D::store_tail(gbuf + c, D::mul(gt, gs), k);
    }
    if (++nv == kSumLane) {
      lw = D::wide_add(lw, lacc), gw = D::wide_add(gw, gacc);
      lacc = gacc = zero, nv = 0;
    }
  };
  int64_t c = 0;
  for (; c + W <= C; c += W) step(c, W);
  if (c < C) step(c, C - c);
  lw = D::wide_add(lw, lacc), gw = D::wide_add(gw, gacc);
  const double loss = D::wide_total(lw), gsum = D::wide_total(gw);
  if (grad) {
    row_scale_exps<D>(grad, C, refs, r, gscale * gsum);
    int64_t i = 0;
    for (; i + W <= C; i += W) D::store(grad + i, D::sub(D::load(grad + i), D::load(gbuf + i)));
    if (i < C) D::store_tail(grad + i, D::sub(D::load_tail(grad + i, C - i, T(0)), D::load_tail(gbuf + i, C - i, T(0))), C - i);
  }
  return loss;
}

// NLL of given log-probabilities: -lp[y]; gradient -gscale at y (grad may alias lp).
template <class D>
inline double row_nll(const typename D::T* lp, int64_t C, int64_t y, typename D::T* grad, double gscale) {
  using T = typename D::T;
  const double v = static_cast<double>(lp[y]);
  if (grad) {
    fill(grad, C, T(0));
    grad[y] = static_cast<T>(-gscale);
  }
  return -v;
}

// KL divergence sum_c t_c (log t_c - lp_c) with 0 log 0 = 0 (a zero target adds nothing,
// even where lp = -inf); with log targets, sum_c exp(t_c) (t_c - lp_c), t_c = -inf adding
// nothing. Gradient -gscale * t_c (or -gscale * exp(t_c)); grad may alias lp.
template <class D>
inline double row_kl(const typename D::T* lp, const typename D::T* t, int64_t C, bool log_target, typename D::T* grad,
                     double gscale) {
  using T = typename D::T;
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double tc = static_cast<double>(t[c]);
    const double l = static_cast<double>(lp[c]);
    double g = 0.0;
    if (log_target) {
      if (tc != -std::numeric_limits<double>::infinity()) {
        g = std::exp(tc);
        s += g * (tc - l);
      }
    } else if (tc != 0.0) {
      g = tc;
      s += tc * (std::log(tc) - l);
    }
    if (grad) grad[c] = static_cast<T>(-gscale * g);
  }
  return s;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
