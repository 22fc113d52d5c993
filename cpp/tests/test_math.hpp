// Accuracy of the vector exp and log1p (KernelTable::vexp / vlog1p) against their contract
// in cpp/src/simd/math-inl.hpp, on the active ISA.
#pragma once
#include <functional>
#include <type_traits>

#include "test_util.hpp"

namespace xt {

// Reference precision: double is exact enough for float (its own error is ~1e-16, 1e-9
// of a float ulp); long double (x87 64-bit or IEEE quad mantissa) for double.
template <class T>
using MathRef = std::conditional_t<sizeof(T) == 4, double, LD>;

template <class T>
using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <class T>
Bits<T> bits_of(T x) {
  Bits<T> b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
template <class T>
T from_bits(Bits<T> b) {
  T x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Contract constants (math-inl.hpp): exp is accurate on [cutoff, 0] and 0 below.
template <class T>
T exp_cutoff() {
  return sizeof(T) == 4 ? T(-87.33654475f) : T(-708.3964185322641);
}

// n points with bit patterns spread evenly over [bits(lo), bits(hi)] (lo, hi >= 0): dense
// in every binade, down to the subnormals.
template <class T>
void add_bit_sweep(std::vector<T>& v, T lo, T hi, int64_t n, T sign) {
  const Bits<T> a = bits_of(lo), b = bits_of(hi);
  for (int64_t i = 0; i <= n; ++i) {
    const Bits<T> k = static_cast<Bits<T>>(a + static_cast<unsigned __int128>(b - a) * i / n);
    v.push_back(sign * from_bits<T>(k));
  }
}

template <class T>
void add_grid(std::vector<T>& v, T lo, T hi, int64_t n) {
  for (int64_t i = 0; i <= n; ++i) v.push_back(static_cast<T>(lo + (static_cast<double>(hi) - lo) * i / n));
}

// Max ulp error of y against ref over the points (ref > 0), and where.
template <class T>
struct UlpStat {
  LD worst = 0;
  T at = 0;
};
template <class T>
UlpStat<T> ulp_stat(const std::vector<T>& x, const std::vector<T>& y, const std::vector<LD>& ref) {
  UlpStat<T> st;
  for (size_t i = 0; i < x.size(); ++i) {
    if (ref[i] == 0) continue;
    const LD e = std::fabs(static_cast<LD>(y[i]) - ref[i]) / ulp_of<T>(ref[i]);
    if (!(e <= st.worst)) st.worst = e, st.at = x[i];
  }
  return st;
}

template <class T>
std::vector<T> run_vmath(bool log1p, const std::vector<T>& x) {
  std::vector<T> y(x.size(), T(-7));
  (log1p ? table<T>()->vlog1p : table<T>()->vexp)(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// Tail lengths 0..2*8+1 in guarded buffers (an access past the end would fault): each
// element must equal the one computed in the main loop for the same input.
template <class T>
bool tails_ok(bool log1p) {
  const int64_t nmax = 17;
  std::vector<T> xs(nmax);
  for (int64_t i = 0; i < nmax; ++i) xs[i] = log1p ? T(i) / T(nmax) : -T(i) / T(3);
  const std::vector<T> ys = run_vmath(log1p, xs);
  for (int64_t n = 0; n <= nmax; ++n) {
    Guarded<T> gx(n), gy(n);
    for (int64_t i = 0; i < n; ++i) gx[i] = xs[i], gy[i] = T(-7);
    (log1p ? table<T>()->vlog1p : table<T>()->vexp)(gx.data(), gy.data(), n);
    for (int64_t i = 0; i < n; ++i)
      if (bits_of(gy[i]) != bits_of(ys[i])) return false;
  }
  return true;
}

// Runs one function on every ISA: the ulp contract, the tails, and each SIMD ISA's results
// bit for bit against the scalar ISA's (same operations lane by lane, so the same bits).
template <class T>
void math_on_isas(bool log1p, const std::vector<T>& x, const std::vector<LD>& ref, double limit,
                  const std::function<void(const std::string&, const std::vector<T>&)>& extra) {
  const char* fn = log1p ? "vlog1p" : "vexp";
  std::vector<T> y_scalar;
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " " + fn;
    const std::vector<T> y = run_vmath(log1p, x);
    const UlpStat<T> st = ulp_stat(x, y, ref);
    report().check(g, st.worst <= limit, static_cast<double>(st.worst / limit),
                   fmt("max relative error %.3Lf ulp (contract %g) at %.9Lg", st.worst, limit, static_cast<LD>(st.at)));
    report().note(g, fmt("max %.3Lf ulp (contract %g) over %zu points", st.worst, limit, x.size()));
    extra(g, y);
    report().check(g, tails_ok<T>(log1p), 0, "tail lengths 0..17 match the main loop, no access past the end");
    if (isa == "scalar")
      y_scalar = y;
    else
      report().check(g, same_values(y, y_scalar), 0, "bit-identical to the scalar ISA");
  }
}

template <class T>
void test_exp(int64_t density) {
  using R = MathRef<T>;
  const T cut = exp_cutoff<T>(), ninf = -std::numeric_limits<T>::infinity();
  std::vector<T> x;
  add_bit_sweep<T>(x, T(0), -cut, density, T(-1));
  add_grid<T>(x, cut, T(0), density);
  Rng rng(11);
  for (int64_t i = 0; i < density / 4; ++i) x.push_back(static_cast<T>(-20 * std::log1p(-rng.uniform())));
  // both sides of every reduction boundary x = -(k + 1/2) step, where k changes: step = ln2
  // in float64, ln2 / 8 in float32 (2**(k/8), its table index and exponent, change there)
  const LD step = std::log(LD(2)) / (sizeof(T) == 4 ? 8 : 1);
  for (int k = 0; -(k + 0.5L) * step >= cut; ++k) {
    T b = static_cast<T>(-(k + 0.5L) * step);
    for (int j = 0; j < 3; ++j) b = std::nextafter(b, T(0));
    for (int j = 0; j < 7; ++j, b = std::nextafter(b, ninf)) x.push_back(b);
  }
  // float32 inputs where the former degree-5 polynomial exceeded 2 ulp (exhaustive sweep),
  // and the table form's worst (1.10 ulp; exhaustive sweeps against float64)
  if (sizeof(T) == 4)
    for (float v : {-0x1.b54966p+4f, -0x1.868f9ap+5f, -0x1.df497p+5f, -0x1.df4c92p+5f, -0x1.193c86p+6f,
                    -0x1.4596dcp+6f, -0x1.234b8p+6f, -0x1.5533a2p+6f})
      x.push_back(static_cast<T>(v));
  x.push_back(cut);
  x.push_back(std::nextafter(cut, T(0)));
  x.push_back(-std::numeric_limits<T>::denorm_min());
  x.erase(std::remove_if(x.begin(), x.end(), [&](T v) { return !(v >= cut && v <= 0); }), x.end());
  std::vector<LD> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = static_cast<LD>(std::exp(static_cast<R>(x[i])));
  // below the cutoff: within T's smallest normal of exp(x) (subnormal results), exactly 0
  // from the clamp on (x <= floor, -inf included); exp(0) == 1; NaN gives NaN
  const T floor = sizeof(T) == 4 ? T(-88) : T(-709);
  std::vector<T> sub;
  add_grid<T>(sub, floor, cut, density / 16);
  for (T v : {std::nextafter(cut, ninf), std::nextafter(floor, T(0))}) sub.push_back(v);
  sub.erase(std::remove_if(sub.begin(), sub.end(), [&](T v) { return !(v > floor && v < cut); }), sub.end());
  std::vector<T> lo;
  add_bit_sweep<T>(lo, -floor, std::numeric_limits<T>::max(), density / 16, T(-1));
  for (T v : {floor, T(floor - 1), T(-1e4), ninf}) lo.push_back(v);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> sp = {T(0), T(-0.0), nan, T(-1), nan, T(0), T(0), T(0), T(0)};
  math_on_isas<T>(false, x, ref, 2, [&](const std::string& g, const std::vector<T>&) {
    bool zeros = true;
    for (T v : run_vmath(false, lo)) zeros = zeros && v == 0;
    report().check(g, zeros, 0, "exp at and below the floor (incl. -inf) is 0");
    const std::vector<T> ys = run_vmath(false, sub);
    bool near = !sub.empty();
    for (size_t i = 0; i < sub.size(); ++i) {
      const LD ref = std::exp(static_cast<LD>(sub[i]));
      near = near && ys[i] >= 0 && std::fabs(static_cast<LD>(ys[i]) - ref) < static_cast<LD>(std::numeric_limits<T>::min());
    }
    report().check(g, near, 0, "exp between the floor and the cutoff is within the smallest normal of exp(x)");
    const std::vector<T> y = run_vmath(false, sp);
    report().check(g, y[0] == 1 && y[1] == 1 && y[5] == 1 && std::isnan(y[2]) && std::isnan(y[4]) && y[3] > 0, 0,
                   "exp(0) == 1 and NaN -> NaN");
  });
}

template <class T>
void test_log1p(int64_t density) {
  using R = MathRef<T>;
  std::vector<T> x;
  add_bit_sweep<T>(x, T(0), T(1), density, T(1));
  add_grid<T>(x, T(0), T(1), density);
  T v = static_cast<T>(std::sqrt(LD(2)) - 1);  // the reduction switch
  for (int j = 0; j < 8; ++j) v = std::nextafter(v, T(0));
  for (int j = 0; j < 17; ++j, v = std::nextafter(v, T(1))) x.push_back(v);
  x.push_back(T(1));
  x.push_back(std::nextafter(T(1), T(0)));
  std::vector<LD> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = static_cast<LD>(std::log1p(static_cast<R>(x[i])));
  math_on_isas<T>(true, x, ref, 3, [&](const std::string& g, const std::vector<T>& y) {
    bool zero_ok = true;
    for (size_t i = 0; i < x.size(); ++i) zero_ok = zero_ok && (x[i] != 0 || y[i] == 0);
    report().check(g, zero_ok, 0, "log1p(0) == 0");
  });
}

}  // namespace xt
