// Work-unit loops: walk rows of a strided N-d layout, gather a row into scratch when its
// class axis is not contiguous, run the row kernel, scatter results. Compiled per ISA so
// the per-row work never crosses an indirect call.
#pragma once
#include <cstdint>

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

  Cursor(const RowSpace& r, const int64_t* const (&strides)[kOps], int64_t row) : rs(r) {
    for (int k = 0; k < kOps; ++k) st[k] = strides[k];
    for (int k = 0; k < kOps; ++k) off[k] = 0;
    for (int d = rs.nd - 1; d >= 0; --d) {
      idx[d] = row % rs.shape[d];
      row /= rs.shape[d];
      for (int k = 0; k < kOps; ++k) off[k] += idx[d] * st[k][d];
    }
  }
  void next() {
    for (int d = rs.nd - 1; d >= 0; --d) {
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

template <class D>
double softmax_units(const SoftmaxJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  const int64_t C = j.len;
  const bool z_contig = j.z.cs == 1, t_contig = j.t.cs == 1 || !j.t.p, o_contig = j.out.cs == 1 || !j.out.p;
  // row buffers only for strided operands (softmax_scratch_size counts the same way)
  T* refs = scratch;
  T* zbuf = scratch + n_blocks(C) + 8;
  T* tbuf = zbuf + (z_contig ? 0 : C);
  T* obuf = tbuf + (t_contig ? 0 : C);
  const int64_t* strides[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  Cursor<6> cur(j.rows, strides, u0);
  double total = 0.0;
  for (int64_t u = u0; u < u1; ++u, cur.next()) {
    const T* z = j.z.p + cur.off[0];
    T* out = j.out.p ? (o_contig ? j.out.p + cur.off[3] : obuf) : nullptr;
    double r = 0.0;
    if (j.op == SoftmaxOp::kXentLabel || j.op == SoftmaxOp::kXentTarget) {
      // the row weight first: an ignored or zero-weight row costs no pass over its logits
      int64_t y = 0;
      double w = j.sw.p ? static_cast<double>(j.sw.p[cur.off[5]]) : 1.0;
      if (j.op == SoftmaxOp::kXentLabel) {
        const char* yp = static_cast<const char*>(j.y.p) + cur.off[2] * j.label_bytes;
        y = j.label_bytes == 8 ? *reinterpret_cast<const int64_t*>(yp)
                               : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(yp));
        if (j.has_ignore && y == j.ignore_index) w = 0.0;
        // with smoothing the class weights act per class, inside the row
        else if (j.class_w && j.smoothing == 0.0) w *= static_cast<double>(j.class_w[y]);
      }
      if (w == 0.0) {
        if (out) fill(out, C, T(0));
      } else {
        if (!z_contig) {
          gather(z, j.z.cs, C, zbuf);
          z = zbuf;
        }
        const double eps = j.smoothing;
        if (j.op == SoftmaxOp::kXentLabel) {
          r = (j.class_w && eps != 0.0)
                  ? row_xent_label<D, true>(z, C, y, j.class_w, eps, out, refs, j.gscale * w, j.z_loss)
                  : row_xent_label<D, false>(z, C, y, nullptr, eps, out, refs, j.gscale * w, j.z_loss);
        } else {
          const T* t = j.t.p + cur.off[1];
          if (!t_contig) {
            gather(t, j.t.cs, C, tbuf);
            t = tbuf;
          }
          r = j.class_w ? row_xent_target<D, true>(z, t, j.class_w, eps, C, out, refs, j.gscale * w, j.z_loss)
                        : row_xent_target<D, false>(z, t, nullptr, eps, C, out, refs, j.gscale * w, j.z_loss);
        }
        if (w != 1.0) r *= w;
      }
    } else {
      if (!z_contig) {
        gather(z, j.z.cs, C, zbuf);
        z = zbuf;
      }
      switch (j.op) {
        case SoftmaxOp::kLogsumexp:
          r = row_logsumexp<D>(z, C);
          break;
        case SoftmaxOp::kSoftmax:
          row_softmax<D>(z, C, out, refs);
          break;
        default:
          row_log_softmax<D>(z, C, out);
          break;
      }
    }
    if (out && !o_contig) scatter(obuf, C, j.out.p + cur.off[3], j.out.cs);
    if (j.row_out.p) j.row_out.p[cur.off[4]] = static_cast<T>(r);
    total += r;
  }
  return total;
}

// Units are segments: unit u is segment u % n_seg of row u / n_seg.
template <class D>
double sigmoid_units(const SigmoidJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  const int64_t nseg = j.n_seg();
  if (nseg == 0) return 0.0;
  const bool z_c = j.z.cs == 1, t_c = j.t.cs == 1, g_c = !j.grad.p || j.grad.cs == 1;
  const bool l_c = !j.loss.p || !j.loss_elementwise || j.loss.cs == 1;
  // segment buffers only for strided operands (sigmoid_scratch_size counts the same way)
  T* zb = scratch;
  T* tb = zb + (z_c ? 0 : j.seg);
  T* gb = tb + (t_c ? 0 : j.seg);
  T* lb = gb + (g_c ? 0 : j.seg);
  const int64_t* strides[4] = {j.z.st, j.t.st, j.grad.st, j.loss.st};
  int64_t row = u0 / nseg;
  Cursor<4> cur(j.rows, strides, row);
  double total = 0.0;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t s = u % nseg;
    const int64_t b = s * j.seg;
    const int64_t n = j.len - b < j.seg ? j.len - b : j.seg;
    const T* z = j.z.p + cur.off[0] + b * j.z.cs;
    const T* t = j.t.p + cur.off[1] + b * j.t.cs;
    if (!z_c) { gather(z, j.z.cs, n, zb); z = zb; }
    if (!t_c) { gather(t, j.t.cs, n, tb); t = tb; }
    T* g = j.grad.p ? (g_c ? j.grad.p + cur.off[2] + b : gb) : nullptr;
    T* le = (j.loss.p && j.loss_elementwise) ? (l_c ? j.loss.p + cur.off[3] + b : lb) : nullptr;
    const double r = run_sigmoid<D>(z, t, n, le, g, j.gscale);
    if (g && !g_c) scatter(gb, n, j.grad.p + cur.off[2] + b * j.grad.cs, j.grad.cs);
    if (le && !l_c) scatter(lb, n, j.loss.p + cur.off[3] + b * j.loss.cs, j.loss.cs);
    if (j.loss.p && !j.loss_elementwise) j.loss.p[cur.off[3]] = static_cast<T>(r);
    total += r;
    if (s == nseg - 1) cur.next();
  }
  return total;
}

template <class D>
void vexp(const typename D::T* x, typename D::T* y, int64_t n) {
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) D::store(y + i, exp_nonpos<D>(D::load(x + i)));
  if (i < n) D::store_tail(y + i, exp_nonpos<D>(D::load_tail(x + i, n - i, 0)), n - i);
}

template <class D>
void vlog1p(const typename D::T* x, typename D::T* y, int64_t n) {
  int64_t i = 0;
  for (; i + D::W <= n; i += D::W) D::store(y + i, log1p_unit<D>(D::load(x + i)));
  if (i < n) D::store_tail(y + i, log1p_unit<D>(D::load_tail(x + i, n - i, 0)), n - i);
}

template <class D>
const KernelTable<typename D::T>* make_table() {
  static const KernelTable<typename D::T> table = {&softmax_units<D>, &sigmoid_units<D>, &vexp<D>, &vlog1p<D>};
  return &table;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
