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
// Everything per row or per class with t_c != 0 is in double (scalar libm calls); the
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

// Loss term and effective target G (per unit target weight, times a) of one class with
// nlp = -log p >= 0 (+inf on a masked class, NaN propagates).
template <FactorKind K>
inline void class_term(double nlp, double param, double* loss, double* g) {
  const double p = std::exp(-nlp);
  if (K == FactorKind::kPoly1) {
    *loss = nlp + param * -std::expm1(-nlp);
    *g = 1.0 + param * p;
    return;
  }
  const double q = -std::expm1(-nlp);  // 1 - p without cancellation
  const double qg = param == 0.0 ? 1.0 : std::pow(q, param);
  *loss = qg == 0.0 ? 0.0 : qg * nlp;
  // -log(1 - q) / q -> 1 as q -> 0; p (-lp) -> 0 as p -> 0 (a masked class)
  const double ratio = q > 0.0 ? nlp / q : 1.0;
  *g = p == 0.0 ? qg : qg * (1.0 + param * p * ratio);
}

// Poly-1 or focal loss of an integer label y (a = alpha_y for focal, 1 for poly-1).
// Writes gscale * G_y * (softmax(z) - onehot(y)) if grad (grad may alias z).
template <class D, FactorKind K>
inline double row_label_factor(const typename D::T* z, int64_t C, int64_t y, double a, double param,
                               typename D::T* grad, typename D::T* refs, double gscale) {
  using T = typename D::T;
  const double zy = static_cast<double>(z[y]);
  const RowLse r = grad ? row_lse<D, true>(z, C, grad, refs) : row_lse<D, false>(z, C, nullptr, nullptr);
  if (r.masked()) {
    if (grad) fill(grad, C, T(0));
    return a == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  double loss, g;
  class_term<K>((r.m - zy) + r.log_s, param, &loss, &g);
  if (grad) {
    const double f = gscale * a * g;
    row_scale_exps<D>(grad, C, refs, r, f);
    grad[y] = static_cast<T>(static_cast<double>(grad[y]) - f);
  }
  return a == 0.0 ? 0.0 : a * loss;  // alpha_y = 0 weighs even an infinite loss (a masked label) 0
}

// Poly-1 or focal loss of a target distribution t, each term weighted by a_c (nullable).
// gbuf: C elements of scratch. grad may not alias z or t (z is read again after it).
template <class D, FactorKind K>
inline double row_target_factor(const typename D::T* z, const typename D::T* t, const typename D::T* a, int64_t C,
                                double param, typename D::T* grad, typename D::T* refs, typename D::T* gbuf,
                                double gscale) {
  using T = typename D::T;
  const RowLse r = grad ? row_lse<D, true>(z, C, grad, refs) : row_lse<D, false>(z, C, nullptr, nullptr);
  const bool masked = r.masked();
  double loss = 0.0, gsum = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double tc = static_cast<double>(t[c]) * (a ? static_cast<double>(a[c]) : 1.0);
    double g = 0.0;
    if (tc != 0.0) {  // 0 log 0 = 0; NaN targets propagate
      if (masked) {
        loss += tc > 0 ? std::numeric_limits<double>::infinity() : tc;
      } else {
        double lc;
        class_term<K>((r.m - static_cast<double>(z[c])) + r.log_s, param, &lc, &g);
        loss += tc * lc;
        g *= tc;
      }
    }
    if (grad) gbuf[c] = static_cast<T>(g * gscale);
    gsum += g;
  }
  if (grad) {
    if (masked) return fill(grad, C, T(0)), loss;
    row_scale_exps<D>(grad, C, refs, r, gscale * gsum);
    for (int64_t c = 0; c < C; ++c) grad[c] -= gbuf[c];
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
