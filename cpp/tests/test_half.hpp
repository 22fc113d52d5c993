// Half storage (float16, bfloat16) on every ISA: run_softmax and run_sigmoid with
// Storage::kF16 / kBF16 against
//   - a long double reference computed from the half values (exact in long double): the
//     cross-entropy loss within the float32 tolerance, the gradient within one half ulp;
//   - the float32 run on the upcast values: the same loss bits (the half path computes in
//     float32 on exactly those values), and every gradient / softmax element equal to the
//     float32 result rounded to half by the reference rounding (to nearest even);
// and the conversions themselves (test_half_convert.hpp). Sizes around every vector width, the
// rows-in-lanes kernels (C <= 128 in float32) and the 2048 block; contiguous and strided; the half
// buffers end at a guard page (no read or write past a tail).
#pragma once
#include "test_half_convert.hpp"

namespace xt {

// One half problem: R rows of C logits (class stride cs), its float32 upcast, labels.
struct HalfCase {
  Storage s;
  int64_t R, C, cs;
  std::string name;
  std::vector<uint16_t> z;  // R * C * cs elements (strided: every cs-th is a logit)
  std::vector<float> zf;    // the same values in float32, same layout
  std::vector<int64_t> y;
};

inline uint16_t ref_from_double(double v, Storage s) { return ref_round_half(static_cast<float>(v), s); }

inline HalfCase make_half_case(Storage s, int64_t C, int64_t R, int pattern, bool strided, uint64_t seed) {
  HalfCase k{s, R, C, strided ? 2 : 1, "", {}, {}, {}};
  const char* pn[] = {"random", "big", "masked", "extreme"};
  k.name = fmt("%s C=%lld %s%s", storage_name(s), static_cast<long long>(C), pn[pattern], strided ? " strided" : "");
  Rng rng(seed);
  const double big = s == Storage::kF16 ? 6e4 : 1e30;  // within each format's range
  k.z.assign(static_cast<size_t>(R * C * k.cs), ref_from_double(-7.0, s));
  for (int64_t r = 0; r < R; ++r) {
    k.y.push_back(rng.below(C));
    for (int64_t c = 0; c < C; ++c) {
      double v = 3 * rng.normal();
      if (pattern == 1) v = rng.uniform(-big, big);
      if (pattern == 2 && rng.uniform() < 0.3) v = -INFINITY;
      if (pattern == 2 && r == 1 && c == C / 2) v = NAN;  // one NaN row
      if (pattern == 2 && r == 2) v = -INFINITY;           // one fully masked row
      if (pattern == 3) {  // the extremes of the format: largest finite, smallest subnormal, +inf
        const double ex[] = {big, -big, s == Storage::kF16 ? 65504.0 : 3.38e38, 5.96e-8, -5.96e-8, 0.0};
        v = ex[rng.below(6)];
        if (r == 3 && c == 0) v = INFINITY;
      }
      k.z[static_cast<size_t>((r * C + c) * k.cs)] = ref_from_double(v, s);
    }
  }
  for (uint16_t h : k.z) k.zf.push_back(static_cast<float>(ref_half_value(h, s)));
  return k;
}

// Runs one softmax op over a half case (half storage) and over its float32 upcast.
struct HalfRun {
  std::vector<uint16_t> out;
  std::vector<float> outf, rows, rowsf;
  double ret = 0, retf = 0;
};

inline HalfRun run_half_softmax(const HalfCase& k, xent::SoftmaxOp op, bool want_out, const xent::XentOptions& o0,
                                double gscale) {
  const int64_t n = k.R * k.C * k.cs;
  Guarded<uint16_t> zh(static_cast<size_t>(n)), oh(static_cast<size_t>(n));
  std::memcpy(zh.data(), k.z.data(), static_cast<size_t>(n) * 2);
  for (int64_t i = 0; i < n; ++i) oh[i] = 0x5555;
  std::vector<float> of(static_cast<size_t>(n), 0.5f);
  HalfRun hr;
  hr.rows.assign(static_cast<size_t>(k.R), -1.f);
  hr.rowsf = hr.rows;
  const std::vector<int64_t> shp{k.R, k.C}, st{k.C * k.cs, k.cs}, rst{1};
  Ref zr(zh.data(), shp, st, 2), orf(oh.data(), shp, st, 2);
  Ref zf(const_cast<float*>(k.zf.data()), shp, st, 4), off(of.data(), shp, st, 4);
  Ref yr(const_cast<int64_t*>(k.y.data()), {k.R}, rst, 8);
  Ref rr(hr.rows.data(), {k.R}, rst, 4), rrf(hr.rowsf.data(), {k.R}, rst, 4);
  const bool label = xent::is_label_op(op);
  xent::XentOptions oh_opt = o0;
  oh_opt.storage = k.s;
  hr.ret = xent::run_softmax<float>(op, zr.ref, nullptr, label ? &yr.ref : nullptr, want_out ? &orf.ref : nullptr,
                                    &rr.ref, gscale, 1, oh_opt);
  hr.retf = xent::run_softmax<float>(op, zf.ref, nullptr, label ? &yr.ref : nullptr, want_out ? &off.ref : nullptr,
                                     &rrf.ref, gscale, 1, o0);
  hr.out.assign(oh.data(), oh.data() + n);
  hr.outf = of;
  return hr;
}

// Long double reference of integer-label cross-entropy: row loss and gradient. Returns
// false for a row with a +inf logit (its float32 semantics are test_softmax.hpp's; here
// such rows are checked against the float32 run only).
inline bool ref_xent_label(const HalfCase& k, int64_t r, double gscale, LD* loss, std::vector<LD>& g) {
  const LD ninf = -std::numeric_limits<LD>::infinity();
  LD m = ninf;
  bool nan = false;
  for (int64_t c = 0; c < k.C; ++c) {
    const LD v = k.zf[static_cast<size_t>((r * k.C + c) * k.cs)];
    nan = nan || std::isnan(v);
    m = std::max(m, v);
  }
  if (m == std::numeric_limits<LD>::infinity() && !nan) return false;
  g.assign(static_cast<size_t>(k.C), 0);
  if (nan) {
    *loss = NAN;
    for (auto& x : g) x = NAN;
    return true;
  }
  if (m == ninf) {
    *loss = std::numeric_limits<LD>::infinity();
    return true;
  }
  LD s = 0;
  for (int64_t c = 0; c < k.C; ++c) s += std::exp(static_cast<LD>(k.zf[static_cast<size_t>((r * k.C + c) * k.cs)]) - m);
  const int64_t y = k.y[static_cast<size_t>(r)];
  *loss = (m - static_cast<LD>(k.zf[static_cast<size_t>((r * k.C + y) * k.cs)])) + std::log(s);
  for (int64_t c = 0; c < k.C; ++c)
    g[static_cast<size_t>(c)] =
        gscale * (std::exp(static_cast<LD>(k.zf[static_cast<size_t>((r * k.C + c) * k.cs)]) - m) / s - (c == y));
  return true;
}

// The half run equals the float32 run on the upcast values, rounded: loss bits and gradient.
inline bool matches_float32(const HalfCase& k, const HalfRun& hr, bool want_out, std::string* why) {
  if (std::memcmp(&hr.ret, &hr.retf, sizeof(double)) != 0 && !(std::isnan(hr.ret) && std::isnan(hr.retf))) {
    *why = fmt("total %.9g vs float32 %.9g", hr.ret, hr.retf);
    return false;
  }
  for (int64_t r = 0; r < k.R; ++r) {
    const float a = hr.rows[static_cast<size_t>(r)], b = hr.rowsf[static_cast<size_t>(r)];
    if (std::memcmp(&a, &b, 4) != 0 && !(std::isnan(a) && std::isnan(b))) {
      *why = fmt("row %lld: %.9g vs float32 %.9g", static_cast<long long>(r), a, b);
      return false;
    }
  }
  if (!want_out) return true;
  for (size_t i = 0; i < hr.out.size(); ++i) {
    const bool logit = i % static_cast<size_t>(k.cs) == 0;
    const uint16_t want = logit ? ref_round_half(hr.outf[i], k.s) : 0x5555;  // gaps untouched
    if (!same_half(hr.out[i], want, k.s)) {
      *why = fmt("element %zu: 0x%04x, want 0x%04x (float32 %.9g)", i, hr.out[i], want, hr.outf[i]);
      return false;
    }
  }
  return true;
}

inline void test_half_softmax(const std::string& isa, Storage s) {
  using xent::SoftmaxOp;
  use_isa(isa);
  const std::string g = isa + " " + storage_name(s) + " softmax family";
  const int64_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 17, 25, 40, 41, 96, 97, 128, 129, 2047, 2048, 2049, 5000};
  uint64_t seed = 4242;
  for (int64_t C : lengths)
    for (int pat = 0; pat < 4; ++pat)
      for (bool strided : {false, true}) {
        const HalfCase k = make_half_case(s, C, C > 2000 ? 4 : 11, pat, strided, ++seed);
        const double gscale = 1.0 / 11;
        // cross-entropy, integer labels: against the long double reference
        const HalfRun hr = run_half_softmax(k, SoftmaxOp::kXentLabel, true, {}, gscale);
        std::vector<LD> gref;
        bool ok = true;
        std::string why;
        for (int64_t r = 0; r < k.R && ok; ++r) {
          LD lref;
          if (!ref_xent_label(k, r, gscale, &lref, gref)) continue;
          const double got = hr.rows[static_cast<size_t>(r)];
          const bool lok = std::isfinite(lref) ? std::fabs(got - lref) <= loss_tol<float>(static_cast<double>(lref))
                                               : (std::isnan(lref) ? std::isnan(got) : got == lref);
          if (!lok) why = fmt("row %lld loss %.9g ref %.12Lg", static_cast<long long>(r), got, lref);
          ok = lok;
          for (int64_t c = 0; c < k.C && ok; ++c) {
            const uint16_t h = hr.out[static_cast<size_t>((r * k.C + c) * k.cs)];
            const LD gv = ref_half_value(h, s), rv = gref[static_cast<size_t>(c)];
            // one half ulp: the rounding to half (half an ulp) plus float32's few ulp
            const LD tol = s == Storage::kF16 ? std::max(std::ldexp(LD(1), std::max(std::ilogb(std::fabs(rv)), -14) - 10),
                                                         std::ldexp(LD(1), -24))
                                              : std::ldexp(LD(1), std::ilogb(std::fabs(rv)) - 7);
            if (std::isnan(rv) ? !std::isnan(gv) : !(std::fabs(gv - rv) <= tol || (rv == 0 && gv == 0))) {
              why = fmt("row %lld grad[%lld] %.9Lg ref %.12Lg", static_cast<long long>(r), static_cast<long long>(c),
                        gv, rv);
              ok = false;
            }
          }
        }
        report().check(g, ok, 0, fmt("xent label vs long double %s%s%s", k.name.c_str(), ok ? "" : ": ", why.c_str()));
        ok = matches_float32(k, hr, true, &why);
        report().check(g, ok, 0, fmt("xent label = rounded float32 %s%s%s", k.name.c_str(), ok ? "" : ": ", why.c_str()));
        // the other ops and the options: equal to float32 on the upcast values, rounded
        struct Op {
          const char* name;
          SoftmaxOp op;
          bool out;
        };
        const Op ops[] = {{"logsumexp", SoftmaxOp::kLogsumexp, false},
                          {"softmax", SoftmaxOp::kSoftmax, true},
                          {"log_softmax", SoftmaxOp::kLogSoftmax, true},
                          {"xent label, loss only", SoftmaxOp::kXentLabel, false},
                          {"poly1 label", SoftmaxOp::kPoly1Label, true}};
        for (const Op& op : ops) {
          ok = matches_float32(k, run_half_softmax(k, op.op, op.out, {}, gscale), op.out, &why);
          report().check(g, ok, 0, fmt("%s = rounded float32 %s%s%s", op.name, k.name.c_str(), ok ? "" : ": ", why.c_str()));
        }
        std::vector<float> cw(static_cast<size_t>(C)), sw(static_cast<size_t>(k.R));
        for (int64_t c = 0; c < C; ++c) cw[static_cast<size_t>(c)] = 0.5f + static_cast<float>(c % 3);
        for (int64_t r = 0; r < k.R; ++r) sw[static_cast<size_t>(r)] = r % 4 == 3 ? 0.f : 0.25f * static_cast<float>(r + 1);
        Ref cwr(cw.data(), {C}, {1}, 4), swr(sw.data(), {k.R}, {1}, 4);
        for (int v = 0; v < 4; ++v) {
          xent::XentOptions o;
          const char* on[] = {"weights + ignore_index", "label smoothing 0.1 + weights", "z_loss 1e-3", "softcap 5"};
          if (v <= 1) o.class_w = &cwr.ref, o.sw = &swr.ref;
          if (v == 0) o.has_ignore = true, o.ignore_index = k.y[0];
          if (v == 1) o.smoothing = 0.1;
          if (v == 2) o.z_loss = 1e-3;
          if (v == 3) o.softcap = 5;
          ok = matches_float32(k, run_half_softmax(k, SoftmaxOp::kXentLabel, true, o, gscale), true, &why);
          report().check(g, ok, 0, fmt("xent %s = rounded float32 %s%s%s", on[v], k.name.c_str(), ok ? "" : ": ", why.c_str()));
        }
      }
}

