// Work-unit loops: walk rows of a strided N-d layout, gather a row into scratch when its
// class axis is not contiguous, run the row kernel, scatter results. Compiled per ISA so
// the per-row work never crosses an indirect call.
//
// Half storage (Storage::kF16 / kBF16, float32 jobs only): the units loops take the storage
// type S as a parameter. A half row (or segment) is converted into a float32 buffer as it
// is read, the row kernel runs on float32 exactly as for float32 input, and the z-shaped
// output is rounded back to S as it is written (half-inl.hpp). So a half call computes
// bit for bit what a float32 call computes on the upcast values, then rounds the gradient
// once; the buffers are one row, in cache, never N x C.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/weight_scale-inl.hpp"
#include "kernels/weights-inl.hpp"
#include "xent/jobs.hpp"

namespace xent {
namespace XENT_ISA_NS {

// Multi-index over a RowSpace with incremental element offsets for up to kOps operands.
template <int kOps>
struct Cursor {
  const RowSpace& rs;
  const int64_t* st[kOps];
  int64_t idx[kMaxDims];
  int64_t off[kOps];
  // the last dim's index, length and strides, by value: next() steps along it with no
  // reload through rs and st (the stores of a row's work could alias them for the compiler)
  int last;
  int64_t last_len, last_st[kOps];

