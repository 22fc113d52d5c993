// Cross-entropy from probabilities (Keras's forms) and log_logistic, written once over a
// lane type D and compiled per ISA.
//
// Clipping (Keras: clip(q, eps, 1 - eps)), with exact bounds in both precisions: below eps
// a log is log(eps), above 1 - eps it is log1p(-eps) (both computed in double once), and
// the test "q > 1 - eps" is made as "1 - q < eps", exact for q >= 1/2. So a probability of
// 1 with target 0 costs -log(eps) in float32 too (Keras rounds 1 - 1e-7 to 1 - 1.19e-7).
// The clip's gradient is TensorFlow's: 1 for eps <= q <= 1 - eps, else 0.
//
// Categorical, one row p[0..C) (contiguous here; the driver gathers strided rows):
//   s = sum p (renorm) or 1; q = p / s (s = 0: every q is 0 and clips to eps);
//   t' = (1 - ls) t + ls / C; l = -sum t'_c log clip(q_c);
//   dl/dp_j = (T_in - t'_j in_j / q_j) / s with T_in = sum_c t'_c in_c (renorm),
//   dl/dp_j = -t'_j in_j / q_j without renorm (in_c: the clip passes the gradient).
// Binary, elementwise: t' = (1 - ls) t + ls / 2; l = -(t' log a + (1 - t') log(1 - a)),
//   a = clip(p); dl/dp = in * ((1 - t') / (1 - p) - t' / p), computed as in * (p - t') / (p (1 - p));
//   log(1 - p) by log_1m.
// A probability outside [0, 1], or NaN, makes its row's (or element's) loss NaN: the
// Python layer then finds it and raises. Sums as elsewhere: T lanes into double every
// kSumLane * W terms.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

template <class D>
struct ClipLogs {
  using T = typename D::T;
  using V = typename D::V;
  V eps, l_eps, l_1m_eps;
  explicit ClipLogs(double e)
      : eps(D::set1(static_cast<T>(e))),
        l_eps(D::set1(static_cast<T>(std::log(e)))),
        l_1m_eps(D::set1(static_cast<T>(std::log1p(-e)))) {}
};

// Lanes of v that are not in [0, 1] (NaN included), as a mask.
template <class D>
inline auto outside_unit(typename D::V v) {
  using T = typename D::T;
  // ge/le are ordered compares: false for NaN; select turns "inside" into 0, else 1
  const auto in = D::ge(v, D::zero());
  const typename D::V a = D::select(in, D::zero(), D::set1(T(1)));
  const auto in2 = D::ge(D::set1(T(1)), v);
  const typename D::V b = D::select(in2, a, D::set1(T(1)));
  return D::gt(b, D::zero());
}

// Sum of a row and whether any entry is outside [0, 1].
template <class D>
inline double row_sum_checked(const typename D::T* p, int64_t n, bool& bad) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  double total = 0.0;
  V badv = D::zero();
  for (int64_t b0 = 0; b0 < n; b0 += kSumLane * W) {
    const int64_t end = n - b0 < kSumLane * W ? n : b0 + kSumLane * W;
    V acc = D::zero();
    int64_t i = b0;
    for (; i + W <= end; i += W) {
      const V v = D::load(p + i);
      badv = D::select(outside_unit<D>(v), D::set1(T(1)), badv);
      acc = D::add(acc, v);
    }
    if (i < end) {
      const V v = D::load_tail(p + i, end - i, T(0));
      badv = D::select(outside_unit<D>(v), D::set1(T(1)), badv);
      acc = D::add(acc, v);
    }
    total += static_cast<double>(D::reduce_add(acc));
  }
  bad = D::reduce_max(badv) > T(0);
  return total;
}

// log clip(q) and the clip's gradient mask (as 0/1 in `in`).
template <class D>
inline typename D::V clipped_log(typename D::V q, const ClipLogs<D>& c, typename D::V& in) {
  using T = typename D::T;
  const typename D::V one = D::set1(T(1));
  const auto lo = D::lt(q, c.eps);
  const auto hi = D::lt(D::sub(one, q), c.eps);
  const typename D::V lq = log_unit<D>(D::max(q, c.eps));
  in = D::select(lo, D::zero(), D::select(hi, D::zero(), one));
  return D::select(lo, c.l_eps, D::select(hi, c.l_1m_eps, lq));
}

