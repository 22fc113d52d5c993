// run_sigmoid with options (class weights, pos_weight, element / per-row weights, label
// smoothing) and the focal loss, against a plain long-double reference written here, on every
// runnable ISA; and 1, 2, 3 threads bit-identical with options. (The vector log of the focal
// loss, math-inl.hpp's log_unit, has its contract tested in test_log.hpp.)
#pragma once
#include "test_sigmoid.hpp"
#include "test_threads.hpp"

namespace xt {

// ---- options ---------------------------------------------------------------------------------

struct SgOpt {
  bool cw = false, pw = false, sw = false;  // class weight, pos_weight, per-row weight
  double eps = 0;
  bool focal = false;
  double gamma = 0, alpha = -1;
  double cap = 0;  // softcap
  std::string name() const {
    std::string s = focal ? fmt("focal g=%g a=%g", gamma, alpha) : "bce";
    if (cw) s += " cw";
    if (pw) s += " pw";
    if (sw) s += " sw";
    if (eps != 0) s += fmt(" eps=%g", eps);
    if (cap != 0) s += fmt(" cap=%g", cap);
    return s;
  }
};

// Reference element loss and gradient (unweighted by gscale), and tolerances, in long double.
template <class T>
struct OptRef {
  std::vector<LD> loss, grad;
  std::vector<double> ltol, gtol;
};

template <class T>
OptRef<T> opt_reference(const SgCase<T>& k, const SgOpt& o, const std::vector<T>& cw, const std::vector<T>& pw,
                        const std::vector<T>& sw) {
  const int64_t R = k.L.R, C = k.L.C;
  const double u = unit_roundoff<T>();
  OptRef<T> res;
  for (int64_t i = 0; i < R * C; ++i) {
    const int64_t r = i / C, c = i % C;
    const LD z = k.z[i], t = k.t[i], eps = o.eps;
    const LD ts = (1 - eps) * t + eps / 2, omt = (1 - eps) * (1 - t) + eps / 2;
    const LD e = std::exp(-std::fabs(z)), L = std::log1p(e);
    const LD p = z >= 0 ? 1 / (1 + e) : e / (1 + e), sn = z >= 0 ? e / (1 + e) : 1 / (1 + e);
    LD l, g, w = 1, lt, gt;
    if (!o.focal) {
      const LD q = o.pw ? LD(pw[c]) : 1, b = omt + q * ts, a = z >= 0 ? omt : -q * ts;
      l = (a == 0 ? 0 : z * a) + b * L;
      g = omt - b * sn;
      lt = 24 * u * std::fabs(static_cast<double>(l));
      gt = 24 * u * static_cast<double>(omt + b + q * ts);
    } else {
      const LD a = z >= 0 ? omt : -ts, ce = (a == 0 ? 0 : z * a) + L;
      const LD m = p * omt + sn * ts, gm = o.gamma;
      const LD f = o.gamma == 0 ? 1 : std::pow(m, gm);
      l = std::isinf(ce) ? ce : f * ce;
      const LD gr = m > 0 ? gm * p * sn * (1 - 2 * ts) / m : 0;
      g = f * ((gr == 0 ? 0 : gr * ce) + (p - ts));
      // the factor f carries the rounding of gamma log m (math-inl.hpp's log_unit, exp_nonpos)
      const double amp = 1 + (m > 0 ? static_cast<double>(std::fabs(gm * std::log(m))) : 0);
      lt = 24 * u * amp * std::fabs(static_cast<double>(l));
      gt = 32 * u * amp * static_cast<double>(f * ((gr == 0 ? 0 : std::fabs(gr * ce)) + 1) + std::fabs(g));
      if (o.alpha >= 0) w = o.alpha * ts + (1 - o.alpha) * omt;
    }
    if (o.cw) w *= cw[c];
    if (o.sw) w *= sw[r];
    res.loss.push_back(w == 0 ? 0 : l * w);
    res.grad.push_back(w == 0 ? 0 : g * w);
    // weight 0: exactly 0 is expected; a non-finite reference must be matched exactly
    const bool lx = w == 0 || !std::isfinite(lt), gx = w == 0 || !std::isfinite(gt);
    res.ltol.push_back((lx ? 0.0 : static_cast<double>(w) * lt) + 2 * tiny<T>());
    res.gtol.push_back((gx ? 0.0 : static_cast<double>(w) * gt) + 4 * tiny<T>());
  }
  return res;
}

template <class T>
struct OptData {
  std::vector<T> cw, pw, sw;
};

template <class T>
OptData<T> make_opt_data(const SgCase<T>& k, uint64_t seed) {
  Rng rng(seed);
  OptData<T> d;
  for (int64_t c = 0; c < k.L.C; ++c) {
    d.cw.push_back(static_cast<T>(c % 7 == 3 ? 0.0 : rng.uniform(0.1, 2)));  // some weights 0
    d.pw.push_back(static_cast<T>(c % 5 == 2 ? 0.0 : rng.uniform(0, 4)));
  }
  for (int64_t r = 0; r < k.L.R; ++r) d.sw.push_back(static_cast<T>(r % 4 == 1 ? 0.0 : rng.uniform(0.1, 3)));
  return d;
}

// Runs run_sigmoid with options; the per-row weight is an element weight of z's shape with
// class stride 0 (as the Python layer passes it), or, elementwise with sw_elem, a full array.
// How run_sg_opt calls: sw_full passes the per-row weights as a full array of z's layout
// (element weights) instead of a class stride 0; general: SigmoidOptions::general_loop.
struct SgCall {
  bool sw_full = false, general = false, want_grad = true;
};

template <class T>
SgRun<T> run_sg_opt(const SgCase<T>& k, const SgOpt& o, const OptData<T>& d, bool elementwise, double gscale,
                    int threads = 1, const SgCall& how = {}) {
  const Layout& L = k.L;
  const int64_t n = L.R * L.C, s = sizeof(T);
  Guarded<T> z(n), t(n), g(n), l(elementwise ? n : L.R), sw(L.R), cw(L.C), pw(L.C), swf(n);
  for (int64_t r = 0; r < L.R; ++r) {
    for (int64_t c = 0; c < L.C; ++c) {
      z[L.off(r, c)] = k.z[r * L.C + c], t[L.off(r, c)] = k.t[r * L.C + c];
      swf[L.off(r, c)] = d.sw[r];
    }
    sw[L.roff(r)] = d.sw[r];
  }
  for (int64_t c = 0; c < L.C; ++c) cw[c] = d.cw[c], pw[c] = d.pw[c];
  Ref zr(z.data(), L.shape(), L.strides(), s), tr(t.data(), L.shape(), L.strides(), s);
  Ref gr(g.data(), L.shape(), L.strides(), s);
  Ref lr = elementwise ? Ref(l.data(), L.shape(), L.strides(), s) : Ref(l.data(), L.row_shape(), L.row_strides(), s);
  std::vector<int64_t> ew_strides = L.row_strides();
  ew_strides.push_back(0);
  Ref er = how.sw_full ? Ref(swf.data(), L.shape(), L.strides(), s) : Ref(sw.data(), L.shape(), ew_strides, s);
  Ref cr(cw.data(), {L.C}, {1}, s), pr(pw.data(), {L.C}, {1}, s);
  xent::SigmoidOptions opt;
  if (o.cw) opt.class_w = &cr.ref;
  if (o.pw) opt.pos_w = &pr.ref;
  if (o.sw) opt.elem_w = &er.ref;
  opt.smoothing = o.eps;
  opt.softcap = o.cap;
  opt.focal = o.focal;
  opt.gamma = o.gamma;
  opt.alpha = o.alpha;
  opt.general_loop = how.general;
  SgRun<T> res;
  res.ret = xent::run_sigmoid<T>(zr.ref, tr.ref, how.want_grad ? &gr.ref : nullptr, &lr.ref, elementwise, gscale,
                                 threads, opt);
  for (int64_t r = 0; r < L.R; ++r) {
    for (int64_t c = 0; c < L.C; ++c) {
      if (how.want_grad) res.grad.push_back(g[L.off(r, c)]);
      if (elementwise) res.loss.push_back(l[L.off(r, c)]);
    }
    if (!elementwise) res.loss.push_back(l[L.roff(r)]);
  }
  return res;
}

template <class T>
void test_sigmoid_opt_case(const SgCase<T>& k, const SgOpt& o, std::map<std::string, IsaOut>& scalar_out) {
  const int64_t R = k.L.R, C = k.L.C, n = R * C;
  const OptData<T> d = make_opt_data(k, static_cast<uint64_t>(n) * 7 + 1);
  const OptRef<T> ref = opt_reference(k, o, d.cw, d.pw, d.sw);
  std::vector<LD> rows(R, 0), total(1, 0);
  std::vector<double> rtol(R, 0);
  double etol = 0;
  for (int64_t i = 0; i < n; ++i) {
    rows[i / C] += ref.loss[i];
    total[0] += ref.loss[i];
    rtol[i / C] += ref.ltol[i];
    etol += ref.ltol[i];
  }
  for (int64_t r = 0; r < R; ++r) rtol[r] += loss_tol<T>(static_cast<double>(rows[r]));
  const double tt = static_cast<double>(total[0]);
  const std::vector<double> total_tol{etol + loss_tol<T>(tt) + n * unit_roundoff<double>() * std::fabs(tt)};
  const double G = 1.0 / static_cast<double>(n);
  std::vector<LD> gref(n);
  std::vector<double> gtol(n);
  for (int64_t i = 0; i < n; ++i) gref[i] = G * ref.grad[i], gtol[i] = G * ref.gtol[i] + 4 * tiny<T>();
  const std::string name = k.name + " " + o.name();
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " sigmoid options";
    IsaOut res;
    auto rec = [&](const std::string& what, const auto& got, const std::vector<LD>& rf,
                   const std::vector<double>& tol) {
      check_close(g, name + " " + what, got.data(), rf.data(), tol.data(), static_cast<int64_t>(tol.size()));
      res[what] = {std::vector<double>(got.begin(), got.end()), tol};
    };
    SgRun<T> r = run_sg_opt(k, o, d, true, G);
    rec("elementwise loss", r.loss, ref.loss, ref.ltol);
    rec("elementwise gradient", r.grad, gref, gtol);
    rec("elementwise return", std::vector<double>{r.ret}, total, total_tol);
    r = run_sg_opt(k, o, d, false, G);
    rec("summed losses", r.loss, rows, rtol);
    rec("summed gradient", r.grad, gref, gtol);
    if (isa == "scalar")
      scalar_out[name] = res;
    else
      compare_with_scalar(isa + " " + dtype_name<T>() + " options vs scalar", name, res, scalar_out[name]);
  }
}

