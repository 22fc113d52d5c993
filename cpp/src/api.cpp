#include "api.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "dispatch.hpp"
#include "threadpool.hpp"

namespace xent {
namespace {

// Work is cut into tasks of about this many elements: a fixed function of the shape only.
constexpr int64_t kTaskElems = 1 << 15;
// Below this many elements a call stays on the calling thread.
constexpr int64_t kParallelMin = 1 << 16;
// Sigmoid rows longer than this are cut into independent segments.
constexpr int64_t kSigmoidSeg = 1 << 13;

int64_t elem_stride(const ArrayRef& a, int d) {
  if (a.strides[d] % a.itemsize != 0) throw std::invalid_argument("array strides must be multiples of the item size");
  return a.strides[d] / a.itemsize;
}

// Fills the row space from `shape[0..nd)` and each operand's strides, merging adjacent dims
// that are contiguous in every operand and dropping dims of length 1. The dims are taken in
// the order `perm` (memory_order) when given, else in their logical order.
template <int kOps>
void build_rows(int nd, const int64_t* shape, const ArrayRef* const (&ops)[kOps], int64_t* const (&dst)[kOps],
                RowSpace& rs, const int* perm = nullptr) {
  rs.nd = 0;
  for (int i = 0; i < nd; ++i) {
    const int d = perm ? perm[i] : i;
    if (shape[d] == 1) continue;
    int64_t st[kOps];
    for (int k = 0; k < kOps; ++k) st[k] = ops[k] ? elem_stride(*ops[k], d) : 0;
    bool merge = rs.nd > 0;
    for (int k = 0; k < kOps && merge; ++k) merge = dst[k][rs.nd - 1] == st[k] * shape[d];
    if (merge) {
      rs.shape[rs.nd - 1] *= shape[d];
      for (int k = 0; k < kOps; ++k) dst[k][rs.nd - 1] = st[k];
    } else {
      if (rs.nd == kMaxDims) throw std::invalid_argument("too many dimensions");
      rs.shape[rs.nd] = shape[d];
      for (int k = 0; k < kOps; ++k) dst[k][rs.nd] = st[k];
      ++rs.nd;
    }
  }
}

// For operations that are elementwise in every operand (no sums, nothing per class): an order
// of the dims that walks memory outwards-in, for build_rows. Dim b goes outside dim a when
// every operand that steps along both steps further along b, and at least one does (NumPy's
// rule for ufuncs; where the operands disagree the logical order stays): a Fortran-order
// array, or a transposed view, is then one contiguous run (the sigmoid Hessian of a
// Fortran-order 8192 x 32 float32 array took 19x the C-order time, a kernel call per row).
template <int kOps>
void memory_order(int nd, const int64_t* shape, const ArrayRef* const (&ops)[kOps], int* perm) {
  auto outside = [&](int b, int a) {  // whether dim b belongs outside dim a
    bool some = false;
    for (int k = 0; k < kOps; ++k) {
      if (!ops[k]) continue;
      const int64_t sa = std::abs(ops[k]->strides[a]), sb = std::abs(ops[k]->strides[b]);
      if (sa == 0 || sb == 0) continue;
      if (sb < sa) return false;
      some = some || sb > sa;
    }
    return some;
  };
  int n = 0;
  for (int d = 0; d < nd; ++d) {  // insertion sort (stable), dims of length 1 left out
    if (shape[d] == 1) continue;
    int i = n++;
    for (; i > 0 && outside(d, perm[i - 1]); --i) perm[i] = perm[i - 1];
    perm[i] = d;
  }
  for (int d = 0; d < nd; ++d) {  // (build_rows skips them)
    if (shape[d] == 1) perm[n++] = d;
  }
}

int workers_for(int64_t n_tasks, int64_t n_elems, int n_threads) {
  if (n_elems < kParallelMin) return 1;
  const int64_t w = std::min<int64_t>(n_threads, n_tasks);
  return static_cast<int>(std::max<int64_t>(w, 1));
}

// The kernel table of the active ISA for T.
template <class T>
const KernelTable<T>* active_table() {
  if constexpr (sizeof(T) == 4) return active_isa()->f32; else return active_isa()->f64;
}

// Runs units [0, n_units) in tasks of `per_task` units; returns the ordered sum.
template <class T, class Fn>
double run_units(int64_t n_units, int64_t per_task, int64_t n_elems, int n_threads, int64_t scratch_len, Fn&& fn) {
  if (n_units <= 0) return 0.0;
  const int64_t n_tasks = (n_units + per_task - 1) / per_task;
  if (n_tasks == 1) {  // on this thread; no allocation for a job that takes no scratch
    std::vector<T> scratch(static_cast<size_t>(scratch_len));
    return fn(0, n_units, scratch.data());
  }
  const int workers = workers_for(n_tasks, n_elems, n_threads);
  std::vector<std::vector<T>> scratch(workers, std::vector<T>(scratch_len));
  std::vector<double> partial(n_tasks);
  parallel_for(n_tasks, workers, [&](int64_t task, int worker) {
    const int64_t u0 = task * per_task;
    partial[task] = fn(u0, std::min(n_units, u0 + per_task), scratch[worker].data());
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

template <class P>
void set_operand(const ArrayRef* a, P& op, int class_dim) {
  if (!a) return;
  op.p = static_cast<decltype(op.p)>(a->data);
  op.cs = class_dim >= 0 ? elem_stride(*a, class_dim) : 0;
}

}  // namespace

template <class T>
double run_softmax(SoftmaxOp op, const ArrayRef& z, const ArrayRef* t, const ArrayRef* y, const ArrayRef* out,
                   const ArrayRef* row_out, double gscale, int n_threads, const XentOptions& opt) {
  SoftmaxJob<T> j;
  j.op = op;
  const int cd = z.ndim - 1;
  j.len = z.shape[cd];
  set_operand(&z, j.z, cd);
  set_operand(t, j.t, cd);
  set_operand(y, j.y, -1);
  set_operand(out, j.out, cd);
  set_operand(row_out, j.row_out, -1);
  if (y) j.label_bytes = static_cast<int>(y->itemsize);
  j.gscale = gscale;
  if (opt.class_w) j.class_w = static_cast<const T*>(opt.class_w->data);
  set_operand(opt.sw, j.sw, -1);
  j.has_ignore = opt.has_ignore;
  j.ignore_index = opt.ignore_index;
  j.z_loss = opt.z_loss;
  j.smoothing = opt.smoothing;
  j.softcap = opt.softcap;
  j.param = opt.param;
  if (opt.class_a) j.class_a = static_cast<const T*>(opt.class_a->data);
  if constexpr (sizeof(T) == 4) j.storage = opt.storage;
  j.inner = opt.inner;
  if (const T* w = inrow_weights(j))
    for (int64_t c = 0; c < j.len; ++c) j.inrow_sum += static_cast<double>(w[c]);
  const ArrayRef* const ops[6] = {&z, t, y, out, row_out, opt.sw};
  int64_t* const dst[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  build_rows<6>(cd, z.shape, ops, dst, j.rows);
  const int64_t n_rows = j.rows.n_rows();
  const int64_t per_task = std::max<int64_t>(1, kTaskElems / std::max<int64_t>(j.len, 1));
  const KernelTable<T>* kt = active_table<T>();
  return run_units<T>(n_rows, per_task, n_rows * j.len, n_threads, softmax_scratch_size(j),
                      [&](int64_t u0, int64_t u1, T* s) { return kt->softmax_units(j, u0, u1, s); });
}

namespace {
// Whether an operand over rows x len (row strides st, run stride cs, in elements) holds
// element f of their flat (logical C) order at offset f.
bool flat_dense(const RowSpace& rows, int64_t len, const int64_t* st, int64_t cs) {
  bool dense = cs == 1 || len == 1;
  for (int64_t d = rows.nd - 1, want = len; d >= 0 && dense; want *= rows.shape[d], --d) dense = st[d] == want;
  return dense;
}

// The layout of a sigmoid job (run_sigmoid, and run_proba's binary loss): its rows, run and
// strides, flat or not, its units' length, its dense operands. Returns the element count.
template <class T>
int64_t sigmoid_layout(SigmoidJob<T>& j, const ArrayRef& z, const ArrayRef& t, const ArrayRef* grad,
                       const ArrayRef* loss, const ArrayRef* ew, bool elementwise) {
  j.loss_elementwise = elementwise;
  // Units are cut from the rows laid end to end (jobs.hpp): short rows share a kernel call,
  // and the sums are the same bits for every layout. With a loss per row, only for rows
  // shorter than a unit (whole rows per unit, each row's loss summed from its elements);
  // longer rows are cut into segments, a kernel call each.
  const int64_t C = z.ndim == 0 ? 1 : z.shape[z.ndim - 1];
  j.flat = elementwise || loss == nullptr || C < kSigmoidSeg;
  const ArrayRef* const ops[5] = {&z, &t, grad, loss, ew};
  int64_t* const dst[5] = {j.z.st, j.t.st, j.grad.st, j.loss.st, j.ew.st};
  if (z.ndim == 0) {
    j.len = 1;
  } else if (elementwise || loss == nullptr) {
    // coalesce every dim, then the last merged dim becomes the run along which we vectorise
    build_rows<5>(z.ndim, z.shape, ops, dst, j.rows);
    if (j.rows.nd == 0) {
      j.len = 1;
    } else {
      --j.rows.nd;
      j.len = j.rows.shape[j.rows.nd];
      j.z.cs = j.z.st[j.rows.nd];
      j.t.cs = j.t.st[j.rows.nd];
      j.grad.cs = j.grad.st[j.rows.nd];
      j.loss.cs = j.loss.st[j.rows.nd];
      j.ew.cs = j.ew.st[j.rows.nd];
    }
    // zero-size arrays: a dim of length 0 survives build_rows (only 1s are dropped)
  } else {
    const int cd = z.ndim - 1;
    j.len = z.shape[cd];
    build_rows<5>(cd, z.shape, ops, dst, j.rows);
    j.z.cs = elem_stride(z, cd);
    j.t.cs = elem_stride(t, cd);
    if (grad) j.grad.cs = elem_stride(*grad, cd);
    if (ew) j.ew.cs = elem_stride(*ew, cd);
  }
  j.z.p = static_cast<const T*>(z.data);
  j.t.p = static_cast<const T*>(t.data);
  if (grad) j.grad.p = static_cast<T*>(grad->data);
  if (loss) j.loss.p = static_cast<T*>(loss->data);
  if (ew) j.ew.p = static_cast<const T*>(ew->data);
  if (z.ndim == 0) j.ew.cs = 0;
  const int64_t n_elems = j.rows.n_rows() * j.len;
  if (j.flat) {
    j.seg = std::min<int64_t>(std::max<int64_t>(n_elems, 1), kSigmoidSeg);
    if (loss && !elementwise && j.len > 0) j.seg = j.len * std::max<int64_t>(1, j.seg / j.len);  // whole rows
    const int64_t css[5] = {j.z.cs, j.t.cs, j.grad.cs, j.loss.cs, j.ew.cs};
    for (int k = 0; k < 5; ++k) j.dense[k] = flat_dense(j.rows, j.len, dst[k], css[k]);
  } else {
    j.seg = std::max<int64_t>(j.len, 1);
  }
  return n_elems;
}

template <class T>
double run_sigmoid_job(const SigmoidJob<T>& j, int64_t n_elems, int n_threads) {
  const int64_t per_task = std::max<int64_t>(1, kTaskElems / j.seg);
  const KernelTable<T>* kt = active_table<T>();
  return run_units<T>(j.n_units(), per_task, n_elems, n_threads, sigmoid_scratch_size(j),
                      [&](int64_t u0, int64_t u1, T* s) { return kt->sigmoid_units(j, u0, u1, s); });
}
}  // namespace

template <class T>
double run_sigmoid(const ArrayRef& z, const ArrayRef& t, const ArrayRef* grad, const ArrayRef* loss,
                   bool elementwise, double gscale, int n_threads, const SigmoidOptions& opt) {
  SigmoidJob<T> j;
  j.gscale = gscale;
  const int64_t n_elems = sigmoid_layout(j, z, t, grad, loss, opt.elem_w, elementwise);
  const int64_t C = z.ndim == 0 ? 1 : z.shape[z.ndim - 1];
  // Per-class vectors: along a run that merged several rows, element i has class i mod C;
  // repeat the vector so that a segment starting at class c0 reads it contiguously.
  std::vector<T> cw_tile, pw_tile;
  auto per_class = [&](const ArrayRef* a, std::vector<T>& tile) -> const T* {
    if (!a) return nullptr;
    const T* p = static_cast<const T*>(a->data);
    if ((j.flat ? n_elems : j.len) <= C) return p;
    tile.resize(static_cast<size_t>(C + j.seg));
    for (int64_t i = 0; i < C + j.seg; i += C) std::copy(p, p + std::min(C, C + j.seg - i), tile.begin() + i);
    return tile.data();
  };
  if (C > 0) {
    j.period = C;
    if (opt.class_w) {
      const T* w = static_cast<const T*>(opt.class_w->data);
      j.cw_min = *std::min_element(w, w + C);
    }
    j.cw = per_class(opt.class_w, cw_tile);
    j.pw = per_class(opt.pos_w, pw_tile);
  }
  j.smoothing = opt.smoothing;
  j.focal = opt.focal;
  j.gamma = opt.gamma;
  j.alpha = opt.alpha;
  j.softcap = opt.softcap;
  j.general_loop = opt.general_loop;
  if constexpr (sizeof(T) == 4) j.storage = opt.storage;
  return run_sigmoid_job(j, n_elems, n_threads);
}

template <class T>
void run_hessian(HessianOp op, const ArrayRef& z, const ArrayRef* t, const ArrayRef* v, const ArrayRef* y,
                 const ArrayRef* sw, const ArrayRef* hess, const ArrayRef* grad, int n_threads) {
  HessianJob<T> j;
  j.op = op;
  const ArrayRef* const ops[7] = {&z, t, v, y, sw, hess, grad};
  int64_t* const dst[7] = {j.z.st, j.t.st, j.v.st, j.y.st, j.sw.st, j.hess.st, j.grad.st};
  if (op == HessianOp::kSigmoid) {
    // as run_sigmoid's elementwise case: coalesce every dim, vectorise along the last one
    j.len = 1;
    if (z.ndim > 0) {
      std::vector<int> perm(static_cast<size_t>(z.ndim));
      memory_order<7>(z.ndim, z.shape, ops, perm.data());
      build_rows<7>(z.ndim, z.shape, ops, dst, j.rows, perm.data());
    }
    if (j.rows.nd > 0) {
      --j.rows.nd;
      j.len = j.rows.shape[j.rows.nd];
      j.z.cs = j.z.st[j.rows.nd];
      j.t.cs = j.t.st[j.rows.nd];
      j.sw.cs = j.sw.st[j.rows.nd];
      j.hess.cs = j.hess.st[j.rows.nd];
      j.grad.cs = j.grad.st[j.rows.nd];
    }
    j.seg = std::min<int64_t>(std::max<int64_t>(j.len, 1), kSigmoidSeg);
  } else {
    const int cd = z.ndim - 1;
    j.len = z.shape[cd];
    build_rows<7>(cd, z.shape, ops, dst, j.rows);
    set_operand(&z, j.z, cd);
    set_operand(v, j.v, cd);
    set_operand(hess, j.hess, cd);
    set_operand(grad, j.grad, cd);
    j.seg = std::max<int64_t>(j.len, 1);
  }
  j.z.p = static_cast<const T*>(z.data);
  if (t) j.t.p = static_cast<const T*>(t->data);
  if (v) j.v.p = static_cast<const T*>(v->data);
  if (y) {
    j.y.p = y->data;
    j.label_bytes = static_cast<int>(y->itemsize);
  }
  if (sw) j.sw.p = static_cast<const T*>(sw->data);
  if (hess) j.hess.p = static_cast<T*>(hess->data);
  if (grad) j.grad.p = static_cast<T*>(grad->data);
  const int64_t n_rows = j.rows.n_rows();
  int64_t n_units = j.len == 0 ? 0 : n_rows * (op == HessianOp::kSigmoid ? j.n_seg() : 1);
  if (op == HessianOp::kSigmoid && sw && j.sw.cs == 0 && j.rows.nd > 0 && j.len > 0 && j.len < kSigmoidSeg) {
    // one weight per row of short rows (an (n, 1) weight): a kernel call per row cost 2x the
    // unweighted Hessian at 8192 x 32; whole rows per unit where the rest is dense (element f
    // of the flat order at offset f), each row's weight spread over its elements. Units of
    // about 2048 elements keep the spread weights in L1 (units of 8192 measured 5-10% slower).
    auto dense = [&](const ArrayRef* a, const int64_t* st, int64_t cs) {
      return !a || flat_dense(j.rows, j.len, st, cs);
    };
    if (dense(&z, j.z.st, j.z.cs) && dense(t, j.t.st, j.t.cs) && dense(hess, j.hess.st, j.hess.cs) &&
        dense(grad, j.grad.st, j.grad.cs)) {
      j.rows_per_unit = std::max<int64_t>(1, 2048 / j.len);
      j.seg = j.rows_per_unit * j.len;
      n_units = (n_rows + j.rows_per_unit - 1) / j.rows_per_unit;
    }
  }
  const int64_t per_task = std::max<int64_t>(1, kTaskElems / j.seg);
  const KernelTable<T>* kt = active_table<T>();
  run_units<T>(n_units, per_task, n_rows * j.len, n_threads, hessian_scratch_size(j.seg),
               [&](int64_t u0, int64_t u1, T* s) { return kt->hessian_units(j, u0, u1, s); });
}

namespace {
// Whether a's elements lie in one C-order run; *n (if given): their count.
bool one_run(const ArrayRef& a, int64_t* n) {
  int64_t k = 1;
  bool run = true;
  for (int d = a.ndim - 1; d >= 0; --d) {
    run = run && (a.shape[d] == 1 || a.strides[d] == k * a.itemsize);
    k *= a.shape[d];
  }
  if (n) *n = k;
  return run;
}

// find_bad_label over contiguous labels: one flat loop (no index bookkeeping), whose test the
// compiler can vectorise; the first bad position is found again only when there is one.
template <class L>
int64_t first_bad_flat(const L* v, int64_t n, int64_t n_classes, bool has_ignore, int64_t ignore, int64_t* value) {
  auto bad = [&](int64_t x) { return (x < 0 || x >= n_classes) && !(has_ignore && x == ignore); };
  bool any = false;
  for (int64_t i = 0; i < n; ++i) any |= bad(static_cast<int64_t>(v[i]));
  if (!any) return -1;
  for (int64_t i = 0;; ++i)
    if (bad(static_cast<int64_t>(v[i]))) return *value = static_cast<int64_t>(v[i]), i;
}

// Visits the elements of an index space of `ndim` dims in C order: f(flat, off) with off[k]
// the byte offset of the element in array k (strides[k], nullptr for an absent array: its
// offset stays 0). Returns the first flat index for which f returns true, or -1.
template <int K, class F>
int64_t walk_c_order(int ndim, const int64_t* shape, const int64_t* const (&strides)[K], F&& f) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  std::vector<int64_t> idx(static_cast<size_t>(ndim), 0);
  int64_t off[K] = {};
  for (int64_t flat = 0; flat < n; ++flat) {
    if (f(flat, static_cast<const int64_t*>(off))) return flat;
    for (int d = ndim - 1; d >= 0; --d) {  // the next element
      for (int k = 0; k < K; ++k)
        if (strides[k]) off[k] += strides[k][d];
      if (++idx[static_cast<size_t>(d)] < shape[d]) break;
      for (int k = 0; k < K; ++k)
        if (strides[k]) off[k] -= shape[d] * strides[k][d];
      idx[static_cast<size_t>(d)] = 0;
    }
  }
  return -1;
}

// Label at byte offset `off` of y's data.
inline int64_t label_at(const ArrayRef& y, int64_t off) {
  const char* p = static_cast<const char*>(y.data) + off;
  return y.itemsize == 8 ? *reinterpret_cast<const int64_t*>(p)
                         : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(p));
}
}  // namespace

int64_t find_bad_label(const ArrayRef& y, int64_t n_classes, bool has_ignore, int64_t ignore, int64_t* value) {
  int64_t n = 0;
  const bool contiguous = one_run(y, &n);
  if (contiguous && y.itemsize == 8)
    return first_bad_flat(static_cast<const int64_t*>(y.data), n, n_classes, has_ignore, ignore, value);
  if (contiguous) return first_bad_flat(static_cast<const int32_t*>(y.data), n, n_classes, has_ignore, ignore, value);
  const int64_t* const strides[1] = {y.strides};
  return walk_c_order(y.ndim, y.shape, strides, [&](int64_t, const int64_t* off) {
    const int64_t v = label_at(y, off[0]);
    if ((v >= 0 && v < n_classes) || (has_ignore && v == ignore)) return false;
    *value = v;
    return true;
  });
}

namespace {

// Neumaier's compensated sum of doubles; +inf once a term or the sum overflows.
struct CompensatedSum {
  double s = 0.0, c = 0.0;
  void add(double t) {
    const double u = s + t;
    c += std::fabs(s) >= std::fabs(t) ? (s - u) + t : (t - u) + s;
    s = u;
  }
  double value() const { return std::isfinite(s) ? s + c : s; }  // (c is NaN once s overflowed)
};

}  // namespace

template <class T>
double weight_stats(const T* w, int64_t n, T* top) {
  return active_table<T>()->weight_stats(w, n, top);
}

template <class T>
double weight_sum(const T* w, int64_t n) {
  T top;
  return weight_stats<T>(w, n, &top);
}

template <class T>
void weights_from_f64(const double* src, T* dst, int64_t n) {
  active_table<T>()->weights_from_f64(src, dst, n);
}

namespace {

// label_weight_sum by class: each valid label counted in exact integers, in four tables
// taken in turn (a run of one label then waits on no increment of the same counter), the
// labels out of [0, C) (ignore_index) in a last counter; then sum_c w_c * count_c, the
// ignored class left out.
template <class T, class L>
double label_weight_sum_by_class(const L* y, int64_t n, const T* w, int64_t C, bool has_ignore, int64_t ignore) {
  std::vector<int64_t> counts(4 * static_cast<size_t>(C + 1), 0);
  int64_t* const h = counts.data();
  const uint64_t uc = static_cast<uint64_t>(C);
  auto bin = [&](L v) {
    const uint64_t u = static_cast<uint64_t>(static_cast<int64_t>(v));
    return static_cast<int64_t>(u < uc ? u : uc);
  };
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) ++h[k * (C + 1) + bin(y[i + k])];
  for (; i < n; ++i) ++h[bin(y[i])];
  CompensatedSum sum;
  for (int64_t c = 0; c < C; ++c) {
    if (has_ignore && c == ignore) continue;
    const int64_t k = h[c] + h[(C + 1) + c] + h[2 * (C + 1) + c] + h[3 * (C + 1) + c];
    if (k) sum.add(static_cast<double>(w[c]) * static_cast<double>(k));
  }
  return sum.value();
}

// label_weight_sum over labels (and sample weights) in one run each: no index walk, and
// but for class and sample weights together no compensated addition per row (a chain of
// dependent additions). _core.label_weight_sum on 26214 labels of 10 classes, 1 thread,
// row by row through the walk -> here: ignore_index alone 0.063 -> 0.009 ms, sample weights
// 0.047 -> 0.002, class weights 0.057 -> 0.014 (with the binding's label check), both
// 0.056 -> 0.037; 87381 labels of 3 classes, class weights 0.19 -> 0.05. Before, the
// weighted mean cost 1.11-1.19x the plain loss there (float32, bench/softmax_options.py
// --classes 10 --rows 26214), now 1.03-1.07x.
template <class T, class L>
double label_weight_sum_run(const L* y, int64_t n, const T* class_w, int64_t n_classes, const T* sw, bool has_ignore,
                            int64_t ignore) {
  if (!class_w && !sw) {  // a count
    int64_t k = 0;
    if (has_ignore)
      for (int64_t i = 0; i < n; ++i) k += static_cast<int64_t>(y[i]) == ignore;
    return static_cast<double>(n - k);
  }
  if (!class_w && !has_ignore) return weight_sum<T>(sw, n);
  if (!sw && n_classes <= n) return label_weight_sum_by_class(y, n, class_w, n_classes, has_ignore, ignore);
  CompensatedSum sum;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = static_cast<int64_t>(y[i]);
    if (!(has_ignore && v == ignore))
      sum.add((class_w ? static_cast<double>(class_w[v]) : 1.0) * (sw ? static_cast<double>(sw[i]) : 1.0));
  }
  return sum.value();
}

}  // namespace

template <class T>
double label_weight_sum(const ArrayRef& y, const T* class_w, int64_t n_classes, const ArrayRef* sw, bool has_ignore,
                        int64_t ignore) {
  int64_t n = 0;
  if (one_run(y, &n) && (!sw || one_run(*sw, nullptr))) {
    const T* s = sw ? static_cast<const T*>(sw->data) : nullptr;
    if (y.itemsize == 8)
      return label_weight_sum_run(static_cast<const int64_t*>(y.data), n, class_w, n_classes, s, has_ignore, ignore);
    return label_weight_sum_run(static_cast<const int32_t*>(y.data), n, class_w, n_classes, s, has_ignore, ignore);
  }
  const char* wb = sw ? static_cast<const char*>(sw->data) : nullptr;
  const int64_t* const strides[2] = {y.strides, sw ? sw->strides : nullptr};
  CompensatedSum sum;
  walk_c_order(y.ndim, y.shape, strides, [&](int64_t, const int64_t* off) {  // off: the row's bytes in y, sw
    const int64_t v = label_at(y, off[0]);
    if (!(has_ignore && v == ignore))
      sum.add((class_w ? static_cast<double>(class_w[v]) : 1.0) *
              (wb ? static_cast<double>(*reinterpret_cast<const T*>(wb + off[1])) : 1.0));
    return false;
  });
  return sum.value();
}

template <class T>
void vector_math(bool log1p, const T* x, T* y, int64_t n) {
  const KernelTable<T>* kt = active_table<T>();
  (log1p ? kt->vlog1p : kt->vexp)(x, y, n);
}

template <class T>
void vector_tanh(const T* x, T* y, int64_t n) {
  const KernelTable<T>* kt = active_table<T>();
  kt->vtanh(x, y, n);
}

template <class T>
double run_proba(const ArrayRef& p, const ProbaArgs& a, int n_threads) {
  if (a.op == ProbaOp::kBinary) {  // the sigmoid's units (their sums' order for every layout)
    SigmoidJob<T> sj;
    sj.gscale = a.gscale;
    sj.proba = true;
    sj.eps = a.eps;
    sj.smoothing = a.smoothing;
    return run_sigmoid_job(sj, sigmoid_layout(sj, p, *a.t, a.grad, a.loss, nullptr, a.elementwise), n_threads);
  }
  ProbaJob<T> j;
  j.op = a.op;
  j.loss_elementwise = a.elementwise;
  j.renorm = a.renorm;
  j.eps = a.eps;
  j.smoothing = a.smoothing;
  j.gscale = a.gscale;
  const bool cat = a.op == ProbaOp::kCategoricalLabel || a.op == ProbaOp::kCategoricalTarget;
  const ArrayRef* const ops[5] = {&p, a.t, a.y, a.grad, a.loss};
  int64_t* const dst[5] = {j.p.st, j.t.st, j.y.st, j.grad.st, j.loss.st};
  if (p.ndim == 0) {
    j.len = 1;
  } else if (!cat && a.elementwise) {
    // as run_sigmoid: coalesce every dim; the last merged one is the vectorised run
    build_rows<5>(p.ndim, p.shape, ops, dst, j.rows);
    if (j.rows.nd == 0) {
      j.len = 1;
    } else {
      --j.rows.nd;
      j.len = j.rows.shape[j.rows.nd];
      j.p.cs = j.p.st[j.rows.nd];
      j.t.cs = j.t.st[j.rows.nd];
      j.grad.cs = j.grad.st[j.rows.nd];
      j.loss.cs = j.loss.st[j.rows.nd];
    }
  } else {
    const int cd = p.ndim - 1;
    j.len = p.shape[cd];
    build_rows<5>(cd, p.shape, ops, dst, j.rows);
    j.p.cs = elem_stride(p, cd);
    if (a.t) j.t.cs = elem_stride(*a.t, cd);
    if (a.grad) j.grad.cs = elem_stride(*a.grad, cd);
  }
  j.p.p = static_cast<const T*>(p.data);
  if (a.t) j.t.p = static_cast<const T*>(a.t->data);
  if (a.y) {
    j.y.p = a.y->data;
    j.label_bytes = static_cast<int>(a.y->itemsize);
  }
  if (a.grad) j.grad.p = static_cast<T*>(a.grad->data);
  if (a.loss) j.loss.p = static_cast<T*>(a.loss->data);
  const int64_t n_rows = j.rows.n_rows();
  int64_t n_units, per_task, scratch;
  if (cat) {
    j.seg = j.len;
    n_units = n_rows;
    per_task = std::max<int64_t>(1, kTaskElems / std::max<int64_t>(j.len, 1));
    scratch = 4 * j.len + 8;
  } else {
    j.seg = a.elementwise ? std::min<int64_t>(std::max<int64_t>(j.len, 1), kSigmoidSeg) : std::max<int64_t>(j.len, 1);
    n_units = j.len == 0 ? 0 : n_rows * j.n_seg();
    per_task = std::max<int64_t>(1, kTaskElems / j.seg);
    scratch = 4 * j.seg;
  }
  const KernelTable<T>* kt = active_table<T>();
  return run_units<T>(n_units, per_task, n_rows * j.len, n_threads, scratch,
                      [&](int64_t u0, int64_t u1, T* s) { return kt->proba_units(j, u0, u1, s); });
}

template <class T>
void vector_log(bool one_minus, const T* x, T* y, int64_t n) {
  const KernelTable<T>* kt = active_table<T>();
  (one_minus ? kt->vlog1m : kt->vlog)(x, y, n);
}

template double run_proba<float>(const ArrayRef&, const ProbaArgs&, int);
template double run_proba<double>(const ArrayRef&, const ProbaArgs&, int);
template void vector_log<float>(bool, const float*, float*, int64_t);
template void vector_log<double>(bool, const double*, double*, int64_t);
template double label_weight_sum<float>(const ArrayRef&, const float*, int64_t, const ArrayRef*, bool, int64_t);
template double label_weight_sum<double>(const ArrayRef&, const double*, int64_t, const ArrayRef*, bool, int64_t);
template double weight_sum<float>(const float*, int64_t);
template double weight_sum<double>(const double*, int64_t);
template double weight_stats<float>(const float*, int64_t, float*);
template double weight_stats<double>(const double*, int64_t, double*);
template void weights_from_f64<float>(const double*, float*, int64_t);
template void weights_from_f64<double>(const double*, double*, int64_t);
template double run_softmax<float>(SoftmaxOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                   const ArrayRef*, double, int, const XentOptions&);
template double run_softmax<double>(SoftmaxOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                    const ArrayRef*, double, int, const XentOptions&);
template double run_sigmoid<float>(const ArrayRef&, const ArrayRef&, const ArrayRef*, const ArrayRef*, bool, double,
                                   int, const SigmoidOptions&);
template double run_sigmoid<double>(const ArrayRef&, const ArrayRef&, const ArrayRef*, const ArrayRef*, bool, double,
                                    int, const SigmoidOptions&);
template void run_hessian<float>(HessianOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                 const ArrayRef*, const ArrayRef*, const ArrayRef*, int);
template void run_hessian<double>(HessianOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                  const ArrayRef*, const ArrayRef*, const ArrayRef*, int);
template void vector_math<float>(bool, const float*, float*, int64_t);
template void vector_math<double>(bool, const double*, double*, int64_t);
template void vector_tanh<float>(const float*, float*, int64_t);
template void vector_tanh<double>(const double*, double*, int64_t);

}  // namespace xent
