// Hessians for Newton-type solvers (see cpp/src/kernels/hessian-inl.hpp). No maths here.
#include "common.hpp"

namespace xent_py {

namespace {

void hessian_op(int op, const py::array& z, const py::object& t, const py::object& v, const py::object& y,
                const py::object& sample_weight, const py::object& hess, const py::object& grad, int n_threads) {
  const int kind = float_kind(z, "logits");
  const auto hop = static_cast<xent::HessianOp>(op);
  if (hop != xent::HessianOp::kSigmoid && z.ndim() < 1)
    throw py::value_error("logits must have at least one dimension");
  Ref zr(z, false, "logits");
  auto tr = opt_ref(t, false, "targets", kind);
  auto vr = opt_ref(v, false, "v", kind);
  auto sr = opt_ref(sample_weight, false, "sample_weight", kind);
  auto hr = opt_ref(hess, true, "out", kind);
  auto gr = opt_ref(grad, true, "grad_out", kind);
  std::unique_ptr<Ref> yr;
  if (!y.is_none()) {
    py::array ya = py::reinterpret_borrow<py::array>(y);
    if (!is_index(ya)) throw py::type_error("labels must be int32 or int64 here");
    yr = std::make_unique<Ref>(ya, false, "labels");
  }
  py::gil_scoped_release release;
  if (kind == 4)
    xent::run_hessian<float>(hop, zr.ref, ptr(tr), ptr(vr), ptr(yr), ptr(sr), ptr(hr), ptr(gr), n_threads);
  else
    xent::run_hessian<double>(hop, zr.ref, ptr(tr), ptr(vr), ptr(yr), ptr(sr), ptr(hr), ptr(gr), n_threads);
}

}  // namespace

void bind_hessian(py::module_& m) {
  m.def("hessian_op", &hessian_op, py::arg("op"), py::arg("z"), py::arg("t"), py::arg("v"), py::arg("y"),
        py::arg("sample_weight"), py::arg("hess"), py::arg("grad"), py::arg("n_threads"),
        "Runs one Hessian op: elementwise sigmoid, or softmax diagonal / Hessian-vector product (class axis last).");
  py::enum_<xent::HessianOp>(m, "HessianOp")
      .value("sigmoid", xent::HessianOp::kSigmoid)
      .value("softmax_diag", xent::HessianOp::kSoftmaxDiag)
      .value("softmax_hvp", xent::HessianOp::kSoftmaxHvp);
}

}  // namespace xent_py
