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
#include <type_traits>

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

// Label smoothing (SEMANTICS.md): the target becomes (1 - eps) t + eps / K over the K
// classes that are not masked (z > -inf), each weighted by w_c when class weights are
// given, so that no mass lands on a masked class. Sums over the unmasked classes:
// K, SW = sum w_c and SA = sum w_c (m - z_c). For integer labels the forward pass counts K
// (row_lse's kLive), and when K = C (no class masked: kAllLive below) SW is the weights'
// sum, once per call (the caller's), so only SA takes a pass over z (in cache for rows in
// L2); target rows take all three from that pass.
struct SmoothStats {
  double k = 0, sw = 0, sa = 0;
};

// The pass sums in two accumulators of each kind, alternating vectors (a single one was a
// chain of dependent additions, 3 cycles per vector on AVX2), each lane adding at most
// kSumLane terms before they go into the double totals.
template <class D, bool kW, bool kAllLive = false>
inline SmoothStats smooth_stats(const typename D::T* z, const typename D::T* w, int64_t C, typename D::T m) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V vm = D::set1(m), zero = D::zero();
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  SmoothStats st;
  V kc = zero;  // K in integer lanes (exact), summed once
  auto step = [&](V zv, V wv, V& sw, V& sa) {
    V term = D::sub(vm, zv);
    // m - z overflows to inf for finite logits of both signs near the largest value: a
    // class of weight 0 must add 0 there, not 0 * inf = NaN (a fuzz find)
    if (kW) term = D::zero_if(D::eq(wv, zero), D::mul(wv, term));
    if constexpr (kAllLive) {
      sa = D::add(sa, term);
    } else {
      const auto live = D::gt(zv, ninf);
      kc = D::count_if(live, kc);
      if (kW) sw = D::add(sw, D::select(live, wv, zero));
      sa = D::add(sa, D::select(live, term, zero));
    }
  };
  auto wload = [&](int64_t i) { return kW ? D::load(w + i) : zero; };
  for (int64_t b0 = 0; b0 < C; b0 += 2 * kSumLane * W) {
    const int64_t end = C - b0 < 2 * kSumLane * W ? C : b0 + 2 * kSumLane * W;
    V sw0 = zero, sa0 = zero, sw1 = zero, sa1 = zero;
    int64_t i = b0;
    for (; i + 2 * W <= end; i += 2 * W) {
      step(D::load(z + i), wload(i), sw0, sa0);
      step(D::load(z + i + W), wload(i + W), sw1, sa1);
    }
    if (i + W <= end) step(D::load(z + i), wload(i), sw0, sa0), i += W;
    if (i < end)
      step(D::load_tail(z + i, end - i, kAllLive ? m : -std::numeric_limits<T>::infinity()),  // lanes adding 0
           kW ? D::load_tail(w + i, end - i, T(0)) : zero, sw1, sa1);
    if (kW && !kAllLive) st.sw += static_cast<double>(D::reduce_add(D::add(sw0, sw1)));
    st.sa += static_cast<double>(D::reduce_add(D::add(sa0, sa1)));
  }
  if (!kAllLive) st.k = static_cast<double>(D::count_total(kc));
  if (!kW && !kAllLive) st.sw = st.k;  // every weight 1
  return st;
}

// The gradient's smoothing term with row_scale_exps's scaling, in one pass over the row:
// e_c * f_b - coef * w_c on the unmasked classes (one FMA with class weights), e_c * f_b on
// the masked ones. With kAllLive (no class is masked) the term needs no mask, nor z: the
// same bits.
template <class D, bool kW, bool kAllLive = false>
inline void row_scale_exps_smooth(typename D::T* e, const typename D::T* z, const typename D::T* w, int64_t C,
                                  const typename D::T* refs, const RowLse& r, double scale, double coef) {
  using T = typename D::T;
  using V = typename D::V;
  const V c = D::set1(static_cast<T>(coef)), zero = D::zero();
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  auto smooth = [&](int64_t i, int64_t k, V g) {
    const bool full = k == D::W;
    V wv = kW ? (full ? D::load(w + i) : D::load_tail(w + i, k, T(0))) : c;
    if constexpr (!kAllLive) {
      const V zv = full ? D::load(z + i) : D::load_tail(z + i, k, T(0));
      wv = D::select(D::gt(zv, ninf), wv, zero);
    }
    return kW ? D::fnma(c, wv, g) : D::sub(g, wv);
  };
  row_scale_exps<D, T>(e, C, refs, r, scale, nullptr, smooth);
}

