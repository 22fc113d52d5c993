// Hessians of the cross-entropy losses for Newton-type solvers, row kernels written once over
// a lane type D and compiled per ISA (the work-unit loop is hessian_units in units-inl.hpp).
//
// Binomial (sigmoid), elementwise: p = sigmoid(z), h = p (1 - p) = e / (1 + e)^2 with
// e = exp(-|z|) in (0, 1] (symmetric in z, no cancellation, 0 at z = +-inf); in the same pass
// the gradient p - t, written as in sigmoid-inl.hpp: (1 - t) - q for z >= 0, q - t for z < 0,
// q = e / (1 + e). Both are multiplied by the sample weight when one is given.
//
// Multinomial (softmax), per row of C classes, p = softmax(z) from the forward pass of
// softmax-inl.hpp (exponentials computed once, masks -inf give p = 0):
// - diagonal h_c = p_c (1 - p_c). 1 - p_c loses every digit when p_c ~ 1, so for the class
//   holding the unique row max it is taken as rest / s, where s = 1 + rest is the sum of
//   exp(z - m) and rest the sum over the other classes (1 - p = rest / s exactly); every
//   other class has p_c <= 1/2 and 1 - p_c is exact to an ulp. With integer labels y the
//   gradient p - onehot(y) comes in the same pass, its label entry as -(1 - p_y).
// - Hessian-vector product (H v)_c = p_c v_c - p_c (p . v) = p_c (v_c - p . v), exact (the
//   full C x C Hessian diag(p) - p p^T, never formed). v - p.v cancels for the row's
//   confident class; it is computed relative to r, the first class holding the row max:
//   v_c - p.v = d_c - D with d_k = v_k - v_r and D = sum_k p_k d_k (as sum_k p_k = 1), so
//   for c = r the result is -p_r D, a sum of small terms p_k d_k, with no cancellation.
// A fully masked row (max -inf) gives zeros; NaN and +inf logits give NaN in their row.
#pragma once
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

// One vector of the binomial Hessian h and (if grad) gradient g, times wv if weighted.
template <class D>
inline void sigmoid_hessian_step(typename D::V zv, typename D::V tv, typename D::V wv, bool grad, bool weighted,
                                 typename D::V& h, typename D::V& g) {
  using T = typename D::T;
  using V = typename D::V;
  const V one = D::set1(T(1)), zero = D::zero();
  const V e = exp_nonpos<D>(D::sub(zero, D::abs(zv)));
  const V d = D::add(one, e);
  const V q = D::div(e, d);
  h = D::div(q, d);
  if (grad) g = D::select(D::ge(zv, zero), D::sub(D::sub(one, tv), q), D::sub(q, tv));
  if (weighted) {
    h = D::mul(h, wv);
    g = D::mul(g, wv);
  }
}

// Elementwise binomial Hessian and (if grad) gradient over n elements; t is read only when
// grad is set, sw (nullable) weights both. hess may be null. Outputs may alias z, t or sw.
template <class D>
inline void run_sigmoid_hessian(const typename D::T* z, const typename D::T* t, const typename D::T* sw, int64_t n,
                                typename D::T* hess, typename D::T* grad) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1)), zero = D::zero();
  int64_t i = 0;
  V h = zero, g = zero;
  for (; i + W <= n; i += W) {
    sigmoid_hessian_step<D>(D::load(z + i), grad ? D::load(t + i) : zero, sw ? D::load(sw + i) : one, grad, sw, h, g);
    if (hess) D::store(hess + i, h);
    if (grad) D::store(grad + i, g);
  }
  if (i < n) {
    const int64_t k = n - i;
    sigmoid_hessian_step<D>(D::load_tail(z + i, k, T(0)), grad ? D::load_tail(t + i, k, T(0)) : zero,
                            sw ? D::load_tail(sw + i, k, T(0)) : one, grad, sw, h, g);
    if (hess) D::store_tail(hess + i, h, k);
    if (grad) D::store_tail(grad + i, g, k);
  }
}

// As run_sigmoid_hessian over nr contiguous rows of C >= D::W elements, row r weighted by
// rw[r] (rw readable at rw[nr]): no weight per element. Rows of whole vectors take a
// broadcast per row; others the row weights per vector (RowWeights, sigmoid_opt-inl.hpp:
// its test per vector measured 2-5% slower than the row loop at C = 256 float32).
template <class D>
inline void run_sigmoid_hessian_rows(const typename D::T* z, const typename D::T* t, const typename D::T* rw,
                                     int64_t nr, int64_t C, typename D::T* hess, typename D::T* grad) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const int64_t n = nr * C;
  V h = D::zero(), g = D::zero();
  if (C % W == 0) {
    for (int64_t r = 0, o = 0; r < nr; ++r) {
      const V wv = D::set1(rw[r]);
      for (const int64_t end = o + C; o < end; o += W) {
        sigmoid_hessian_step<D>(D::load(z + o), grad ? D::load(t + o) : D::zero(), wv, grad, true, h, g);
        if (hess) D::store(hess + o, h);
        if (grad) D::store(grad + o, g);
      }
    }
    return;
  }
  RowWeights<D> w(rw, C, 0);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    sigmoid_hessian_step<D>(D::load(z + i), grad ? D::load(t + i) : D::zero(), w.next(), grad, true, h, g);
    if (hess) D::store(hess + i, h);
    if (grad) D::store(grad + i, g);
  }
  if (i < n) {
    const int64_t k = n - i;
    sigmoid_hessian_step<D>(D::load_tail(z + i, k, T(0)), grad ? D::load_tail(t + i, k, T(0)) : D::zero(), w.next(),
                            grad, true, h, g);
    if (hess) D::store_tail(hess + i, h, k);
    if (grad) D::store_tail(grad + i, g, k);
  }
}

