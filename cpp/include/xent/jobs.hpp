// Job descriptions passed from the drivers (api.cpp) to the per-ISA kernels.
// Plain data: pointers, sizes and element strides; no ownership, no allocation.
#pragma once
#include <cstdint>

namespace xent {

constexpr int kMaxDims = 32;

// Half-precision storage: the bits of one float16 or bfloat16 number. Kernels read and
// write them and compute in float32 (simd/half-inl.hpp).
struct f16_t {
  uint16_t bits;
};
struct bf16_t {
  uint16_t bits;
};

// How a float32 job's logits, targets and z-shaped output (gradient, softmax) are stored:
// as float32 (kNative), or as float16 / bfloat16, the Operand pointers then pointing at
// f16_t / bf16_t elements (strides count those). Weights and per-row results (losses,
// logsumexp) stay float32. Float64 jobs are always kNative.
enum class Storage { kNative, kF16, kBF16 };

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

// The losses (kXentLabel and after) write a gradient into `out`; *Label ops read `y`,
// the others (but the normalizers) read `t`. kNllLabel and kKlDiv* take log-probabilities.
enum class SoftmaxOp {
  kLogsumexp,
  kSoftmax,
  kLogSoftmax,
  kXentLabel,
  kXentTarget,
  kNllLabel,      // -lp[y]
  kKlDiv,         // sum t (log t - lp), t probabilities
  kKlDivLog,      // sum exp(t) (t - lp), t log-probabilities
  kPoly1Label,    // CE + param * (1 - p_y)
  kPoly1Target,   // CE + param * sum t (1 - p)
  kFocalLabel,    // -alpha_y (1 - p_y)^param log p_y
  kFocalTarget,   // -sum alpha t (1 - p)^param log p
};

inline bool is_label_op(SoftmaxOp op) {
  return op == SoftmaxOp::kXentLabel || op == SoftmaxOp::kNllLabel || op == SoftmaxOp::kPoly1Label ||
         op == SoftmaxOp::kFocalLabel;
}
inline bool is_loss_op(SoftmaxOp op) { return static_cast<int>(op) >= static_cast<int>(SoftmaxOp::kXentLabel); }

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
  double softcap = 0.0;        // > 0: logits z -> softcap * tanh(z / softcap) first
  double param = 0.0;          // poly-1 epsilon, or focal gamma
  // per-class multipliers (nullable, contiguous, len of them): focal alpha (times the class
  // weights for targets), or the class weights of poly-1 targets
  const T* class_a = nullptr;
  Storage storage = Storage::kNative;  // of z, t and out (float32 jobs only)
  // the caller's class axis is not its array's last: integer-label cross-entropy computes
  // rows in vector lanes (kernels/inner-inl.hpp), adjacent rows one load per class
  bool inner = false;
  // the sum of inrow_weights(*this) in double, in class order (0 without them): set once per
  // job by its builder (api.cpp), not by each unit (with rows of 50304 classes, one row a
  // unit, the units' own sums were 3.6x the time of the whole loss)
  double inrow_sum = 0.0;
};

// The per-class weights that act inside a row (soft targets, label smoothing: the class
// weights; the poly-1 and focal losses' class multipliers), or null: their sum bounds a row's
// gradient over its scale (kernels/units-inl.hpp).
template <class T>
const T* inrow_weights(const SoftmaxJob<T>& j) {
  if (j.op == SoftmaxOp::kXentTarget || (j.op == SoftmaxOp::kXentLabel && j.smoothing != 0.0)) return j.class_w;
  if (j.op == SoftmaxOp::kPoly1Target || j.op == SoftmaxOp::kFocalTarget || j.op == SoftmaxOp::kFocalLabel)
    return j.class_a;
  return nullptr;
}
// Rows of at most lanes_max_c<T>() classes take the rows-in-lanes kernels
// (kernels/smallc-inl.hpp) for cross-entropy with integer labels (label smoothing too) or
// target distributions, the poly-1 and focal losses, logsumexp, softmax and log_softmax,
// with or without a soft cap:
// below the measured crossovers with the row kernels (of the plain loss and normalizers)
// (1 thread, builds side by side, AVX2 / AVX-512: float32 at 100-128 classes 0.71-1.00x /
// 0.61-0.83x their time, at 160 0.95-1.09x / 0.85-1.01x, at 192-256 up to 1.19x / 1.15x
// slower; float64 at 80 0.92-1.02x / 0.80-0.94x, at 96-128 up to 1.14x slower on AVX2).
// The choice depends on the call (op, options, dtype, C), not on the layout or the ISA.
template <class T>
constexpr int64_t lanes_max_c() {
  return sizeof(T) == 4 ? 128 : 80;
}
constexpr int64_t kLanesMaxC = lanes_max_c<float>();  // the larger: the kernels' tile capacity
static_assert(lanes_max_c<double>() <= kLanesMaxC, "the tile holds every lanes row");
template <class T>
bool lanes_rows(const SoftmaxJob<T>& j) {
  const bool op = j.op == SoftmaxOp::kXentLabel || j.op == SoftmaxOp::kXentTarget || j.op == SoftmaxOp::kPoly1Label ||
                  j.op == SoftmaxOp::kFocalLabel || j.op == SoftmaxOp::kPoly1Target ||
                  j.op == SoftmaxOp::kFocalTarget || !is_loss_op(j.op);
  return op && j.len >= 1 && j.len <= lanes_max_c<T>();
}
// the row capacity of that kernel's tile (in softmax_scratch: len x this), 9 vectors of 8 floats
constexpr int64_t kInnerTileRows = 72;
// Whether a job takes that kernel (kernels/units-inl.hpp, softmax_units_inner): the caller's
// class axis is not its array's last, and the op is plain integer-label cross-entropy
// (class and sample weights, ignore_index and the z-loss allowed) on float rows. The choice
// depends on the call, not on the memory layout, so every layout of a call gives the same
// bits.
template <class T>
bool inner_rows(const SoftmaxJob<T>& j) {
  return j.inner && j.op == SoftmaxOp::kXentLabel && j.smoothing == 0.0 && j.softcap == 0.0 &&
         j.storage == Storage::kNative && j.len >= 2 && j.len < (int64_t{1} << 24);
}

