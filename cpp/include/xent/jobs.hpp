// Job descriptions passed from the drivers (api.cpp) to the per-ISA kernels.
// Plain data: pointers, sizes and element strides; no ownership, no allocation.
#pragma once
#include <cstdint>

namespace xent {

constexpr int kMaxDims = 32;

// A strided operand over the row dims (st) and, where it has one, the class axis (cs).
// Strides count elements, not bytes, and may be negative.
template <class T>
struct Operand {
  T* p = nullptr;
  int64_t cs = 1;
  int64_t st[kMaxDims] = {};
};

// Rows are the product of shape[0..nd); each has `len` elements along the class axis.
struct RowSpace {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t n_rows() const {
    int64_t r = 1;
    for (int d = 0; d < nd; ++d) r *= shape[d];
    return r;
  }
};

enum class SoftmaxOp { kLogsumexp, kSoftmax, kLogSoftmax, kXentLabel, kXentTarget };

template <class T>
struct SoftmaxJob {
  SoftmaxOp op = SoftmaxOp::kLogsumexp;
  RowSpace rows;
  int64_t len = 0;
  Operand<const T> z;
  Operand<const T> t;        // kXentTarget
  Operand<const void> y;     // kXentLabel: int32 or int64 labels (no class axis)
  int label_bytes = 8;
  Operand<T> out;            // softmax / log_softmax output, or the gradient (nullable)
  Operand<T> row_out;        // per-row result: logsumexp, or losses for reduction "none" (nullable)
  double gscale = 1.0;       // gradient scale: 1/(sum of row weights) for "mean", 1 otherwise
  // Cross-entropy options. A row's weight is class_w[y] (integer labels) times sw; rows with
  // the label ignore_index, or of weight 0, add exactly 0 to the loss and the gradient.
  const T* class_w = nullptr;  // per-class weights, contiguous, len of them (nullable)
  Operand<const T> sw;         // sample weights over the row dims (nullable)
  bool has_ignore = false;
  int64_t ignore_index = 0;
  double z_loss = 0.0;         // adds z_loss * lse^2 to each row's loss
  double smoothing = 0.0;      // label smoothing eps in [0, 1]
};

template <class T>
struct SigmoidJob {
  RowSpace rows;
  int64_t len = 0;           // row length along the last (or class) axis
  int64_t seg = 0;           // rows are cut into segments of this length (work units)
  Operand<const T> z, t;
  Operand<T> grad;           // nullable
  Operand<T> loss;           // nullable; elementwise if loss_elementwise, else one per row
  bool loss_elementwise = true;
  double gscale = 1.0;
  int64_t n_seg() const { return len == 0 ? 0 : (len + seg - 1) / seg; }
};

// Kernel table of one ISA for one dtype. Each entry processes work units [u0, u1) and
// returns the sum of their losses, in unit order, in double. `scratch` holds at least
// scratch_size(len) elements.
template <class T>
struct KernelTable {
  double (*softmax_units)(const SoftmaxJob<T>&, int64_t u0, int64_t u1, T* scratch);
  double (*sigmoid_units)(const SigmoidJob<T>&, int64_t u0, int64_t u1, T* scratch);
  // Vector math exposed for the accuracy tests of its contract.
  void (*vexp)(const T* x, T* y, int64_t n);
  void (*vlog1p)(const T* x, T* y, int64_t n);
};

// Scratch of one worker (units-inl.hpp lays it out): the per-block references, then a row
// buffer for each operand whose class axis is strided (gathered z and t, the output before
// its scatter). Contiguous rows need none, so a single row of 2**31 logits needs no 3x copy.
template <class T>
inline int64_t softmax_scratch_size(const SoftmaxJob<T>& j) {
  const int64_t n_bufs = (j.z.cs != 1) + (j.t.p && j.t.cs != 1) + (j.out.p && j.out.cs != 1);
  return n_bufs * j.len + j.len / 64 + 64;
}
template <class T>
inline int64_t sigmoid_scratch_size(const SigmoidJob<T>& j) {
  const int64_t n_bufs = (j.z.cs != 1) + (j.t.cs != 1) + (j.grad.p && j.grad.cs != 1) +
                         (j.loss.p && j.loss_elementwise && j.loss.cs != 1);
  return n_bufs * j.seg + 8;
}

struct Isa {
  const char* name;
  const KernelTable<float>* f32;
  const KernelTable<double>* f64;
};

}  // namespace xent