// Integer label y in [0, C): returns lse - z[y] (+ zl lse^2), computed as (m - z[y]) + log(s).
// If grad, writes gscale * ((1 + 2 zl lse) softmax(z) - onehot(y)) (grad may alias z).
// z may be half storage S (no smoothing then: its statistics read z as T); with `hgrad`
// the gradient goes to that half row, grad being the float32 buffer of the exponentials.
// With `dcap` (the soft cap's derivatives, softcap_row's d; T storage and eps == 0 only),
// the gradient is multiplied by it in the rescaling pass: the bits of mul_rows afterwards.
// With smoothing and class weights w, `wsum` is their sum (in double).
// With `later` (LogLater), a row whose gradient needs no log(s) now (one block; with a
// z-loss, rows of one label of at most log_batch_max_c classes whose gradient may wait)
// returns the loss without its T log(s) and z-loss terms and leaves them to `later`.
template <class D, bool kW, class S = typename D::T>
inline double row_xent_label(const S* z, int64_t C, int64_t y, const typename D::T* w, double eps,
                             typename D::T* grad, typename D::T* refs, double gscale, double zl,
                             S* hgrad = nullptr, const typename D::T* dcap = nullptr, double wsum = 0.0,
                             LogLater<typename D::T>* later = nullptr) {
  using T = typename D::T;
  const double zy = static_cast<double>(Io<D, S>::get(z[y]));  // read before grad may overwrite z
  // smoothing takes K from the forward pass
  const bool live = eps != 0.0;
  RowLse r = grad ? (live ? row_lse<D, true, S, true, false>(z, C, grad, refs)
                          : row_lse<D, true, S, false, false>(z, C, grad, refs, hgrad))
                  : (live ? row_lse<D, false, S, true, false>(z, C, nullptr, nullptr)
                          : row_lse<D, false, S, false, false>(z, C, nullptr, nullptr));
  const bool zl_ok = zl == 0.0 || (later && eps == 0.0 && (!grad || (later->grad_ok && !hgrad && !dcap &&
                                                                        C <= log_batch_max_c<T>())));
  const bool defer = later && zl_ok && (!grad || C <= kBlock) && !r.masked() && r.vector_log();
  if (!defer) r.finish();
  if (r.masked()) {
    if (hgrad) fill(hgrad, C, S{});
    else if (grad) fill(grad, C, T(0));
    return std::numeric_limits<double>::infinity();
  }
  if (eps == 0.0) {
    if (grad && defer && zl != 0.0) {  // rescaled by `later` once lse is known
      later->grad = grad, later->C = C, later->y = y, later->gscale = gscale;
    } else if (grad) {
      const double f = gscale * p_factor(r, 1.0, zl);
      if (hgrad) {  // the float32 value of the in-place path below, rounded once
        const T gy = static_cast<T>(static_cast<double>(scaled_exp(grad, y, refs, r, f)) - gscale);
        row_scale_exps<D, S>(grad, C, refs, r, f, hgrad);
        hgrad[y] = Io<D, S>::put(gy);
      } else if (dcap) {
        const T gy = static_cast<T>(static_cast<double>(scaled_exp(grad, y, refs, r, f)) - gscale);
        row_scale_exps<D>(grad, C, refs, r, f, static_cast<T*>(nullptr), TimesRow<D>{dcap});
        grad[y] = gy * dcap[y];
      } else {
        row_scale_exps<D>(grad, C, refs, r, f);
        grad[y] = static_cast<T>(static_cast<double>(grad[y]) - gscale);
      }
    }
    if (defer) {
      later->set(r, 1.0, zl);
      return r.m - zy;
    }
    return (r.m - zy) + r.log_s + zloss_term(r, zl);
  }
  if constexpr (!std::is_same_v<S, T>) {
    return std::numeric_limits<double>::quiet_NaN();  // not called: half rows with smoothing go through T
  } else {
  // smoothed: t = (1 - eps) w_y onehot(y) + eps/K w_c over unmasked c (grad may not alias
  // z: the driver, units-inl.hpp, copies such a row to scratch first)
  SmoothStats st;
  const bool all_live = r.live == static_cast<double>(C);
  if (all_live) {
    st = smooth_stats<D, kW, true>(z, w, C, static_cast<T>(r.m));
    st.k = r.live, st.sw = kW ? wsum : r.live;
  } else {
    st = smooth_stats<D, kW>(z, w, C, static_cast<T>(r.m));
  }
  const double wy = (kW ? static_cast<double>(w[y]) : 1.0) * (1.0 - eps);
  const double tsum = wy + eps / st.k * st.sw;
  if (grad) {
    const double f = gscale * p_factor(r, tsum, zl), coef = gscale * eps / st.k;
    if (all_live) row_scale_exps_smooth<D, kW, true>(grad, z, w, C, refs, r, f, coef);
    else row_scale_exps_smooth<D, kW>(grad, z, w, C, refs, r, f, coef);
    grad[y] = static_cast<T>(static_cast<double>(grad[y]) - gscale * wy);
  }
  const double a = (wy == 0.0 ? 0.0 : wy * (r.m - zy)) + eps / st.k * st.sa;
  if (defer) {
    later->set(r, tsum);
    return a;
  }
  return tsum * r.log_s + a + zloss_term(r, zl);
  }
}

