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

namespace xent {
namespace XENT_ISA_NS {

// dst[i] = cap * tanh(z[i*cs] / cap), -inf kept at -inf (masks survive); if d, d[i] =
// sech^2(z/cap), the derivative of the cap (0 at -inf). dst may be z itself (cs == 1) but
// may not overlap it otherwise.
// Logits are usually well below the cap, where tanh is a polynomial: each vector is first
// computed by the polynomial alone (tanh_small_v) and stored; a vector with any lane outside
// its range (or -inf, NaN) is listed and finished afterwards by tanh_finish, which keeps the
// stored polynomial's lanes, in chunks of kCapChunk vectors. No branch depends on the data
// per vector (it would be mispredicted on logits near the cap). When most vectors of a chunk
// needed finishing, the next chunks (of this row and the next ones: *full_mode, the caller's)
// take tanh_v directly, until a chunk has most vectors small again. The bits are tanh_v's
// either way.
template <class D>
inline void softcap_row(const typename D::T* z, int64_t cs, int64_t C, double cap, typename D::T* dst,
                        typename D::T* d, bool* full_mode) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr int kCapChunk = 32;
  if (cs != 1) {
    for (int64_t i = 0; i < C; ++i) dst[i] = z[i * cs];
    z = dst;
  }
  const V vc = D::set1(static_cast<T>(cap));
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  // the capped vector at yp and its derivative at dp (if not null), from z, x = z / cap and
  // the polynomial's results there (y_small = cap * tanh, s2_small = sech^2)
  auto finish = [&](V zv, V x, V y_small, V s2_small, T* yp, T* dp, int64_t k) {
    const auto masked = D::eq(zv, ninf);
    V s2;
    const V t = tanh_finish<D>(x, y_small, s2_small, dp ? &s2 : nullptr);
    const V y = D::select(masked, ninf, D::select(tanh_small<D>(x), t, D::mul(vc, t)));
    if (k == W) {
      D::store(yp, y);
      if (dp) D::store(dp, D::zero_if(masked, s2));
    } else {
      D::store_tail(yp, y, k);
      if (dp) D::store_tail(dp, D::zero_if(masked, s2), k);
    }
  };
  // the polynomial's results of one vector (s2 only if d)
  auto poly = [&](V x, V& s2) { return D::mul(vc, tanh_small_v<D>(x, d ? &s2 : nullptr)); };
  // the listed vectors: their offsets, and their inputs when dst is z (overwritten)
  const bool in_place = z == dst;
  int64_t at[kCapChunk];
  V saved[kCapChunk];
  int64_t i = 0;
  while (i + W <= C) {
    const int64_t end = std::min(C - (C - i) % W, i + int64_t{kCapChunk} * W);
    const int64_t m = (end - i) / W;
    int n = 0;
    if (*full_mode) {
      for (; i < end; i += W) {
        const V zv = D::load(z + i);
        const V x = D::div(zv, vc);
        const auto masked = D::eq(zv, ninf);
        V s2;
        D::store(dst + i, D::select(masked, ninf, D::mul(vc, tanh_v<D>(x, d ? &s2 : nullptr))));
        if (d) D::store(d + i, D::zero_if(masked, s2));
        n += D::all(tanh_small<D>(x)) ? 0 : 1;
      }
    } else {
      for (; i < end; i += W) {
        const V zv = D::load(z + i);
        const V x = D::div(zv, vc);
        V s2 = x;
        D::store(dst + i, poly(x, s2));
        if (d) D::store(d + i, s2);
        at[n] = i;
        if (in_place) saved[n] = zv;
        n += D::all(tanh_small<D>(x)) ? 0 : 1;
      }
      for (int k = 0; k < n; ++k) {
        const int64_t a = at[k];
        const V zv = in_place ? saved[k] : D::load(z + a);
        const V x = D::div(zv, vc);
        finish(zv, x, D::load(dst + a), d ? D::load(d + a) : x, dst + a, d ? d + a : nullptr, W);
      }
    }
    *full_mode = 2 * n > m;
  }
  if (i < C) {
    const int64_t k = C - i;
    const V zv = D::load_tail(z + i, k, T(0));
    const V x = D::div(zv, vc);
    V s2 = x;
    const V y = poly(x, s2);  // (sets s2: not inside finish's argument list)
    finish(zv, x, y, s2, dst + i, d ? d + i : nullptr, k);
  }
}

// g[i] *= d[i]: the chain rule through the cap.
template <class D>
inline void mul_rows(typename D::T* g, const typename D::T* d, int64_t C) {
  using T = typename D::T;
  constexpr int W = D::W;
  int64_t i = 0;
  for (; i + W <= C; i += W) D::store(g + i, D::mul(D::load(g + i), D::load(d + i)));
  if (i < C) D::store_tail(g + i, D::mul(D::load_tail(g + i, C - i, T(0)), D::load_tail(d + i, C - i, T(0))), C - i);
}

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