// Sigmoid cross-entropy (plain and with options): equal to float32 on the upcast values, the
// returned double total included.
inline void test_half_sigmoid(const std::string& isa, Storage s) {
  use_isa(isa);
  const std::string g = isa + " " + storage_name(s) + " sigmoid";
  uint64_t seed = 999;
  for (int64_t C : {1, 3, 7, 8, 9, 17, 4099, 9000})
    for (bool strided : {false, true})
      for (bool elementwise : {true, false}) {
        const int64_t R = 5, cs = strided ? 2 : 1, n = R * C * cs;
        Rng rng(++seed);
        std::vector<uint16_t> zh(static_cast<size_t>(n)), th(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const bool mask = s == Storage::kF16 && i % 97 == 5;  // (bfloat16 keeps its totals finite)
          zh[static_cast<size_t>(i)] = ref_from_double(mask ? -INFINITY : 4 * rng.normal(), s);
          th[static_cast<size_t>(i)] = ref_from_double(rng.uniform() < 0.3 ? 1.0 : rng.uniform() * 0.2, s);
        }
        // bfloat16: a loss of ~3e14 first, so that the double sums round at each addition
        // (their order shows in the returned total: the half path must add its chunks' blocks
        // in the float32 path's order)
        if (s == Storage::kBF16) zh[0] = ref_from_double(3e14, s), th[0] = ref_from_double(0.0, s);
        std::vector<float> zf, tf;
        for (int64_t i = 0; i < n; ++i) {
          zf.push_back(static_cast<float>(ref_half_value(zh[static_cast<size_t>(i)], s)));
          tf.push_back(static_cast<float>(ref_half_value(th[static_cast<size_t>(i)], s)));
        }
        Guarded<uint16_t> gh(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) gh[i] = 0x5555;
        std::vector<float> gf(static_cast<size_t>(n)), lh(static_cast<size_t>(elementwise ? R * C : R)), lf = lh;
        const std::vector<int64_t> shp{R, C}, st{C * cs, cs};
        Ref zr(zh.data(), shp, st, 2), tr(th.data(), shp, st, 2), grr(gh.data(), shp, st, 2);
        Ref zfr(zf.data(), shp, st, 4), tfr(tf.data(), shp, st, 4), gfr(gf.data(), shp, st, 4);
        Ref lhr(lh.data(), elementwise ? shp : std::vector<int64_t>{R}, elementwise ? std::vector<int64_t>{C, 1}
                                                                                    : std::vector<int64_t>{1}, 4);
        Ref lfr(lf.data(), elementwise ? shp : std::vector<int64_t>{R}, elementwise ? std::vector<int64_t>{C, 1}
                                                                                    : std::vector<int64_t>{1}, 4);
        for (int v = 0; v < 3; ++v) {
          xent::SigmoidOptions o;
          if (v == 1) o.smoothing = 0.1, o.softcap = 3;
          if (v == 2) o.smoothing = 0.1;
          const double rf = xent::run_sigmoid<float>(zfr.ref, tfr.ref, &gfr.ref, &lfr.ref, elementwise, 0.25, 1, o);
          o.storage = s;
          const double rh = xent::run_sigmoid<float>(zr.ref, tr.ref, &grr.ref, &lhr.ref, elementwise, 0.25, 1, o);
          bool ok = std::memcmp(&rf, &rh, 8) == 0 && same_values(lh, lf);
          for (int64_t i = 0; i < n && ok; ++i)
            ok = same_half(gh[i], i % cs == 0 ? ref_round_half(gf[static_cast<size_t>(i)], s) : 0x5555, s);
          report().check(g, ok, 0,
                         fmt("%s%s C=%lld%s = rounded float32", elementwise ? "elementwise" : "summed",
                             v == 1 ? " smoothing + softcap" : v == 2 ? " smoothing" : "", static_cast<long long>(C),
                             strided ? " strided" : ""));
        }
      }
}

inline void test_half() {
  for (Storage s : {Storage::kF16, Storage::kBF16})
    for (const std::string& isa : isas()) {
      test_half_roundtrip(isa, s);
      test_half_softmax(isa, s);
      test_half_sigmoid(isa, s);
      report().flush();
    }
}

}  // namespace xt