  Cursor(const RowSpace& r, const int64_t* const (&strides)[kOps], int64_t row)
      : rs(r), last(r.nd - 1), last_len(r.nd > 0 ? r.shape[r.nd - 1] : 0) {
    for (int k = 0; k < kOps; ++k) st[k] = strides[k];
    for (int k = 0; k < kOps; ++k) off[k] = 0, last_st[k] = last >= 0 ? st[k][last] : 0;
    for (int d = rs.nd - 1; d >= 0; --d) {
      idx[d] = row % rs.shape[d];
      row /= rs.shape[d];
      for (int k = 0; k < kOps; ++k) off[k] += idx[d] * st[k][d];
    }
  }
  // k rows on along the last dim, within it (k <= its length - idx[last]): next() k times
  void advance_last(int64_t k) {
    const int d = rs.nd - 1;
    if (idx[d] + k < rs.shape[d]) {
      idx[d] += k;
      for (int o = 0; o < kOps; ++o) off[o] += k * st[o][d];
      return;
    }
    idx[d] += k - 1;
    for (int o = 0; o < kOps; ++o) off[o] += (k - 1) * st[o][d];
    next();
  }
  // next() k times
  void advance(int64_t k) {
    const int d = rs.nd - 1;
    while (k > 0 && d >= 0) {
      const int64_t s = std::min(k, rs.shape[d] - idx[d]);
      advance_last(s);
      k -= s;
    }
  }
  void next() {
    if (last < 0) return;
    ++idx[last];
    for (int k = 0; k < kOps; ++k) off[k] += last_st[k];
    if (idx[last] < last_len || last == 0) return;
    carry();
  }
  // the last dim ran out: back to its start, and on along the ones before it
  void carry() {
    for (int k = 0; k < kOps; ++k) off[k] -= idx[last] * last_st[k];
    idx[last] = 0;
    for (int d = last - 1; d >= 0; --d) {
      ++idx[d];
      for (int k = 0; k < kOps; ++k) off[k] += st[k][d];
      if (idx[d] < rs.shape[d] || d == 0) return;
      for (int k = 0; k < kOps; ++k) off[k] -= idx[d] * st[k][d];
      idx[d] = 0;
    }
  }
};

template <class T>
inline void gather(const T* p, int64_t cs, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = p[i * cs];
}
template <class T>
inline void scatter(const T* src, int64_t n, T* p, int64_t cs) {
  for (int64_t i = 0; i < n; ++i) p[i * cs] = src[i];
}

// n rows of C stored class-major (row i's class c at p[c * cs + i]: a Fortran-order array,
// a transposed view) copied into rows at dst (dst[i * C + c]): W x W tiles transposed in
// registers (D::transpose), W classes at a time, each class's n elements read in one run;
// the rows and classes past whole tiles element by element. scatter_rows: the inverse.
template <class D>
void gather_rows(const typename D::T* p, int64_t cs, int64_t n, int64_t C, typename D::T* dst) {
  constexpr int W = D::W;
  const int64_t nw = n - n % W, cw = C - C % W;
  for (int64_t c0 = 0; c0 < cw; c0 += W) {
    for (int k = 0; k < W; ++k) __builtin_prefetch(p + (c0 + k) * cs + n);  // the next block's
    for (int64_t i0 = 0; i0 < nw; i0 += W) {
      typename D::V v[W];
      for (int k = 0; k < W; ++k) v[k] = D::load(p + (c0 + k) * cs + i0);
      D::transpose(v);
      for (int k = 0; k < W; ++k) D::store(dst + (i0 + k) * C + c0, v[k]);
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = c < cw ? nw : 0; i < n; ++i) dst[i * C + c] = p[c * cs + i];
}
template <class D>
void scatter_rows(const typename D::T* src, int64_t n, int64_t C, typename D::T* p, int64_t cs) {
  constexpr int W = D::W;
  const int64_t nw = n - n % W, cw = C - C % W;
  for (int64_t c0 = 0; c0 < cw; c0 += W) {
    for (int k = 0; k < W; ++k) __builtin_prefetch(p + (c0 + k) * cs + n, 1);
    for (int64_t i0 = 0; i0 < nw; i0 += W) {
      typename D::V v[W];
      for (int k = 0; k < W; ++k) v[k] = D::load(src + (i0 + k) * C + c0);
      D::transpose(v);
      for (int k = 0; k < W; ++k) D::store(p + (c0 + k) * cs + i0, v[k]);
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = c < cw ? nw : 0; i < n; ++i) p[c * cs + i] = src[i * C + c];
}

// logsumexp (into row_out), softmax and log_softmax (into out) for small C, W rows per call
// of lanes_normalize (smallc-inl.hpp). A function of its own: inside the loss driver's,
// whose code grew with its group fill, float64 logsumexp at 3-10 classes took 1.06-1.12x
// the time (1 thread, AVX-512; code layout, its loop unchanged).
template <class D, class S>
double softmax_units_lanes_norm(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1) {
  using T = typename D::T;
  constexpr int W = D::W;
  const int64_t C = j.len, zcs = j.z.cs, ocs = j.out.cs;
  const int64_t* strides[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  Cursor<6> cur(j.rows, strides, u0);
  const S* const zp = reinterpret_cast<const S*>(j.z.p);
  S* const op = reinterpret_cast<S*>(j.out.p);
  T* const rop = j.row_out.p;
  const double cap = j.softcap;
  bool cap_full = false;  // softcap_row's mode, kept from group to group
  const S* zr[W];
  S* outr[W];
  T* ro[W];
  double r[W];
  int n = 0;
  double total = 0.0;
  // one row dim: row u's operands at u times their strides, with no cursor (as below)
  const bool flat_rows = j.rows.nd == 1;
  const int64_t zs = flat_rows ? j.z.st[0] : 0, os = flat_rows ? j.out.st[0] : 0;
  const int64_t rs = flat_rows ? j.row_out.st[0] : 0;
  const SoftmaxOp kind = j.op;
  if (flat_rows) {
    for (int64_t u = u0; u < u1; u += W) {
      n = static_cast<int>(std::min<int64_t>(W, u1 - u));
      for (int i = 0; i < n; ++i) {
        zr[i] = zp + (u + i) * zs;
        outr[i] = op ? op + (u + i) * os : nullptr;
      }
      lanes_normalize<D, S>(kind, zr, zcs, outr, ocs, n, C, cap, &cap_full, r);
      for (int i = 0; i < n; ++i) {
        if (rop) rop[(u + i) * rs] = static_cast<T>(r[i]);
        total += r[i];
      }
    }
    return total;
  }
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    zr[n] = zp + cur.off[0];
    outr[n] = op ? op + cur.off[3] : nullptr;
    ro[n] = rop ? rop + cur.off[4] : nullptr;
    if (++n == W || u + 1 == u1) {
      lanes_normalize<D, S>(kind, zr, zcs, outr, ocs, n, C, cap, &cap_full, r);
      for (int i = 0; i < n; ++i) {
        if (ro[i]) *ro[i] = static_cast<T>(r[i]);
        total += r[i];
      }
      n = 0;
    }
  }
  return total;
}

// Rows with weights (sample weights, class weights outside the row), none ignored, along one
// row dim (softmax_units_lanes): when every weight is > 0 and the scales of the least and
// the largest product fit, every row's does (the products and the scale round
// monotonically), so groups are filled with each row's weight and no per-row test (65536 x
// 10 float32 with `weight=` into `grad_out=`, 1 thread: 13.0 -> 9.5 ns a row; the plain
// rows take 9.2). Adds the rows' losses to *total and returns true; false, computing
// nothing, when some weight or scale is out of that range (the driver's loop then).
template <class D, class S>
XENT_NOINLINE bool lanes_weighted_fill(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1,
                                       const LanesXent<typename D::T>& lx, const typename D::T* cwo,
                                       const typename D::T* ca, double inrow, double* total) {
  using T = typename D::T;
  constexpr int W = D::W;
  const T* const swp = j.sw.p;
  const int64_t sws = j.sw.st[0];
  double wlo = 1.0, whi = 1.0;
  bool ok = true;
  auto bounds = [&](const T* p, int64_t n, int64_t st) {
    double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      const double v = static_cast<double>(p[k * st]);
      ok = ok && v > 0.0 && v <= static_cast<double>(std::numeric_limits<T>::max());  // (NaN: false)
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    wlo *= lo, whi *= hi;
  };
  if (cwo) bounds(cwo, j.len, 1);
  if (swp) bounds(swp + u0 * sws, u1 - u0, sws);
  if (!(ok && row_scale_fits<T>(j.gscale * wlo, inrow) && row_scale_fits<T>(j.gscale * whi, inrow))) return false;
  const S* const zp = reinterpret_cast<const S*>(j.z.p);
  S* const op = reinterpret_cast<S*>(j.out.p);
  T* const rop = j.row_out.p;
  const int64_t zs = j.z.st[0], os = j.out.st[0], rs = j.row_out.st[0], ys = j.y.st[0];
  const int64_t* const y64p = static_cast<const int64_t*>(j.y.p);
  const int32_t* const y32p = static_cast<const int32_t*>(j.y.p);
  const bool y64 = j.label_bytes == 8;
  bool cap_full = false;
  const S* zr[W];
  const S* tr[W] = {};
  S* outr[W];
  int64_t y[W];
  double w[W], r[W], a[W];
  for (int64_t u = u0; u < u1; u += W) {
    const int n = static_cast<int>(std::min<int64_t>(W, u1 - u));
    for (int i = 0; i < n; ++i) {
      zr[i] = zp + (u + i) * zs;
      outr[i] = op ? op + (u + i) * os : nullptr;
      y[i] = y64 ? y64p[(u + i) * ys] : static_cast<int64_t>(y32p[(u + i) * ys]);
      double wi = swp ? static_cast<double>(swp[(u + i) * sws]) : 1.0;  // as the driver's loop
      if (cwo) wi *= static_cast<double>(cwo[y[i]]);
      w[i] = wi;
      if (ca) a[i] = static_cast<double>(ca[y[i]]);
    }
    lanes_xent<D, S>(lx, zr, j.z.cs, tr, j.t.cs, op ? outr : nullptr, j.out.cs, y, w, n, j.gscale, &cap_full, r,
                     ca ? a : nullptr);
    for (int i = 0; i < n; ++i) {
      if (rop) rop[(u + i) * rs] = static_cast<T>(r[i]);
      *total += r[i];
    }
  }
  return true;
}

// Integer-label cross-entropy and the other losses for small C, W rows per call of the lanes
// kernels (smallc-inl.hpp). Rows of weight 0 (ignored) are written here
// and skip the kernel.
// The job's fields are copied to locals: the stores below could alias them otherwise.
template <class D, class S>
double softmax_units_lanes(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1) {
  if (!is_loss_op(j.op)) return softmax_units_lanes_norm<D, S>(j, u0, u1);
  using T = typename D::T;
  constexpr int W = D::W;
  const int64_t C = j.len, zcs = j.z.cs, ocs = j.out.cs;
  const int64_t* strides[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  Cursor<6> cur(j.rows, strides, u0);
  const S* const zp = reinterpret_cast<const S*>(j.z.p);
  S* const op = reinterpret_cast<S*>(j.out.p);
  T* const rop = j.row_out.p;
  const T* const swp = j.sw.p;
  const T* const cw = j.class_w;
  const char* const yp0 = static_cast<const char*>(j.y.p);
  const bool y64 = j.label_bytes == 8, has_ignore = j.has_ignore;
  const int64_t ignore = j.ignore_index;
  const double gscale = j.gscale, zl = j.z_loss, cap = j.softcap;
  bool cap_full = false;  // softcap_row's mode, kept from group to group
  const S* zr[W];
  S* outr[W];
  T* ro[W];
  int64_t y[W];
  double w[W], r[W];
  int n = 0;
  double total = 0.0;
  // one row dim: row u's operands at u times their strides, with no cursor (its step and
  // the loop's per-row tests were about 100 instructions a row on AVX2 at 3 classes,
  // callgrind, as many as the kernel's work)
  const bool flat_rows = j.rows.nd == 1;
  const int64_t zs = flat_rows ? j.z.st[0] : 0, os = flat_rows ? j.out.st[0] : 0;
  const int64_t rs = flat_rows ? j.row_out.st[0] : 0, ys = flat_rows ? j.y.st[0] : 0;
  // label smoothing and targets: the class weights act inside the row (lanes_xent_soft), and
  // their sum bounds the row's gradient over its scale, as in softmax_units_s
  // the poly-1 and focal losses: with labels, focal's alpha[y] multiplies the row's loss and
  // gradient (not its weight in the mean); with targets, the class multipliers class_a act
  // inside the row. Their sum bounds the gradient over its scale, as in softmax_units_s
  const bool ftarget = j.op == SoftmaxOp::kPoly1Target || j.op == SoftmaxOp::kFocalTarget;
  const bool target = j.op == SoftmaxOp::kXentTarget || ftarget, soft = target || j.smoothing != 0.0;
  const S* const tp = reinterpret_cast<const S*>(j.t.p);
  const int64_t tcs = j.t.cs;
  const bool focal = j.op == SoftmaxOp::kFocalLabel || j.op == SoftmaxOp::kFocalTarget;
  const T* const ca = j.op == SoftmaxOp::kFocalLabel ? j.class_a : nullptr;  // alpha[y] per row
  const double wsum = j.inrow_sum;  // of inrow_weights(j) (jobs.hpp)
  const double inrow = inrow_weights(j) && wsum > 1.0 ? wsum : 1.0;
  LanesXent<T> lx{C, soft && !ftarget ? cw : nullptr, wsum, j.smoothing, zl, cap, target};
  if (focal || j.op == SoftmaxOp::kPoly1Label || ftarget) {
    lx.factor = true;
    lx.kind = focal ? FactorKind::kFocal : FactorKind::kPoly1;
    lx.param = j.param;
    lx.ca = ftarget ? j.class_a : nullptr;
  }
  const S* tr[W];
  double a[W];  // focal's alpha[y] per row
  auto flush = [&] {
    lanes_xent<D, S>(lx, zr, zcs, tr, tcs, op ? outr : nullptr, ocs, y, w, n, gscale, &cap_full, r, ca ? a : nullptr);
    for (int i = 0; i < n; ++i) {
      if (ro[i]) *ro[i] = static_cast<T>(r[i]);
      total += r[i];
    }
    n = 0;
  };
  // every row of weight 1 (integer labels, no sample weights, no class weights outside the
  // row, no ignore_index) and a scale that fits: no row is skipped or split, and a group is
  // filled with no per-row test
  if (flat_rows && !target && !swp && !(cw && !soft) && !has_ignore && row_scale_fits<T>(gscale, inrow)) {
    for (int i = 0; i < W; ++i) w[i] = 1.0;
    const int64_t* const y64p = static_cast<const int64_t*>(j.y.p);
    const int32_t* const y32p = static_cast<const int32_t*>(j.y.p);
    for (int64_t u = u0; u < u1; u += W) {
      n = static_cast<int>(std::min<int64_t>(W, u1 - u));
      for (int i = 0; i < n; ++i) {
        zr[i] = zp + (u + i) * zs;
        outr[i] = op ? op + (u + i) * os : nullptr;
        y[i] = y64 ? y64p[(u + i) * ys] : static_cast<int64_t>(y32p[(u + i) * ys]);
        ro[i] = rop ? rop + (u + i) * rs : nullptr;
        if (ca) a[i] = static_cast<double>(ca[y[i]]);
      }
      flush();
    }
    return total;
  }
  // weighted rows, none ignored: a group fill of their own (lanes_weighted_fill), out of line
  // (in this function it made the plain 64 x 10 call 4-8% slower)
  const T* const cwo = cw && !soft ? cw : nullptr;
  if (flat_rows && !target && !has_ignore && (swp || cwo) &&
      lanes_weighted_fill<D, S>(j, u0, u1, lx, cwo, ca, inrow, &total))
    return total;
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    int64_t yi = 0;
    if (!target) {
      const char* yp = yp0 + cur.off[2] * (y64 ? 8 : 4);
      yi = y64 ? *reinterpret_cast<const int64_t*>(yp) : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(yp));
    }
    const double swi = swp ? static_cast<double>(swp[cur.off[5]]) : 1.0;
    double wi = swi, cwi = 1.0;
    if (!target && has_ignore && yi == ignore) wi = 0.0;
    else if (cw && !soft) wi *= (cwi = static_cast<double>(cw[yi]));
    T* row_out = rop ? rop + cur.off[4] : nullptr;
    if (wi == 0.0) {  // adds exactly 0, as in softmax_units
      if (op)
        for (int64_t c = 0; c < C; ++c) op[cur.off[3] + c * ocs] = S{};  // +0 in every S
      if (row_out) *row_out = T(0);
      continue;
    }
    if (!row_scale_fits<T>(gscale * wi, inrow)) {  // huge weights: this row alone, split scale
      // (half storage goes through float buffers, C <= kLanesMaxC: converted once each way,
      // so the gradient is the float32 one rounded once, as on every other path)
      const SplitScale sp = split_scale_t<T>(gscale, swi, cwi);
      const int64_t y1[1] = {yi};
      const double w1[1] = {1.0}, a1[1] = {ca ? static_cast<double>(ca[yi]) : 1.0};
      double r1[1];
      if constexpr (std::is_same_v<S, T>) {
        const T* z1[1] = {zp + cur.off[0]};
        const T* t1[1] = {target ? tp + cur.off[1] : nullptr};
        T* o1[1] = {op ? op + cur.off[3] : nullptr};
        lanes_xent<D, T>(lx, z1, zcs, t1, tcs, op ? o1 : nullptr, ocs, y1, w1, 1, sp.m, &cap_full, r1, a1);
        if (op) ldexp_row(o1[0], ocs, C, sp.e);
      } else {
        T zb[kLanesMaxC], tb[kLanesMaxC], ob[kLanesMaxC];
        load_row<D, S>(zp + cur.off[0], zcs, C, zb);
        if (target) load_row<D, S>(tp + cur.off[1], tcs, C, tb);
        const T* z1[1] = {zb};
        const T* t1[1] = {tb};
        T* o1[1] = {ob};
        lanes_xent<D, T>(lx, z1, 1, t1, 1, op ? o1 : nullptr, 1, y1, w1, 1, sp.m, &cap_full, r1, a1);
        if (op) {
          ldexp_row(ob, 1, C, sp.e);
          store_row<D, S>(ob, C, op + cur.off[3], ocs);
        }
      }
      const double ri = weigh_loss(r1[0], wi, swi, cwi);
      if (row_out) *row_out = static_cast<T>(ri);
      total += ri;
      continue;
    }
    zr[n] = zp + cur.off[0];
    tr[n] = target ? tp + cur.off[1] : nullptr;
    outr[n] = op ? op + cur.off[3] : nullptr;
    ro[n] = row_out;
    y[n] = yi;
    w[n] = wi;
    if (ca) a[n] = static_cast<double>(ca[yi]);
    if (++n == W) flush();
  }
  if (n) flush();
  return total;
}

// Row results (losses, log-sum-exps) finished kRows at a time, in row order: the logs of
// those a LogLater left pending in F64 vectors (coef * log(s) + r, + the z-loss; the
// gradient's rescaling pass of a z-loss row, the output pass of a log_softmax row; the
// poly-1 or focal factors, label_factor_lanes, and those rows' rescaling passes), then
// the row weights, the per-row output and the running total. The log of one row (log_sum,
// one lane of a vector) is a chain of about 70 cycles; taken per row it held up the next
// row's work (1 thread, AVX-512: logsumexp of rows of 160 float32 0.75x the time without it,
// loss + gradient 0.84x). A batch also ends where its waiting gradient rows reach
// kLogBatchBytes, so that they are still in L1 for their pass. Each lane computes as
// log_sum (and row_label_factor) does (no operation crosses lanes): the same bits.
template <class D>
class LogBatch {
  using T = typename D::T;

 public:
  // kind and param: the job's loss when its rows leave their factor (LogLater::fac) to the batch
  explicit LogBatch(double& total, FactorKind kind = FactorKind::kPoly1, double param = 0.0)
      : total_(total), kind_(kind), param_(param) {}
  LogBatch(const LogBatch&) = delete;
  LogBatch& operator=(const LogBatch&) = delete;
  bool lsm_ahead = false;  // log_softmax rows' output passes prefetch ahead (the driver's big_job)
  // r is the row's value (without log(s) when later.on); w, sw, cw its weights (weigh_loss,
  // applied here when w != 1); out, if not null, receives the finished value
  void push(double r, const LogLater<T>& later, double w, double sw, double cw, T* out) {
    rows_[n_] = Row{r, w, sw, cw, out, later};
    ones_[n_] = later.on ? later.ones : 1.0;
    rest_[n_] = later.on ? later.rest : 0.0;
    d_[n_] = later.on && later.fac ? later.d : 0.0;
    pending_ += later.on;
    facs_ += later.on && later.fac;
    if (later.on && later.grad) bytes_ += later.C * static_cast<int64_t>(sizeof(T));
    if (++n_ == kRows || bytes_ >= kLogBatchBytes) flush();
  }
  void flush() {
    if (n_ == 0) return;
    alignas(64) double l[kRows], lc[kRows], g[kRows];
    if (pending_) {
      for (int i = n_; i < kRows; ++i) ones_[i] = 1.0, rest_[i] = 0.0, d_[i] = 0.0;  // log(1) lanes, unused
      for (int i = 0; i < kRows; i += F64::W)
        F64::store(l + i, log_ones_rest<F64>(F64::load(ones_ + i), F64::load(rest_ + i)));
    }
    if (facs_) {  // the factors of the poly-1 / focal rows (the others' lanes: d = 0, s = 1)
      alignas(64) double nlp[kRows];
      for (int i = 0; i < kRows; ++i) nlp[i] = -d_[i] + l[i];  // (m - z_y) + log(s)
      if (kind_ == FactorKind::kFocal)
        label_factor_lanes<FactorKind::kFocal>(d_, nlp, ones_, rest_, kRows, param_, lc, g);
      else
        label_factor_lanes<FactorKind::kPoly1>(d_, nlp, ones_, rest_, kRows, param_, lc, g);
    }
    for (int i = 0; i < n_; ++i) {
      const Row& e = rows_[i];
      const LogLater<T>& x = e.x;
      double r = e.r;
      if (x.on && x.fac) {  // as row_label_factor computes them
        r = x.a == 0.0 ? 0.0 : x.a * lc[i];
        if (x.grad) {
          RowLse rl{x.m, x.ones, x.rest};
          rl.log_s = l[i];
          const double f = x.gscale * x.a * g[i];
          const T ref = static_cast<T>(x.m);  // the row's one block
          row_scale_exps<D>(x.grad, x.C, &ref, rl, f);
          x.grad[x.y] = static_cast<T>(static_cast<double>(x.grad[x.y]) - f);
        }
      } else if (x.on && x.lsm_z) {
        RowLse rl{x.m, x.ones, x.rest};
        rl.log_s = l[i];
        row_log_softmax_out<D>(x.lsm_z, x.C, x.grad, rl, lsm_ahead);
      } else if (x.on) {
        r = x.coef * l[i] + r;
        if (x.zl != 0.0) {  // as zloss_term and p_factor (xent-inl.hpp) compute them
          const double lse = x.m + l[i];
          r = r + x.zl * lse * lse;
          if (x.grad) {
            RowLse rl{x.m, x.ones, x.rest};
            rl.log_s = l[i];
            const T ref = static_cast<T>(x.m);  // the row's one block
            row_scale_exps<D>(x.grad, x.C, &ref, rl, x.gscale * (1.0 + 2.0 * x.zl * lse));
            x.grad[x.y] = static_cast<T>(static_cast<double>(x.grad[x.y]) - x.gscale);
          }
        }
      }
      if (e.w != 1.0) r = weigh_loss(r, e.w, e.sw, e.cw);
      if (e.out) *e.out = static_cast<T>(r);
      total_ += r;
    }
    n_ = pending_ = facs_ = 0;
    bytes_ = 0;
  }

 private:
  static constexpr int kRows = 2 * F64::W;
  struct Row {
    double r, w, sw, cw;
    T* out;
    LogLater<T> x;
  };
  double& total_;
  FactorKind kind_;
  double param_;
  int n_ = 0, pending_ = 0, facs_ = 0;
  int64_t bytes_ = 0;  // the waiting gradient rows' (LogLater::grad)
  Row rows_[kRows];
  alignas(64) double ones_[kRows];
  alignas(64) double rest_[kRows];
  alignas(64) double d_[kRows];  // z[y] - m of the rows that leave their factor
};

template <class D, class S>
double softmax_units_s(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  constexpr bool kHalf = !std::is_same_v<S, T>;
  const int64_t C = j.len;
  const bool z_contig = j.z.cs == 1, t_contig = j.t.cs == 1 || !j.t.p, o_contig = j.out.cs == 1 || !j.out.p;
  // the layout of softmax_scratch (jobs.hpp): row buffers only for the uses this job has
  const SoftmaxScratch L = softmax_scratch(j);
  auto buf = [&](int64_t at) { return at < 0 ? nullptr : scratch + at; };
  T* refs = scratch;  // n_blocks(C) + 8 <= C / 64 + 64 of them
  T* zbuf = buf(L.z);
  T* tbuf = buf(L.t);
  T* obuf = buf(L.o);
  T* dbuf = buf(L.d);  // derivative of the soft cap
  T* gbuf = buf(L.g);  // effective targets (poly-1, focal)
  // rows in lanes for small C (jobs.hpp, lanes_rows; reads each group before writing)
  if (lanes_rows(j)) return softmax_units_lanes<D, S>(j, u0, u1);
  const int64_t* strides[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  Cursor<6> cur(j.rows, strides, u0);
  // class-major operands (jobs.hpp, softmax_block_rows): blocks of up to K rows along the
  // last row dim, the logits and targets gathered into rows before the block's first row,
  // the output scattered after its last; the rows themselves computed as any other
  const int64_t K = kHalf ? 0 : softmax_block_rows(j);
  T* const bz = buf(L.bz);
  T* const bt = buf(L.bt);
  T* const bo = buf(L.bo);
  const int last = j.rows.nd - 1;
  int64_t bn = 0, bi = 0, bo_off = 0;  // the block's rows, the row's index in it, out's offset
  const bool loss_op = is_loss_op(j.op), label_op = is_label_op(j.op);
  const bool capped = j.softcap > 0.0;
  const bool grad_capped = capped && loss_op && j.out.p;
  // the plain integer-label loss multiplies by the cap's derivatives in its rescaling pass
  const bool cap_in_rescale = grad_capped && j.op == SoftmaxOp::kXentLabel && j.smoothing == 0.0;
  // Paths that read z again after writing the gradient: with the gradient written over
  // the logits (grad_out=logits), the row is copied to scratch first.
  const bool rereads_z = j.op == SoftmaxOp::kXentTarget || j.op == SoftmaxOp::kPoly1Target ||
                         j.op == SoftmaxOp::kFocalTarget || (j.op == SoftmaxOp::kXentLabel && j.smoothing != 0.0);
  const S* const zs = reinterpret_cast<const S*>(j.z.p);
  const S* const ts = reinterpret_cast<const S*>(j.t.p);
  // contiguous half rows that the forward pass reads directly, converting in its loads:
  // no conversion pass into zbuf (the ops that read z only through row_lse)
  const bool direct = kHalf && z_contig && !capped &&
                      ((j.op == SoftmaxOp::kXentLabel && j.smoothing == 0.0) || j.op == SoftmaxOp::kLogsumexp ||
                       j.op == SoftmaxOp::kSoftmax);
  S* const os = reinterpret_cast<S*>(j.out.p);
  // and whose z-shaped output (gradient, softmax) the rescaling pass writes straight into
  // a contiguous half row: no float32 row to convert afterwards
  const bool direct_out = direct && j.out.p && j.out.cs == 1;
  // class weights that act inside a row (targets, smoothing, focal's alpha): their sum
  // bounds the row's gradient over its scale (Python keeps it far below T's largest value);
  // with smoothing it is SW of the rows without a masked class (row_xent_label)
  const double wsum = j.inrow_sum;  // of inrow_weights(j) (jobs.hpp)
  const double inrow = inrow_weights(j) && wsum > 1.0 ? wsum : 1.0;
  double total = 0.0;
  const bool factor_label = j.op == SoftmaxOp::kPoly1Label || j.op == SoftmaxOp::kFocalLabel;
  LogBatch<D> fin(total, j.op == SoftmaxOp::kFocalLabel ? FactorKind::kFocal : FactorKind::kPoly1, j.param);
  // the ops whose rows may leave their log(s) to fin (row_xent_label, row_logsumexp,
  // row_label_factor)
  const bool defer_log = j.op == SoftmaxOp::kXentLabel || j.op == SoftmaxOp::kXentTarget ||
                         j.op == SoftmaxOp::kLogsumexp || factor_label;
  // and whose gradient row may wait for it too (written in place, nothing applied after)
  const bool grad_later = !kHalf && o_contig && K == 0 && !capped;
  // log_softmax rows read from the logits and written in place, short (log_batch_max_c),
  // whose output passes wait for fin's logs (1 thread, AVX-512, float32: rows of 160 0.84x
  // the time, 256 0.94x)
  const bool batch_ls = j.op == SoftmaxOp::kLogSoftmax && !kHalf && z_contig && !capped && K == 0 && o_contig &&
                        C <= log_batch_max_c<T>();
  bool cap_full = false;  // softcap_row's mode, kept from row to row
  // jobs whose logits and output reach kPrefetchMinBytes prefetch ahead where a pass reads
  // or writes memory not yet in cache: the cap's pass reads the logits first (not from the
  // block buffer: 10000 x 1000 loss + gradient, 1 thread, float32 1.45x -> 1.25x the
  // uncapped loss, float64 2.1x -> 1.6x; in cache, where it is off, 1.00-1.03x the time), and
  // log_softmax's output pass writes contiguous rows (row_log_softmax_out)
  const bool big_job =
      j.rows.n_rows() * C * static_cast<int64_t>(sizeof(T)) * (j.out.p ? 2 : 1) >= kPrefetchMinBytes;
  const bool cap_ahead = capped && K == 0 && big_job;
  fin.lsm_ahead = big_job && K == 0 && o_contig && !kHalf;
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    if (K && bi == bn) {  // a new block
      bn = std::min({K, j.rows.shape[last] - cur.idx[last], u1 - u});
      bi = 0;
      bo_off = cur.off[3];
      if (bz) gather_rows<D>(j.z.p + cur.off[0], j.z.cs, bn, C, bz);
      if (bt) gather_rows<D>(j.t.p + cur.off[1], j.t.cs, bn, C, bt);
    }
    const T* z = nullptr;
    if constexpr (!kHalf) z = bz ? bz + bi * C : zs + cur.off[0];
    const int64_t zcs = bz ? 1 : j.z.cs;
    S* hout = nullptr;  // set when the row kernel writes the half output itself
    T* out = j.out.p ? (bo ? bo + bi * C : (o_contig && !kHalf) ? j.out.p + cur.off[3] : obuf) : nullptr;
    auto load_z = [&]() {
      if constexpr (kHalf) {
        load_row<D, S>(zs + cur.off[0], j.z.cs, C, zbuf, j.out.p && j.out.cs == 1 ? os + cur.off[3] : nullptr);
        z = zbuf;
        // in place: softcap_row reads each vector before it writes the same lanes
        if (capped) softcap_row<D>(zbuf, 1, C, j.softcap, zbuf, grad_capped ? dbuf : nullptr, &cap_full);
      } else if (capped) {
        softcap_row<D>(z, zcs, C, j.softcap, zbuf, grad_capped ? dbuf : nullptr, &cap_full, cap_ahead);
        z = zbuf;
      } else if (zcs != 1 || (rereads_z && out == z)) {
        gather(z, zcs, C, zbuf);
        z = zbuf;
      }
    };
    auto load_t = [&]() -> const T* {
      if constexpr (kHalf) {
        load_row<D, S>(ts + cur.off[1], j.t.cs, C, tbuf);
        return tbuf;
      }
      if (bt) return bt + bi * C;
      const T* t = j.t.p + cur.off[1];
      if (!t_contig) {
        gather(t, j.t.cs, C, tbuf);
        t = tbuf;
      }
      return t;
    };
    double r = 0.0;
    LogLater<T> later;
    LogLater<T>* const lp = defer_log ? &later : nullptr;
    double lw = 1.0, lsw = 1.0, lcw = 1.0;  // the weights of a row whose log(s) waits
    if (loss_op) {
      // the row weight first: an ignored or zero-weight row costs no pass over its logits
      int64_t y = 0;
      const double sw = j.sw.p ? static_cast<double>(j.sw.p[cur.off[5]]) : 1.0;
      double w = sw, cwy = 1.0;
      if (label_op) {
        const char* yp = static_cast<const char*>(j.y.p) + cur.off[2] * j.label_bytes;
        y = j.label_bytes == 8 ? *reinterpret_cast<const int64_t*>(yp)
                               : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(yp));
        if (j.has_ignore && y == j.ignore_index) w = 0.0;
        // with smoothing the class weights act per class, inside the row
        else if (j.class_w && !(j.op == SoftmaxOp::kXentLabel && j.smoothing != 0.0))
          w *= (cwy = static_cast<double>(j.class_w[y]));
      }
      if (w == 0.0) {
        if (out) fill(out, C, T(0));
      } else {
        if (!direct) load_z();
        double gs = j.gscale * w;
        SplitScale sp;
        const bool split = !row_scale_fits<T>(gs, inrow);
        if (split) gs = (sp = split_scale_t<T>(j.gscale, sw, cwy)).m;
        later.grad_ok = grad_later && !split;
        const double eps = j.smoothing;
        switch (j.op) {
          case SoftmaxOp::kXentLabel:
            // (a split scale is applied to the float32 row afterwards: no direct output then)
            if (direct_out && !split) hout = os + cur.off[3];
            r = direct ? row_xent_label<D, false, S>(zs + cur.off[0], C, y, nullptr, 0.0, out, refs, gs, j.z_loss,
                                                     hout, nullptr, 0.0, lp)
                : (j.class_w && eps != 0.0)
                    ? row_xent_label<D, true>(z, C, y, j.class_w, eps, out, refs, gs, j.z_loss,
                                              static_cast<T*>(nullptr), nullptr, wsum, lp)
                    : row_xent_label<D, false>(z, C, y, nullptr, eps, out, refs, gs, j.z_loss, static_cast<T*>(nullptr),
                                               cap_in_rescale ? dbuf : nullptr, 0.0, lp);
            break;
          case SoftmaxOp::kXentTarget:
            r = j.class_w ? row_xent_target<D, true>(z, load_t(), j.class_w, eps, C, out, refs, gs, j.z_loss, lp)
                          : row_xent_target<D, false>(z, load_t(), nullptr, eps, C, out, refs, gs, j.z_loss, lp);
            break;
          case SoftmaxOp::kNllLabel:
            r = row_nll<D>(z, C, y, out, gs);
            break;
          case SoftmaxOp::kKlDiv:
          case SoftmaxOp::kKlDivLog:
            r = row_kl<D>(z, load_t(), C, j.op == SoftmaxOp::kKlDivLog, out, gs);
            break;
          case SoftmaxOp::kPoly1Label:
            r = row_label_factor<D, FactorKind::kPoly1>(z, C, y, 1.0, j.param, out, refs, gs, lp);
            break;
          case SoftmaxOp::kFocalLabel:
            r = row_label_factor<D, FactorKind::kFocal>(z, C, y, j.class_a ? static_cast<double>(j.class_a[y]) : 1.0,
                                                        j.param, out, refs, gs, lp);
            break;
          case SoftmaxOp::kPoly1Target:
            r = row_target_factor<D, FactorKind::kPoly1>(z, load_t(), j.class_a, C, j.param, out, refs, gbuf, gs);
            break;
          case SoftmaxOp::kFocalTarget:
            r = row_target_factor<D, FactorKind::kFocal>(z, load_t(), j.class_a, C, j.param, out, refs, gbuf, gs);
            break;
          default:
            break;
        }
        if (grad_capped && !cap_in_rescale) mul_rows<D>(out, dbuf, C);
        if (split && out) ldexp_row(out, 1, C, sp.e);
        if (later.on) lw = w, lsw = sw, lcw = cwy;
        else if (w != 1.0) r = weigh_loss(r, w, sw, cwy);
      }
    } else {
      if (!direct) load_z();
      switch (j.op) {
        case SoftmaxOp::kLogsumexp:
          r = direct ? row_logsumexp<D, S>(zs + cur.off[0], C, lp) : row_logsumexp<D>(z, C, lp);
          break;
        case SoftmaxOp::kSoftmax:
          if (direct) {
            if (direct_out) hout = os + cur.off[3];
            row_softmax<D, S>(zs + cur.off[0], C, out, refs, hout);
          } else {
            row_softmax<D>(z, C, out, refs);
          }
          break;
        default:
          if (batch_ls) {
            RowLse rl = row_lse<D, false, T, false, false>(z, C, nullptr, nullptr);
            if (rl.vector_log() && std::isfinite(rl.m)) {  // (else libm's log now: NaN, +inf)
              later.set(rl);  // (the row's value stays 0)
              later.lsm_z = z, later.grad = out, later.C = C;
            } else {
              row_log_softmax_out<D>(z, C, out, rl.finish(), fin.lsm_ahead);
            }
          } else {
            row_log_softmax<D>(z, C, out, fin.lsm_ahead);
          }
          break;
      }
    }
    if constexpr (kHalf) {
      if (out && !hout) store_row<D, S>(obuf, C, os + cur.off[3], j.out.cs);
    } else if (out && !o_contig && !bo) {
      scatter(obuf, C, os + cur.off[3], j.out.cs);
    }
    fin.push(r, later, lw, lsw, lcw, j.row_out.p ? j.row_out.p + cur.off[4] : nullptr);
    if (K && ++bi == bn && bo) scatter_rows<D>(bo, bn, C, j.out.p + bo_off, j.out.cs);
  }
  fin.flush();
  return total;
}

// f(S{}) for the storage type S of a job: half storage exists for float lanes only. The
// table's entries choose it once per call, not per row.
template <class D, class F>
inline double by_storage(Storage s, F&& f) {
  if constexpr (std::is_same_v<typename D::T, float>) {
    if (s == Storage::kF16) return f(f16_t{});
    if (s == Storage::kBF16) return f(bf16_t{});
  }
  return f(typename D::T{});
}

// Rows of the tile of softmax_units_inner: groups of W rows, as many as keep the tile within
// about 128 KiB of float32 (8 groups, 64 float32 rows, up to C = 512), and its B + W rows
// within kInnerTileRows (AVX-512's 16 lanes: 3 groups).
inline int inner_groups(int64_t C, int W) {
  const int64_t g = (int64_t{32768} / C) / W, most = std::min<int64_t>(8, kInnerTileRows / W - 1);
  return static_cast<int>(g < 1 ? 1 : g > most ? most : g);
}

// n elements from src to dst, W at a time.
template <class D>
inline void copy_run(const typename D::T* src, typename D::T* dst, int64_t n) {
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) D::store(dst + i, D::load(src + i));
  if (i < n) D::store_tail(dst + i, D::load_tail(src + i, n - i, typename D::T(0)), n - i);
}

// Units are rows, B = inner_groups * W at a time, moved into a tile t[c * ts + row] in
// scratch (ts = B + W: not a power of two), computed there a group of W rows at a time
// (inner-inl.hpp), the gradient moved back. Where the logits and the gradient of adjacent
// rows along the last row dim are adjacent in memory (PyTorch's (N, C, H, W) with axis=1,
// C-order) the B rows are taken there and moved a vector at a time, B contiguous elements per
// class (the classes of a row are often a power of two apart: computed in place, C such
// lines per group fell into a few cache sets and were read from memory at each pass);
// otherwise any B rows in order, element by element. The kernel's arithmetic is per lane,
// so the results depend neither on the grouping nor on the threads' split. A tile holding
// a row whose scale does not fit T (huge weights: the row kernels' split scale) is computed
// a row at a time by softmax_units_s.
template <class D>
double softmax_units_inner(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  constexpr int W = D::W;
  constexpr int kMaxB = 8 * W;
  static_assert(2 * W <= kInnerTileRows, "softmax_scratch's tile holds a group and the spare lanes");
  const int d = j.rows.nd - 1;
  const int64_t C = j.len, B = int64_t{inner_groups(C, W)} * W, ts = B + W;
  const int64_t L = d >= 0 ? j.rows.shape[d] : 1;
  const bool adjacent = d >= 0 && L >= W && j.z.st[d] == 1 && (!j.out.p || j.out.st[d] == 1);
  T* const tile = scratch + softmax_scratch(j).tile;
  const int64_t* strides[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  const int64_t zcs = j.z.cs, ocs = j.out.cs;
  const bool y64 = j.label_bytes == 8;
  const char* const yp = static_cast<const char*>(j.y.p);
  Cursor<6> cur(j.rows, strides, u0);
  double total = 0.0;
  int64_t off[6][kMaxB];
  int64_t y[kMaxB];
  T gw[kMaxB], loss[kMaxB];
  double w[kMaxB], sw[kMaxB], cwy[kMaxB];
  bool masked[kMaxB];
  // no weights: every row's weight is 1 (0 if ignored), its scale gscale
  const bool unweighted = !j.sw.p && !j.class_w;
  const bool plain_fits = row_scale_fits<T>(j.gscale, 1.0);
  for (int64_t u = u0; u < u1;) {
    // the tile's rows and their operands' offsets
    int64_t n = 0;
    if (adjacent) {
      n = std::min({B, L - cur.idx[d], u1 - u});
      for (int o = 0; o < 6; ++o) {
        if (o == 1) continue;  // (no targets)
        const int64_t b = cur.off[o], sd = strides[o][d];
        for (int64_t i = 0; i < n; ++i) off[o][i] = b + i * sd;
      }
      cur.advance_last(n);
    } else {
      for (; n < B && u + n < u1; ++n, cur.next())
        for (int o = 0; o < 6; ++o) off[o][n] = cur.off[o];
    }
    bool alone = false;
    if (unweighted && plain_fits) {
      const T gs = static_cast<T>(j.gscale);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t yi = y64 ? reinterpret_cast<const int64_t*>(yp)[off[2][i]]
                               : static_cast<int64_t>(reinterpret_cast<const int32_t*>(yp)[off[2][i]]);
        const bool ignored = j.has_ignore && yi == j.ignore_index;
        w[i] = ignored ? 0.0 : 1.0;
        y[i] = ignored ? 0 : yi;
        gw[i] = ignored ? T(0) : gs;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t yi = y64 ? reinterpret_cast<const int64_t*>(yp)[off[2][i]]
                               : static_cast<int64_t>(reinterpret_cast<const int32_t*>(yp)[off[2][i]]);
        sw[i] = j.sw.p ? static_cast<double>(j.sw.p[off[5][i]]) : 1.0;
        cwy[i] = 1.0;
        w[i] = sw[i];
        if (j.has_ignore && yi == j.ignore_index) w[i] = 0.0;
        else if (j.class_w) w[i] *= (cwy[i] = static_cast<double>(j.class_w[yi]));
        const bool fits = row_scale_fits<T>(j.gscale * w[i], 1.0);
        alone = alone || (w[i] != 0.0 && !fits);
        y[i] = w[i] != 0.0 ? yi : 0;
        gw[i] = w[i] != 0.0 && fits ? static_cast<T>(j.gscale * w[i]) : T(0);
      }
    }
    if (alone) {
      for (int64_t i = 0; i < n; ++i) total += softmax_units_s<D, T>(j, u + i, u + i + 1, scratch);
      u += n;
      continue;
    }
    // in
    if (adjacent) {
      for (int64_t c = 0; c < C; ++c) copy_run<D>(j.z.p + off[0][0] + c * zcs, tile + c * ts, n);
    } else {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < n; ++i) tile[c * ts + i] = j.z.p[off[0][i] + c * zcs];
    }
    const bool grad = j.out.p != nullptr;
    // Prefetches, one line per class in each group's class loop, spread over the compute (a
    // burst of C B / 16 of them at once would overrun the misses in flight): the next
    // tile's logits, then this tile's gradient (written at the end).
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
    const int64_t nlines = (n + kLine - 1) / kLine;
    for (int64_t g0 = 0, gi = 0; g0 < n; g0 += W, ++gi) {
      const int k = static_cast<int>(std::min<int64_t>(W, n - g0));
      bool live = false;
      for (int i = 0; i < k; ++i) live = live || gw[g0 + i] != T(0);
      T* const t = tile + g0;
      const T* pf = nullptr;
      int64_t pfcs = 0;
      if (adjacent && gi < nlines) pf = j.z.p + off[0][0] + n + gi * kLine, pfcs = zcs;
      else if (adjacent && grad && gi >= 4 && gi - 4 < nlines) pf = j.out.p + off[3][0] + (gi - 4) * kLine, pfcs = ocs;
      if (live) {
        inner_xent_label<D>(t, ts, grad ? t : nullptr, ts, k, y + g0, gw + g0, C, j.z_loss, loss + g0, masked + g0,
                            pf, pfcs);
      } else if (grad) {  // every row ignored: zeros
        for (int64_t c = 0; c < C; ++c)
          for (int i = 0; i < k; ++i) t[c * ts + i] = T(0);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      double r = 0.0;
      if (gw[i] != T(0)) {
        r = static_cast<double>(loss[i]);
        if (w[i] != 1.0) r = weigh_loss(r, w[i], sw[i], cwy[i]);
        // the label's term, from the scaled exponential, in double (as the row kernels)
        if (grad && !masked[i]) {
          T* const gy = tile + y[i] * ts + i;
          *gy = static_cast<T>(static_cast<double>(*gy) - j.gscale * w[i]);
        }
      }
      if (j.row_out.p) j.row_out.p[off[4][i]] = static_cast<T>(r);
      total += r;
    }
    // out
    if (grad && adjacent) {
      for (int64_t c = 0; c < C; ++c) copy_run<D>(tile + c * ts, j.out.p + off[3][0] + c * ocs, n);
    } else if (grad) {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < n; ++i) j.out.p[off[3][i] + c * ocs] = tile[c * ts + i];
    }
    u += n;
  }
  return total;
}

