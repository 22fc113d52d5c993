// Huge row weights in the softmax-family drivers (units-inl.hpp): a row's gradient scale
// taken apart into a mantissa and a power of two, so that no product of weights overflows
// where the weighted result does not (docs/losses.md, "Huge weights").
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace xent {
namespace XENT_ISA_NS {

// A row's gradient scale gscale * w (w = sample weight, times the label's class weight) is
// taken as m * 2^E, m in [1/8, 1) the product of the factors' mantissas and E the sum of
// their exponents. A row whose scale (times the bound of its in-row class weights) is too
// large for T is computed with the scale m, and its gradient multiplied by 2^E afterwards:
// exact, +-inf where it overflows, and 0 stays 0 (never inf * 0). Its loss takes the row
// weights one factor at a time. Other rows keep the plain path (bit-identical results).
struct SplitScale {
  double m = 1.0;
  int e = 0;
};
inline SplitScale split_scale(double a, double b, double c) {
  int ea = 0, eb = 0, ec = 0;
  const double m = std::frexp(a, &ea) * std::frexp(b, &eb) * std::frexp(c, &ec);
  return {m, ea + eb + ec};
}
// the same with m rounded to T (in [1/8, 1]): the row kernels round their scale to T, and
// their gradient at the label, T(m p_y) - m, must be exactly 0 where p_y is 1
template <class T>
inline SplitScale split_scale_t(double a, double b, double c) {
  SplitScale s = split_scale(a, b, c);
  s.m = static_cast<double>(static_cast<T>(s.m));
  return s;
}
// Also split a scale below T's smallest normal number (a tiny weight over the mean's
// denominator; it may round to 0): taken whole it would lose its digits, and 0 times a
// factor that overflows (a z-loss times a huge lse) would give NaN instead of +-inf.
template <class T>
inline bool row_scale_fits(double gs, double inrow) {
  return gs * inrow <= static_cast<double>(std::numeric_limits<T>::max()) / 64 &&  // false for inf and NaN
         gs >= static_cast<double>(std::numeric_limits<T>::min());
}
template <class T>
inline void ldexp_row(T* p, int64_t cs, int64_t n, int e) {
  for (int64_t i = 0; i < n; ++i) p[i * cs] = std::ldexp(p[i * cs], e);
}
// r * sw * cw, one factor at a time when their product overflows (r = 0 stays 0).
inline double weigh_loss(double r, double w, double sw, double cw) {
  return std::isfinite(w) ? r * w : (r * sw) * cw;
}

}  // namespace XENT_ISA_NS
}  // namespace xent
