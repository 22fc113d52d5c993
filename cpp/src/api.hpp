// Drivers: turn array descriptions into jobs, split work units over threads, combine
// partial sums in a fixed order (so results do not depend on the thread count).
#pragma once
#include <cstdint>
#include <stdexcept>

#include "xent/jobs.hpp"

namespace xent {

// An N-d array as the bindings see it; strides in bytes.
struct ArrayRef {
  void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  const int64_t* strides = nullptr;
  int64_t itemsize = 0;
};

// Softmax family. z, t and out have the class axis last; y and row_out have z's shape
// without it. Returns the sum of the row results. Unused operands are null.
struct XentOptions {
  const ArrayRef* class_w = nullptr;  // contiguous, the logits' dtype, one per class
  const ArrayRef* sw = nullptr;       // the logits' dtype, shape of y / row_out
  bool has_ignore = false;
  int64_t ignore_index = 0;
  double z_loss = 0.0;
  double smoothing = 0.0;
  double softcap = 0.0;               // > 0: z -> softcap * tanh(z / softcap) first
  double param = 0.0;                 // poly-1 epsilon or focal gamma
  const ArrayRef* class_a = nullptr;  // like class_w: focal alpha, or poly-1 target weights
  // float32 calls only: z, t and out stored as float16 / bfloat16 (jobs.hpp); the other
  // operands (weights, row_out) are float32
  Storage storage = Storage::kNative;
  bool inner = false;  // the caller's class axis is not its array's last (SoftmaxJob::inner)
};

template <class T>
double run_softmax(SoftmaxOp op, const ArrayRef& z, const ArrayRef* t, const ArrayRef* y, const ArrayRef* out,
                   const ArrayRef* row_out, double gscale, int n_threads, const XentOptions& opt = {});

// Sigmoid options: per-class weights along z's last axis, an element weight of z's shape
// (any strides, 0 along broadcast axes), label smoothing, or the focal loss instead.
struct SigmoidOptions {
  const ArrayRef* class_w = nullptr;  // contiguous, the logits' dtype, one per element of z's last axis
  const ArrayRef* pos_w = nullptr;    // same layout as class_w
  const ArrayRef* elem_w = nullptr;   // the logits' dtype, z's shape
  double smoothing = 0.0;
  bool focal = false;
  double gamma = 0.0;
  double alpha = -1.0;  // focal balancing; < 0: none
  double softcap = 0.0;  // > 0: z -> softcap * tanh(z / softcap) first (not with focal)
  Storage storage = Storage::kNative;  // float32 calls only: z, t and grad stored as half
  // tests: the options loop that reads every option at run time, instead of the one compiled
  // for this option set (kernels/sigmoid_opt-inl.hpp); the results are the same bits
  bool general_loop = false;
};

// Sigmoid cross-entropy. elementwise: z, t, grad and loss share one shape (loss per
// element). Otherwise the summed axis is last in z, t, grad and absent from loss.
template <class T>
double run_sigmoid(const ArrayRef& z, const ArrayRef& t, const ArrayRef* grad, const ArrayRef* loss,
                   bool elementwise, double gscale, int n_threads, const SigmoidOptions& opt = {});

// Hessians (kernels/hessian-inl.hpp). kSigmoid: z, t, sw, hess and grad share one shape,
// elementwise. Softmax ops: z, v, hess and grad have the class axis last; y and sw have z's
// shape without it. Unused operands are null.
template <class T>
void run_hessian(HessianOp op, const ArrayRef& z, const ArrayRef* t, const ArrayRef* v, const ArrayRef* y,
                 const ArrayRef* sw, const ArrayRef* hess, const ArrayRef* grad, int n_threads);

// Cross-entropy from probabilities, and log_logistic (kernels/proba-inl.hpp). Categorical:
// the class axis is last in p, t, grad; y and loss have p's shape without it. Binary and
// log_logistic: elementwise (p, t, grad, loss share one shape), or summed over the last axis
// (loss without it). Returns the sum of the losses (NaN if a probability is outside [0, 1]).
struct ProbaArgs {
  ProbaOp op = ProbaOp::kBinary;
  const ArrayRef* t = nullptr;
  const ArrayRef* y = nullptr;
  const ArrayRef* grad = nullptr;
  const ArrayRef* loss = nullptr;
  bool elementwise = true;
  bool renorm = true;
  double eps = 1e-7;
  double smoothing = 0.0;
  double gscale = 1.0;
};
template <class T>
double run_proba(const ArrayRef& p, const ProbaArgs& a, int n_threads);

// First flat position (C order over y's shape) of a label outside [0, n_classes) that is
// not the ignored label (when has_ignore), or -1.
int64_t find_bad_label(const ArrayRef& y, int64_t n_classes, bool has_ignore, int64_t ignore, int64_t* value);

// The denominator of a weighted mean with integer labels (PyTorch's, scikit-learn's): the
// sum over rows of class_w[y] * sw (each term in double; a factor absent is 1), the rows
// labelled ignore left out (when has_ignore). sw has y's shape (any strides); labels must
// be valid (find_bad_label; n_classes: class_w's length). The terms are >= 0, summed with
// Neumaier's compensation in C order; +inf when a term or the sum overflows. Class weights
// without sample weights over C-contiguous labels (no more classes than labels) are summed
// by class instead: sum_c class_w[c] * count_c, each class's labels counted exactly.
template <class T>
double label_weight_sum(const ArrayRef& y, const T* class_w, int64_t n_classes, const ArrayRef* sw, bool has_ignore,
                        int64_t ignore);

// The sum of n weights w[0..n) (>= 0) in double: the denominator of the other weighted
// means (sample weights of the sigmoid losses, say). Blocks summed in 16 lanes, the blocks
// with Neumaier's compensation, the same bits on every ISA (kernels/weights-inl.hpp); +inf
// when the sum overflows.
template <class T>
double weight_sum(const T* w, int64_t n);
// The same sum, and in *top the largest weight, or +inf if any is NaN, negative or infinite:
// the check and the denominator in one pass (the bindings' fast path).
template <class T>
double weight_stats(const T* w, int64_t n, T* top);
// dst[0..n) = src rounded to T (float32: as NumPy's astype, +-inf beyond its range).
template <class T>
void weights_from_f64(const double* src, T* dst, int64_t n);

// Vector math of the active ISA (for the accuracy tests of its contract).
template <class T>
void vector_math(bool log1p, const T* x, T* y, int64_t n);
template <class T>
void vector_tanh(const T* x, T* y, int64_t n);
// log(x) for x in (0, 1], or log(1 - x) for x in [0, 1) (one_minus).
template <class T>
void vector_log(bool one_minus, const T* x, T* y, int64_t n);

}  // namespace xent
