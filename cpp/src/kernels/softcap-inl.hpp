// Soft-capping of the logits, z -> cap * tanh(z / cap), a row at a time, with the cap's
// derivative for the gradient: used by the softmax losses (units-inl.hpp) and by the sigmoid
// losses (sigmoid_opt-inl.hpp), so both cap to the same bits.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include "kernels/prefetch-inl.hpp"

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
// ahead (cs == 1 only): each vector prefetches z's line kPrefetchAhead bytes on, into the
// next rows of a contiguous batch (the softmax losses, whose row passes after this one read
// the capped copy: their own prefetches do not reach the logits).
template <class D>
inline void softcap_row(const typename D::T* z, int64_t cs, int64_t C, double cap, typename D::T* dst,
                        typename D::T* d, bool* full_mode, bool ahead = false) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  constexpr int kCapChunk = 32;
  if (cs != 1) {
    for (int64_t i = 0; i < C; ++i) dst[i] = z[i * cs];
    z = dst;
    ahead = false;
  }
  auto pre = [&](int64_t i) {
    if (ahead) __builtin_prefetch(reinterpret_cast<const char*>(z + i) + kPrefetchAhead);
  };
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
        pre(i);
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
        pre(i);
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

}  // namespace XENT_ISA_NS
}  // namespace xent