// Target distribution t (any non-negative weights; their sum T need not be 1), with
// per-class weights w when kW (t_c is then w_c t_c, as PyTorch weights soft targets):
// loss = sum_c t_c (lse - z_c) = T log(s) + sum_c t_c (m - z_c) (+ zl lse^2);
// gradient gscale * ((T + 2 zl lse) softmax(z) - t).
// grad must not alias z here: the second pass below reads z again (the driver,
// units-inl.hpp, copies the row to scratch when the gradient goes over the logits).
// `later` as for row_xent_label.
template <class D, bool kW>
inline double row_xent_target(const typename D::T* z, const typename D::T* t, const typename D::T* w, double eps,
                              int64_t C, typename D::T* grad, typename D::T* refs, double gscale, double zl,
                              LogLater<typename D::T>* later = nullptr) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  auto tload = [&](int64_t i) { return kW ? D::mul(D::load(t + i), D::load(w + i)) : D::load(t + i); };
  auto tload_tail = [&](int64_t i, int64_t k) {
    const V tv = D::load_tail(t + i, k, T(0));
    return kW ? D::mul(tv, D::load_tail(w + i, k, T(0))) : tv;
  };
  // The exponentials' pass brings t's lines in: read cold by the next pass, which has little
  // else to do, t took the loss + gradient 1.5x the label loss's time at 1024 x 1000 float32,
  // 2.3x at 64 x 50304 (1.9x with it). The forward pass alone of rows of one block (C <=
  // kBlock) measured 1.06-1.08x slower with it, and goes without.
  RowLse r = grad ? row_lse<D, true, T, false, false, true>(z, C, grad, refs, t)
                  : row_lse<D, false, T, false, false, true>(z, C, nullptr, nullptr, C > kBlock ? t : nullptr);
  const bool defer = later && zl == 0.0 && (!grad || C <= kBlock) && !r.masked() && r.vector_log();
  if (!defer) r.finish();
  // Second pass (z and t): T and A relative to the final max. z is in cache for rows that
  // fit in L2; t too, since the first pass.
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
  SmoothStats st;
  if (eps != 0.0) {  // t -> (1 - eps) t + eps/K w over the unmasked classes
    st = smooth_stats<D, kW>(z, w, C, static_cast<T>(r.m));
    // eps = 1 replaces t: its mass on a masked class (a = inf) must give 0, not 0 * inf
    tsum = (eps == 1.0 ? 0.0 : (1.0 - eps) * tsum) + eps / st.k * st.sw;
    a = (eps == 1.0 ? 0.0 : (1.0 - eps) * a) + eps / st.k * st.sa;
  }
  double loss;
  if (defer && tsum != 0.0) {
    later->set(r, tsum);
    loss = a;
  } else {
    loss = (tsum == 0.0 ? 0.0 : tsum * r.log_s) + a + zloss_term(r, zl);
  }
  if (grad) {
    // grad = gscale*(T + 2 zl lse)*p - gscale*t, with p = e * exp(ref - lse)
    const V gs = D::set1(static_cast<T>(gscale * (1.0 - eps)));
    if (eps == 0.0) {  // the t term in the rescaling pass (its hook): the same bits as a pass after it
      auto minus_t = [&](int64_t i, int64_t k, V g) { return D::fnma(k == W ? tload(i) : tload_tail(i, k), gs, g); };
      row_scale_exps<D, T>(grad, C, refs, r, gscale * p_factor(r, tsum, zl), nullptr, minus_t);
      return loss;
    }
    row_scale_exps_smooth<D, kW>(grad, z, w, C, refs, r, gscale * p_factor(r, tsum, zl), gscale * eps / st.k);
    int64_t i = 0;
    for (; i + W <= C; i += W) D::store(grad + i, D::fnma(tload(i), gs, D::load(grad + i)));
    if (i < C) D::store_tail(grad + i, D::fnma(tload_tail(i, C - i), gs, D::load_tail(grad + i, C - i, T(0))), C - i);
  }
  return loss;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