template <class D>
double softmax_units(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  if (inner_rows(j)) return softmax_units_inner<D>(j, u0, u1, scratch);
  return by_storage<D>(j.storage, [&](auto s) { return softmax_units_s<D, decltype(s)>(j, u0, u1, scratch); });
}

// dst[0, n) = v
template <class D>
inline void fill_run(typename D::T* dst, int64_t n, typename D::T v) {
  const typename D::V x = D::set1(v);
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) D::store(dst + i, x);
  if (i < n) D::store_tail(dst + i, x, n - i);
}

// The least of p[0, n) (no NaN among them; +inf if n = 0).
template <class D>
inline typename D::T min_run(const typename D::T* p, int64_t n) {
  using T = typename D::T;
  constexpr T inf = std::numeric_limits<T>::infinity();
  typename D::V a = D::set1(inf);
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) a = D::min(a, D::load(p + i));
  if (i < n) a = D::min(a, D::load_tail(p + i, n - i, inf));
  alignas(64) T lanes[D::W];
  D::store(lanes, a);
  T lo = inf;
  for (int l = 0; l < D::W; ++l) lo = lanes[l] < lo ? lanes[l] : lo;
  return lo;
}

// The sum of p[0, m) in double: each vector widened into double lanes (D::wide_add), two
// accumulators (half the dependency chain, and half the rounding error of one).
template <class D>
inline double sum_in_double(const typename D::T* p, int64_t m) {
  typename D::Wide a = D::wide_zero(), b = D::wide_zero();
  int64_t i = 0;
  for (; i + 2 * D::W <= m; i += 2 * D::W) {
    a = D::wide_add(a, D::load(p + i));
    b = D::wide_add(b, D::load(p + i + D::W));
  }
  double s = D::wide_total(a) + D::wide_total(b);
  for (; i < m; ++i) s += static_cast<double>(p[i]);
  return s;
}

