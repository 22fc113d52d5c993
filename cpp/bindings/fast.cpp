// Lean entries for small calls (python/xent/_fast.py gates them). Each takes the common
// case only: exact numpy.ndarray inputs, aligned, native byte order, float32/float64
// (int32/int64 labels), the class axis last; out= / grad_out= buffers that are C-order,
// writeable and apart from the inputs (or exactly an input they may be). Softmax
// cross-entropy with integer labels (and the poly-1 and focal losses of integer labels,
// focal's alpha as an array of class weights), and sigmoid cross-entropy with axis None,
// also take their options: class, pos and sample weights as float32/float64 C-order arrays whose
// values are finite and >= 0, an int ignore_index, z_loss / label_smoothing / softcap as
// valid floats or ints, and weights that need no rescaling (docs/losses.md "Huge weights").
// For anything else, or an out-of-range label, it returns None and the caller takes the
// general path, which raises the errors. The drivers and their arguments are the general
// path's, so are the bits (the weighted mean's denominator included: both call
// xent::label_weight_sum, or xent::weight_sum). No pybind11 conversions: handles in, the
// public result (or None) out.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.hpp"
#include "threadpool.hpp"

namespace xent_py {

namespace {

namespace npd = py::detail;
using Api = npd::npy_api;

// An input array the fast path accepts, with int64 shape/strides for an ArrayRef.
struct View {
  int64_t shape[xent::kMaxDims], strides[xent::kMaxDims];
  xent::ArrayRef ref;
  int type = 0;  // numpy type number (NPY_FLOAT_ / NPY_DOUBLE_ for floats)
  char kind = 0;
  int64_t size = 1;
};

bool native(char byteorder) {
  const uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  return byteorder != (little ? '>' : '<');
}

// Fills v from an exact, aligned, native-endian ndarray (C-contiguous if c_order); false otherwise.
bool view(py::handle h, View& v, bool c_order) {
  const Api& api = Api::get();
  if (Py_TYPE(h.ptr()) != api.PyArray_Type_) return false;
  const auto* p = npd::array_proxy(h.ptr());
  const int need = Api::NPY_ARRAY_ALIGNED_ | (c_order ? Api::NPY_ARRAY_C_CONTIGUOUS_ : 0);
  if ((p->flags & need) != need || p->nd > xent::kMaxDims) return false;
  const auto d = py::reinterpret_borrow<py::dtype>(p->descr);
  if (!native(d.byteorder())) return false;
  v.kind = d.kind();
  v.type = d.num();
  for (int k = 0; k < p->nd; ++k) {
    v.shape[k] = static_cast<int64_t>(p->dimensions[k]);
    v.strides[k] = static_cast<int64_t>(p->strides[k]);
    v.size *= v.shape[k];
  }
  v.ref = {p->data, p->nd, v.shape, v.strides, static_cast<int64_t>(d.itemsize())};
  return true;
}

// Logits: a float32/float64 array of at least one dimension and no zero-length axis.
bool float_view(py::handle h, View& v, bool c_order) {
  return view(h, v, c_order) && (v.type == Api::NPY_FLOAT_ || v.type == Api::NPY_DOUBLE_) && v.ref.ndim >= 1 &&
         v.size > 0;
}

// A new C-order array of `type` and shape[0..nd).
py::array new_array(int type, int nd, const int64_t* shape) {
  const Api& api = Api::get();
  Py_intptr_t dims[xent::kMaxDims];
  for (int k = 0; k < nd; ++k) dims[k] = static_cast<Py_intptr_t>(shape[k]);
  PyObject* a = api.PyArray_NewFromDescr_(api.PyArray_Type_, api.PyArray_DescrFromType_(type), nd, dims, nullptr,
                                          nullptr, 0, nullptr);
  if (!a) throw py::error_already_set();
  return py::reinterpret_steal<py::array>(a);
}

// A result array: a new one, or the caller's out= / grad_out= buffer that take() accepted.
struct Out {
  py::array a;
  View v;
  Out(const View& like, int nd) : a(new_array(like.type, nd, like.shape)) { view(a, v, true); }
  explicit Out(py::handle buffer) : a(py::reinterpret_borrow<py::array>(buffer)) { view(a, v, true); }
};

// The bytes an array spans, [lo, hi) (np.may_share_memory's bounds test).
struct Extent {
  uintptr_t lo, hi;
  explicit Extent(const View& v) : lo(reinterpret_cast<uintptr_t>(v.ref.data)), hi(lo) {
    for (int k = 0; k < v.ref.ndim; ++k) {
      const int64_t d = (v.shape[k] - 1) * v.strides[k];
      if (d < 0) lo -= static_cast<uintptr_t>(-d); else hi += static_cast<uintptr_t>(d);
    }
    hi += static_cast<uintptr_t>(v.ref.itemsize);
  }
  bool apart(const Extent& o) const { return hi <= o.lo || o.hi <= lo; }
};

bool same_array(const View& a, const View& b) {
  if (a.ref.data != b.ref.data || a.ref.ndim != b.ref.ndim || a.type != b.type) return false;
  for (int k = 0; k < a.ref.ndim; ++k)
    if (a.shape[k] != b.shape[k] || a.strides[k] != b.strides[k]) return false;
  return true;
}

enum class Take { kNone, kYes, kDecline };

// The two buffers together: out= only for reduction "none" (red 0), grad_out= only with a
// gradient, and never overlapping each other.
bool buffers_ok(Take to, Take tg, int red, bool want_grad, const View& ov, const View& gv) {
  if (to == Take::kDecline || tg == Take::kDecline || (tg == Take::kYes && !want_grad)) return false;
  return to != Take::kYes || (red == 0 && (tg != Take::kYes || Extent(ov).apart(Extent(gv))));
}

// Whether the fast path takes the caller's buffer h (None: there is none) for a result of
// like's float type and shape[0..nd): an exact, aligned, C-order, native, writeable ndarray
// of exactly that type and shape, apart from every array of `inputs` (an input it may be,
// `may_be`, it may also be exactly). Anything else declines: the general path's check_out
// raises the errors, or takes the overlaps it allows.
Take take(py::handle h, View& v, const View& like, int nd, std::initializer_list<const View*> inputs,
          std::initializer_list<const View*> may_be) {
  if (h.is_none()) return Take::kNone;
  if (!view(h, v, true) || v.type != like.type || v.ref.ndim != nd ||
      !(npd::array_proxy(h.ptr())->flags & Api::NPY_ARRAY_WRITEABLE_))
    return Take::kDecline;
  for (int k = 0; k < nd; ++k)
    if (v.shape[k] != like.shape[k]) return Take::kDecline;
  const Extent e(v);
  for (const View* a : inputs) {
    if (!a || e.apart(Extent(*a))) continue;  // (null: an operand not given)
    bool ok = false;
    for (const View* m : may_be) ok = ok || (m == a && same_array(v, *a));
    if (!ok) return Take::kDecline;
  }
  return Take::kYes;
}

// "none" 0, "sum" 1, "mean" 2; -1 for anything else (the general path raises).
int reduction_code(py::handle r) {
  static const char* const names[3] = {"none", "sum", "mean"};
  // the interned names first: a literal "mean" in the caller's code is that object (three
  // string comparisons took about 0.02 us a call)
  static PyObject* const interned[3] = {PyUnicode_InternFromString(names[0]), PyUnicode_InternFromString(names[1]),
                                        PyUnicode_InternFromString(names[2])};
  for (int k = 0; k < 3; ++k)
    if (r.ptr() == interned[k]) return k;
  if (!PyUnicode_Check(r.ptr())) return -1;
  for (int k = 0; k < 3; ++k)
    if (PyUnicode_CompareWithASCIIString(r.ptr(), names[k]) == 0) return k;
  return -1;
}

// None: the hardware threads; an int from 1 to that as is; -1 for anything else (the general
// path validates it and caps larger counts).
int threads(py::handle n) {
  static const int hw = xent::hardware_threads();
  if (n.is_none()) return hw;
  if (!PyLong_CheckExact(n.ptr())) return -1;
  int overflow = 0;
  const long v = PyLong_AsLongAndOverflow(n.ptr(), &overflow);
  return (overflow == 0 && v >= 1 && v <= hw) ? static_cast<int>(v) : -1;
}

// Small work holds the GIL: releasing and retaking it measured 0.09 us, a few % of a 64 x 10
// call, to free it for only a few us.
constexpr int64_t kReleaseMin = 1 << 14;

template <class Fn>
double run(const View& z, Fn&& fn) {
  if (z.size < kReleaseMin) return fn();
  py::gil_scoped_release release;
  return fn();
}

// The public return value from the kernel's sum over `n` terms, or total weight n (finish()
// in _validate.py: a "mean" over nothing is 0.0).
py::object result(int red, double total, double n, const Out* rows, const Out* grad) {
  py::object loss = red == 0 ? py::object(rows->a) : py::float_(red == 2 ? (n != 0.0 ? total / n : 0.0) : total);
  if (!grad) return loss;
  return py::make_tuple(loss, grad->a);
}

// A weight operand the fast path takes: None, or an exact, aligned, native, C-order ndarray
// of float32/float64 of exactly shape[0..nd), whose values in T (converted when its dtype
// differs, as np.require(dtype=T) converts them) are finite and >= 0. Anything else declines
// (the general path raises the errors, or converts other types).
template <class T>
struct Weights {
  View v;                // the caller's array (its bytes, for the overlap tests)
  std::unique_ptr<T[]> conv;  // its values in T when its dtype is not T's (not zeroed first)
  int64_t strides[xent::kMaxDims];
  xent::ArrayRef ref;    // what the kernel reads
  bool given = false;
  int top = 0;           // binary exponent of the largest value (frexp; 0 when all are 0)
  double top_value = 0;  // the largest value
  double sum = 0;        // their sum (xent::weight_sum's bits: the general path's too)
  const View* view_or_null() const { return given ? &v : nullptr; }
  const xent::ArrayRef* ref_or_null() const { return given ? &ref : nullptr; }
  const T* data() const { return given ? static_cast<const T*>(ref.data) : nullptr; }