template <class T>
void test_sigmoid_opts() {
  std::map<std::string, IsaOut> scalar_out;
  const SgOpt opts[] = {
      {true, false, false, 0, false, 0, -1},  {false, true, false, 0, false, 0, -1},
      {false, false, true, 0, false, 0, -1},  {false, false, false, 0.1, false, 0, -1},
      {true, true, true, 0.05, false, 0, -1}, {false, false, false, 0, true, 2.0, 0.25},
      {false, false, false, 0, true, 0.0, -1}, {true, false, true, 0, true, 0.5, -1},
      {false, false, false, 0, true, 3.5, 0.9},
  };
  uint64_t seed = sizeof(T) * 5000;
  // lengths around every vector width, and rows merged into runs longer than one segment
  // (C = 3 x 6000 rows: segments of 8192 start at class 8192 % 3 = 2 of the repeated vectors).
  // Rows of a vector or more take their per-row weights in the kernel (SigmoidRunOpts::rws),
  // a vector's lanes from one row or two: also rows of whole vectors, in one unit and in units
  // starting mid-row (C = 40: the second unit at class 8192 % 40 = 32). R even (the strided
  // layout halves the rows)
  const int64_t shapes[][2] = {{1, 6}, {3, 6}, {7, 6}, {9, 6}, {25, 4}, {2049, 2}, {3, 6000}, {13, 700}, {16, 10},
                               {40, 300}};
  for (const auto& sh : shapes) {
    for (Pattern p : {Pattern::kRandom, Pattern::kBig, Pattern::kMasked})
      for (bool strided : {false, true}) {
        if (strided && p == Pattern::kBig) continue;
        const SgCase<T> k = make_sg_case<T>(sh[0], sh[1], p, strided, ++seed);
        for (const SgOpt& o : opts) {
          if (o.focal && o.gamma > 0 && p == Pattern::kBig && sh[1] > 100) continue;  // keep the run short
          test_sigmoid_opt_case(k, o, scalar_out);
        }
      }
  }
}