// Whether a sigmoid job's option loops prefetch the operands they read and write in place
// (kPrefetchMinBytes, prefetch-inl.hpp).
template <class T>
bool sigmoid_prefetch(const SigmoidJob<T>& j) {
  const int64_t n = j.rows.n_rows() * j.len;
  return n * static_cast<int64_t>(sizeof(T)) * (j.grad.p ? 3 : 2) >= kPrefetchMinBytes;
}

// The options of a sigmoid job's runs that are the same for every unit.
template <class T>
SigmoidRunOpts<T> sigmoid_run_opts(const SigmoidJob<T>& j) {
  SigmoidRunOpts<T> o;
  o.eps = j.smoothing;
  o.focal = j.focal;
  o.gamma = j.gamma;
  o.alpha = j.alpha;
  o.softcap = j.softcap;
  o.cw_min = j.cw_min;
  o.general = j.general_loop;
  return o;
}

// The sigmoid loss with options over n contiguous half elements (a flat job's unit): chunks of
// kChunk elements converted into float32 buffers (zb, tb and gb, min(n, kChunk) floats each or more), the
// float32 loop run over them (each chunk given the previous chunks' total, at a multiple of
// its blocks: the same bits as one call over the unit's float32 rows) and the gradient
// rounded into g. The buffers stay in L1 between the conversions and the loop: a unit at a
// time, the three spilled to L2 (1 thread, AVX-512, 10000 x 1000 float16 with class weights
// or label smoothing: 1.6x float32's time).
template <class D, class S>
double sigmoid_opt_half_chunks(const S* z, const S* t, int64_t n, typename D::T* le, S* g, double gscale,
                               const SigmoidRunOpts<typename D::T>& o, typename D::T* zb, typename D::T* tb,
                               typename D::T* gb) {
  constexpr int64_t kChunk = 2 * kSumLane * D::W;
  SigmoidRunOpts<typename D::T> oc = o;
  oc.prefetch = false;  // (the buffers are in cache; load_row prefetches the half operands)
  double total = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t m = std::min(kChunk, n - c0);
    load_row<D, S>(z + c0, 1, m, zb, g ? g + c0 : nullptr);
    load_row<D, S>(t + c0, 1, m, tb);
    // the options' element-aligned pointers, c0 elements on (cw and pw hold seg elements
    // past any start below the period: c0 + m <= n <= seg)
    if (o.cw) oc.cw = o.cw + c0;
    if (o.pw) oc.pw = o.pw + c0;
    if (o.ew) oc.ew = o.ew + c0;
    if (o.rws) {
      oc.rws = o.rws + (o.row_at + c0) / o.row_len;
      oc.row_at = (o.row_at + c0) % o.row_len;
    }
    total = run_sigmoid_opt<D>(zb, tb, m, le ? le + c0 : nullptr, g ? gb : nullptr, gscale, oc, total);
    if (g) store_row<D, S>(gb, m, g + c0, 1);
  }
  return total;
}

