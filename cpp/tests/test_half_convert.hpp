// Half storage conversions on every ISA (test_half.hpp runs them): reference conversions
// by long double arithmetic (not the kernels' bit tricks), and the kernels' conversions
// through run_softmax: all 65536 bit patterns read and written back (KL divergence's
// gradient -t with gscale -1 is t itself), float32 values rounded to half (the NLL
// gradient at the label is -gscale * w, with w a per-row sample weight), ties, the
// overflow threshold, subnormals, +-inf and NaN; contiguous (vector) and strided (scalar).
#pragma once
#include "test_util.hpp"

namespace xt {

using xent::Storage;

// ---- reference conversions (by long double arithmetic, not the kernels' bit tricks) ----

inline LD ref_half_value(uint16_t h, Storage s) {
  if (s == Storage::kBF16) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const int e = (h >> 10) & 31, m = h & 1023;
  const LD sign = (h & 0x8000) ? -1 : 1;
  if (e == 31) return m ? std::numeric_limits<LD>::quiet_NaN() : sign * std::numeric_limits<LD>::infinity();
  return sign * (e == 0 ? std::ldexp(LD(m), -24) : std::ldexp(LD(1024 + m), e - 25));
}

// float32 -> half bits, to nearest even (nearbyint under the default rounding mode).
inline uint16_t ref_round_half(float f, Storage s) {
  if (std::isnan(f)) return s == Storage::kBF16 ? 0x7fc0 : 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const LD a = std::fabs(static_cast<LD>(f));
  const bool bf = s == Storage::kBF16;
  const int emin = bf ? -126 : -14, mant = bf ? 7 : 10, bias = bf ? 127 : 15;
  const uint16_t inf = bf ? 0x7f80 : 0x7c00;
  if (a == 0) return sign;
  if (std::isinf(a)) return sign | inf;
  const int e = std::max(std::ilogb(a), emin);
  const LD q = std::ldexp(LD(1), e - mant);
  const LD v = std::nearbyint(a / q) * q;  // may carry into the next binade
  if (v == 0) return sign;
  const int ev = std::ilogb(v);
  if (ev + bias >= (bf ? 255 : 31)) return sign | inf;
  if (ev < emin) return sign | static_cast<uint16_t>(v / std::ldexp(LD(1), emin - mant));  // subnormal
  const uint16_t frac = static_cast<uint16_t>(v / std::ldexp(LD(1), ev - mant) - (1 << mant));
  return sign | static_cast<uint16_t>((ev + bias) << mant) | frac;
}

inline bool half_is_nan(uint16_t h, Storage s) {
  return s == Storage::kBF16 ? (h & 0x7fff) > 0x7f80 : (h & 0x7fff) > 0x7c00;
}
// Same bits, or both NaN.
inline bool same_half(uint16_t a, uint16_t b, Storage s) {
  return a == b || (half_is_nan(a, s) && half_is_nan(b, s));
}
inline const char* storage_name(Storage s) { return s == Storage::kF16 ? "f16" : "bf16"; }

// All 65536 patterns: read (loads) and written back (stores) by KL divergence's gradient
// -gscale * t with gscale = -1; contiguous (vector conversions) and strided (scalar).
inline void test_half_roundtrip(const std::string& isa, Storage s) {
  use_isa(isa);
  const std::string g = isa + " " + storage_name(s) + " conversions";
  for (int64_t cs : {1, 3}) {
    const int64_t C = 4099, R = 16;  // 65584 elements: every pattern, and odd tails
    Guarded<uint16_t> lp(static_cast<size_t>(R * C * cs)), t(static_cast<size_t>(R * C * cs)), gr(static_cast<size_t>(R * C * cs));
    for (int64_t i = 0; i < R * C * cs; ++i) lp[i] = 0, t[i] = static_cast<uint16_t>((i / cs) & 0xffff), gr[i] = 0;
    std::vector<float> rows(static_cast<size_t>(R));
    Ref lr(lp.data(), {R, C}, {C * cs, cs}, 2), tr(t.data(), {R, C}, {C * cs, cs}, 2), grr(gr.data(), {R, C}, {C * cs, cs}, 2);
    Ref rr(rows.data(), {R}, {1}, 4);
    xent::XentOptions o;
    o.storage = s;
    xent::run_softmax<float>(xent::SoftmaxOp::kKlDiv, lr.ref, &tr.ref, nullptr, &grr.ref, &rr.ref, -1.0, 1, o);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < R * C; ++i) {
      const uint16_t want = t[i * cs] == 0x8000 ? 0 : t[i * cs];  // a zero target's gradient is +0
      if (!same_half(gr[i * cs], want, s) && bad++ == 0) first = i;
    }
    report().check(g, bad == 0, 0,
                   fmt("every bit pattern read and written back unchanged (class stride %lld)%s",
                       static_cast<long long>(cs), bad ? fmt(": %lld differ, first %lld", static_cast<long long>(bad),
                                                            static_cast<long long>(first)).c_str() : ""));
  }
  // float32 -> half rounding: the NLL gradient at the label is -gscale * w = w (gscale -1)
  std::vector<float> vals;
  Rng rng(77);
  for (int i = 0; i < 4000; ++i) {  // random bit patterns over the whole float32 range
    const uint32_t u = static_cast<uint32_t>(rng.next());
    float f;
    std::memcpy(&f, &u, 4);
    vals.push_back(f);
  }
  for (int i = 0; i < 2000; ++i) {  // exact ties and their neighbours, in every binade of the format
    const uint16_t h = static_cast<uint16_t>(rng.next());
    if (half_is_nan(h, s) || (h & 0x7fff) >= (s == Storage::kF16 ? 0x7bff : 0x7f7f)) continue;
    const LD a = ref_half_value(h, s), b = ref_half_value(static_cast<uint16_t>(h + 1), s);
    const float mid = static_cast<float>((a + b) / 2);
    vals.push_back(mid);
    vals.push_back(std::nextafter(mid, 0.f));
    vals.push_back(std::nextafter(mid, 1e30f));
  }
  const float more[] = {65504.f, 65519.996f, 65520.f, -65520.f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f,
                        8.9406967e-8f, 6.1035156e-5f, 6.1035152e-5f, 3.3895314e38f, 3.4028235e38f, 1e-45f, -0.f,
                        INFINITY, -INFINITY, NAN, -NAN};
  vals.insert(vals.end(), std::begin(more), std::end(more));
  // NaNs whose low bits would carry into the exponent if rounded as numbers (bfloat16's
  // integer rounding: 0x7fffffff would become -0, 0x7f80ffff +inf), quiet and signalling
  for (const uint32_t u : {0x7fffffffu, 0xffffffffu, 0x7fbfffffu, 0x7f80ffffu, 0x7fc08000u}) {
    float f;
    std::memcpy(&f, &u, 4);
    vals.push_back(f);
  }
  const int64_t R = static_cast<int64_t>(vals.size());
  for (int64_t C : {1, 8, 17}) {
    Guarded<uint16_t> lp(static_cast<size_t>(R * C)), gr(static_cast<size_t>(R * C));
    std::vector<int64_t> y(static_cast<size_t>(R));
    for (int64_t i = 0; i < R * C; ++i) lp[i] = 0, gr[i] = 0x5555;
    for (int64_t r = 0; r < R; ++r) y[static_cast<size_t>(r)] = r % C;
    Ref lr(lp.data(), {R, C}, {C, 1}, 2), grr(gr.data(), {R, C}, {C, 1}, 2), yr(y.data(), {R}, {1}, 8);
    Ref wr(vals.data(), {R}, {1}, 4);
    xent::XentOptions o;
    o.storage = s;
    o.sw = &wr.ref;
    xent::run_softmax<float>(xent::SoftmaxOp::kNllLabel, lr.ref, nullptr, &yr.ref, &grr.ref, nullptr, -1.0, 1, o);
    int64_t bad = 0;
    std::string first;
    for (int64_t r = 0; r < R; ++r) {
      const float w = vals[static_cast<size_t>(r)];
      if (w == 0) continue;  // a weight-0 row is skipped (all zeros)
      const uint16_t got = gr[r * C + y[static_cast<size_t>(r)]], want = ref_round_half(w, s);
      if (!same_half(got, want, s) && bad++ == 0) first = fmt(": %.9g -> 0x%04x, want 0x%04x", w, got, want);
    }
    report().check(g, bad == 0, 0,
                   fmt("float32 -> half to nearest even, %zu values (C=%lld)%s", vals.size(),
                       static_cast<long long>(C), bad ? (fmt(" %lld wrong", static_cast<long long>(bad)) + first).c_str() : ""));
  }
}

}  // namespace xt