// The loops compiled for one option set (every set of sigmoid_opt-inl.hpp's SigOptFixedSets)
// give the same bits as the general loop, which reads every option at run time: with and
// without a gradient, per element and summed, per-row and element weights, class weights
// with zeros or so small that a product with a row weight underflows to 0 (the zero tests),
// rows of weight 0; on random, huge (+-1e4) and masked (+-inf, NaN) logits.
template <class T>
void test_sigmoid_opt_loops() {
  const T tiny_c = static_cast<T>(sizeof(T) == 4 ? 1e-30 : 1e-200);
  const T tiny_r = static_cast<T>(sizeof(T) == 4 ? 1e-20 : 1e-150);
  // (C, R); R even: the strided layout. Rows of a vector or more take their per-row weights in
  // the kernel (SigmoidRunOpts::rws): C = 6 (NEON float32, AVX2 float64) and 700, a vector's
  // lanes from one row or two; C = 16 and 40 rows of whole vectors, 40 x 300 in units starting
  // mid-row
  const int64_t shapes[][2] = {{6, 10}, {3, 6000}, {700, 4}, {16, 10}, {40, 300}};
  uint64_t seed = sizeof(T) * 9100;
  for (const std::string& isa : isas()) {
    if (isa == "scalar") continue;  // the scalar ISA has only the general loop
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " sigmoid options: fixed loops vs general";
    for (const auto& sh : shapes)
      for (Pattern p : {Pattern::kRandom, Pattern::kBig, Pattern::kMasked})
        for (bool strided : {false, true}) {
          if (strided && sh[1] > 100 && sh[0] < 40) continue;
          const SgCase<T> k = make_sg_case<T>(sh[0], sh[1], p, strided, ++seed, false);
          OptData<T> d = make_opt_data(k, seed);
          // weights: with zeros; positive; positive with tiny products (the loops that skip the
          // zero test must be chosen only where no product can round to 0)
          for (int wk = 0; wk < 3; ++wk) {
            OptData<T> dw = d;
            SgCase<T> kk = k;
            if (wk == 2) {  // an infinite loss whose weights' product underflows to 0: the zero test's 0
              kk.z[kk.L.off(2, 1)] = -std::numeric_limits<T>::infinity();
              kk.t[kk.L.off(2, 1)] = T(1);
            }
            for (int64_t c = 0; c < k.L.C; ++c) {
              if (wk >= 1 && dw.cw[c] == T(0)) dw.cw[c] = T(0.5);
              if (wk == 2 && c % 3 == 1) dw.cw[c] = tiny_c;
            }
            for (int64_t r = 0; r < k.L.R; ++r) {
              if (wk >= 1 && dw.sw[r] == T(0)) dw.sw[r] = T(1.5);
              if (wk == 2 && r % 3 == 2) dw.sw[r] = tiny_r;
              if (wk == 2 && r % 5 == 0) dw.sw[r] = T(1);  // a run weight of 1 is no run weight
            }
            for (int bits = 1; bits < 17; ++bits) {  // 16: the softcap alone
              SgOpt o;
              o.cw = bits & 1, o.pw = bits & 2, o.sw = bits & 4, o.eps = bits & 8 ? 0.1 : 0.0;
              o.cap = bits == 16 ? 3.0 : 0.0;
              if (wk > 0 && !o.cw && !o.sw) continue;
              for (bool sw_full : {false, true}) {
                if (sw_full && !o.sw) continue;
                for (bool elementwise : {true, false})
                  for (bool want_grad : {true, false}) {
                    SgCall how;
                    how.sw_full = sw_full, how.want_grad = want_grad;
                    const SgRun<T> a = run_sg_opt(kk, o, dw, elementwise, 0.25, 1, how);
                    how.general = true;
                    const SgRun<T> b = run_sg_opt(kk, o, dw, elementwise, 0.25, 1, how);
                    const bool ok = same_bits(a.loss, b.loss) && same_bits(a.grad, b.grad) &&
                                    std::memcmp(&a.ret, &b.ret, sizeof(double)) == 0;
                    report().check(g, ok, 0, fmt("%s %s weights %d%s %s%s", k.name.c_str(), o.name().c_str(), wk,
                                                 sw_full ? " sw per element" : "",
                                                 elementwise ? "elementwise" : "summed",
                                                 want_grad ? " + gradient" : ""));
                  }
              }
            }
          }
        }
  }
}