// Flat jobs (jobs.hpp): unit u is elements [u seg, (u + 1) seg) of the rows laid end to end
// in their logical order, one kernel call however short the rows (a call per row of 32
// elements cost 2.3x the loss itself). An operand is read or written in place where it is
// dense, or where the unit lies within one row and its class stride is 1; otherwise the
// unit's pieces (one per row it touches) go through a buffer of seg elements. The kernel sees
// the same values in the same order for every layout, so the results and sums are the same
// bits. A sample weight (one per row, stride 0) is spread over its row's elements: an element
// weight, whatever the unit.
template <class D, class S>
double sigmoid_units_flat(const SigmoidJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  constexpr bool kHalf = !std::is_same_v<S, T>;
  const int64_t L = j.len, N = j.rows.n_rows() * L;
  const SigmoidScratch B = sigmoid_scratch(j);
  auto buf = [&](int64_t at) { return at < 0 ? nullptr : scratch + at; };
  T* const zb = buf(B.z);
  T* const tb = buf(B.t);
  T* const gb = buf(B.g);
  T* const lb = buf(B.l);
  T* const eb = buf(B.e);
  const int64_t* strides[5] = {j.z.st, j.t.st, j.grad.st, j.loss.st, j.ew.st};
  Cursor<5> cur(j.rows, strides, u0 * j.seg / L);
  int64_t i0 = u0 * j.seg % L;  // the unit's first element in the cursor's row
  const bool opts = j.has_opts();
  SigmoidRunOpts<T> o = sigmoid_run_opts(j);
  const ClipLogs<D> cl(j.proba ? j.eps : 0.5);
  const bool pf = !kHalf && sigmoid_prefetch(j);
  double total = 0.0;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t f0 = u * j.seg, n = std::min(j.seg, N - f0);
    const bool one_row = i0 + n <= L;
    // fn(off, i, at, m) for each piece: m elements from element i of the row at offsets off,
    // element `at` of the unit on
    auto pieces = [&](auto&& fn) {
      if (one_row) return fn(cur.off, i0, int64_t{0}, n);
      if (j.rows.nd == 1) {  // (the common case: the offsets without a cursor)
        int64_t off[5], row = f0 / L;
        for (int64_t at = 0, i = i0; at < n; i = 0, ++row) {
          for (int k = 0; k < 5; ++k) off[k] = row * strides[k][0];
          const int64_t m = std::min(L - i, n - at);
          fn(off, i, at, m);
          at += m;
        }
        return;
      }
      Cursor<5> c = cur;
      for (int64_t at = 0, i = i0; at < n; i = 0) {
        const int64_t m = std::min(L - i, n - at);
        fn(c.off, i, at, m);
        at += m;
        if (at < n) c.next();
      }
    };
    // Operand k (native storage) moved between memory at p, class stride cs, and the unit's
    // buffer b (gather if In, else scatter): piece by piece, or, where the rows' one dim
    // steps by less than cs (a Fortran-order array), the unit's whole rows a column at a time
    // along that dim (piece by piece, a row's C elements were cs apart, often in one cache set:
    // 13x the time of the contiguous loss at 8192 x 32)
    auto move = [&](auto in, int k, auto* p, int64_t cs, T* b) {
      constexpr bool In = decltype(in)::value;
      auto run = [&](int64_t o, int64_t m, int64_t at) {
        if constexpr (In) gather(p + o, cs, m, b + at); else scatter(b + at, m, p + o, cs);
      };
      const int64_t rs = j.rows.nd == 1 ? strides[k][0] : 0;
      if (one_row || j.rows.nd != 1 || !(std::abs(rs) < std::abs(cs))) {
        pieces([&](const int64_t* off, int64_t i, int64_t at, int64_t m) { run(off[k] + i * cs, m, at); });
        return;
      }
      const int64_t row = f0 / L, first = L - i0, full = (n - first) / L, rest = (n - first) % L;
      run(row * rs + i0 * cs, first, 0);
      auto* const q = p + (row + 1) * rs;
      T* const bb = b + first;
      if (rs == 1) {  // class-major rows: W x W tiles transposed in registers
        if constexpr (In) gather_rows<D>(q, cs, full, L, bb); else scatter_rows<D>(bb, full, L, q, cs);
      } else {
        for (int64_t c = 0; c < L; ++c)
          for (int64_t r = 0; r < full; ++r) {
            if constexpr (In) bb[r * L + c] = q[r * rs + c * cs]; else q[r * rs + c * cs] = bb[r * L + c];
          }
      }
      if (rest > 0) run((row + 1 + full) * rs, rest, first + full * L);
    };
    auto contig = [&](int k, int64_t cs) { return j.dense[k] || (one_row && cs == 1); };
    auto in_place = [&](int k, int64_t cs) { return !kHalf && contig(k, cs); };
    // half storage read and written by the plain kernel itself, converted in its loads and
    // stores, where the operands lie contiguous (1 thread, AVX-512, float16 10000 x 1000 loss
    // + gradient: 5.2 -> 3.3 ms, float32's time; through float32 rows it took 1.6x that)
    const bool half_contig = kHalf && !j.proba && contig(0, j.z.cs) && contig(1, j.t.cs) &&
                             (!j.grad.p || contig(2, j.grad.cs));
    const bool half_direct = half_contig && !opts;
    // with options, contiguous half operands go through float32 buffers a chunk at a time
    // (sigmoid_opt_half_chunks), the rest a unit at a time
    const bool half_chunks = half_contig && opts;
    const bool z_in = in_place(0, j.z.cs), t_in = in_place(1, j.t.cs);
    const T* z = z_in ? j.z.p + cur.off[0] + i0 * j.z.cs : zb;
    const T* t = t_in ? j.t.p + cur.off[1] + i0 * j.t.cs : tb;
    if constexpr (kHalf) {
      if (!half_contig) {
        pieces([&](const int64_t* off, int64_t i, int64_t at, int64_t m) {
          load_row<D, S>(reinterpret_cast<const S*>(j.z.p) + off[0] + i * j.z.cs, j.z.cs, m, zb + at,
                         j.grad.p && j.grad.cs == 1 ? reinterpret_cast<S*>(j.grad.p) + off[2] + i : nullptr);
          load_row<D, S>(reinterpret_cast<const S*>(j.t.p) + off[1] + i * j.t.cs, j.t.cs, m, tb + at);
        });
      }
    } else {
      if (!z_in) move(std::true_type{}, 0, j.z.p, j.z.cs, zb);
      if (!t_in) move(std::true_type{}, 1, j.t.p, j.t.cs, tb);
    }
    // a loss per row: the unit's whole rows' element losses in lb, each row's summed below
    const bool row_loss = j.loss.p && !j.loss_elementwise;
    const bool g_in = in_place(2, j.grad.cs), l_in = !row_loss && (j.dense[3] || (one_row && j.loss.cs == 1));
    T* const g = j.grad.p ? (g_in ? j.grad.p + cur.off[2] + i0 * j.grad.cs : gb) : nullptr;
    T* const le = j.loss.p ? (l_in ? j.loss.p + cur.off[3] + i0 * j.loss.cs : lb) : nullptr;
    double r = 0.0;
    if (half_direct) {
      if constexpr (kHalf) {
        S* const gh = j.grad.p ? reinterpret_cast<S*>(j.grad.p) + cur.off[2] + i0 * j.grad.cs : nullptr;
        r = run_sigmoid<D, S>(reinterpret_cast<const S*>(j.z.p) + cur.off[0] + i0 * j.z.cs,
                              reinterpret_cast<const S*>(j.t.p) + cur.off[1] + i0 * j.t.cs, n, le, gh, j.gscale);
      }
    } else if (j.proba) {
      r = run_proba_binary<D>(z, t, n, cl, j.smoothing, le, g, j.gscale);
    } else if (opts) {
      o.cw = j.cw ? j.cw + f0 % j.period : nullptr;
      o.pw = j.pw ? j.pw + f0 % j.period : nullptr;
      o.ew = nullptr;
      o.rws = nullptr;
      o.ew_min = T(0);
      if (j.ew.p && j.dense[4]) {
        o.ew = j.ew.p + cur.off[4] + i0 * j.ew.cs;
      } else if (j.ew.p && j.ew.cs == 0) {  // one per row; their least known, for the zero test
        // rows of a vector or more (and of 2 or more): the rows' weights in eb (and one past
        // them, which the last vector's lanes past the unit may read), a broadcast or two per
        // vector (SigmoidRunOpts::rws; rows of 256 float32 1.14x -> 1.06x the plain loss);
        // shorter rows: spread over the elements
        const bool by_row = !j.focal && RowWeights<D>::fits(L);
        T lo = std::numeric_limits<T>::infinity();
        int64_t r = 0;
        if (by_row && j.rows.nd == 1) {  // the unit's rows' weights, one stride apart: copied
          // and their least taken in vector passes (row by row through pieces, rows of 32
          // float32 elements with sample_weight took 1.21x the plain loss, 1.09x now)
          const int64_t row0 = f0 / L, st = strides[4][0];
          r = (f0 + n - 1) / L - row0 + 1;
          const T* const w = j.ew.p + row0 * st;
          if (st == 1) {
            copy_run<D>(w, eb, r);
          } else {
            for (int64_t k = 0; k < r; ++k) eb[k] = w[k * st];
          }
          lo = min_run<D>(eb, r);
        } else {
          pieces([&](const int64_t* off, int64_t, int64_t at, int64_t m) {
            const T w = j.ew.p[off[4]];
            if (by_row) eb[r++] = w; else fill_run<D>(eb + at, m, w);
            lo = w < lo ? w : lo;
          });
        }
        if (by_row) {
          eb[r] = T(0);  // (r < seg, the buffer's size: rows of 2 elements or more, seg >= 2)
          o.rws = eb;
          o.row_len = L;
          o.row_at = i0;
        } else {
          o.ew = eb;
        }
        o.ew_min = lo;
      } else if (j.ew.p) {
        move(std::true_type{}, 4, j.ew.p, j.ew.cs, eb);
        o.ew = eb;
      }
      if (half_chunks) {
        if constexpr (kHalf) {
          r = sigmoid_opt_half_chunks<D, S>(reinterpret_cast<const S*>(j.z.p) + cur.off[0] + i0 * j.z.cs,
                                            reinterpret_cast<const S*>(j.t.p) + cur.off[1] + i0 * j.t.cs, n, le,
                                            j.grad.p ? reinterpret_cast<S*>(j.grad.p) + cur.off[2] + i0 * j.grad.cs
                                                     : nullptr,
                                            j.gscale, o, zb, tb, gb);
        }
      } else {
        o.prefetch = pf && z_in;
        r = run_sigmoid_opt<D>(z, t, n, le, g, j.gscale, o);
      }
    } else {
      r = run_sigmoid<D>(z, t, n, le, g, j.gscale);
    }
    if constexpr (kHalf) {
      if (g && !half_contig) {
        pieces([&](const int64_t* off, int64_t i, int64_t at, int64_t m) {
          store_row<D, S>(gb + at, m, reinterpret_cast<S*>(j.grad.p) + off[2] + i * j.grad.cs, j.grad.cs);
        });
      }
    } else if (g && !g_in) {
      move(std::false_type{}, 2, j.grad.p, j.grad.cs, gb);
    }
    if (row_loss) {
      pieces([&](const int64_t* off, int64_t, int64_t at, int64_t m) {
        j.loss.p[off[3]] = static_cast<T>(sum_in_double<D>(lb + at, m));
      });
    } else if (le && !l_in) {
      move(std::false_type{}, 3, j.loss.p, j.loss.cs, lb);
    }
    total += r;
    if (u + 1 < u1) {
      cur.advance((i0 + n) / L);
      i0 = (i0 + n) % L;
    }
  }
  return total;
}

