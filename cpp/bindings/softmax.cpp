#include "common.hpp"

namespace xent_py {

namespace {

double softmax_op(int op, const py::array& z, const py::object& t, const py::object& y, const py::object& out,
                  const py::object& row_out, double gscale, int n_threads, const py::object& weight,
                  const py::object& sample_weight, const py::object& ignore_index, double z_loss,
                  double label_smoothing, double softcap, double param, const py::object& class_a, bool inner) {
  // half logits: targets and out in the logits' dtype, the rest (weights, row_out) float32
  const ZKind zk = z_kind(z, "logits");
  const int kind = zk.kind;
  if (z.ndim() < 1) throw py::value_error("logits must have at least one dimension");
  Ref zr(z, false, "logits");
  auto tr = opt_ref_like(t, false, "targets", zk);
  auto orr = opt_ref_like(out, true, "out", zk);
  auto rr = opt_ref(row_out, true, "row_out", kind);
  std::unique_ptr<Ref> yr;
  if (!y.is_none()) {
    py::array ya = py::reinterpret_borrow<py::array>(y);
    if (!is_index(ya))
      throw py::type_error("labels must be int32 or int64 here");
    yr = std::make_unique<Ref>(ya, false, "labels");
  }
  auto wr = opt_ref(weight, false, "weight", kind);
  if (wr && (wr->ref.ndim != 1 || wr->ref.shape[0] != zr.ref.shape[zr.ref.ndim - 1] ||
             wr->ref.strides[0] != wr->ref.itemsize))
    throw py::value_error("weight must be a contiguous array of one weight per class");
  auto ar = opt_ref(class_a, false, "class_a", kind);
  if (ar && (ar->ref.ndim != 1 || ar->ref.shape[0] != zr.ref.shape[zr.ref.ndim - 1] ||
             ar->ref.strides[0] != ar->ref.itemsize))
    throw py::value_error("class_a must be a contiguous array of one value per class");
  if (!(softcap >= 0.0)) throw py::value_error("softcap must be >= 0 (0: off)");
  auto sr = opt_ref(sample_weight, false, "sample_weight", kind);
  xent::XentOptions opt;
  opt.class_w = ptr(wr);
  opt.sw = ptr(sr);
  opt.has_ignore = !ignore_index.is_none();
  if (opt.has_ignore) opt.ignore_index = ignore_index.cast<int64_t>();
  opt.z_loss = z_loss;
  opt.smoothing = label_smoothing;
  opt.softcap = softcap;
  opt.param = param;
  opt.class_a = ptr(ar);
  opt.storage = zk.storage;
  opt.inner = inner;
  const auto sop = static_cast<xent::SoftmaxOp>(op);
  py::gil_scoped_release release;
  if (kind == 4)
    return xent::run_softmax<float>(sop, zr.ref, ptr(tr), ptr(yr), ptr(orr), ptr(rr), gscale, n_threads, opt);
  return xent::run_softmax<double>(sop, zr.ref, ptr(tr), ptr(yr), ptr(orr), ptr(rr), gscale, n_threads, opt);
}

py::object find_bad_label(const py::array& y, int64_t n_classes, const py::object& ignore_index) {
  Ref yr(y, false, "labels");
  const bool has_ignore = !ignore_index.is_none();
  const int64_t ignore = has_ignore ? ignore_index.cast<int64_t>() : 0;
  int64_t value = 0, at;
  {
    py::gil_scoped_release release;
    at = xent::find_bad_label(yr.ref, n_classes, has_ignore, ignore, &value);
  }
  if (at < 0) return py::none();
  return py::make_tuple(at, value);
}

// label_weight_sum over validated operands: weight (one per class) and sample_weight
// (labels' shape) None or of one float dtype; labels in range (else ValueError).
double label_weight_sum(const py::array& y, const py::object& weight, const py::object& sample_weight,
                        const py::object& ignore_index) {
  if (!is_index(y)) throw py::type_error("labels must be int32 or int64 here");
  Ref yr(y, false, "labels");
  int kind = 8;
  if (!weight.is_none()) kind = float_kind(py::reinterpret_borrow<py::array>(weight), "weight");
  else if (!sample_weight.is_none())
    kind = float_kind(py::reinterpret_borrow<py::array>(sample_weight), "sample_weight");
  auto wr = opt_ref(weight, false, "weight", kind);
  if (wr && (wr->ref.ndim != 1 || wr->ref.strides[0] != wr->ref.itemsize))
    throw py::value_error("weight must be a contiguous array of one weight per class");
  auto sr = opt_ref(sample_weight, false, "sample_weight", kind);
  if (sr && sr->shape != yr.shape) throw py::value_error("sample_weight must have the labels' shape");
  const bool has_ignore = !ignore_index.is_none();
  const int64_t ignore = has_ignore ? ignore_index.cast<int64_t>() : 0;
  int64_t value = 0;
  const int64_t n_classes = wr ? wr->ref.shape[0] : 0;
  if (wr && xent::find_bad_label(yr.ref, n_classes, has_ignore, ignore, &value) >= 0)
    throw py::value_error("labels must be in [0, len(weight)) or be ignore_index, got " + std::to_string(value));
  py::gil_scoped_release release;
  if (kind == 4)
    return xent::label_weight_sum<float>(yr.ref, wr ? static_cast<const float*>(wr->ref.data) : nullptr, n_classes,
                                         ptr(sr), has_ignore, ignore);
  return xent::label_weight_sum<double>(yr.ref, wr ? static_cast<const double*>(wr->ref.data) : nullptr, n_classes,
                                        ptr(sr), has_ignore, ignore);
}

// weight_stats over a C-contiguous float32 / float64 array: (sum, largest value), the
// largest +inf if any value is NaN, negative or infinite (one vector pass).
py::tuple weight_stats(const py::array& w) {
  const int kind = float_kind(w, "weights");
  if (!(w.flags() & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error("weights must be C-contiguous");
  Ref r(w, false, "weights");
  const int64_t n = static_cast<int64_t>(w.size());
  double sum = 0.0, top = 0.0;
  {
    py::gil_scoped_release release;
    if (kind == 4) {
      float t = 0.0f;
      sum = xent::weight_stats<float>(static_cast<const float*>(r.ref.data), n, &t);
      top = t;
    } else {
      sum = xent::weight_stats<double>(static_cast<const double*>(r.ref.data), n, &top);
    }
  }
  return py::make_tuple(sum, top);
}

// weight_sum over a C-contiguous float32 / float64 array (weights validated by the caller).
double weight_sum(const py::array& w) { return weight_stats(w)[0].cast<double>(); }

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax_op", &softmax_op, py::arg("op"), py::arg("z"), py::arg("t"), py::arg("y"), py::arg("out"),
        py::arg("row_out"), py::arg("gscale"), py::arg("n_threads"), py::arg("weight") = py::none(),
        py::arg("sample_weight") = py::none(), py::arg("ignore_index") = py::none(), py::arg("z_loss") = 0.0, py::arg("label_smoothing") = 0.0,
        py::arg("softcap") = 0.0, py::arg("param") = 0.0, py::arg("class_a") = py::none(), py::arg("inner") = false,
        "Runs one softmax-family op (class axis last); returns the sum of the (weighted) row results. inner: the "
        "caller's class axis was not its array's last (integer-label cross-entropy then computes rows in vector "
        "lanes, whatever the layout).");
  m.def("find_bad_label", &find_bad_label, py::arg("labels"), py::arg("n_classes"),
        py::arg("ignore_index") = py::none(),
        "(flat index, value) of the first label outside [0, n_classes) other than ignore_index, or None.");
  m.def("label_weight_sum", &label_weight_sum, py::arg("labels"), py::arg("weight"), py::arg("sample_weight"),
        py::arg("ignore_index"),
        "Sum over rows of weight[y] * sample_weight (float64 terms, compensated), ignored rows left out: the "
        "denominator of a weighted mean.");
  m.def("weight_sum", &weight_sum, py::arg("weights"),
        "Sum of the weights of a C-contiguous float32/float64 array (float64 terms, blocks of 1024 in 16 lanes, the "
        "blocks compensated; the same bits on every ISA): the denominator of a weighted mean.");
  m.def("weight_stats", &weight_stats, py::arg("weights"),
        "(sum, largest value) of a C-contiguous float32/float64 array, the largest +inf if any value is NaN, "
        "negative or infinite: the weights' check and their sum in one vector pass.");
  py::enum_<xent::SoftmaxOp>(m, "SoftmaxOp")
      .value("logsumexp", xent::SoftmaxOp::kLogsumexp)
      .value("softmax", xent::SoftmaxOp::kSoftmax)
      .value("log_softmax", xent::SoftmaxOp::kLogSoftmax)
      .value("xent_label", xent::SoftmaxOp::kXentLabel)
      .value("xent_target", xent::SoftmaxOp::kXentTarget)
      .value("nll_label", xent::SoftmaxOp::kNllLabel)
      .value("kl_div", xent::SoftmaxOp::kKlDiv)
      .value("kl_div_log", xent::SoftmaxOp::kKlDivLog)
      .value("poly1_label", xent::SoftmaxOp::kPoly1Label)
      .value("poly1_target", xent::SoftmaxOp::kPoly1Target)
      .value("focal_label", xent::SoftmaxOp::kFocalLabel)
      .value("focal_target", xent::SoftmaxOp::kFocalTarget);
}

}  // namespace xent_py
