#include "common.hpp"

namespace xent_py {

namespace {

double sigmoid_op(const py::array& z, const py::array& t, const py::object& grad, const py::object& loss,
                  bool elementwise, double gscale, int n_threads) {
  const int kind = float_kind(z, "logits");
  same_float(t, kind, "targets");
  Ref zr(z, false, "logits"), tr(t, false, "targets");
  auto gr = opt_ref(grad, true, "grad", kind);
  auto lr = opt_ref(loss, true, "loss", kind);
  py::gil_scoped_release release;
  if (kind == 4) return xent::run_sigmoid<float>(zr.ref, tr.ref, ptr(gr), ptr(lr), elementwise, gscale, n_threads);
  return xent::run_sigmoid<double>(zr.ref, tr.ref, ptr(gr), ptr(lr), elementwise, gscale, n_threads);
}

}  // namespace

void bind_sigmoid(py::module_& m) {
  m.def("sigmoid_op", &sigmoid_op, py::arg("z"), py::arg("t"), py::arg("grad"), py::arg("loss"),
        py::arg("elementwise"), py::arg("gscale"), py::arg("n_threads"),
        "Sigmoid cross-entropy (summed axis last unless elementwise); returns the total loss.");
}

}  // namespace xent_py