// Jobs that are not flat (a loss per row, rows of kSigmoidSeg elements or more): unit u is
// row u, one kernel call, its loss the kernel's sum.
template <class D, class S>
double sigmoid_units_rows(const SigmoidJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  constexpr bool kHalf = !std::is_same_v<S, T>;
  const int64_t n = j.len;
  if (n == 0) return 0.0;
  const bool z_c = j.z.cs == 1 && !kHalf, t_c = j.t.cs == 1 && !kHalf;
  const bool g_c = !j.grad.p || (j.grad.cs == 1 && !kHalf);
  // the layout of sigmoid_scratch (jobs.hpp): row buffers only for strided operands
  const SigmoidScratch L = sigmoid_scratch(j);
  T* zb = L.z < 0 ? nullptr : scratch + L.z;
  T* tb = L.t < 0 ? nullptr : scratch + L.t;
  T* gb = L.g < 0 ? nullptr : scratch + L.g;
  T* eb = L.e < 0 ? nullptr : scratch + L.e;
  const int64_t* strides[5] = {j.z.st, j.t.st, j.grad.st, j.loss.st, j.ew.st};
  Cursor<5> cur(j.rows, strides, u0);
  const bool opts = j.has_opts();
  SigmoidRunOpts<T> o = sigmoid_run_opts(j);
  const ClipLogs<D> cl(j.proba ? j.eps : 0.5);
  o.cw = j.cw;
  o.pw = j.pw;
  double total = 0.0;
  // contiguous half rows read and written by the plain kernel itself (sigmoid_units_flat)
  const bool half_direct = kHalf && !j.proba && !opts && j.z.cs == 1 && j.t.cs == 1 && (!j.grad.p || j.grad.cs == 1);
  o.prefetch = !kHalf && z_c && sigmoid_prefetch(j);
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    const T* z = zb;
    const T* t = tb;
    if constexpr (kHalf) {
      if (half_direct) {
        S* const gh = j.grad.p ? reinterpret_cast<S*>(j.grad.p) + cur.off[2] : nullptr;
        const double r = run_sigmoid<D, S>(reinterpret_cast<const S*>(j.z.p) + cur.off[0],
                                           reinterpret_cast<const S*>(j.t.p) + cur.off[1], n, nullptr, gh, j.gscale);
        j.loss.p[cur.off[3]] = static_cast<T>(r);
        total += r;
        continue;
      }
      load_row<D, S>(reinterpret_cast<const S*>(j.z.p) + cur.off[0], j.z.cs, n, zb,
                     j.grad.p && j.grad.cs == 1 ? reinterpret_cast<S*>(j.grad.p) + cur.off[2] : nullptr);
      load_row<D, S>(reinterpret_cast<const S*>(j.t.p) + cur.off[1], j.t.cs, n, tb);
    } else {
      z = j.z.p + cur.off[0];
      t = j.t.p + cur.off[1];
      if (!z_c) { gather(z, j.z.cs, n, zb); z = zb; }
      if (!t_c) { gather(t, j.t.cs, n, tb); t = tb; }
    }
    T* g = j.grad.p ? (g_c ? j.grad.p + cur.off[2] : gb) : nullptr;
    double r;
    if (j.proba) {
      r = run_proba_binary<D>(z, t, n, cl, j.smoothing, nullptr, g, j.gscale);
    } else if (opts) {
      o.ew = nullptr;
      o.rw = T(1);
      if (j.ew.p) {
        const T* w = j.ew.p + cur.off[4];
        if (j.ew.cs == 0) {
          o.rw = *w;
        } else if (j.ew.cs == 1) {
          o.ew = w;
        } else {
          gather(w, j.ew.cs, n, eb);
          o.ew = eb;
        }
      }
      r = run_sigmoid_opt<D>(z, t, n, nullptr, g, j.gscale, o);
    } else {
      r = run_sigmoid<D>(z, t, n, nullptr, g, j.gscale);
    }
    if constexpr (kHalf) {
      if (g) store_row<D, S>(gb, n, reinterpret_cast<S*>(j.grad.p) + cur.off[2], j.grad.cs);
    } else if (g && !g_c) {
      scatter(gb, n, j.grad.p + cur.off[2], j.grad.cs);
    }
    j.loss.p[cur.off[3]] = static_cast<T>(r);
    total += r;
  }
  return total;
}

