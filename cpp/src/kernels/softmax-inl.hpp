// Softmax-family row kernels, written once over a lane type D and compiled per ISA.
//
// One row z[0..C) is contiguous here (the drivers gather strided rows first). The row is
// walked in blocks of kBlock elements. For each block: its max is read from memory, then
// (from L1) exp(z - m) is summed with m the running row max; when a block raises the max,
// the running sum is rescaled once (the online log-sum-exp of Milakov & Gimelshein, 2018,
// per block instead of per element). So the forward pass reads the logits from memory once
// and computes each exponential once; the sum loop prefetches the next block, so memory
// and the exponentials overlap.
//
// When exponentials are needed later (softmax, gradients) they are stored during that pass
// together with the reference max of their block (refs[b]), and a second, in-cache pass
// multiplies block b by exp(refs[b] - lse): no exponential is computed twice.
//
// Numerical rules (SEMANTICS.md):
// - lse = m + log(s) with s = sum exp(z - m) >= 1; a loss is (m - z_y) + log(s), never
//   lse - z_y, so |z| ~ 1e4 in float32 loses nothing to the rounding of lse.
// - exp arguments are always <= 0 (exp_nonpos); -inf logits give exp = 0 (masks).
// - A row whose max is -inf is fully masked: lse = -inf, losses +inf, probabilities and
//   gradients 0. NaN and +inf propagate to their own row only.
// - 0 * log 0 = 0: a zero target on a masked class adds nothing.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace xent {
namespace XENT_ISA_NS {

constexpr int64_t kBlock = 2048;
// Partial sums of losses and targets, kept in T per lane, go into a double every
// kSumLane * W elements: a lane adds at most kSumLane terms, so a float32 sum of
// non-negative terms errs by at most ~(kSumLane + log2 W) u < 1.3e-6 relative, within the
// 2e-6 loss tolerance whatever the width. (Summed per 2048-element block instead, runs of
// equal terms drifted to 1.6e-5 relative with the scalar ISA's W = 1, 2.4e-6 with AVX2's 8.)
constexpr int64_t kSumLane = 16;

// Such a partial sum of (elementwise, sigmoid) loss terms, each finite up to T's largest
// value, must not overflow where the double total does not: in float32 each term enters
// scaled by 2**-8 (2**-9 with AVX-512's 16 lanes) inside an FMA (one rounding, of the sum:
// the bits of the unscaled sum but in the subnormal range), so kSumLane terms per lane and
// W lanes stay below FLT_MAX / 2, and the double total is scaled back. (float64 partial sums
// overflow only with the total.)
template <class D>
struct LossAcc {
  using T = typename D::T;
  static constexpr bool kScaled = sizeof(T) == 4;
  static constexpr double kScale = !kScaled ? 1.0 : D::W <= 8 ? 1.0 / 256 : 1.0 / 512;
  static_assert(!kScaled || kSumLane * D::W * kScale <= 0.5,
                "kSumLane * W scaled terms must stay below T's largest value");
  static typename D::V add(typename D::V acc, typename D::V loss) {
    return kScaled ? D::fma(loss, D::set1(static_cast<T>(kScale)), acc) : D::add(acc, loss);
  }
  static double total(typename D::V acc) { return static_cast<double>(D::reduce_add(acc)) / kScale; }
};

inline int64_t n_blocks(int64_t C) { return (C + kBlock - 1) / kBlock; }

// Both passes over a block walk it in chunks of 2 * kSumLane * W elements (see block_expsum).
template <class D>
constexpr int64_t chunk_len() {
  return 2 * kSumLane * D::W;
}

// The forward pass is written over the storage type S of the logits: T itself, or a half
// type (float lanes only) converted in the loads (half-inl.hpp's Io), so half rows are read
// from memory once, like float rows, instead of being converted into a buffer first.
// block_max returns the max of a block and writes the max of each of its chunks to cmax
// (block_expsum splits its sums in the chunks holding the row max).
constexpr int64_t kMaxChunks = kBlock / (2 * kSumLane);  // chunks per block, W = 1

template <class D, class S = typename D::T>
inline typename D::T block_max(const S* z, int64_t n, typename D::T* cmax) {
  using T = typename D::T;
  using V = typename D::V;
  using L = Io<D, S>;
  constexpr int W = D::W;
  constexpr int64_t kChunk = chunk_len<D>();
  const T ninf = -std::numeric_limits<T>::infinity();
  V bm = D::set1(ninf);
  for (int64_t c0 = 0, k = 0; c0 < n; c0 += kChunk, ++k) {
    const int64_t end = n - c0 < kChunk ? n : c0 + kChunk;
    V m0 = D::set1(ninf), m1 = m0;
    int64_t i = c0;
    for (; i + 2 * W <= end; i += 2 * W) {
      m0 = D::max(L::load(z + i), m0);
      m1 = D::max(L::load(z + i + W), m1);
    }
    for (; i + W <= end; i += W) m0 = D::max(L::load(z + i), m0);
    if (i < end) m1 = D::max(load_tail_fill<D>(z + i, end - i, ninf), m1);
    const V cm = D::max(m0, m1);
    cmax[k] = D::reduce_max(cm);
    bm = D::max(cm, bm);
  }
  return D::reduce_max(bm);
}

// Sums of exp(z - m) over a block, split in two: `ones` counts terms with z == m (each
// exactly exp(0) = 1) and `rest` sums the others. A confident row has s = 1 + tiny; summed
// in one float that tiny part would lose its digits, and with them the loss log(s).
// The split (a compare, a mask and a count per vector) is made only in the chunks holding
// z == m, those whose max cmax[k] (from block_max) is m: typically one per row, none in a
// block below the row max. The others add all their terms to `rest` (4096 x 1000 float32
// logsumexp 1.92 -> 1.81 ms on one thread, 256 x 50304 float64 loss + gradient 18.8 -> 16.7).
// The float accumulators go into double lanes (D::wide_add) every 2 * kSumLane * W terms
// in two accumulators, or kSumLane * W in one (the split loop), so each lane adds at most
// kSumLane of them, as every other sum here: with one lane (the scalar ISA) a whole block
// of equal terms once drifted past the accuracy contract (found by the property tests).
// The double lanes are summed once per block.
// With kLive (label smoothing), also `live`, the count of the logits > -inf.
// With half storage and `wpre` (the block's place in the half row that the rescaling pass
// writes after the whole row is summed), the loop also brings that row's lines into cache:
// written there cold, each line waited on its read for ownership in a pass with little
// else to do (1 thread, AVX-512, float16 256 x 50304 loss + gradient into `grad_out=`:
// 3.90 -> 3.12 ms, float32's time; 2048 x 50304 on 2 threads 15.5 -> 12.7 ms). With kPre
// in float storage, `wpre` is a row of the same length read after this one (the targets of
// a soft-target loss): its lines are brought in the same way.
// With e_ahead (row_lse: rows of one block storing their exponentials), the loop prefetches
// for writing e's line kBlock elements on, in the rows after this one when the output rows
// are contiguous: the stores of the exponentials otherwise wait on their lines' reads for
// ownership. 1 thread, AVX-512, loss + gradient into `grad_out=`: 10000 x 1000 float32
// 3.44 -> 2.65 ms, float64 6.8 -> 6.1, 40000 x 250 float64 9.1 -> 7.0, softmax likewise; in
// cache 0.96-1.03x. Rows of more blocks measured 1.02-1.20x the time with it: off there.
// Soft targets (kPre in float storage) take it for rows of up to 4 KiB, with `wpre` (t)
// prefetched kBlock elements on as well (40000 x 250 6.4 -> 4.4 ms float32, 11.7 -> 8.2
// float64, 10000 x 1000 float32 4.9 -> 4.3-4.5); rows of 8 KiB or more measured 1.10-1.19x
// slower with both (three rows' lines in flight past L1's 48 KiB), with e's alone
// 1.03-1.09x.
struct ExpSum {
  double ones, rest;
  int64_t live = 0;
};

template <class D, bool kStore, class S = typename D::T, bool kLive = false,
          bool kPre = !std::is_same_v<S, typename D::T>>
inline ExpSum block_expsum(const S* z, int64_t n, typename D::T m, typename D::T* e, const typename D::T* cmax,
                           const S* wpre = nullptr, bool e_ahead = false) {
  using T = typename D::T;
  using V = typename D::V;
  using L = Io<D, S>;
  constexpr int W = D::W;
  constexpr int64_t kChunk = chunk_len<D>();
  const V vm = D::set1(m);
  const V zero = D::zero();
  const V ninf = D::set1(-std::numeric_limits<T>::infinity());
  V kl = zero;    // live logits, integer lanes
  V tops = zero;  // terms z == m kept out of the sums, integer lanes
  auto step = [&](auto kind, V x, V& s, T* dst, int64_t k) {
    const V d = D::sub(x, vm);
    const V ex = exp_nonpos<D>(d);
    if (kStore) {
      if (k == W) D::store(dst, ex); else D::store_tail(dst, ex, k);
    }
    if constexpr (decltype(kind)::value) {  // split
      const auto at_m = D::eq(d, zero);
      s = D::add(s, D::zero_if(at_m, ex));
      tops = D::count_if(at_m, tops);
    } else {
      s = D::add(s, ex);
    }
    if (kLive) kl = D::count_if(D::gt(x, ninf), kl);
  };
  const std::true_type split;
  const std::false_type plain;
  ExpSum sum{0.0, 0.0};
  typename D::Wide rest = D::wide_zero();
  for (int64_t c0 = 0, k = 0; c0 < n; c0 += kChunk, ++k) {
    const int64_t end = n - c0 < kChunk ? n : c0 + kChunk;
    if (cmax[k] == m) {
      // the split, one vector per iteration into one accumulator per half chunk (each lane
      // still adds at most kSumLane terms): with two vectors per iteration, two accumulators
      // and the count, GCC ran one register short and kept an accumulator on the stack, a
      // store-to-load chain per iteration (with the table exp, 2048 x 256 float32 loss +
      // grad, rows of one chunk: 0.85-0.88x the time on 1 thread)
      for (int64_t h = c0; h < end; h += kChunk / 2) {
        const int64_t hend = end - h < kChunk / 2 ? end : h + kChunk / 2;
        V s = zero;
        int64_t i = h;
        for (; i + W <= hend; i += W) {
          __builtin_prefetch(z + i + kBlock);
          if constexpr (kPre) if (wpre) __builtin_prefetch(wpre + (e_ahead ? i + kBlock : i));
          if (e_ahead) __builtin_prefetch(e + i + kBlock, 1);
          step(split, L::load(z + i), s, e + (kStore ? i : 0), W);
        }
        if (i < hend)
          step(split, load_tail_fill<D>(z + i, hend - i, -std::numeric_limits<T>::infinity()), s,
               e + (kStore ? i : 0), hend - i);
        rest = D::wide_add(rest, s);
      }
      continue;
    }
    V s0 = zero, s1 = zero;
    int64_t i = c0;
    for (; i + 2 * W <= end; i += 2 * W) {
      // the next block, a line per iteration (2W elements: 64 bytes with AVX2), while this
      // one computes: block_max then finds it in cache instead of waiting on memory
      // (2048 x 50304 float32 forward: 67.7 -> 51 ms on one thread)
      __builtin_prefetch(z + i + kBlock);
      if constexpr (kPre) if (wpre) __builtin_prefetch(wpre + (e_ahead ? i + kBlock : i));
      if (e_ahead) __builtin_prefetch(e + i + kBlock, 1);
      step(plain, L::load(z + i), s0, e + (kStore ? i : 0), W);
      step(plain, L::load(z + i + W), s1, e + (kStore ? i + W : 0), W);
    }
    for (; i + W <= end; i += W) step(plain, L::load(z + i), s0, e + (kStore ? i : 0), W);
    if (i < end)
      step(plain, load_tail_fill<D>(z + i, end - i, -std::numeric_limits<T>::infinity()), s1,
           e + (kStore ? i : 0), end - i);
    rest = D::wide_add(rest, D::add(s0, s1));
  }
  sum.rest = D::wide_total(rest);
  sum.ones = static_cast<double>(D::count_total(tops));
  if (kLive) sum.live = D::count_total(kl);
  return sum;
}

template <class D, class S>
inline bool row_has_nan(const S* z, int64_t C) {
  for (int64_t i = 0; i < C; ++i) {
    const auto v = Io<D, S>::get(z[i]);
    if (v != v) return true;
  }
  return false;
}

// log(ones + rest) per lane for ones >= 1 and rest >= 0 (RowLse::log_sum below, and the
// rows-in-lanes kernel of inner-inl.hpp): log1p(rest) from rest itself when the sum is
// below 2 (then ones == 1), else the log of the rounded sum.
template <class D>
XENT_FORCE_INLINE typename D::V log_ones_rest(typename D::V ones, typename D::V rest) {
  using T = typename D::T;
  using K = MathConst<T>;
  using V = typename D::V;
  const V s = D::add(ones, rest);
  V e, f;
  log_split<D>(s, e, f);
  const auto direct = D::lt(s, D::set1(T(2)));
  const auto big = D::gt(rest, D::set1(K::sqrt2m1));
  f = D::select(direct, D::select(big, D::fma(rest, D::set1(T(0.5)), D::set1(T(-0.5))), rest), f);
  e = D::select(direct, D::select(big, D::set1(T(1)), D::zero()), e);
  return log_reduced<D>(e, f);
}

// Result of the forward pass over a row: s = sum exp(z - m) = ones + rest (see ExpSum);
// lse = m + log(s); m == -inf means fully masked.
struct RowLse {
  double m;
  double ones;
  double rest;
  double log_s = 0.0;  // log(ones + rest), set by finish()
  // row_lse with kLive: the count of the logits > -inf
  double live = 0.0;
  bool masked() const { return m == -std::numeric_limits<double>::infinity(); }
  // a +inf logit makes lse +inf (s is NaN then: inf - inf)
  double lse() const { return (masked() || m == std::numeric_limits<double>::infinity()) ? m : m + log_s; }
  // log(s) by log_sum, the vector log (else libm: NaN, +inf and a sum without its max,
  // ones == 0, with NaN or +inf logits)
  bool vector_log() const { return ones >= 1.0 && rest <= std::numeric_limits<double>::max(); }
  RowLse& finish() {
    log_s = vector_log() ? log_sum(ones, rest)
                         : (ones > 0 ? std::log(ones) + std::log1p(rest / ones) : std::log(rest));
    return *this;
  }

