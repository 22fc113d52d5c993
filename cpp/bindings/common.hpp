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

// Half storage of float32 computations: float16, or bfloat16 (ml_dtypes' NumPy dtype,
// found by its name: NumPy has none of its own, and xent never imports ml_dtypes).
inline xent::Storage half_storage(const py::array& a) {
  const py::dtype d = a.dtype();
  if (d.itemsize() != 2 || d.byteorder() == '>') return xent::Storage::kNative;
  if (d.kind() == 'f') return xent::Storage::kF16;
  if (py::str(d.attr("name")).cast<std::string>() == "bfloat16") return xent::Storage::kBF16;
  return xent::Storage::kNative;
}

// The logits' storage and computation: half logits compute in float32 (kind 4).
struct ZKind {
  xent::Storage storage;
  int kind;
};
inline ZKind z_kind(const py::array& z, const char* name) {
  const xent::Storage s = half_storage(z);
  if (s != xent::Storage::kNative) return {s, 4};
  return {s, float_kind(z, name)};
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

inline void same_storage(const py::array& a, const ZKind& zk, const char* name) {
  if (zk.storage == xent::Storage::kNative) return same_float(a, zk.kind, name);
  if (half_storage(a) != zk.storage) throw py::type_error(std::string(name) + " must have the logits' dtype");
}

// An operand stored like the logits (targets, gradient, softmax output): their exact dtype.
inline std::unique_ptr<Ref> opt_ref_like(const py::object& o, bool writable, const char* name, const ZKind& zk) {
  if (o.is_none()) return nullptr;
  py::array a = py::reinterpret_borrow<py::array>(o);
  same_storage(a, zk, name);
  return std::make_unique<Ref>(a, writable, name);
}

inline const xent::ArrayRef* ptr(const std::unique_ptr<Ref>& r) { return r ? &r->ref : nullptr; }

void bind_softmax(py::module_& m);
void bind_sigmoid(py::module_& m);
void bind_hessian(py::module_& m);
void bind_proba(py::module_& m);
void bind_fast(py::module_& m);

}  // namespace xent_py