template <class D>
inline typename D::T lane0(typename D::V v) {
  typename D::T lanes[D::W];
  D::store(lanes, v);
  return lanes[0];
}

// One categorical row. t: targets (nullable: integer label y instead). grad (nullable)
// receives gscale * dl/dp. Returns the row loss (NaN if a probability is outside [0, 1]).
template <class D>
double row_proba_categorical(const typename D::T* p, const typename D::T* t, int64_t y, int64_t C, bool renorm,
                             const ClipLogs<D>& cl, double ls, typename D::T* grad, double gscale) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  bool bad = false;
  const double sd = row_sum_checked<D>(p, C, bad);
  if (bad) {
    if (grad) fill(grad, C, std::numeric_limits<T>::quiet_NaN());
    return std::numeric_limits<double>::quiet_NaN();
  }
  T s = (renorm && sd > 0) ? static_cast<T>(sd) : T(1);
  const V sv = D::set1(s);
  const bool label = t == nullptr;
  const double uni = C > 0 ? ls / static_cast<double>(C) : 0.0;
  double loss = 0.0, t_in = 0.0;
  T q_y = 0, in_y = 0, l_y = 0;
  if (label) {
    V in;
    const V ly = clipped_log<D>(D::div(D::set1(p[y]), sv), cl, in);
    q_y = lane0<D>(D::div(D::set1(p[y]), sv));
    in_y = lane0<D>(in);
    l_y = lane0<D>(ly);
  }
  if (!label || uni != 0.0) {
    // full pass: t'_c log q_c, T_in, and -t'_c in_c / q_c into grad
    const V onem = D::set1(static_cast<T>(1.0 - ls));
    const V uv = D::set1(static_cast<T>(uni));
    for (int64_t b0 = 0; b0 < C; b0 += kSumLane * W) {
      const int64_t end = C - b0 < kSumLane * W ? C : b0 + kSumLane * W;
      V lacc = D::zero(), tacc = D::zero();
      int64_t i = b0;
      auto step = [&](V pv, V tv, V& lt, V& ti, V& g) {
        const V q = renorm ? D::div(pv, sv) : pv;
        V in;
        const V lq = clipped_log<D>(q, cl, in);
        const V tt = label ? uv : D::fma(onem, tv, uv);
        lt = D::zero_if(D::eq(tt, D::zero()), D::mul(tt, lq));
        ti = D::mul(tt, in);
        g = D::zero_if(D::eq(ti, D::zero()), D::div(ti, q));
      };
      for (; i + W <= end; i += W) {
        V lt, ti, g;
        step(D::load(p + i), label ? D::zero() : D::load(t + i), lt, ti, g);
        lacc = D::add(lacc, lt);
        tacc = D::add(tacc, ti);
        if (grad) D::store(grad + i, D::sub(D::zero(), g));
      }
      if (i < end) {
        const int64_t k = end - i;
        V lt, ti, g;
        step(D::load_tail(p + i, k, T(1)), label ? D::zero() : D::load_tail(t + i, k, T(0)), lt, ti, g);
        T a[W], b[W];
        D::store(a, lt);
        D::store(b, ti);
        for (int64_t j = 0; j < k; ++j) loss += static_cast<double>(a[j]), t_in += static_cast<double>(b[j]);
        if (grad) D::store_tail(grad + i, D::sub(D::zero(), g), k);
      }
      loss += static_cast<double>(D::reduce_add(lacc));
      t_in += static_cast<double>(D::reduce_add(tacc));
    }
  } else if (grad) {
    fill(grad, C, T(0));
  }
  if (label) {
    const double w = 1.0 - ls;
    loss += w * static_cast<double>(l_y);
    t_in += w * static_cast<double>(in_y);
    if (grad && in_y != 0) grad[y] = static_cast<T>(static_cast<double>(grad[y]) - w / static_cast<double>(q_y));
  }
  if (grad) {
    const V add = D::set1(renorm ? static_cast<T>(t_in) : T(0));
    const V scale = D::set1(static_cast<T>(gscale / static_cast<double>(s)));
    int64_t i = 0;
    for (; i + W <= C; i += W) D::store(grad + i, D::mul(D::add(D::load(grad + i), add), scale));
    if (i < C) D::store_tail(grad + i, D::mul(D::add(D::load_tail(grad + i, C - i, T(0)), add), scale), C - i);
  }
  return -loss;
}