template <class D>
double sigmoid_units(const SigmoidJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  if (j.flat)
    return by_storage<D>(j.storage, [&](auto s) { return sigmoid_units_flat<D, decltype(s)>(j, u0, u1, scratch); });
  return by_storage<D>(j.storage, [&](auto s) { return sigmoid_units_rows<D, decltype(s)>(j, u0, u1, scratch); });
}

// Hessians (hessian-inl.hpp). kSigmoid: units are segments of rows (u % n_seg of row u / n_seg),
// or rows_per_unit whole rows (jobs.hpp); the softmax ops: units are rows. Rows of sample
// weight 0 are written as zeros, uncomputed.
template <class D>
double hessian_units(const HessianJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  const int64_t L = j.seg, C = j.len;
  T *zb = scratch, *tb = zb + L, *vb = tb + L, *wb = vb + L, *hb = wb + L, *gb = hb + L, *refs = gb + L;
  const int64_t* strides[7] = {j.z.st, j.t.st, j.v.st, j.y.st, j.sw.st, j.hess.st, j.grad.st};
  auto in = [](const T* p, int64_t cs, int64_t n, T* buf) {
    if (!p || cs == 1) return p;
    gather(p, cs, n, buf);
    return static_cast<const T*>(buf);
  };
  auto outp = [](T* p, int64_t cs, T* buf) { return (!p || cs == 1) ? p : buf; };
  auto flush = [](const T* buf, T* p, int64_t cs, int64_t n) {
    if (p && cs != 1) scatter(buf, n, p, cs);
  };
  if (j.op == HessianOp::kSigmoid && j.rows_per_unit > 0) {  // whole rows (api.cpp): dense but sw
    const int64_t R = j.rows_per_unit, n_rows = j.rows.n_rows();
    Cursor<7> cur(j.rows, strides, u0 * R);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t r0 = u * R, nr = std::min(R, n_rows - r0), f0 = r0 * C;
      const T* t = j.t.p ? j.t.p + f0 : nullptr;
      T* h = j.hess.p ? j.hess.p + f0 : nullptr;
      T* g = j.grad.p ? j.grad.p + f0 : nullptr;
      if (RowWeights<D>::fits(C)) {  // a weight per row, broadcast by the kernel
        if (j.rows.nd == 1) {  // (one row dim: one stride apart, no cursor)
          const int64_t st = strides[4][0];
          for (int64_t r = 0; r < nr; ++r) wb[r] = j.sw.p[(r0 + r) * st];
        } else {
          for (int64_t r = 0; r < nr; ++r, cur.next()) wb[r] = j.sw.p[cur.off[4]];
        }
        wb[nr] = T(0);  // (read by the last vector's lanes past the unit; nr < nr * C)
        run_sigmoid_hessian_rows<D>(j.z.p + f0, t, wb, nr, C, h, g);
      } else {  // spread over the rows' elements
        for (int64_t r = 0; r < nr; ++r, cur.next()) fill_run<D>(wb + r * C, C, j.sw.p[cur.off[4]]);
        run_sigmoid_hessian<D>(j.z.p + f0, t, wb, nr * C, h, g);
      }
    }
    return 0.0;
  }
  if (j.op == HessianOp::kSigmoid) {
    const int64_t nseg = j.n_seg();
    if (nseg == 0) return 0.0;
    Cursor<7> cur(j.rows, strides, u0 / nseg);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t s = u % nseg, b = s * L, n = C - b < L ? C - b : L;
      const T* z = in(j.z.p + cur.off[0] + b * j.z.cs, j.z.cs, n, zb);
      const T* t = j.t.p ? in(j.t.p + cur.off[1] + b * j.t.cs, j.t.cs, n, tb) : nullptr;
      const T* w = j.sw.p ? in(j.sw.p + cur.off[4] + b * j.sw.cs, j.sw.cs, n, wb) : nullptr;
      T* h = j.hess.p ? j.hess.p + cur.off[5] + b * j.hess.cs : nullptr;
      T* g = j.grad.p ? j.grad.p + cur.off[6] + b * j.grad.cs : nullptr;
      run_sigmoid_hessian<D>(z, t, w, n, outp(h, j.hess.cs, hb), outp(g, j.grad.cs, gb));
      flush(hb, h, j.hess.cs, n);
      flush(gb, g, j.grad.cs, n);
      if (s == nseg - 1) cur.next();
    }
    return 0.0;
  }
  Cursor<7> cur(j.rows, strides, u0);
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    const double w = j.sw.p ? static_cast<double>(j.sw.p[cur.off[4]]) : 1.0;
    T* h = j.hess.p ? j.hess.p + cur.off[5] : nullptr;
    T* g = j.grad.p ? j.grad.p + cur.off[6] : nullptr;
    if (w == 0.0) {
      if (h) for (int64_t c = 0; c < C; ++c) h[c * j.hess.cs] = T(0);
      if (g) for (int64_t c = 0; c < C; ++c) g[c * j.grad.cs] = T(0);
      continue;
    }
    const T* z = in(j.z.p + cur.off[0], j.z.cs, C, zb);
    T* ho = outp(h, j.hess.cs, hb);
    if (j.op == HessianOp::kSoftmaxHvp) {
      const T* v = in(j.v.p + cur.off[2], j.v.cs, C, vb);
      row_softmax_hvp<D>(z, v, C, w, ho, wb, refs);
    } else {
      int64_t y = 0;
      if (g) {
        const char* yp = static_cast<const char*>(j.y.p) + cur.off[3] * j.label_bytes;
        y = j.label_bytes == 8 ? *reinterpret_cast<const int64_t*>(yp)
                               : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(yp));
      }
      row_softmax_hessian_diag<D>(z, C, y, w, ho, outp(g, j.grad.cs, gb), wb, refs);
      flush(gb, g, j.grad.cs, C);
    }
    flush(hb, h, j.hess.cs, C);
  }
  return 0.0;
}