template <class T>
struct SigmoidJob {
  RowSpace rows;
  int64_t len = 0;           // row length along the last (or class) axis
  int64_t seg = 0;           // rows are cut into segments of this length (work units)
  // flat: the rows are laid end to end in their logical (C) order and cut into units of seg
  // elements, whatever the memory layout (units-inl.hpp, sigmoid_units_flat); with a loss
  // per row, seg is a multiple of len (whole rows per unit). Otherwise (a loss per row, rows
  // of kSigmoidSeg elements or more) a unit is a row, and seg is len.
  bool flat = false;
  // flat jobs: whether each operand (z, t, grad, loss, ew) has its elements at consecutive
  // offsets in that order (units then read and write it in place)
  bool dense[5] = {false, false, false, false, false};
  Operand<const T> z, t;
  Operand<T> grad;           // nullable
  Operand<T> loss;           // nullable; elementwise if loss_elementwise, else one per row
  bool loss_elementwise = true;
  double gscale = 1.0;
  // Options (sigmoid_opt-inl.hpp). Element i of a row (element f of a flat job) has class
  // i mod period (f mod period); cw and pw hold one value per class, repeated so that
  // cw[c0 + i] is element i's for c0 < period and i < seg (nullable). ew: an element weight
  // over z's layout, cs 0 when one per row.
  const T* cw = nullptr;
  const T* pw = nullptr;
  T cw_min = T(0);           // no class weight is below it (0: unknown, the kernel tests for zeros)
  int64_t period = 1;
  Operand<const T> ew;
  double smoothing = 0.0;
  bool focal = false;
  double gamma = 0.0, alpha = -1.0;  // focal loss; alpha < 0: no balancing
  double softcap = 0.0;              // > 0: z -> softcap * tanh(z / softcap) first (not focal)
  Storage storage = Storage::kNative;  // of z, t and grad (float32 jobs only); loss stays T
  bool general_loop = false;           // tests (api.hpp's SigmoidOptions)
  // The binary cross-entropy from probabilities (proba-inl.hpp, run_proba_binary) in place of
  // the sigmoid loss, on the same units: z holds the probabilities, clipped to [eps, 1 - eps],
  // and smoothing smooths the targets; no other option.
  bool proba = false;
  double eps = 0.0;
  bool has_opts() const { return cw || pw || ew.p || smoothing != 0.0 || focal || softcap > 0.0; }
  int64_t n_units() const {
    const int64_t n = rows.n_rows() * len;
    return len == 0 ? 0 : flat ? (n + seg - 1) / seg : rows.n_rows();
  }
};

// Hessians for Newton-type solvers (kernels/hessian-inl.hpp). kSigmoid is elementwise over
// runs of `len` cut into segments of `seg`; the softmax ops have the class axis (cs) last.
enum class HessianOp { kSigmoid, kSoftmaxDiag, kSoftmaxHvp };