// 1, 2 and 3 threads give the same bits with options (above the parallel threshold).
template <class T>
void test_threads_opts(const std::string& isa) {
  use_isa(isa);
  const std::string g = isa + " " + dtype_name<T>() + " threads 1/2/3 options";
  const SgOpt opts[] = {{true, true, true, 0.1, false, 0, -1}, {true, false, true, 0, true, 2.0, 0.25}};
  for (bool strided : {false, true}) {
    const SgCase<T> k = make_sg_case<T>(700, 300, Pattern::kMasked, strided, 77, false);
    const OptData<T> d = make_opt_data(k, 5);
    for (const SgOpt& o : opts)
      for (bool elementwise : {true, false}) {
        const SgRun<T> r1 = run_sg_opt(k, o, d, elementwise, 1.0 / 3, 1);
        bool ok = true;
        for (int th : {2, 3}) {
          const SgRun<T> rt = run_sg_opt(k, o, d, elementwise, 1.0 / 3, th);
          ok = ok && same_bits(rt.loss, r1.loss) && same_bits(rt.grad, r1.grad) &&
               std::memcmp(&rt.ret, &r1.ret, sizeof(double)) == 0;
        }
        report().check(g, ok, 0, fmt("%s %s %s bit-identical for 1, 2, 3 threads", o.name().c_str(),
                                     elementwise ? "elementwise" : "summed", k.name.c_str()));
      }
  }
}

}  // namespace xt
