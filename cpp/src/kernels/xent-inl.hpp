// Softmax cross-entropy row kernels (integer label, or target distribution), built on the
// forward pass of softmax-inl.hpp. Options that act on a whole row (class weight of the
// label, sample weight, ignored rows) are applied by the caller through `gscale` and a
// multiplication of the returned loss; per-class weights of target distributions and the
// z-loss act inside the row and are applied here.
//
// z-loss (PaLM; Liger's lse_square_scale): the row loss gains zl * lse^2, so the gradient
// gains 2 zl lse p: with target mass T, grad = (T + 2 zl lse) p - t.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

// z-loss term and the factor of p in the gradient, for a row that is not fully masked.
inline double zloss_term(const RowLse& r, double zl) {
  if (zl == 0.0) return 0.0;
  const double lse = r.lse();
  return zl * lse * lse;
}
inline double p_factor(const RowLse& r, double tsum, double zl) {
  return zl == 0.0 ? tsum : tsum + 2.0 * zl * r.lse();
}

// Integer label y in [0, C): returns lse - z[y] (+ zl lse^2), computed as (m - z[y]) + log(s).
// If grad, writes gscale * ((1 + 2 zl lse) softmax(z) - onehot(y)) (grad may alias z).
template <class D>
inline double row_xent_label(const typename D::T* z, int64_t C, int64_t y, typename D::T* grad,
                             typename D::T* refs, double gscale, double zl) {
  using T = typename D::T;
  const double zy = static_cast<double>(z[y]);  // read before grad may overwrite z
  const RowLse r = grad ? row_lse<D, true>(z, C, grad, refs) : row_lse<D, false>(z, C, nullptr, nullptr);
  if (r.masked()) {
    if (grad) fill(grad, C, T(0));
    return std::numeric_limits<double>::infinity();
  }
  if (grad) {
    row_scale_exps<D>(grad, C, refs, r, gscale * p_factor(r, 1.0, zl));
    grad[y] = static_cast<T>(static_cast<double>(grad[y]) - gscale);
  }
  return (r.m - zy) + r.log_s + zloss_term(r, zl);
}

// Target distribution t (any non-negative weights; their sum T need not be 1), with
// per-class weights w when kW (t_c is then w_c t_c, as PyTorch weights soft targets):
// loss = sum_c t_c (lse - z_c) = T log(s) + sum_c t_c (m - z_c) (+ zl lse^2);
// gradient gscale * ((T + 2 zl lse) softmax(z) - t).
// grad must not alias z here: the second pass below reads z again.
template <class D, bool kW>
inline double row_xent_target(const typename D::T* z, const typename D::T* t, const typename D::T* w, int64_t C,
                              typename D::T* grad, typename D::T* refs, double gscale, double zl) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  auto tload = [&](int64_t i) { return kW ? D::mul(D::load(t + i), D::load(w + i)) : D::load(t + i); };
  auto tload_tail = [&](int64_t i, int64_t k) {
    const V tv = D::load_tail(t + i, k, T(0));
    return kW ? D::mul(tv, D::load_tail(w + i, k, T(0))) : tv;
  };
  const RowLse r = grad ? row_lse<D, true>(z, C, grad, refs) : row_lse<D, false>(z, C, nullptr, nullptr);
  // Second pass (z and t): T and A relative to the final max. z is in cache for rows that
  // fit in L2; t is read here for the first time.
  double tsum = 0.0, a = 0.0;
  // a NaN max (NaN logits) makes every term with t != 0 NaN
  const V vm = D::set1(r.masked() ? T(0) : static_cast<T>(r.m));
  const V zero = D::zero();
  for (int64_t b0 = 0; b0 < C; b0 += kSumLane * W) {
    const int64_t n = C - b0 < kSumLane * W ? C - b0 : kSumLane * W;
    V ts = D::zero(), as = D::zero();
    int64_t i = b0;
    for (; i + W <= b0 + n; i += W) {
      const V tv = tload(i);
      ts = D::add(ts, tv);
      // t * (m - z), with 0 where t == 0 (so 0 * inf = 0)
      as = D::add(as, D::zero_if(D::eq(tv, zero), D::mul(tv, D::sub(vm, D::load(z + i)))));
    }
    if (i < b0 + n) {
      const V tv = tload_tail(i, b0 + n - i);
      ts = D::add(ts, tv);
      as = D::add(as, D::zero_if(D::eq(tv, zero), D::mul(tv, D::sub(vm, D::load_tail(z + i, b0 + n - i, T(0))))));
    }
    tsum += static_cast<double>(D::reduce_add(ts));
    a += static_cast<double>(D::reduce_add(as));
  }
  if (r.masked()) {
    // every class masked: +inf if any target mass, else 0 (0 log 0); NaN targets propagate
    if (grad) fill(grad, C, T(0));
    return tsum > 0 ? std::numeric_limits<double>::infinity() : (tsum == 0 ? 0.0 : tsum);
  }
  const double loss = (tsum == 0.0 ? 0.0 : tsum * r.log_s) + a + zloss_term(r, zl);
  if (grad) {
    // grad = gscale*(T + 2 zl lse)*p - gscale*t, with p = e * exp(ref - lse)
    row_scale_exps<D>(grad, C, refs, r, gscale * p_factor(r, tsum, zl));
    const V gs = D::set1(static_cast<T>(gscale));
    int64_t i = 0;
    for (; i + W <= C; i += W) D::store(grad + i, D::fnma(tload(i), gs, D::load(grad + i)));
    if (i < C) D::store_tail(grad + i, D::fnma(tload_tail(i, C - i), gs, D::load_tail(grad + i, C - i, T(0))), C - i);
  }
  return loss;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
