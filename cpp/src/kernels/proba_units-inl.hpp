// Work units of the from-probabilities kernels (proba-inl.hpp) and the vector log entry
// points of the kernel table. Needs units-inl.hpp (Cursor, gather, scatter) first.
#pragma once
#include <cstdint>

namespace xent {
namespace XENT_ISA_NS {

// Work units: rows (categorical) or row segments (log_logistic: u % n_seg of row u / n_seg). The
// binary loss runs on the sigmoid units instead (api.cpp, run_proba).
template <class D>
double proba_units(const ProbaJob<typename D::T>& j, int64_t u0, int64_t u1, typename D::T* scratch) {
  using T = typename D::T;
  const ClipLogs<D> cl(j.eps);
  const bool cat = j.op == ProbaOp::kCategoricalLabel || j.op == ProbaOp::kCategoricalTarget;
  const int64_t nseg = cat ? 1 : j.n_seg();
  if (nseg == 0) return 0.0;
  const int64_t seg = cat ? j.len : j.seg;
  T* pb = scratch;
  T* tb = pb + seg;
  T* gb = tb + seg;
  T* lb = gb + seg;
  const int64_t* strides[5] = {j.p.st, j.t.st, j.y.st, j.grad.st, j.loss.st};
  Cursor<5> cur(j.rows, strides, u0 / nseg);
  const bool p_c = j.p.cs == 1, t_c = !j.t.p || j.t.cs == 1, g_c = !j.grad.p || j.grad.cs == 1;
  const bool elem = j.loss.p && j.loss_elementwise;
  const bool l_c = !elem || j.loss.cs == 1;
  double total = 0.0;
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t s = u % nseg;
    const int64_t b = s * seg;
    const int64_t n = j.len - b < seg ? j.len - b : seg;
    const T* p = j.p.p + cur.off[0] + b * j.p.cs;
    const T* t = j.t.p ? j.t.p + cur.off[1] + b * j.t.cs : nullptr;
    if (!p_c) { gather(p, j.p.cs, n, pb); p = pb; }
    if (t && !t_c) { gather(t, j.t.cs, n, tb); t = tb; }
    T* g = j.grad.p ? (g_c ? j.grad.p + cur.off[3] + b : gb) : nullptr;
    T* le = elem ? (l_c ? j.loss.p + cur.off[4] + b : lb) : nullptr;
    double r;
    if (cat) {
      int64_t y = 0;
      if (j.op == ProbaOp::kCategoricalLabel) {
        const char* yp = static_cast<const char*>(j.y.p) + cur.off[2] * j.label_bytes;
        y = j.label_bytes == 8 ? *reinterpret_cast<const int64_t*>(yp)
                               : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(yp));
      }
      r = row_proba_categorical<D>(p, t, y, n, j.renorm, cl, j.smoothing, g, j.gscale);
    } else {
      r = run_proba_binary<D>(p, t, n, cl, j.smoothing, le, g, j.gscale);
    }
    if (g && !g_c) scatter(gb, n, j.grad.p + cur.off[3] + b * j.grad.cs, j.grad.cs);
    if (le && !l_c) scatter(lb, n, j.loss.p + cur.off[4] + b * j.loss.cs, j.loss.cs);
    if (j.loss.p && !j.loss_elementwise) j.loss.p[cur.off[4]] = static_cast<T>(r);
    total += r;
    if (s == nseg - 1) cur.next();
  }
  return total;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
