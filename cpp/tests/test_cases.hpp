// Test inputs for the softmax family: logical (rows, C) data, their physical layout, and
// the per-row reference (max, log of the shifted sum, lse) computed plainly in high precision.
#pragma once
#include "test_math.hpp"

namespace xt {

// kConstant: equal logits (and targets) along each row, but for one larger logit in the
// softmax family: long runs of identical terms make float sums drift systematically.
enum class Pattern { kRandom, kBig, kMasked, kConstant };

inline const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::kRandom: return "random";
    case Pattern::kBig: return "+-1e4";
    case Pattern::kMasked: return "-inf masks, NaN";
    default: return "constant";
  }
}

// Where logical element (r, c) lives. Contiguous: shape (R, C), C order. Strided: shape
// (2, R/2, C) stored as [2][C][R/2], so the class axis has stride R/2 (not contiguous) and
// the two row dims cannot be merged; per-row operands (labels, row_out) are stored
// transposed, [R/2][2].
struct Layout {
  int64_t R, C, A, B;
  bool strided;
  Layout(int64_t r, int64_t c, bool s) : R(r), C(c), A(s ? 2 : 1), B(s ? r / 2 : r), strided(s) {}
  int64_t off(int64_t r, int64_t c) const { return strided ? ((r / B) * C + c) * B + r % B : r * C + c; }
  int64_t roff(int64_t r) const { return strided ? (r % B) * A + r / B : r; }
  std::vector<int64_t> shape() const { return strided ? std::vector<int64_t>{A, B, C} : std::vector<int64_t>{R, C}; }
  std::vector<int64_t> strides() const {
    return strided ? std::vector<int64_t>{C * B, 1, B} : std::vector<int64_t>{C, 1};
  }
  std::vector<int64_t> row_shape() const { return strided ? std::vector<int64_t>{A, B} : std::vector<int64_t>{R}; }
  std::vector<int64_t> row_strides() const { return strided ? std::vector<int64_t>{1, A} : std::vector<int64_t>{1}; }
};

template <class T>
struct SmCase {
  explicit SmCase(const Layout& l) : L(l) {}
  Layout L;
  std::string name;
  std::vector<T> z, t;  // logical, row-major (R, C)
  std::vector<int64_t> y;
  double gscale = 1;
  // reference: per row, and the probabilities
  std::vector<LD> m, logs, lse, tsum, p;
  std::vector<char> masked;
};

// Targets are dyadic, k/256 with k in [0, 256): every partial sum is exact in float, in any
// order, so the kernel's target sum equals the reference's and the gradient check isolates
// the softmax error.
template <class T>
SmCase<T> make_sm_case(int64_t C, int64_t R, Pattern p, bool strided, uint64_t seed, bool with_ref = true) {
  SmCase<T> k(Layout(R, C, strided));
  k.name = fmt("C=%lld R=%lld %s%s", static_cast<long long>(C), static_cast<long long>(R), pattern_name(p),
               strided ? " strided" : "");
  const T ninf = -std::numeric_limits<T>::infinity();
  Rng rng(seed);
  k.z.resize(R * C);
  k.t.resize(R * C);
  k.y.resize(R);
  k.gscale = 1.0 / static_cast<double>(R);
  for (int64_t r = 0; r < R; ++r) {
    T* z = &k.z[r * C];
    T* t = &k.t[r * C];
    for (int64_t c = 0; c < C; ++c) {
      if (p == Pattern::kConstant)
        z[c] = static_cast<T>(c == r % C ? 1.3 : 0.3);
      else if (p == Pattern::kBig)
        z[c] = static_cast<T>((rng.uniform() < 0.5 ? 1e4 : -1e4) + rng.uniform(-4, 4));
      else if (p == Pattern::kMasked && rng.uniform() < 0.3)
        z[c] = ninf;
      else
        z[c] = static_cast<T>(3 * rng.normal());
      t[c] = rng.uniform() < 0.25 ? T(0) : static_cast<T>(rng.below(256) / 256.0);
      if (p == Pattern::kConstant) t[c] = T(95.0 / 256);
    }
    std::vector<int64_t> finite, masked;
    if (p == Pattern::kMasked && r == 1) std::fill(z, z + C, ninf);  // a fully masked row
    for (int64_t c = 0; c < C; ++c) (std::isinf(z[c]) ? masked : finite).push_back(c);
    if (finite.empty() && r != 1) {
      z[0] = 0;
      finite.push_back(0);
      masked.erase(masked.begin());
    }
    if (p == Pattern::kMasked)
      for (int64_t c : masked) t[c] = 0;  // no target mass on masked classes ...
    k.y[r] = finite.empty() ? rng.below(C) : finite[rng.below(static_cast<int64_t>(finite.size()))];
    if (p == Pattern::kMasked && r == 2 && !masked.empty()) {  // ... except here: loss +inf
      k.y[r] = masked[0];
      t[masked[0]] = T(0.5);
    }
    const T nan = std::numeric_limits<T>::quiet_NaN();
    if (p == Pattern::kMasked && r == 3) z[C / 2] = nan;  // a NaN among finite logits
    if (p == Pattern::kMasked && r == 4) {  // a NaN in a first block that is otherwise masked
      std::fill(z, z + std::min<int64_t>(C, 2048), ninf);
      z[std::min<int64_t>(C, 2048) / 2] = nan;
    }
  }
  if (!with_ref) return k;
  // reference
  using Rt = MathRef<T>;
  std::vector<Rt> e(C);
  for (int64_t r = 0; r < R; ++r) {
    const T* z = &k.z[r * C];
    Rt m = -std::numeric_limits<Rt>::infinity(), s = 0, ts = 0;
    bool nan = false;
    for (int64_t c = 0; c < C; ++c) {
      m = std::max(m, static_cast<Rt>(z[c]));
      nan = nan || std::isnan(z[c]);
      ts += k.t[r * C + c];
    }
    if (nan) m = std::numeric_limits<Rt>::quiet_NaN();  // NaN anywhere: the whole row is NaN
    const bool msk = std::isinf(m);
    for (int64_t c = 0; c < C; ++c) s += e[c] = msk ? 0 : std::exp(static_cast<Rt>(z[c]) - m);
    for (int64_t c = 0; c < C; ++c) k.p.push_back(msk ? 0 : e[c] / s);
    k.m.push_back(m);
    k.masked.push_back(msk);
    k.logs.push_back(msk ? 0 : std::log(s));
    k.lse.push_back(msk ? m : m + std::log(s));
    k.tsum.push_back(ts);
  }
  return k;
}

// Named outputs of one ISA on one case: values and their tolerances against the reference.
using IsaOut = std::map<std::string, std::pair<std::vector<double>, std::vector<double>>>;

// Each output of a SIMD ISA against the scalar one: non-finite values must be identical
// and finite ones within the sum of the two tolerances (each ISA's contract with the
// reference; so the two agree as closely as the contract allows).
inline void compare_with_scalar(const std::string& group, const std::string& name, const IsaOut& simd,
                                const IsaOut& scalar) {
  for (const auto& kv : simd) {
    auto it = scalar.find(kv.first);
    if (it == scalar.end()) {
      report().check(group, false, 0, name + " " + kv.first + ": no scalar result");
      continue;
    }
    const auto& a = kv.second;
    const auto& b = it->second;
    std::vector<double> tol(a.second.size());
    for (size_t i = 0; i < tol.size(); ++i) tol[i] = a.second[i] + b.second[i];
    check_close(group, name + " " + kv.first, a.first.data(), b.first.data(), tol.data(),
                static_cast<int64_t>(tol.size()));
  }
}

}  // namespace xt