template <class T>
struct HessianJob {
  HessianOp op = HessianOp::kSigmoid;
  RowSpace rows;
  int64_t len = 0;
  int64_t seg = 0;           // kSigmoid work units; len for the softmax ops
  Operand<const T> z;
  Operand<const T> t;        // kSigmoid: targets of the gradient (nullable)
  Operand<const T> v;        // kSoftmaxHvp: the vector multiplied, z's shape
  Operand<const void> y;     // kSoftmaxDiag: integer labels of the gradient (nullable)
  int label_bytes = 8;
  Operand<const T> sw;       // sample weights: per element (kSigmoid) or per row (nullable)
  Operand<T> hess;           // diagonal, or H v (nullable for kSigmoid / kSoftmaxDiag)
  Operand<T> grad;           // gradient (nullable)
  // kSigmoid with one weight per row (sw.cs == 0), rows shorter than kSigmoidSeg and the other
  // operands dense: units of this many whole rows (seg elements), one kernel call each, the
  // row weights spread over the unit's buffer; 0 otherwise (units are row segments)
  int64_t rows_per_unit = 0;
  int64_t n_seg() const { return len == 0 ? 0 : (len + seg - 1) / seg; }
};

// Cross-entropy from probabilities (kernels/proba-inl.hpp), and log_logistic. kBinary jobs run
// as SigmoidJob (proba set) on the sigmoid units (api.cpp, run_proba); ProbaJob carries the rest.
enum class ProbaOp { kCategoricalLabel, kCategoricalTarget, kBinary, kLogLogistic };

template <class T>
struct ProbaJob {
  ProbaOp op = ProbaOp::kBinary;
  RowSpace rows;
  int64_t len = 0;           // class axis (categorical) or the run along which we vectorise
  int64_t seg = 0;           // log_logistic: rows cut into segments of this length
  Operand<const T> p, t;     // t: targets (null for labels and log_logistic)
  Operand<const void> y;     // kCategoricalLabel: int32 or int64 labels (no class axis)
  int label_bytes = 8;
  Operand<T> grad;           // nullable
  Operand<T> loss;           // nullable; elementwise if loss_elementwise, else one per row
  bool loss_elementwise = false;
  bool renorm = true;        // categorical: divide by the row sum first (Keras)
  double eps = 1e-7;         // clip bounds [eps, 1 - eps]
  double smoothing = 0.0;
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
  double (*hessian_units)(const HessianJob<T>&, int64_t u0, int64_t u1, T* scratch);
  // Vector math exposed for the accuracy tests of its contract.
  void (*vexp)(const T* x, T* y, int64_t n);
  void (*vlog1p)(const T* x, T* y, int64_t n);
  void (*vtanh)(const T* x, T* y, int64_t n);
  double (*proba_units)(const ProbaJob<T>&, int64_t u0, int64_t u1, T* scratch);
  void (*vlog)(const T* x, T* y, int64_t n);    // log(x), x in (0, 1]
  void (*vlog1m)(const T* x, T* y, int64_t n);  // log(1 - x), x in [0, 1)
  // Weights (kernels/weights-inl.hpp): their sum, and their largest value in *top (+inf if
  // any is NaN, negative or infinite); float64 weights rounded to T.
  double (*weight_stats)(const T* w, int64_t n, T* top);
  void (*weights_from_f64)(const double* src, T* dst, int64_t n);
};

