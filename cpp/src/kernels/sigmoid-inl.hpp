// Sigmoid (binary, multi-label) cross-entropy over a contiguous run of elements.
//
// l = max(z, 0) - z*t + log1p(exp(-|z|)), written without cancellation as
//     l = z*(1 - t) + log1p(e)   for z >= 0,
//     l = -z*t      + log1p(e)   for z <  0,      e = exp(-|z|) in (0, 1],
// so both terms are >= 0 for t in [0, 1] and the sum loses nothing (the textbook form
// subtracts z*t from max(z, 0) and loses all digits when t ~ 1 and |z| is large).
// A zero factor gives a zero term even for infinite z (z = -inf with t = 0 costs 0).
// Gradient sigmoid(z) - t with q = e / (1 + e): (1 - t) - q for z >= 0, q - t for z < 0.
#pragma once
#include <cstdint>
#include "kernels/prefetch-inl.hpp"

namespace xent {
namespace XENT_ISA_NS {

// e = exp(-|z|) and log1p(e) for n elements (a multiple of W) of z, into eb and lb: the two
// long dependency chains of every sigmoid loss (exp's polynomial, then log1p's division and
// polynomial), each a stage of its own over a block in L1 before the rest of the element's
// arithmetic. Out-of-order execution then overlaps many more vectors than one long step per
// vector allows (2048 x 256 loss + gradient, one thread: float32 0.71 -> 0.49 ms, float64
// 2.16 -> 1.41 ms). The values are the same as computed in one step. z may be half storage.
template <class D, class S = typename D::T>
XENT_FORCE_INLINE void sigmoid_exp_log_stages(const S* z, int64_t n, typename D::T* eb, typename D::T* lb) {
  constexpr int W = D::W;
  for (int64_t j = 0; j < n; j += W)
    D::store(eb + j, exp_nonpos<D>(D::sub(D::zero(), D::abs(Io<D, S>::load(z + j)))));
  for (int64_t j = 0; j < n; j += W) D::store(lb + j, log1p_unit<D>(D::load(eb + j)));
}

template <class D>
struct SigmoidStep {
  using T = typename D::T;
  using V = typename D::V;
  V loss, grad;
  static SigmoidStep run(V z, V t, bool want_grad) {
    const V e = exp_nonpos<D>(D::sub(D::zero(), D::abs(z)));
    return run_from(z, t, e, log1p_unit<D>(e), want_grad);
  }
  // the rest, from e = exp(-|z|) and l1p = log1p(e)
  static SigmoidStep run_from(V z, V t, V e, V l1p, bool want_grad) {
    const V one = D::set1(T(1));
    const V zero = D::zero();
    const auto pos = D::ge(z, zero);
    const V omt = D::sub(one, t);
    const V a = D::select(pos, omt, D::sub(zero, t));
    const V lin = D::zero_if(D::eq(a, zero), D::mul(z, a));
    SigmoidStep r;
    r.loss = D::add(lin, l1p);
    if (want_grad) {
      const V q = D::div(e, D::add(one, e));
      r.grad = D::select(pos, D::sub(omt, q), D::sub(q, t));
    }
    return r;
  }
};

// Returns the sum of the element losses (float sums of kSumLane terms per lane, added in double).
// loss_elem (nullable) receives each element's loss; grad (nullable) gscale * dl/dz.
// z, t and grad may be half storage S (float lanes), converted in the loads and the stores:
// the float32 values, the gradient rounded once, as through float32 rows and store_row.
template <class D, class S = typename D::T>
inline double run_sigmoid(const S* z, const S* t, int64_t n, typename D::T* loss_elem, S* grad, double gscale) {
  using T = typename D::T;
  using V = typename D::V;
  using L = Io<D, S>;
  constexpr int W = D::W;
  const V gs = D::set1(static_cast<T>(gscale));
  const bool want_grad = grad != nullptr;
  double total = 0.0;
  for (int64_t b0 = 0; b0 < n; b0 += kSumLane * W) {
    const int64_t end = n - b0 < kSumLane * W ? n : b0 + kSumLane * W;
    V acc = D::zero();
    int64_t i = b0;
    alignas(64) T eb[kSumLane * W], lb[kSumLane * W];
    sigmoid_exp_log_stages<D, S>(z + b0, (end - b0) / W * W, eb, lb);
    for (; i + W <= end; i += W) {
      const SigmoidStep<D> s =
          SigmoidStep<D>::run_from(L::load(z + i), L::load(t + i), D::load(eb + (i - b0)), D::load(lb + (i - b0)),
                                   want_grad);
      acc = LossAcc<D>::add(acc, s.loss);
      if (loss_elem) D::store(loss_elem + i, s.loss);
      if (want_grad) L::store(grad + i, D::mul(s.grad, gs));
    }
    if (i < end) {
      const int64_t k = end - i;
      const SigmoidStep<D> s =
          SigmoidStep<D>::run(load_tail_fill<D>(z + i, k, T(0)), load_tail_fill<D>(t + i, k, T(0)), want_grad);
      // padded lanes: z = 0, t = 0 give log(2); mask them out of the sum
      T lanes[W];
      D::store(lanes, s.loss);
      for (int64_t j = 0; j < k; ++j) total += static_cast<double>(lanes[j]);
      if (loss_elem) D::store_tail(loss_elem + i, s.loss, k);
      if (want_grad) L::store_tail(grad + i, D::mul(s.grad, gs), k);
    }
    total += LossAcc<D>::total(acc);
  }
  return total;
}

}  // namespace XENT_ISA_NS
}  // namespace xent

// The loss with options (weights, pos_weight, label smoothing) and the focal loss.
#include "kernels/sigmoid_opt-inl.hpp"
