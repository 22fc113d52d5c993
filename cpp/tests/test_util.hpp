// Helpers of the C++ kernel tests (test_kernels.cpp): result bookkeeping, a portable
// random generator, ulp and tolerance helpers, guarded buffers and ArrayRef builders.
// No dependencies beyond the standard library and POSIX mmap.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "api.hpp"
#include "dispatch.hpp"

namespace xt {

using LD = long double;

// ---- bookkeeping -----------------------------------------------------------------------

struct Group {
  std::string name;
  int64_t passed = 0, failed = 0;
  double worst = 0;  // largest error / tolerance seen (<= 1 when everything passes)
  std::string note, worst_what;
  bool printed = false;
};

class Report {
 public:
  Group& group(const std::string& name) {
    auto it = index_.find(name);
    if (it != index_.end()) return groups_[it->second];
    index_[name] = groups_.size();
    groups_.emplace_back();
    groups_.back().name = name;
    return groups_.back();
  }
  // One check: ok, the error/tolerance ratio it reached, and a description for failures.
  void check(const std::string& g, bool ok, double ratio, const std::string& what) {
    Group& gr = group(g);
    if (ratio == ratio && ratio >= gr.worst) {
      gr.worst = ratio;
      gr.worst_what = what;
    }
    if (ok) {
      ++gr.passed;
    } else {
      ++gr.failed;
      if (gr.failed <= 8) std::printf("  FAIL [%s] %s\n", g.c_str(), what.c_str());
    }
  }
  void note(const std::string& g, const std::string& text) { group(g).note = text; }
  // Prints the groups not printed yet, one line each.
  void flush() {
    for (Group& g : groups_) {
      if (g.printed) continue;
      g.printed = true;
      std::printf("%-34s %s %4lld passed %3lld failed  worst err/tol %.3f%s%s\n", g.name.c_str(),
                  g.failed ? "FAIL" : "ok  ", static_cast<long long>(g.passed), static_cast<long long>(g.failed),
                  g.worst, g.note.empty() ? "" : "  ", g.note.c_str());
      if (verbose) std::printf("    (worst: %s)\n", g.worst_what.c_str());
    }
    std::fflush(stdout);
  }
  bool verbose = false;
  int64_t passed() const { return sum(&Group::passed); }
  int64_t failed() const { return sum(&Group::failed); }

 private:
  int64_t sum(int64_t Group::*f) const {
    int64_t s = 0;
    for (const Group& g : groups_) s += g.*f;
    return s;
  }
  std::vector<Group> groups_;
  std::map<std::string, size_t> index_;
};

inline Report& report() {
  static Report r;
  return r;
}

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---- random numbers (splitmix64: same stream on every platform) ------------------------

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// ---- precision helpers -----------------------------------------------------------------

template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "f32" : "f64";
}
template <class T>
constexpr double unit_roundoff() {  // u = 2**-digits: one rounding errs by at most u relative
  return sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
}
// Spacing of T at |v| (the subnormal spacing below the normal range).
template <class T>
LD ulp_of(LD v) {
  v = std::fabs(v);
  int e = v > 0 ? std::ilogb(v) : std::numeric_limits<T>::min_exponent - 1;
  e = std::max(e, std::numeric_limits<T>::min_exponent - 1);
  return std::ldexp(LD(1), e - (std::numeric_limits<T>::digits - 1));
}
template <class T>
constexpr double tiny() {  // smallest normal of T
  return std::numeric_limits<T>::min();
}

// Per-row loss tolerance of the brief: float 2e-6 relative or 1e-6 absolute; double 1e-13
// relative or 1e-14 absolute.
template <class T>
double loss_tol(double ref) {
  const double r = std::fabs(ref);
  return sizeof(T) == 4 ? std::max(2e-6 * r, 1e-6) : std::max(1e-13 * r, 1e-14);
}

// Compares got against ref with per-element tolerances; non-finite references must be
// matched exactly (same infinity, or NaN). The difference is taken in long double, so a
// long double reference keeps its extra digits.
struct Mismatch {
  double worst = 0;  // largest |got - ref| / tol
  int64_t bad = 0, first = -1;
  LD got = 0, ref = 0;
  double tol = 0;
};

template <class G, class Rf>
Mismatch compare(const G* got, const Rf* ref, const double* tol, int64_t n) {
  Mismatch m;
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const LD g = static_cast<LD>(got[i]), r = static_cast<LD>(ref[i]);
    double ratio;
    if (!std::isfinite(r) || !std::isfinite(g)) {
      ratio = (std::isnan(r) && std::isnan(g)) || g == r ? 0.0 : inf;
    } else {
      const double e = static_cast<double>(std::fabs(g - r));
      ratio = e == 0 ? 0.0 : tol[i] > 0 ? e / tol[i] : inf;
    }
    if (ratio > 1.0 && m.bad++ == 0) {
      m.first = i;
      m.got = g;
      m.ref = r;
      m.tol = tol[i];
    }
    if (ratio > m.worst) m.worst = ratio;
  }
  return m;
}

// Records one comparison as one check.
template <class G, class Rf>
void check_close(const std::string& group, const std::string& what, const G* got, const Rf* ref, const double* tol,
                 int64_t n) {
  const Mismatch m = compare(got, ref, tol, n);
  report().check(group, m.bad == 0, m.worst,
                 m.bad == 0 ? what
                            : fmt("%s: %lld of %lld off, first at %lld: got %.10Lg ref %.10Lg tol %.3g", what.c_str(),
                                  static_cast<long long>(m.bad), static_cast<long long>(n),
                                  static_cast<long long>(m.first), m.got, m.ref, m.tol));
}

// Equal values element by element: the same bits, or both NaN.
template <class T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
  return true;
}

// ---- memory ----------------------------------------------------------------------------

// n elements ending exactly at a PROT_NONE page: reading or writing past the end faults.
template <class T>
class Guarded {
 public:
  explicit Guarded(size_t n) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = n * sizeof(T);
    len_ = ((bytes + page - 1) / page + 1) * page;
    void* b = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<char*>(b);
    if (mprotect(base_ + len_ - page, page, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
    data_ = reinterpret_cast<T*>(base_ + len_ - page - bytes);
  }
  ~Guarded() { munmap(base_, len_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  T* data() { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return n_; }

 private:
  size_t n_, len_;
  char* base_;
  T* data_;
};

// An ArrayRef with its own shape and (byte) strides.
struct Ref {
  std::vector<int64_t> shape, strides;
  xent::ArrayRef ref;
  Ref(void* data, std::vector<int64_t> shp, std::vector<int64_t> elem_strides, int64_t itemsize)
      : shape(std::move(shp)), strides(std::move(elem_strides)) {
    for (auto& s : strides) s *= itemsize;
    ref.data = data;
    ref.ndim = static_cast<int>(shape.size());
    ref.shape = shape.data();
    ref.strides = strides.data();
    ref.itemsize = itemsize;
  }
};

inline std::vector<std::string> isas() { return xent::runnable_isas(); }

inline void use_isa(const std::string& name) {
  if (!xent::set_active_isa(name)) throw std::runtime_error("cannot select ISA " + name);
}

template <class T>
const xent::KernelTable<T>* table() {
  if constexpr (sizeof(T) == 4)
    return xent::active_isa()->f32;
  else
    return xent::active_isa()->f64;
}

}  // namespace xt