// y = f(x) elementwise with one vector function (the table's vector-math entries, whose
// contracts the tests check); tail lanes are padded with `fill`, a value inside f's domain.
template <class D, class F>
inline void vmap(const typename D::T* x, typename D::T* y, int64_t n, typename D::T fill, F f) {
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) D::store(y + i, f(D::load(x + i)));
  if (i < n) D::store_tail(y + i, f(D::load_tail(x + i, n - i, fill)), n - i);
}

template <class D>
void vexp(const typename D::T* x, typename D::T* y, int64_t n) {
  vmap<D>(x, y, n, 0, [](typename D::V v) { return exp_nonpos<D>(v); });
}
template <class D>
void vlog1p(const typename D::T* x, typename D::T* y, int64_t n) {
  vmap<D>(x, y, n, 0, [](typename D::V v) { return log1p_unit<D>(v); });
}
template <class D>
void vtanh(const typename D::T* x, typename D::T* y, int64_t n) {
  vmap<D>(x, y, n, 0, [](typename D::V v) { return tanh_v<D>(v); });
}
template <class D>
void vlog(const typename D::T* x, typename D::T* y, int64_t n) {
  vmap<D>(x, y, n, 1, [](typename D::V v) { return log_unit<D>(v); });
}
template <class D>
void vlog1m(const typename D::T* x, typename D::T* y, int64_t n) {
  vmap<D>(x, y, n, 0, [](typename D::V v) { return log_1m<D>(v); });
}

// Defined in proba_units-inl.hpp (included after this file: it uses Cursor, gather and scatter).
template <class D>
double proba_units(const ProbaJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch);

template <class D>
const KernelTable<typename D::T>* make_table() {
  static const KernelTable<typename D::T> table = {&softmax_units<D>, &sigmoid_units<D>, &hessian_units<D>, &vexp<D>,
                                                   &vlog1p<D>,         &vtanh<D>,         &proba_units<D>,   &vlog<D>,
                                                   &vlog1m<D>,         &weight_stats<D>,  &weights_from_f64<D>};
  return &table;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
