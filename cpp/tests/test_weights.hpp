// Weight vectors (kernels/weights-inl.hpp, through api.cpp's weight_stats, weight_sum and
// weights_from_f64) on every ISA: the sum within (kWeightBlock / kWeightLanes + 6) eps of a
// compensated long double reference, the same bits on every ISA (the order of the additions
// is fixed), +inf on overflow; the largest value, +inf for a NaN, negative or infinite weight
// (-0.0 is a weight of 0); float64 weights rounded to float32 as the hardware rounds them
// (+-inf beyond the range, the tie above FLT_MAX to +inf, NaN kept).
#pragma once
#include <cmath>
#include <limits>
#include <map>
#include <vector>

namespace xt {

template <class T>
void test_weight_stats() {
  const double eps = std::numeric_limits<double>::epsilon(), inf = std::numeric_limits<double>::infinity();
  std::map<std::string, double> first;  // (size, variant) -> the first ISA's sum
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string grp = isa + " " + dtype_name<T>() + " weight sums";
    uint64_t seed = 40 + sizeof(T);
    for (int64_t n : {0, 1, 15, 16, 17, 1023, 1024, 1025, 3001, 70000})
      for (int variant = 0; variant < 5; ++variant) {
        Rng rng(++seed);
        std::vector<T> w(static_cast<size_t>(n));
        for (auto& v : w) v = static_cast<T>(variant == 1 ? std::exp(rng.uniform(-30, 30)) : rng.uniform(0, 3));
        if (n > 0 && variant >= 2) {  // one bad weight, or a -0.0
          const T bad[] = {std::numeric_limits<T>::quiet_NaN(), T(-0.5), std::numeric_limits<T>::infinity()};
          w[rng.below(n)] = variant == 4 ? T(-0.0) : bad[rng.below(3)];
        }
        const bool invalid = n > 0 && (variant == 2 || variant == 3);
        long double s = 0, c = 0, top = 0;
        for (T v : w) {  // compensated long double
          const long double x = v, u = s + x;
          c += std::fabs(s) >= std::fabs(x) ? (s - u) + x : (x - u) + s;
          s = u;
          if (v > top) top = v;
        }
        T got_top = T(-1);
        const double got = xent::weight_stats<T>(w.data(), n, &got_top);
        const std::string what = fmt("n=%lld variant %d", static_cast<long long>(n), variant);
        if (invalid) {
          report().check(grp, got_top == std::numeric_limits<T>::infinity(), 0, what + ": top not +inf");
          continue;
        }
        const double want = static_cast<double>(s + c);
        const double err = std::fabs(got - want), tol = (1024 / 16 + 6) * eps * want;
        report().check(grp, err <= tol || (want == 0 && got == 0), tol > 0 ? err / tol : 0,
                       fmt("%s: sum %.17g, reference %.17g", what.c_str(), got, want));
        report().check(grp, static_cast<long double>(got_top) == top, 0, what + ": largest value");
        report().check(grp, xent::weight_sum<T>(w.data(), n) == got, 0, what + ": weight_sum differs");
        const std::string key = what;
        if (!first.count(key)) first[key] = got;
        report().check(grp, first[key] == got || (std::isnan(got) && std::isnan(first[key])), 0,
                       what + ": bits differ from the first ISA's");
      }
    if constexpr (sizeof(T) == 8) {  // overflow of the sum: +inf, not NaN
      std::vector<T> big(40, T(1e307));
      T top = 0;
      report().check(grp, xent::weight_stats<T>(big.data(), 40, &top) == inf && top == T(1e307), 0, "overflow");
    }
    if constexpr (sizeof(T) == 4) {
      const double fmax = std::numeric_limits<float>::max(), tie = fmax + std::ldexp(1.0, 103);
      std::vector<double> src{1.0, -2.5, 1e-50, 0.1, fmax, std::nextafter(tie, 0.0), tie, 1e39, -1e39,
                              std::numeric_limits<double>::quiet_NaN(), -0.0, 3.0, 1e-40};
      for (int rep = 0; rep < 3; ++rep) src.insert(src.end(), src.begin(), src.begin() + 13);  // every lane
      std::vector<float> dst(src.size(), -7.0f);
      xent::weights_from_f64<float>(src.data(), dst.data(), static_cast<int64_t>(src.size()));
      bool ok = true;
      for (size_t i = 0; i < src.size(); ++i) {
        const double x = src[i];
        const float want = std::isnan(x) ? NAN : std::fabs(x) >= tie ? (x > 0 ? INFINITY : -INFINITY)
                                                                        : static_cast<float>(x);
        const bool same = std::isnan(want) ? std::isnan(dst[i]) : (dst[i] == want && std::signbit(dst[i]) ==
                                                                                         std::signbit(want));
        if (!same) ok = false;
      }
      report().check(isa + " float32 weights from float64", ok, 0, "rounded as the hardware rounds");
    }
  }
}

}  // namespace xt
