// Bindings of the from-probabilities losses and log_logistic (cpp/src/kernels/proba-inl.hpp).
#include "common.hpp"

namespace xent_py {

namespace {

double proba_op(int op, const py::array& p, const py::object& t, const py::object& y, const py::object& grad,
                const py::object& loss, bool elementwise, bool renorm, double eps, double label_smoothing,
                double gscale, int n_threads) {
  const int kind = float_kind(p, "probs");
  if (op < 0 || op > static_cast<int>(xent::ProbaOp::kLogLogistic)) throw py::value_error("unknown op");
  Ref pr(p, false, "probs");
  auto tr = opt_ref(t, false, "targets", kind);
  auto gr = opt_ref(grad, true, "grad", kind);
  auto lr = opt_ref(loss, true, "loss", kind);
  std::unique_ptr<Ref> yr;
  if (!y.is_none()) {
    py::array ya = py::reinterpret_borrow<py::array>(y);
    if (!is_index(ya)) throw py::type_error("labels must be int32 or int64 here");
    yr = std::make_unique<Ref>(ya, false, "labels");
  }
  xent::ProbaArgs a;
  a.op = static_cast<xent::ProbaOp>(op);
  if ((a.op == xent::ProbaOp::kCategoricalLabel) != static_cast<bool>(yr))
    throw py::value_error("labels are required by, and only by, the categorical label op");
  if ((a.op == xent::ProbaOp::kCategoricalTarget || a.op == xent::ProbaOp::kBinary) != static_cast<bool>(tr))
    throw py::value_error("targets are required by, and only by, the target ops");
  if (a.op == xent::ProbaOp::kLogLogistic && (!lr || !elementwise || gr))
    throw py::value_error("log_logistic needs an elementwise loss (output) array and no gradient");
  if (!(eps > 0.0 && eps < 0.5)) throw py::value_error("eps must be in (0, 0.5)");
  a.t = ptr(tr);
  a.y = ptr(yr);
  a.grad = ptr(gr);
  a.loss = ptr(lr);
  a.elementwise = elementwise;
  a.renorm = renorm;
  a.eps = eps;
  a.smoothing = label_smoothing;
  a.gscale = gscale;
  py::gil_scoped_release release;
  if (kind == 4) return xent::run_proba<float>(pr.ref, a, n_threads);
  return xent::run_proba<double>(pr.ref, a, n_threads);
}

}  // namespace

void bind_proba(py::module_& m) {
  m.def("proba_op", &proba_op, py::arg("op"), py::arg("p"), py::arg("t"), py::arg("y"), py::arg("grad"),
        py::arg("loss"), py::arg("elementwise"), py::arg("renorm"), py::arg("eps"), py::arg("label_smoothing"),
        py::arg("gscale"), py::arg("n_threads"),
        "Cross-entropy from probabilities (op 0: categorical, labels; 1: categorical, targets; 2: binary) or "
        "log_logistic (op 3, into loss); returns the total loss, NaN if a probability is outside [0, 1].");
}

}  // namespace xent_py