  // log(ones + rest) for a count ones >= 1 and a finite rest >= 0: log_ones_rest (the vector log)
  // on float64 lanes, once per row (glibc's log1p, called here before, took 14% of a 2048 x
  // 256 float32 loss + gradient). When ones == 1 and rest < 1 (s < 2), it is log1p(rest)
  // from rest itself, not from 1 + rest rounded, so a confident row (rest tiny) keeps rest's
  // relative accuracy: the reduced argument is rest, or (rest - 1) / 2 in one rounding above
  // sqrt2 - 1 (as log1p_unit). Otherwise log(s) of the rounded s = ones + rest >= 2, whose
  // rounding (2^-53 relative) moves log(s) >= log 2 by under half an ulp. No branch: the
  // choice is a select, as it may change from row to row.
  static double log_sum(double ones, double rest) {
    alignas(64) double l[F64::W];
    F64::store(l, log_ones_rest<F64>(F64::set1(ones), F64::set1(rest)));
    return l[0];
  }
};

// Rows of at most this many elements wait in a batch of 2 x F64::W rows for their logs
// before a pass over them (LogBatch: log_softmax, z-loss gradients): 32 KiB a batch, an
// L1 here, so that each row is still in cache for its pass (log_softmax, 1 thread, AVX-512:
// 32 KiB against 16 KiB 0.93-0.96x the time at rows of 384-512 float32 and 256 float64;
// 64 KiB batches, rows of 1024 or 4096 float32, 1.03-1.05x the time of no batch).
// (A batch also ends where its waiting rows reach kLogBatchBytes: the poly-1 and focal rows
// of up to a block, row_label_factor.)
constexpr int64_t kLogBatchBytes = 32768;
template <class T>
constexpr int64_t log_batch_max_c() {
  return kLogBatchBytes / (2 * F64::W * static_cast<int64_t>(sizeof(T)));
}

// A row value v that still lacks its log(s), s = ones + rest (vector_log() rows only): the
// row's result is coef * log(s) + v, coef the row's target mass (1 for a label, as
// (m - z[y]) + log(s) computes: 1 * l = l), plus the z-loss zl lse^2 (lse = m + log(s)).
// With `grad` (z-loss rows, whose gradient's factor 1 + 2 zl lse needs the log), the
// gradient row still holds the exponentials: the rescaling pass and the label's term
// wait too; with `lsm_z` (log_softmax rows), the output pass into `grad` from z waits.
// Set by the row operations given one (row_xent_label, row_xent_target, row_logsumexp)
// and the driver when they leave the log to the caller (LogBatch in units-inl.hpp);
// `grad_ok` is the caller's: the gradient row is the final one, nothing else follows.
// With `fac` (a poly-1 or focal row of an integer label, row_label_factor), the row's value
// is its factor loss from d = z[y] - m and log(s), times a (focal's alpha[y]), and its
// gradient row (if any) waits for the factor G_y.
template <class T>
struct LogLater {
  bool on = false, grad_ok = false, fac = false;
  double ones = 0.0, rest = 0.0, coef = 1.0, zl = 0.0, m = 0.0, gscale = 0.0, d = 0.0, a = 1.0;
  T* grad = nullptr;
  const T* lsm_z = nullptr;
  int64_t C = 0, y = 0;
  void set(const RowLse& r, double c = 1.0, double z = 0.0) {
    on = true, ones = r.ones, rest = r.rest, coef = c, zl = z, m = r.m;
  }
};

// Forward pass. If kStore, e[c] receives exp(z[c] - refs[b]) for c in block b (e is T's
// lanes whatever z's storage S). Without kLog, log(s) is left to the caller (r.finish(), or
// a LogLater): log_s is NaN until then. `wpre`: the half row written after it (ExpSum).
// e_rows: e is a row of the caller's output, whose next rows follow it (block_expsum's
// e_ahead may prefetch them); false for a scratch row.
template <class D, bool kStore, class S = typename D::T, bool kLive = false, bool kLog = true,
          bool kPre = !std::is_same_v<S, typename D::T>>
inline RowLse row_lse(const S* z, int64_t C, typename D::T* e, typename D::T* refs, const S* wpre = nullptr,
                      bool e_rows = true) {
  using T = typename D::T;
  const double ninf = -std::numeric_limits<double>::infinity();
  double m = ninf, ones = 0.0, rest = 0.0, live = 0.0;
  T cmax[kMaxChunks];  // the max of each chunk of a block
  bool nan = false;  // a NaN in a block skipped below (max ignores NaN)
  // (soft targets, float rows in kPre: rows of up to 4 KiB; their t row is then prefetched a
  // block ahead too, in the rows after this one)
  const bool e_ahead = kStore && e_rows && C <= kBlock &&
                       (!kPre || (std::is_same_v<S, T> && C * static_cast<int64_t>(sizeof(T)) <= 4096));
  for (int64_t b = 0, b0 = 0; b0 < C; ++b, b0 += kBlock) {
    const int64_t n = C - b0 < kBlock ? C - b0 : kBlock;
    const double bm = static_cast<double>(block_max<D, S>(z + b0, n, cmax));
    if (bm > m) {  // the old sum, relative to the old max, is now all "rest"
      rest = (m == ninf) ? 0.0 : (ones + rest) * std::exp(m - bm);
      ones = 0.0;
      m = bm;
    }
    if (m == ninf) {  // every logit so far is -inf (or NaN)
      // Look for NaN here, before e (which may alias z) is overwritten, and because a later
      // block with a finite max never sums this one.
      nan = nan || row_has_nan<D, S>(z + b0, n);
      if (kStore) {
        for (int64_t i = 0; i < n; ++i) e[b0 + i] = T(0);
        refs[b] = static_cast<T>(ninf);
      }
      continue;
    }
    const ExpSum bs = block_expsum<D, kStore, S, kLive, kPre>(z + b0, n, static_cast<T>(m), e + (kStore ? b0 : 0),
                                                              cmax, wpre ? wpre + b0 : nullptr, e_ahead);
    ones += bs.ones;
    rest += bs.rest;
    live += static_cast<double>(bs.live);
    if (kStore) refs[b] = static_cast<T>(m);
  }
  if (nan) m = std::numeric_limits<double>::quiet_NaN();
  RowLse r{m, ones, rest};
  r.live = live;
  if constexpr (kLog) return r.finish();
  r.log_s = std::numeric_limits<double>::quiet_NaN();
  return r;
}

// The factor of block b, exp(refs[b] - lse) * scale, as row_scale_exps applies it:
// exp((ref - m) - log s), not exp(ref - lse): lse = m + log s is rounded at the scale of
// m, which would cost float64 results 1e-12 relative for |z| ~ 1e4. Blocks whose
// reference is the row max (all of them when C <= kBlock) just take scale / s.
inline double block_factor(double ref, const RowLse& r, double scale) {
  return ref == r.m ? scale / (r.ones + r.rest) : std::exp((ref - r.m) - r.log_s) * scale;
}

// A factor that overflows T (a z-loss times a huge lse, say) is applied in double: an
// exponential that underflowed to 0 stays 0 (0 * inf would be NaN for finite input);
// others overflow. (A NaN factor, from NaN or +inf logits, takes the vector path.)
template <class T>
inline bool factor_overflows(double fb) {
  return std::fabs(fb) > static_cast<double>(std::numeric_limits<T>::max());
}
template <class T>
inline T scale_wide(T e, double fb) {
  return e == T(0) ? T(0) : static_cast<T>(static_cast<double>(e) * fb);
}

// row_scale_exps' default hook: the scaled values as they are.
struct ScaledAsIs {
  template <class V>
  V operator()(int64_t, int64_t, V g) const { return g; }
};

// A row_scale_exps hook multiplying the scaled values by a row d (the soft cap's chain rule).
template <class D>
struct TimesRow {
  const typename D::T* d;
  typename D::V operator()(int64_t i, int64_t k, typename D::V g) const {
    return D::mul(g, k == D::W ? D::load(d + i) : D::load_tail(d + i, k, typename D::T(0)));
  }
};

// out[c] = e[c] * exp(refs[b] - lse) * scale  (probabilities, or gradient terms), for c
// in block b; out is e itself (the default) or a row of storage S (a half gradient or
// softmax written straight from here, rounded once from the float32 product). A hook
// post(i, k, g) returns what is stored for the k (<= W) scaled values g at class i (the
// smoothing term of xent-inl.hpp; the row is e itself then). Always inlined: as a call of
// its own it took 1.04-1.06x the time of label smoothing in float32 (2048 x 256).
template <class D, class S = typename D::T, class Post = ScaledAsIs>
XENT_FORCE_INLINE void row_scale_exps(typename D::T* e, int64_t C, const typename D::T* refs, const RowLse& r,
                           double scale, S* out = nullptr, Post post = {}) {
  using T = typename D::T;
  using L = Io<D, S>;
  constexpr int W = D::W;
  constexpr bool as_is = std::is_same_v<Post, ScaledAsIs>;
  static_assert(as_is || std::is_same_v<S, T>, "a hook writes the row of exponentials itself");
  S* const o = out ? out : reinterpret_cast<S*>(e);  // S is T when out is null
  for (int64_t b = 0, b0 = 0; b0 < C; ++b, b0 += kBlock) {
    const int64_t n = C - b0 < kBlock ? C - b0 : kBlock;
    const double fb = block_factor(static_cast<double>(refs[b]), r, scale);
    const T* p = e + b0;
    S* q = o + b0;
    int64_t i = 0;
    if (factor_overflows<T>(fb)) {
      for (; i < n; ++i) q[i] = L::put(scale_wide(p[i], fb));
      if constexpr (!as_is) {  // then the hook, over the scaled row
        for (i = 0; i + W <= n; i += W) D::store(q + i, post(b0 + i, W, D::load(q + i)));
        if (i < n) D::store_tail(q + i, post(b0 + i, n - i, D::load_tail(q + i, n - i, T(0))), n - i);
      }
      continue;
    }
    const auto f = D::set1(static_cast<T>(fb));
    for (; i + W <= n; i += W) L::store(q + i, post(b0 + i, W, D::mul(D::load(p + i), f)));
    if (i < n) L::store_tail(q + i, post(b0 + i, n - i, D::mul(D::load_tail(p + i, n - i, T(0)), f)), n - i);
  }
}

// e[c] scaled as row_scale_exps scales it (the same bits).
template <class T>
inline T scaled_exp(const T* e, int64_t c, const T* refs, const RowLse& r, double scale) {
  const double fb = block_factor(static_cast<double>(refs[c / kBlock]), r, scale);
  return factor_overflows<T>(fb) ? scale_wide(e[c], fb) : e[c] * static_cast<T>(fb);
}

template <class T>
inline void fill(T* p, int64_t n, T v) {
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

// ---- row operations used by the drivers -------------------------------------------

// With `later`, a row of finite max and vector_log() returns m and leaves + log(s) to it.
template <class D, class S = typename D::T>
inline double row_logsumexp(const S* z, int64_t C, LogLater<typename D::T>* later = nullptr) {
  RowLse r = row_lse<D, false, S, false, false>(z, C, nullptr, nullptr);
  // a +inf logit gives +inf, but a NaN beside it gives NaN, as the row's loss and softmax
  // are (the sum cannot tell them apart: it is NaN with +inf alone); only such rows look
  if (r.m == std::numeric_limits<double>::infinity() && row_has_nan<D, S>(z, C))
    return std::numeric_limits<double>::quiet_NaN();
  if (later && std::isfinite(r.m) && r.vector_log()) {
    later->set(r);
    return r.m;
  }
  return r.finish().lse();
}

// softmax into out (may alias z); with half storage and `hout`, out is the float32
// buffer of the exponentials and the probabilities go to hout.
template <class D, class S = typename D::T>
inline void row_softmax(const S* z, int64_t C, typename D::T* out, typename D::T* refs, S* hout = nullptr) {
  using T = typename D::T;
  // block_factor needs log(s) only for rows of more than one block
  RowLse r = row_lse<D, true, S, false, false>(z, C, out, refs, hout);
  if (C > kBlock) r.finish();
  if (hout) {
    if (r.masked()) return fill(hout, C, S{});
    return row_scale_exps<D, S>(out, C, refs, r, 1.0, hout);
  }
  if (r.masked()) return fill(out, C, T(0));
  row_scale_exps<D>(out, C, refs, r, 1.0);
}

// log_softmax into out (may alias z): (z - m) - log(s), from the row's finished RowLse r.
// With `ahead` (rows of one block, the caller's output rows contiguous), each vector
// prefetches for writing the output line kBlock elements on, in the rows after this one, as
// block_expsum's e_ahead (1 thread, 10000 x 1000 float32 0.89x the time, 40000 x 250 0.83x;
// in cache 1.02-1.03x, where the drivers leave it off).
template <class D>
inline void row_log_softmax_out(const typename D::T* z, int64_t C, typename D::T* out, const RowLse& r,
                                bool ahead = false) {
  using T = typename D::T;
  using V = typename D::V;
  constexpr int W = D::W;
  if (r.masked()) return fill(out, C, -std::numeric_limits<T>::infinity());
  const V vm = D::set1(static_cast<T>(r.m));
  const V vl = D::set1(static_cast<T>(r.log_s));
  const bool pre = ahead && C <= kBlock;
  int64_t i = 0;
  for (; i + W <= C; i += W) {
    if (pre) __builtin_prefetch(out + i + kBlock, 1);
    D::store(out + i, D::sub(D::sub(D::load(z + i), vm), vl));
  }
  if (i < C) D::store_tail(out + i, D::sub(D::sub(D::load_tail(z + i, C - i, T(0)), vm), vl), C - i);
}

template <class D>
inline void row_log_softmax(const typename D::T* z, int64_t C, typename D::T* out, bool ahead = false) {
  row_log_softmax_out<D>(z, C, out, row_lse<D, false>(z, C, nullptr, nullptr), ahead);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
