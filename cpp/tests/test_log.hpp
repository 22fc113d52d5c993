// Accuracy of the vector log_unit and log_1m (KernelTable::vlog / vlog1m) against their
// contract in cpp/src/simd/math-inl.hpp, on every ISA (NEON included, under qemu).
#pragma once
#include "test_math.hpp"

namespace xt {

template <class T>
std::vector<T> run_vlog(bool one_minus, const std::vector<T>& x) {
  std::vector<T> y(x.size(), T(-7));
  (one_minus ? table<T>()->vlog1m : table<T>()->vlog)(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// The contract (3 ulp), tails in guarded buffers, special values, and each SIMD ISA bit for
// bit against the scalar one.
template <class T>
void log_on_isas(bool one_minus, const std::vector<T>& x, const std::vector<LD>& ref) {
  const char* fn = one_minus ? "vlog1m" : "vlog";
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> y_scalar;
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " " + fn;
    const std::vector<T> y = run_vlog(one_minus, x);
    const UlpStat<T> st = ulp_stat(x, y, ref);
    report().check(g, st.worst <= 3, static_cast<double>(st.worst / 3),
                   fmt("max relative error %.3Lf ulp (contract 3) at %.9Lg", st.worst, static_cast<LD>(st.at)));
    report().note(g, fmt("max %.3Lf ulp (contract 3) over %zu points", st.worst, x.size()));
    const std::vector<T> sp = run_vlog(one_minus, std::vector<T>{one_minus ? T(0) : T(1), nan, T(0.5)});
    report().check(g, sp[0] == 0 && std::isnan(sp[1]), 0, one_minus ? "log1m(0) == 0, NaN -> NaN" : "log(1) == 0, NaN -> NaN");
    bool tails = true;
    for (int64_t n = 0; n <= 17; ++n) {
      Guarded<T> gx(n), gy(n);
      for (int64_t i = 0; i < n; ++i) gx[i] = x[static_cast<size_t>(i)], gy[i] = T(-7);
      (one_minus ? table<T>()->vlog1m : table<T>()->vlog)(gx.data(), gy.data(), n);
      for (int64_t i = 0; i < n; ++i) tails = tails && bits_of(gy[i]) == bits_of(y[static_cast<size_t>(i)]);
    }
    report().check(g, tails, 0, "tail lengths 0..17 match the main loop, no access past the end");
    if (isa == "scalar")
      y_scalar = y;
    else
      report().check(g, same_values(y, y_scalar), 0, "bit-identical to the scalar ISA");
  }
}

template <class T>
void test_log(int64_t density) {
  using R = MathRef<T>;
  std::vector<T> x;
  add_bit_sweep<T>(x, std::numeric_limits<T>::denorm_min(), T(1), density, T(1));
  add_grid<T>(x, T(0.25), T(1), density);
  T v = static_cast<T>(std::sqrt(LD(0.5)));  // the reduction switch
  for (int j = 0; j < 8; ++j) v = std::nextafter(v, T(0));
  for (int j = 0; j < 17; ++j, v = std::nextafter(v, T(1))) x.push_back(v);
  x.erase(std::remove_if(x.begin(), x.end(), [](T u) { return !(u > 0 && u <= 1); }), x.end());
  std::vector<LD> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = static_cast<LD>(std::log(static_cast<R>(x[i])));
  log_on_isas<T>(false, x, ref);

  // log(1 - p): p over [0, 1) by bits and by a grid, and 1 - (the points above)
  std::vector<T> p;
  add_bit_sweep<T>(p, T(0), std::nextafter(T(1), T(0)), density, T(1));
  add_grid<T>(p, T(0), T(0.75), density);
  for (T u : x) p.push_back(T(1) - u);
  p.erase(std::remove_if(p.begin(), p.end(), [](T u) { return !(u >= 0 && u < 1); }), p.end());
  std::vector<LD> ref1(p.size());
  for (size_t i = 0; i < p.size(); ++i) ref1[i] = static_cast<LD>(std::log1p(-static_cast<R>(p[i])));
  log_on_isas<T>(true, p, ref1);
}

}  // namespace xt