  bool take(py::handle h, int nd, const int64_t* shape) {
    if (h.is_none()) return true;
    if (!view(h, v, true) || (v.type != Api::NPY_FLOAT_ && v.type != Api::NPY_DOUBLE_) || v.ref.ndim != nd)
      return false;
    for (int k = 0; k < nd; ++k)
      if (v.shape[k] != shape[k]) return false;
    const bool same = (v.type == Api::NPY_FLOAT_) == std::is_same<T, float>::value;
    const T* p = static_cast<const T*>(v.ref.data);
    int64_t step = v.ref.itemsize;
    if (!same) {
      conv.reset(new T[static_cast<size_t>(v.size)]);
      if (v.type == Api::NPY_FLOAT_) {
        for (int64_t i = 0; i < v.size; ++i) conv[i] = static_cast<T>(static_cast<const float*>(v.ref.data)[i]);
      } else {
        // as np.require(dtype=T): a double beyond float's range becomes inf (an error of the
        // general path), declined below
        xent::weights_from_f64<T>(static_cast<const double*>(v.ref.data), conv.get(), v.size);
      }
      p = conv.get();
      step = sizeof(T);
    }
    // the check (NaN, inf or < 0 decline: top is +inf), the largest value and the sum, in
    // one vector pass
    T top_value = 0;
    sum = xent::weight_stats<T>(p, v.size, &top_value);
    if (!(top_value <= std::numeric_limits<T>::max())) return false;
    this->top_value = static_cast<double>(top_value);
    if (top_value > 0) std::frexp(this->top_value, &top);
    for (int k = nd - 1; k >= 0; --k) {  // C order (the view's own strides when not converted)
      strides[k] = same ? v.strides[k] : step;
      step *= v.shape[k];
    }
    ref = {const_cast<T*>(p), nd, v.shape, strides, static_cast<int64_t>(sizeof(T))};
    given = true;
    return true;
  }
};

// ignore_index: None, or an exact int that fits int64 (has_ignore set); false declines.
bool ignore_arg(py::handle h, bool& has_ignore, int64_t& ignore) {
  has_ignore = !h.is_none();
  if (!has_ignore) return true;
  if (!PyLong_CheckExact(h.ptr())) return false;
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
  if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return false;
  }
  ignore = static_cast<int64_t>(v);
  return true;
}

// A float option (z_loss, label_smoothing, softcap): a Python float (np.float64 too) or an
// exact int, finite and in [lo, hi] (above lo when open_lo); false declines (the general
// path raises, or converts other types).
bool real_arg(py::handle h, double lo, double hi, bool open_lo, double& v) {
  if (PyFloat_Check(h.ptr())) {
    v = PyFloat_AS_DOUBLE(h.ptr());
  } else if (PyLong_CheckExact(h.ptr())) {
    int overflow = 0;
    const long x = PyLong_AsLongAndOverflow(h.ptr(), &overflow);
    if (overflow != 0 || (x == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return false;
    }
    v = static_cast<double>(x);
  } else {
    return false;
  }
  return std::isfinite(v) && (open_lo ? v > lo : v >= lo) && v <= hi;
}

// Whether a weighted mean's denominator n needs no rescaling (rescale_tiny_weights in
// _weights.py: 1/n beyond T's range).
template <class T>
bool inverse_in_range(double n) {
  const double big = static_cast<double>(std::numeric_limits<T>::max());
  return n == 0.0 || (n > 1.0 / big && 1.0 / n <= big);
}

// The limit of shrink_huge_weights (_weights.py): weights whose products or sum reach
// 2**limit are rescaled first.
template <class T>
constexpr int huge_limit() { return std::numeric_limits<T>::max_exponent - 32; }

// The denominator n of a weighted "mean" (label_row_weight_sum); false where the general
// path would rescale the weights first (shrink_huge_weights, rescale_tiny_weights: their
// products or sum near T's range, or 1/n beyond it): the caller declines then.
template <class T>
bool weighted_mean_n(const View& yv, const Weights<T>& w, const Weights<T>& sw, bool has_ignore, int64_t ignore,
                     double& n) {
  n = xent::label_weight_sum<T>(yv.ref, w.data(), w.given ? w.view_or_null()->shape[0] : 0, sw.ref_or_null(),
                                has_ignore, ignore);
  if (!w.given && !sw.given) return true;  // (ignore_index alone: a count)
  const int limit = huge_limit<T>();
  if (!(n < std::ldexp(1.0, limit)) || std::max(w.top, 0) + std::max(sw.top, 0) >= limit) return false;
  return inverse_in_range<T>(n);
}

// The options of softmax_cross_entropy the fast path takes besides the weights, and the
// loss: cross-entropy (kXentLabel), or poly-1 / focal (kPoly1Label / kFocalLabel) with their
// param (epsilon / gamma, validated by the caller) and focal's alpha (None or an array).
struct Scalars {
  py::handle ignore_index, z_loss, smoothing, softcap;
  xent::SoftmaxOp op = xent::SoftmaxOp::kXentLabel;
  double param = 0.0;
  py::handle alpha = py::none();
};

// Whether class weights that act inside rows (label smoothing's, focal's alpha) need no
// division by a power of two first (inrow_shift in _weights.py: their sum could near T's
// range); the caller declines otherwise.
template <class T>
bool inrow_fits(const Weights<T>& w, int64_t C) {
  if (!w.given || w.top == 0) return true;
  int bits = 0;
  for (int64_t c = C; c > 0; c >>= 1) ++bits;
  return w.top + bits - (std::numeric_limits<T>::max_exponent - 24) <= 0;
}

template <class T>
py::object softmax_xent_t(const View& zv, const View& yv, int red, bool want_grad, int nt, py::handle out,
                          py::handle grad_out, py::handle weight, py::handle sample_weight, const Scalars& sc) {
  const int64_t C = zv.shape[zv.ref.ndim - 1];
  Weights<T> w, sw, al;
  xent::XentOptions opt;
  const double inf = std::numeric_limits<double>::infinity();
  if (!w.take(weight, 1, &C) || !sw.take(sample_weight, yv.ref.ndim, yv.shape) || !al.take(sc.alpha, 1, &C) ||
      !ignore_arg(sc.ignore_index, opt.has_ignore, opt.ignore_index) ||
      !real_arg(sc.z_loss, 0.0, inf, false, opt.z_loss) || !real_arg(sc.smoothing, 0.0, 1.0, false, opt.smoothing) ||
      !(sc.softcap.is_none() || real_arg(sc.softcap, 0.0, inf, true, opt.softcap)))
    return py::none();
  if (!inrow_fits(al, C) || (opt.smoothing != 0.0 && !inrow_fits(w, C))) return py::none();
  int64_t bad_value = 0;
  if (xent::find_bad_label(yv.ref, C, opt.has_ignore, opt.ignore_index, &bad_value) >= 0) return py::none();
  const bool weighted = w.given || sw.given || opt.has_ignore;
  double n = static_cast<double>(zv.size / C);
  if (weighted && red == 2 && !weighted_mean_n(yv, w, sw, opt.has_ignore, opt.ignore_index, n)) return py::none();
  // grad_out may be the logits (overwritten by the gradient, as on the general path), no
  // buffer any other input (labels, weights: the general path raises)
  View ov, gv;
  const std::initializer_list<const View*> inputs{&zv, &yv, w.view_or_null(), sw.view_or_null(), al.view_or_null()};
  const Take tg = take(grad_out, gv, zv, zv.ref.ndim, inputs, {&zv});
  const Take to = tg == Take::kDecline ? Take::kDecline : take(out, ov, zv, zv.ref.ndim - 1, inputs, {});
  if (!buffers_ok(to, tg, red, want_grad, ov, gv)) return py::none();
  std::unique_ptr<Out> rows, grad;
  if (red == 0) rows = to == Take::kYes ? std::make_unique<Out>(out) : std::make_unique<Out>(zv, zv.ref.ndim - 1);
  if (want_grad) grad = tg == Take::kYes ? std::make_unique<Out>(grad_out) : std::make_unique<Out>(zv, zv.ref.ndim);
  const double gscale = (red == 2 && n != 0.0) ? 1.0 / n : 1.0;  // grad_scale() in _validate.py
  opt.class_w = w.ref_or_null();
  opt.sw = sw.ref_or_null();
  opt.param = sc.param;
  opt.class_a = al.ref_or_null();
  const xent::ArrayRef* g = grad ? &grad->v.ref : nullptr;
  const xent::ArrayRef* r = rows ? &rows->v.ref : nullptr;
  const double total =
      run(zv, [&] { return xent::run_softmax<T>(sc.op, zv.ref, nullptr, &yv.ref, g, r, gscale, nt, opt); });
  return result(red, total, n, rows.get(), grad.get());
}

py::object softmax_label_loss(py::handle z, py::handle y, py::handle reduction, py::handle return_grad,
                              py::handle n_threads, py::handle out, py::handle grad_out, py::handle weight,
                              py::handle sample_weight, const Scalars& sc) {
  View zv, yv;
  const int red = reduction_code(reduction);
  if (red < 0 || (return_grad.ptr() != Py_True && return_grad.ptr() != Py_False) || !float_view(z, zv, true) ||
      !view(y, yv, false) || yv.kind != 'i' || (yv.ref.itemsize != 4 && yv.ref.itemsize != 8) ||
      yv.ref.ndim != zv.ref.ndim - 1)
    return py::none();
  for (int k = 0; k < yv.ref.ndim; ++k)
    if (yv.shape[k] != zv.shape[k]) return py::none();
  const int nt = threads(n_threads);
  if (nt < 0) return py::none();
  const bool want_grad = return_grad.ptr() == Py_True;
  return zv.type == Api::NPY_FLOAT_
             ? softmax_xent_t<float>(zv, yv, red, want_grad, nt, out, grad_out, weight, sample_weight, sc)
             : softmax_xent_t<double>(zv, yv, red, want_grad, nt, out, grad_out, weight, sample_weight, sc);
}

py::object softmax_xent(py::handle z, py::handle y, py::handle reduction, py::handle return_grad,
                        py::handle n_threads, py::handle out, py::handle grad_out, py::handle weight,
                        py::handle sample_weight, py::handle ignore_index, py::handle z_loss,
                        py::handle label_smoothing, py::handle softcap) {
  const Scalars sc{ignore_index, z_loss, label_smoothing, softcap};
  return softmax_label_loss(z, y, reduction, return_grad, n_threads, out, grad_out, weight, sample_weight, sc);
}

// poly1_cross_entropy (focal false: param is epsilon) or softmax_focal_loss (param is gamma,
// alpha None or one per class) with integer labels: param a Python float the caller checked.
py::object softmax_factor(py::handle focal, py::handle z, py::handle y, py::handle param, py::handle alpha,
                          py::handle reduction, py::handle return_grad, py::handle n_threads, py::handle out,
                          py::handle grad_out, py::handle weight, py::handle sample_weight, py::handle ignore_index,
                          py::handle softcap) {
  if (!PyFloat_CheckExact(param.ptr()) || (focal.ptr() != Py_True && focal.ptr() != Py_False)) return py::none();
  const bool is_focal = focal.ptr() == Py_True;
  if (!is_focal && !alpha.is_none()) return py::none();
  const py::float_ zero(0.0);
  Scalars sc{ignore_index, zero, zero, softcap};
  sc.op = is_focal ? xent::SoftmaxOp::kFocalLabel : xent::SoftmaxOp::kPoly1Label;
  sc.param = PyFloat_AS_DOUBLE(param.ptr());
  sc.alpha = alpha;
  return softmax_label_loss(z, y, reduction, return_grad, n_threads, out, grad_out, weight, sample_weight, sc);
}

// The options of sigmoid_cross_entropy the fast path takes (with axis None).
struct SigmoidArgs {
  py::handle weight, pos_weight, sample_weight, smoothing, softcap;
};

// per_row: axis given as the last (the loss summed over it: one per row for "none", the
// mean over rows); else axis None (elementwise).
template <class T>
py::object sigmoid_xent_t(const View& zv, const View& tv, int red, bool want_grad, int nt, py::handle out,
                          py::handle grad_out, const SigmoidArgs& a, bool per_row) {
  const int nd = zv.ref.ndim;
  const int64_t C = zv.shape[nd - 1];
  // sample weights: one per sample, the logits' shape without the last axis (axis None and
  // 1-d: one per element)
  const int sw_nd = nd >= 2 || per_row ? nd - 1 : nd;
  const int res_nd = per_row ? nd - 1 : nd;  // the losses of "none"
  int64_t n_rows = 1;
  for (int k = 0; k < nd - 1; ++k) n_rows *= zv.shape[k];
  Weights<T> w, pw, sw;
  xent::SigmoidOptions opt;
  const double inf = std::numeric_limits<double>::infinity();
  if (!w.take(a.weight, 1, &C) || !pw.take(a.pos_weight, 1, &C) || !sw.take(a.sample_weight, sw_nd, zv.shape) ||
      !real_arg(a.smoothing, 0.0, 1.0, false, opt.smoothing) ||
      !(a.softcap.is_none() || real_arg(a.softcap, 0.0, inf, true, opt.softcap)))
    return py::none();
  // the mean's denominator (_sigmoid_call.run): the elements (axis None) or rows, or the
  // summed sample weights times the elements per sample (C with axis None, else 1);
  // declined where the general path rescales the weights
  double n = static_cast<double>(per_row ? n_rows : zv.size);
  if (sw.given) {
    n = sw.sum * (nd >= 2 && !per_row ? static_cast<double>(C) : 1.0);
    const double bound = n * std::max(1.0, w.top_value) * std::max(1.0, pw.top_value);
    const int limit = huge_limit<T>();
    if (red == 2 && (!(bound < std::ldexp(1.0, limit)) || std::max(sw.top, 0) >= limit || !inverse_in_range<T>(n)))
      return py::none();
  }
  // either buffer may be the logits or the targets (elementwise), not overlap the other
  // buffer or a weight
  View ov, gv;
  const std::initializer_list<const View*> inputs{&zv, &tv, w.view_or_null(), pw.view_or_null(), sw.view_or_null()};
  const Take tg = take(grad_out, gv, zv, nd, inputs, {&zv, &tv});
  const Take to = tg == Take::kDecline ? Take::kDecline : take(out, ov, zv, res_nd, inputs, {&zv, &tv});
  if (!buffers_ok(to, tg, red, want_grad, ov, gv)) return py::none();
  std::unique_ptr<Out> loss, grad;
  if (red == 0) loss = to == Take::kYes ? std::make_unique<Out>(out) : std::make_unique<Out>(zv, res_nd);
  if (want_grad) grad = tg == Take::kYes ? std::make_unique<Out>(grad_out) : std::make_unique<Out>(zv, nd);
  const double gscale = (red == 2 && n != 0.0) ? 1.0 / n : 1.0;  // grad_scale() in _validate.py
  // the sample weight broadcast over the last axis (stride 0), or per element (1-d)
  int64_t ew_strides[xent::kMaxDims];
  xent::ArrayRef ew;
  if (sw.given) {
    for (int k = 0; k < sw_nd; ++k) ew_strides[k] = sw.ref.strides[k];
    if (sw_nd < nd) ew_strides[nd - 1] = 0;
    ew = {sw.ref.data, nd, zv.shape, ew_strides, static_cast<int64_t>(sizeof(T))};
  }
  opt.class_w = w.ref_or_null();
  opt.pos_w = pw.ref_or_null();
  opt.elem_w = sw.given ? &ew : nullptr;
  const xent::ArrayRef* g = grad ? &grad->v.ref : nullptr;
  const xent::ArrayRef* l = loss ? &loss->v.ref : nullptr;
  const double total =
      run(zv, [&] { return xent::run_sigmoid<T>(zv.ref, tv.ref, g, l, !per_row, gscale, nt, opt); });
  return result(red, total, n, loss.get(), grad.get());
}

py::object sigmoid_xent(py::handle z, py::handle t, py::handle reduction, py::handle return_grad,
                        py::handle n_threads, py::handle out, py::handle grad_out, py::handle weight,
                        py::handle pos_weight, py::handle sample_weight, py::handle label_smoothing,
                        py::handle softcap, py::handle axis) {
  View zv, tv;
  const int red = reduction_code(reduction);
  if (red < 0 || (return_grad.ptr() != Py_True && return_grad.ptr() != Py_False) || !float_view(z, zv, true) ||
      !view(t, tv, false) || tv.type != zv.type || tv.ref.ndim != zv.ref.ndim)
    return py::none();
  for (int k = 0; k < zv.ref.ndim; ++k)
    if (tv.shape[k] != zv.shape[k]) return py::none();
  // axis: None, or an exact int naming the last axis of a non-empty one (other axes, a class
  // axis of length 0 and the errors: the general path)
  const int nd = zv.ref.ndim;
  bool per_row = false;
  if (!axis.is_none()) {
    if (!PyLong_CheckExact(axis.ptr()) || nd == 0) return py::none();
    int overflow = 0;
    const long ax = PyLong_AsLongAndOverflow(axis.ptr(), &overflow);
    if (overflow != 0 || (ax == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return py::none();
    }
    if ((ax != -1 && ax != nd - 1) || zv.shape[nd - 1] == 0) return py::none();
    per_row = true;
  }
  const int nt = threads(n_threads);
  if (nt < 0) return py::none();
  const bool want_grad = return_grad.ptr() == Py_True;
  const SigmoidArgs a{weight, pos_weight, sample_weight, label_smoothing, softcap};
  return zv.type == Api::NPY_FLOAT_ ? sigmoid_xent_t<float>(zv, tv, red, want_grad, nt, out, grad_out, a, per_row)
                                    : sigmoid_xent_t<double>(zv, tv, red, want_grad, nt, out, grad_out, a, per_row);
}

// logsumexp (a NumPy scalar for 1-d input, as the general path's res[()]), softmax, log_softmax.
py::object softmax_norm(xent::SoftmaxOp sop, py::handle x, py::handle n_threads) {
  const bool lse = sop == xent::SoftmaxOp::kLogsumexp;
  if (!lse && sop != xent::SoftmaxOp::kSoftmax && sop != xent::SoftmaxOp::kLogSoftmax)
    throw py::value_error("op must be logsumexp, softmax or log_softmax");
  View xv;
  const int nt = threads(n_threads);
  if (nt < 0 || !float_view(x, xv, !lse)) return py::none();  // softmax's output takes x's layout: C order only
  Out o(xv, lse ? xv.ref.ndim - 1 : xv.ref.ndim);
  const xent::ArrayRef* out = lse ? nullptr : &o.v.ref;
  const xent::ArrayRef* rows = lse ? &o.v.ref : nullptr;
  run(xv, [&] {
    return xv.type == Api::NPY_FLOAT_ ? xent::run_softmax<float>(sop, xv.ref, nullptr, nullptr, out, rows, 1.0, nt)
                                      : xent::run_softmax<double>(sop, xv.ref, nullptr, nullptr, out, rows, 1.0, nt);
  });
  if (lse && xv.ref.ndim == 1) return o.a[py::tuple()];
  return std::move(o.a);
}

// The entries as METH_FASTCALL builtins of exactly N positional arguments, without
// pybind11's dispatcher: its argument vector, keyword handling and overload loop took
// about 0.1 us of a 64 x 10 call of 1.4 us. C++ exceptions become Python's as pybind11
// translates them (its builtin exceptions, an error already set, MemoryError, RuntimeError).
template <auto F, std::size_t... I>
py::object call_handles(PyObject* const* args, std::index_sequence<I...>) {
  return F(py::handle(args[I])...);
}
template <auto F, std::size_t N, const char* kName>
PyObject* fastcall(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != static_cast<Py_ssize_t>(N)) {
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %d positional arguments (%zd given)", kName,
                 static_cast<int>(N), nargs);
    return nullptr;
  }
  try {
    return call_handles<F>(args, std::make_index_sequence<N>{}).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

py::object softmax_norm_h(py::handle op, py::handle x, py::handle n_threads) {
  xent::SoftmaxOp sop;
  try {
    sop = py::cast<xent::SoftmaxOp>(op);
  } catch (const py::cast_error&) {
    throw py::type_error("op must be a SoftmaxOp");
  }
  return softmax_norm(sop, x, n_threads);
}

constexpr char kSoftmaxXent[] = "softmax_xent_fast", kSoftmaxFactor[] = "softmax_factor_fast",
               kSigmoidXent[] = "sigmoid_xent_fast", kSoftmaxNorm[] = "softmax_norm_fast";

template <auto F, std::size_t N, const char* kName>
PyMethodDef fast_def(const char* doc) {
  return {kName, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fastcall<F, N, kName>)), METH_FASTCALL,
          doc};
}

// (static: a builtin keeps a pointer to its PyMethodDef)
PyMethodDef fast_defs[] = {
    fast_def<&softmax_xent, 13, kSoftmaxXent>(
        "softmax_xent_fast(logits, labels, reduction, return_grad, n_threads, out, grad_out, weight, sample_weight, "
        "ignore_index, z_loss, label_smoothing, softcap, /)\n--\n\n"
        "softmax_cross_entropy with integer labels along the last axis, its options included (out= and grad_out= "
        "buffers taken), or None where the general path must run."),
    fast_def<&softmax_factor, 14, kSoftmaxFactor>(
        "softmax_factor_fast(focal, logits, labels, param, alpha, reduction, return_grad, n_threads, out, grad_out, "
        "weight, sample_weight, ignore_index, softcap, /)\n--\n\n"
        "softmax_focal_loss (focal=True, param gamma) or poly1_cross_entropy (param epsilon) with integer labels "
        "along the last axis, their options included, or None where the general path must run."),
    fast_def<&sigmoid_xent, 13, kSigmoidXent>(
        "sigmoid_xent_fast(logits, targets, reduction, return_grad, n_threads, out, grad_out, weight, pos_weight, "
        "sample_weight, label_smoothing, softcap, axis, /)\n--\n\n"
        "sigmoid_cross_entropy with axis None or the last axis, its options included (out= and grad_out= buffers "
        "taken), or None where the general path must run."),
    fast_def<&softmax_norm_h, 3, kSoftmaxNorm>(
        "softmax_norm_fast(op, x, n_threads, /)\n--\n\n"
        "logsumexp, softmax or log_softmax along the last axis, or None where the general path must run."),
};

}  // namespace

void bind_fast(py::module_& m) {
  const py::str module_name = m.attr("__name__");
  for (PyMethodDef& def : fast_defs) {
    PyObject* f = PyCFunction_NewEx(&def, nullptr, module_name.ptr());
    if (!f) throw py::error_already_set();
    m.add_object(def.ml_name, py::reinterpret_steal<py::object>(f));
  }
}

}  // namespace xent_py
