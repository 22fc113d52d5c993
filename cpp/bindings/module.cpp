// The extension module xent._core: registers one file per family. No maths here.
#include <pybind11/stl.h>

#include "common.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"

namespace py = pybind11;

namespace {

py::dict config() {
  py::dict d;
  d["compiled_isas"] = xent::compiled_isas();
  d["runnable_isas"] = xent::runnable_isas();
  d["isa"] = std::string(xent::active_isa()->name);
  d["hardware_threads"] = xent::hardware_threads();
  d["spin_us"] = xent::spin_us();
  return d;
}

void vector_math(const std::string& fn, const py::array& x, py::array& y) {
  const int kind = xent_py::float_kind(x, "x");
  xent_py::same_float(y, kind, "y");
  if (!(x.flags() & py::array::c_style) || !(y.flags() & py::array::c_style) || x.size() != y.size())
    throw py::value_error("x and y must be C-contiguous arrays of one size");
  if (fn == "log" || fn == "log1m") {
    const bool m1 = fn == "log1m";
    if (kind == 4)
      xent::vector_log<float>(m1, static_cast<const float*>(x.data()), static_cast<float*>(y.mutable_data()), x.size());
    else
      xent::vector_log<double>(m1, static_cast<const double*>(x.data()), static_cast<double*>(y.mutable_data()),
                               x.size());
    return;
  }
  if (fn != "exp" && fn != "log1p" && fn != "tanh")
    throw py::value_error("fn must be 'exp', 'log1p', 'tanh', 'log' or 'log1m'");
  const bool lg = fn == "log1p";
  if (fn == "tanh") {
    if (kind == 4)
      xent::vector_tanh<float>(static_cast<const float*>(x.data()), static_cast<float*>(y.mutable_data()), x.size());
    else
      xent::vector_tanh<double>(static_cast<const double*>(x.data()), static_cast<double*>(y.mutable_data()),
                                x.size());
    return;
  }
  if (kind == 4)
    xent::vector_math<float>(lg, static_cast<const float*>(x.data()), static_cast<float*>(y.mutable_data()), x.size());
  else
    xent::vector_math<double>(lg, static_cast<const double*>(x.data()), static_cast<double*>(y.mutable_data()),
                              x.size());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "xent's C++ core (use the functions of the xent package instead)";
  for (const std::string& err : {xent::isa_env_error(), xent::spin_env_error()})
    if (!err.empty()) throw std::runtime_error(err);
  xent_py::bind_softmax(m);
  xent_py::bind_sigmoid(m);
  xent_py::bind_hessian(m);
  xent_py::bind_proba(m);
  xent_py::bind_fast(m);
  m.def("config", &config, "Build and run-time configuration of the kernels.");
  m.def("set_isa", &xent::set_active_isa, py::arg("name"),
        "Switches the kernel set for this process; False if it cannot run here.");
  m.def("set_spin_us", &xent::set_spin_us, py::arg("us"),
        "Sets how long idle worker threads poll before sleeping (microseconds); False if not in [0, 1e6].");
  m.def("vector_math", &vector_math, py::arg("fn"), py::arg("x"), py::arg("y"),
        "y = exp(x) (x <= 0), log1p(x) (0 <= x <= 1), tanh(x), log(x) (0 < x <= 1) or log1m: "
        "log(1 - x) (0 <= x < 1) with the active ISA's vector code.");
}
