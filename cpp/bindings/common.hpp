// Helpers shared by the binding files: exact dtypes in, pointers out. No maths here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "api.hpp"

namespace xent_py {
namespace py = pybind11;

// Keeps shape/strides alive for an ArrayRef.
struct Ref {
  std::vector<int64_t> shape, strides;
  xent::ArrayRef ref;
  Ref(const py::array& a, bool writable, const char* name) {
    if (writable && !a.writeable()) throw py::value_error(std::string(name) + " is read-only");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) throw py::value_error(std::string(name) + " is not aligned");
    const int nd = static_cast<int>(a.ndim());
    for (int d = 0; d < nd; ++d) {
      shape.push_back(static_cast<int64_t>(a.shape(d)));
      strides.push_back(static_cast<int64_t>(a.strides(d)));
    }
    ref.data = const_cast<void*>(a.data());
    ref.ndim = nd;
    ref.shape = shape.data();
    ref.strides = strides.data();
    ref.itemsize = static_cast<int64_t>(a.itemsize());
  }
};

// Native byte order is the Python layer's job; here a float is a float of that size.
inline bool is_float(const py::array& a, py::ssize_t size) {
  const py::dtype d = a.dtype();
  return d.kind() == 'f' && d.itemsize() == size && d.byteorder() != '>';
}
inline bool is_f32(const py::array& a) { return is_float(a, 4); }
inline bool is_f64(const py::array& a) { return is_float(a, 8); }
inline bool is_index(const py::array& a) {
  const py::dtype d = a.dtype();
  return d.kind() == 'i' && (d.itemsize() == 4 || d.itemsize() == 8) && d.byteorder() != '>';
}

// dtype of the computation: 4 (float32) or 8 (float64); TypeError otherwise.
inline int float_kind(const py::array& a, const char* name) {
  if (is_f32(a)) return 4;
  if (is_f64(a)) return 8;
  throw py::type_error(std::string(name) + " must be float32 or float64 here");
}

inline void same_float(const py::array& a, int kind, const char* name) {
  if (float_kind(a, name) != kind) throw py::type_error(std::string(name) + " must have the logits' dtype");
}

inline std::unique_ptr<Ref> opt_ref(const py::object& o, bool writable, const char* name, int kind) {
  if (o.is_none()) return nullptr;
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (kind) same_float(a, kind, name);
  return std::make_unique<Ref>(a, writable, name);
}

inline const xent::ArrayRef* ptr(const std::unique_ptr<Ref>& r) { return r ? &r->ref : nullptr; }

void bind_softmax(py::module_& m);
void bind_sigmoid(py::module_& m);
void bind_hessian(py::module_& m);
void bind_proba(py::module_& m);
void bind_fast(py::module_& m);

}  // namespace xent_py
