#include "common.hpp"

namespace xent_py {

namespace {

// A per-class vector: contiguous, one value per element of z's last axis (1 for a 0-d z).
std::unique_ptr<Ref> class_vector(const py::object& o, const char* name, int kind, const Ref& z) {
  auto r = opt_ref(o, false, name, kind);
  const int64_t C = z.ref.ndim == 0 ? 1 : z.ref.shape[z.ref.ndim - 1];
  if (r && (r->ref.ndim != 1 || r->ref.shape[0] != C || (C > 1 && r->ref.strides[0] != r->ref.itemsize)))
    throw py::value_error(std::string(name) + " must be a contiguous array of one value per element of the last axis");
  return r;
}

double sigmoid_op(const py::array& z, const py::array& t, const py::object& grad, const py::object& loss,
                  bool elementwise, double gscale, int n_threads, const py::object& weight,
                  const py::object& pos_weight, const py::object& elem_weight, double label_smoothing,
                  bool focal, double gamma, double alpha, double softcap) {
  // half logits: targets and grad in the logits' dtype, the rest (weights, loss) float32
  const ZKind zk = z_kind(z, "logits");
  const int kind = zk.kind;
  same_storage(t, zk, "targets");
  Ref zr(z, false, "logits"), tr(t, false, "targets");
  auto gr = opt_ref_like(grad, true, "grad", zk);
  auto lr = opt_ref(loss, true, "loss", kind);
  auto wr = class_vector(weight, "weight", kind, zr);
  auto pr = class_vector(pos_weight, "pos_weight", kind, zr);
  auto er = opt_ref(elem_weight, false, "elem_weight", kind);
  if (er && er->shape != zr.shape) throw py::value_error("elem_weight must have the logits' shape");
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) throw py::value_error("label_smoothing must be in [0, 1]");
  if (focal && !(gamma >= 0.0 && gamma < 1e300)) throw py::value_error("gamma must be finite and >= 0");
  if (!(softcap >= 0.0 && softcap < 1e300) || (focal && softcap != 0.0))
    throw py::value_error("softcap must be 0 (off) or finite and > 0, and is not supported with focal");
  xent::SigmoidOptions opt;
  opt.class_w = ptr(wr);
  opt.pos_w = ptr(pr);
  opt.elem_w = ptr(er);
  opt.smoothing = label_smoothing;
  opt.focal = focal;
  opt.gamma = gamma;
  opt.alpha = alpha;
  opt.softcap = softcap;
  opt.storage = zk.storage;
  py::gil_scoped_release release;
  if (kind == 4)
    return xent::run_sigmoid<float>(zr.ref, tr.ref, ptr(gr), ptr(lr), elementwise, gscale, n_threads, opt);
  return xent::run_sigmoid<double>(zr.ref, tr.ref, ptr(gr), ptr(lr), elementwise, gscale, n_threads, opt);
}

}  // namespace

void bind_sigmoid(py::module_& m) {
  m.def("sigmoid_op", &sigmoid_op, py::arg("z"), py::arg("t"), py::arg("grad"), py::arg("loss"),
        py::arg("elementwise"), py::arg("gscale"), py::arg("n_threads"), py::arg("weight") = py::none(),
        py::arg("pos_weight") = py::none(), py::arg("elem_weight") = py::none(), py::arg("label_smoothing") = 0.0,
        py::arg("focal") = false, py::arg("gamma") = 0.0, py::arg("alpha") = -1.0, py::arg("softcap") = 0.0,
        "Sigmoid cross-entropy or focal loss (summed axis last unless elementwise); returns the total loss.");
}

}  // namespace xent_py