// Binary cross-entropy from probabilities, or log_logistic (t == nullptr, p = x, loss_elem
// receives log_logistic(x) = min(x, 0) - log1p(exp(-|x|)); the return value is then 0).
template <class D>
double run_proba_binary(const typename D::T* p, const typename D::T* t, int64_t n, const ClipLogs<D>& cl, double ls,
                        typename D::T* loss_elem, typename D::T* grad, double gscale) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  const V one = D::set1(T(1));
  if (!t) {
    int64_t i = 0;
    auto ll = [&](V x) {
      return D::sub(D::min(x, D::zero()), log1p_unit<D>(exp_nonpos<D>(D::sub(D::zero(), D::abs(x)))));
    };
    for (; i + W <= n; i += W) D::store(loss_elem + i, ll(D::load(p + i)));
    if (i < n) D::store_tail(loss_elem + i, ll(D::load_tail(p + i, n - i, T(0))), n - i);
    return 0.0;
  }
  const V onem = D::set1(static_cast<T>(1.0 - ls));
  const V half = D::set1(static_cast<T>(ls / 2));
  const V gs = D::set1(static_cast<T>(gscale));
  const V nan = D::set1(std::numeric_limits<T>::quiet_NaN());
  // log p and log(1 - p) where p is in range (the others are replaced in step)
  auto log_p = [&](V pv) { return log_unit<D>(D::max(pv, cl.eps)); };
  auto log_q = [&](V pv) { return log_1m<D>(D::min(pv, D::sub(one, cl.eps))); };
  // the logs of a block's full vectors are a stage of their own, before the rest (as
  // sigmoid_exp_log_stages: 2048 x 256 float32 loss + grad 0.67 -> 0.58 ms)
  alignas(64) T lpb[kSumLane * W], lqb[kSumLane * W];
  auto step = [&](V pv, V tv, V log_pv, V log_qv, V& l, V& g) {
    const V c = D::sub(one, pv);
    const auto lo = D::lt(pv, cl.eps);
    const auto hi = D::lt(c, cl.eps);
    const V tt = D::fma(onem, tv, half);
    const V ut = D::sub(one, tt);
    const V lp = D::select(lo, cl.l_eps, D::select(hi, cl.l_1m_eps, log_pv));
    const V lq = D::select(hi, cl.l_eps, D::select(lo, cl.l_1m_eps, log_qv));
    const V a = D::zero_if(D::eq(tt, D::zero()), D::mul(tt, lp));
    const V b = D::zero_if(D::eq(ut, D::zero()), D::mul(ut, lq));
    l = D::select(outside_unit<D>(pv), nan, D::sub(D::zero(), D::add(a, b)));
    if (grad) {
      // (1 - t')/(1 - p) - t'/p, as (p - t') / (p (1 - p)): no cancellation between two terms
      const V gv = D::div(D::sub(pv, tt), D::mul(pv, c));
      g = D::mul(D::zero_if(lo, D::zero_if(hi, gv)), gs);
    }
  };
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += kSumLane * W) {
    const int64_t end = n - b0 < kSumLane * W ? n : b0 + kSumLane * W;
    V acc = D::zero();
    int64_t i = b0;
    for (int64_t j = b0; j + W <= end; j += W) {
      const V pv = D::load(p + j);
      D::store(lpb + (j - b0), log_p(pv));
      D::store(lqb + (j - b0), log_q(pv));
    }
    for (; i + W <= end; i += W) {
      V l, g = D::zero();
      step(D::load(p + i), D::load(t + i), D::load(lpb + (i - b0)), D::load(lqb + (i - b0)), l, g);
      acc = D::add(acc, l);
      if (loss_elem) D::store(loss_elem + i, l);
      if (grad) D::store(grad + i, g);
    }
    if (i < end) {
      const int64_t k = end - i;
      V l, g = D::zero();
      const V pv = D::load_tail(p + i, k, T(0.5));
      step(pv, D::load_tail(t + i, k, T(0)), log_p(pv), log_q(pv), l, g);
      T lanes[W];
      D::store(lanes, l);
      for (int64_t j = 0; j < k; ++j) total += static_cast<double>(lanes[j]);
      if (loss_elem) D::store_tail(loss_elem + i, l, k);
      if (grad) D::store_tail(grad + i, g, k);
    }
    total += static_cast<double>(D::reduce_add(acc));
  }
  return total;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
