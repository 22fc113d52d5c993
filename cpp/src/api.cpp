#include "api.hpp"

#include <algorithm>
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
// that are contiguous in every operand and dropping dims of length 1.
template <int kOps>
void build_rows(int nd, const int64_t* shape, const ArrayRef* const (&ops)[kOps], int64_t* const (&dst)[kOps],
                RowSpace& rs) {
  rs.nd = 0;
  for (int d = 0; d < nd; ++d) {
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

int workers_for(int64_t n_tasks, int64_t n_elems, int n_threads) {
  if (n_elems < kParallelMin) return 1;
  const int64_t w = std::min<int64_t>(n_threads, n_tasks);
  return static_cast<int>(std::max<int64_t>(w, 1));
}

// Runs units [0, n_units) in tasks of `per_task` units; returns the ordered sum.
template <class T, class Fn>
double run_units(int64_t n_units, int64_t per_task, int64_t n_elems, int n_threads, int64_t scratch_len, Fn&& fn) {
  if (n_units <= 0) return 0.0;
  const int64_t n_tasks = (n_units + per_task - 1) / per_task;
  const int workers = workers_for(n_tasks, n_elems, n_threads);
  std::vector<std::vector<T>> scratch(workers, std::vector<T>(scratch_len));
  if (n_tasks == 1) return fn(0, n_units, scratch[0].data());
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
  const ArrayRef* const ops[6] = {&z, t, y, out, row_out, opt.sw};
  int64_t* const dst[6] = {j.z.st, j.t.st, j.y.st, j.out.st, j.row_out.st, j.sw.st};
  build_rows<6>(cd, z.shape, ops, dst, j.rows);
  const int64_t n_rows = j.rows.n_rows();
  const int64_t per_task = std::max<int64_t>(1, kTaskElems / std::max<int64_t>(j.len, 1));
  const KernelTable<T>* kt = nullptr;
  if constexpr (sizeof(T) == 4) kt = active_isa()->f32; else kt = active_isa()->f64;
  return run_units<T>(n_rows, per_task, n_rows * j.len, n_threads, softmax_scratch_size(j),
                      [&](int64_t u0, int64_t u1, T* s) { return kt->softmax_units(j, u0, u1, s); });
}

template <class T>
double run_sigmoid(const ArrayRef& z, const ArrayRef& t, const ArrayRef* grad, const ArrayRef* loss,
                   bool elementwise, double gscale, int n_threads) {
  SigmoidJob<T> j;
  j.loss_elementwise = elementwise;
  j.gscale = gscale;
  const ArrayRef* const ops[4] = {&z, &t, grad, loss};
  int64_t* const dst[4] = {j.z.st, j.t.st, j.grad.st, j.loss.st};
  if (z.ndim == 0) {
    j.len = 1;
  } else if (elementwise) {
    // coalesce every dim, then the last merged dim becomes the run along which we vectorise
    build_rows<4>(z.ndim, z.shape, ops, dst, j.rows);
    if (j.rows.nd == 0) {
      j.len = 1;
    } else {
      --j.rows.nd;
      j.len = j.rows.shape[j.rows.nd];
      j.z.cs = j.z.st[j.rows.nd];
      j.t.cs = j.t.st[j.rows.nd];
      j.grad.cs = j.grad.st[j.rows.nd];
      j.loss.cs = j.loss.st[j.rows.nd];
    }
    // zero-size arrays: a dim of length 0 survives build_rows (only 1s are dropped)
  } else {
    const int cd = z.ndim - 1;
    j.len = z.shape[cd];
    build_rows<4>(cd, z.shape, ops, dst, j.rows);
    j.z.cs = elem_stride(z, cd);
    j.t.cs = elem_stride(t, cd);
    if (grad) j.grad.cs = elem_stride(*grad, cd);
  }
  j.z.p = static_cast<const T*>(z.data);
  j.t.p = static_cast<const T*>(t.data);
  if (grad) j.grad.p = static_cast<T*>(grad->data);
  if (loss) j.loss.p = static_cast<T*>(loss->data);
  j.seg = elementwise ? std::min<int64_t>(std::max<int64_t>(j.len, 1), kSigmoidSeg) : std::max<int64_t>(j.len, 1);
  const int64_t n_rows = j.rows.n_rows();
  const int64_t n_units = j.len == 0 ? 0 : n_rows * j.n_seg();
  const int64_t per_task = std::max<int64_t>(1, kTaskElems / j.seg);
  const KernelTable<T>* kt = nullptr;
  if constexpr (sizeof(T) == 4) kt = active_isa()->f32; else kt = active_isa()->f64;
  return run_units<T>(n_units, per_task, n_rows * j.len, n_threads, sigmoid_scratch_size(j),
                      [&](int64_t u0, int64_t u1, T* s) { return kt->sigmoid_units(j, u0, u1, s); });
}

int64_t find_bad_label(const ArrayRef& y, int64_t n_classes, bool has_ignore, int64_t ignore, int64_t* value) {
  int64_t n = 1;
  for (int d = 0; d < y.ndim; ++d) n *= y.shape[d];
  std::vector<int64_t> idx(y.ndim, 0);
  const char* base = static_cast<const char*>(y.data);
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t off = 0;
    for (int d = 0; d < y.ndim; ++d) off += idx[d] * y.strides[d];
    const int64_t v = y.itemsize == 8 ? *reinterpret_cast<const int64_t*>(base + off)
                                      : static_cast<int64_t>(*reinterpret_cast<const int32_t*>(base + off));
    if ((v < 0 || v >= n_classes) && !(has_ignore && v == ignore)) {
      *value = v;
      return flat;
    }
    for (int d = y.ndim - 1; d >= 0; --d) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
  return -1;
}

template <class T>
void vector_math(bool log1p, const T* x, T* y, int64_t n) {
  const KernelTable<T>* kt = nullptr;
  if constexpr (sizeof(T) == 4) kt = active_isa()->f32; else kt = active_isa()->f64;
  (log1p ? kt->vlog1p : kt->vexp)(x, y, n);
}

template double run_softmax<float>(SoftmaxOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                   const ArrayRef*, double, int, const XentOptions&);
template double run_softmax<double>(SoftmaxOp, const ArrayRef&, const ArrayRef*, const ArrayRef*, const ArrayRef*,
                                    const ArrayRef*, double, int, const XentOptions&);
template double run_sigmoid<float>(const ArrayRef&, const ArrayRef&, const ArrayRef*, const ArrayRef*, bool, double,
                                   int);
template double run_sigmoid<double>(const ArrayRef&, const ArrayRef&, const ArrayRef*, const ArrayRef*, bool, double,
                                    int);
template void vector_math<float>(bool, const float*, float*, int64_t);
template void vector_math<double>(bool, const double*, double*, int64_t);

}  // namespace xent