// 1 - p for the lanes of p, with the row max's class (z == m, when unique) given exactly.
template <class D>
inline typename D::V one_minus_p(typename D::V p, typename D::V zv, typename D::V vm, bool unique,
                                 typename D::V top) {
  const typename D::V q = D::sub(D::set1(typename D::T(1)), p);
  return unique ? D::select(D::eq(zv, vm), top, q) : q;
}

// Diagonal of the multinomial Hessian of a contiguous row: hess_c = w p_c (1 - p_c) and, if
// grad, grad_c = w (p_c - [c == y]). e is scratch of C elements, refs of n_blocks(C); hess
// and grad may alias z (each lane of z is read before it is written), not each other.
template <class D>
inline void row_softmax_hessian_diag(const typename D::T* z, int64_t C, int64_t y, double w, typename D::T* hess,
                                     typename D::T* grad, typename D::T* e, typename D::T* refs) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const T zy = grad ? z[y] : T(0);  // read before an aliased output overwrites it
  const RowLse r = row_lse<D, true, T>(z, C, e, refs, nullptr, false);
  if (r.masked()) {
    if (hess) fill(hess, C, T(0));
    if (grad) fill(grad, C, T(0));
    return;
  }
  row_scale_exps<D>(e, C, refs, r, 1.0);
  const bool unique = r.ones == 1.0;
  const double top = r.rest / (r.ones + r.rest);  // 1 - p of the unique max's class
  const V vm = D::set1(static_cast<T>(r.m)), vtop = D::set1(static_cast<T>(top));
  const V vw = D::set1(static_cast<T>(w));
  auto out = [&](int64_t i, V p, V zv, int64_t k) {
    const V q = one_minus_p<D>(p, zv, vm, unique, vtop);
    const V wp = D::mul(vw, p);
    if (k == W) {
      if (hess) D::store(hess + i, D::mul(wp, q));
      if (grad) D::store(grad + i, wp);
    } else {
      if (hess) D::store_tail(hess + i, D::mul(wp, q), k);
      if (grad) D::store_tail(grad + i, wp, k);
    }
  };
  int64_t i = 0;
  for (; i + W <= C; i += W) out(i, D::load(e + i), D::load(z + i), W);
  if (i < C) out(i, D::load_tail(e + i, C - i, T(0)), D::load_tail(z + i, C - i, T(0)), C - i);
  if (grad) {
    const double py = static_cast<double>(e[y]);
    const double qy = (unique && static_cast<double>(zy) == r.m) ? top : 1.0 - py;
    grad[y] = static_cast<T>(-w * qy);
  }
}

// Multinomial Hessian-vector product of a contiguous row: out_c = w p_c (d_c - D) (see the
// top of this file). e is scratch of C elements, refs of n_blocks(C); out may alias z or v.
template <class D>
inline void row_softmax_hvp(const typename D::T* z, const typename D::T* v, int64_t C, double w, typename D::T* out,
                            typename D::T* e, typename D::T* refs) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const RowLse r = row_lse<D, true, T>(z, C, e, refs, nullptr, false);
  if (r.masked()) return fill(out, C, T(0));
  row_scale_exps<D>(e, C, refs, r, 1.0);
  int64_t ref = 0;
  const T mt = static_cast<T>(r.m);
  while (ref < C - 1 && !(z[ref] == mt)) ++ref;
  const V vr = D::set1(v[ref]);
  // D = sum_k p_k (v_k - v_r); float partial sums go into a double every kSumLane * W terms
  double dsum = 0.0;
  for (int64_t b0 = 0; b0 < C; b0 += kSumLane * W) {
    const int64_t end = C - b0 < kSumLane * W ? C : b0 + kSumLane * W;
    V acc = D::zero();
    int64_t i = b0;
    for (; i + W <= end; i += W) acc = D::fma(D::load(e + i), D::sub(D::load(v + i), vr), acc);
    if (i < end)
      acc = D::fma(D::load_tail(e + i, end - i, T(0)), D::sub(D::load_tail(v + i, end - i, T(0)), vr), acc);
    dsum += static_cast<double>(D::reduce_add(acc));
  }
  const V vd = D::set1(static_cast<T>(dsum)), vw = D::set1(static_cast<T>(w));
  auto val = [&](V p, V vv) { return D::mul(D::mul(vw, p), D::sub(D::sub(vv, vr), vd)); };
  int64_t i = 0;
  for (; i + W <= C; i += W) D::store(out + i, val(D::load(e + i), D::load(v + i)));
  if (i < C) D::store_tail(out + i, val(D::load_tail(e + i, C - i, T(0)), D::load_tail(v + i, C - i, T(0))), C - i);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