// Scratch of one worker, laid out by these functions for both the driver (its size) and the
// units loops (units-inl.hpp, the offsets): a row buffer only for each use a job has, so a
// contiguous row needs none (one row of 2**31 logits needs no copy of 8 GiB).
// Offsets are in elements; -1: the job has no such buffer. The layout functions are static
// (one copy per file): isa_avx2.cpp's copy, compiled with AVX2, must never be the one the
// linker picks for the drivers (tools/check_isa_leak.py).
struct SoftmaxScratch {
  int64_t z = -1, t = -1, o = -1, d = -1, g = -1, tile = -1, total = 0;
  int64_t bz = -1, bt = -1, bo = -1;  // blocks of rows (softmax_block_rows)
};
// Whether an operand's rows lie class-major: its class stride is not 1, but adjacent rows
// along the last row dim are adjacent in memory (a Fortran-order array, a transposed view).
template <class P>
static inline bool class_major(const P& op, const RowSpace& rows) {
  return op.p != nullptr && op.cs != 1 && rows.nd > 0 && op.st[rows.nd - 1] == 1;
}
// The softmax row kernels' rows are moved in blocks of this many (units-inl.hpp,
// gather_rows / scatter_rows: W x W tiles transposed in registers) where z, t or out lies
// class-major; 0 otherwise (rows moved one at a time, gathered element by element). Moved a
// row at a time, such a row's C elements lie cs apart, often in a few cache sets, each line
// read again for the next row: 4096 x 1000 float32 in Fortran order took 23x the time of C
// order, 1024 x 256 10x. A block is the rows of four cache lines (64 float32, 32 float64;
// one line's worth measured 1.4x slower at 4096 x 1000, where the classes lie 16 KiB apart,
// in few cache sets), fewer for long rows (the block within about 2 MiB of each operand);
// rows too long for a block of 8 (two float64 vectors, one float32: C > 65,536 float32,
// 32,768 float64) keep the row path, so the scratch stays bounded, as does half storage
// (its conversions).
template <class T>
static inline int64_t softmax_block_rows(const SoftmaxJob<T>& j) {
  if (j.storage != Storage::kNative || j.len < 2 || inner_rows(j) || lanes_rows(j) ||
      !(class_major(j.z, j.rows) || class_major(j.t, j.rows) || class_major(j.out, j.rows)))
    return 0;
  constexpr int64_t kLine = 4 * 64 / static_cast<int64_t>(sizeof(T));
  const int64_t k = (int64_t{1} << 21) / (j.len * static_cast<int64_t>(sizeof(T)));
  return k < 8 ? 0 : k > kLine ? kLine : k;
}
template <class T>
static inline SoftmaxScratch softmax_scratch(const SoftmaxJob<T>& j) {
  const int64_t C = j.len;
  const bool capped = j.softcap > 0.0;
  const bool half = j.storage != Storage::kNative;  // half rows are converted to float32 buffers
  // ops that read z again after writing the gradient (a copy when grad is the logits)
  const bool rereads = j.op == SoftmaxOp::kXentTarget || j.op == SoftmaxOp::kPoly1Target ||
                       j.op == SoftmaxOp::kFocalTarget || (j.op == SoftmaxOp::kXentLabel && j.smoothing != 0.0);
  SoftmaxScratch s;
  if (lanes_rows(j) && !inner_rows(j)) return s;  // rows in lanes: their tiles are on the stack
  s.total = C / 64 + 64;  // per-block references (n_blocks(C) + 8 of them)
  auto take = [&](bool need, int64_t& at) {
    if (need) at = s.total, s.total += C;
  };
  take(half || j.z.cs != 1 || capped || (rereads && j.out.p != nullptr), s.z);  // gathered, capped or copied z
  take(j.t.p != nullptr && (half || j.t.cs != 1), s.t);                          // gathered targets
  take(j.out.p != nullptr && (half || j.out.cs != 1), s.o);                      // output before its scatter
  take(capped && is_loss_op(j.op) && j.out.p != nullptr, s.d);           // derivative of the soft cap
  take(j.op == SoftmaxOp::kPoly1Target || j.op == SoftmaxOp::kFocalTarget, s.g);  // effective targets
  if (inner_rows(j)) s.tile = s.total, s.total += C * kInnerTileRows;  // rows in lanes
  if (const int64_t k = softmax_block_rows(j)) {
    auto block = [&](bool need, int64_t& at) {
      if (need) at = s.total, s.total += k * C;
    };
    block(class_major(j.z, j.rows), s.bz);
    block(class_major(j.t, j.rows), s.bt);
    block(class_major(j.out, j.rows), s.bo);
  }
  return s;
}
template <class T>
static inline int64_t softmax_scratch_size(const SoftmaxJob<T>& j) { return softmax_scratch(j).total; }

struct SigmoidScratch {
  int64_t z = -1, t = -1, g = -1, l = -1, e = -1, total = 0;
};
template <class T>
static inline SigmoidScratch sigmoid_scratch(const SigmoidJob<T>& j) {
  SigmoidScratch s;
  s.total = 8;
  auto take = [&](bool need, int64_t& at) {
    if (need) at = s.total, s.total += j.seg;
  };
  const bool half = j.storage != Storage::kNative;
  if (j.flat) {  // a unit's elements read or written in place only where the operand is dense
    take(half || !j.dense[0], s.z);
    take(half || !j.dense[1], s.t);
    take(j.grad.p != nullptr && (half || !j.dense[2]), s.g);
    take(j.loss.p != nullptr && (!j.dense[3] || !j.loss_elementwise), s.l);  // (per row: the element losses)
    take(j.ew.p != nullptr && !j.dense[4], s.e);  // element weights gathered, or one per row spread
    return s;
  }
  take(half || j.z.cs != 1, s.z);  // rows (a loss per row): buffers for strided rows
  take(half || j.t.cs != 1, s.t);
  take(j.grad.p != nullptr && (half || j.grad.cs != 1), s.g);
  take(j.ew.p != nullptr && j.ew.cs != 0 && j.ew.cs != 1, s.e);  // gathered element weights
  return s;
}
template <class T>
static inline int64_t sigmoid_scratch_size(const SigmoidJob<T>& j) { return sigmoid_scratch(j).total; }
inline int64_t hessian_scratch_size(int64_t len) { return 6 * len + len / 64 + 64; }

struct Isa {
  const char* name;
  const KernelTable<float>* f32;
  const KernelTable<double>* f64;
};

}  // namespace xent
