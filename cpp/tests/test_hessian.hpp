// run_hessian (binomial p(1-p) with the gradient, multinomial diagonal with the gradient, and
// the exact multinomial Hessian-vector product) through xent::ArrayRef, with sample weights,
// against a plain high-precision reference, on every runnable ISA (NEON under qemu), each SIMD
// ISA against the scalar one, and 1, 2, 3 threads for bit-identical results.
#pragma once
#include "test_cases.hpp"

namespace xt {

template <class T>
struct HsRun {
  std::vector<T> hess, grad, hvp, sh, sg;  // softmax diag, its gradient, H v; sigmoid h, gradient
  std::vector<T> sh_rw, sg_rw;             // sigmoid h, gradient with the weights one per row
};

// v: logical (R, C) like z; w: one weight per row (the sigmoid op gets it per element).
template <class T>
HsRun<T> run_hs(const SmCase<T>& k, const std::vector<T>& v, const std::vector<T>& w, int threads = 1) {
  using xent::HessianOp;
  const Layout& L = k.L;
  const int64_t n = L.R * L.C, s = sizeof(T);
  Guarded<T> z(n), t(n), vv(n), we(n), h(n), g(n), hv(n), sh(n), sg(n), shw(n), sgw(n), wr(L.R);
  Guarded<int64_t> y(L.R);
  for (int64_t r = 0; r < L.R; ++r) {
    for (int64_t c = 0; c < L.C; ++c) {
      const int64_t o = L.off(r, c), i = r * L.C + c;
      z[o] = k.z[i], t[o] = k.t[i], vv[o] = v[i], we[o] = w[r];
    }
    y[L.roff(r)] = k.y[r];
    wr[L.roff(r)] = w[r];
  }
  auto ref = [&](T* p) { return Ref(p, L.shape(), L.strides(), s); };
  Ref zr = ref(z.data()), tr = ref(t.data()), vr = ref(vv.data()), wer = ref(we.data());
  Ref hr = ref(h.data()), gr = ref(g.data()), hvr = ref(hv.data()), shr = ref(sh.data()), sgr = ref(sg.data());
  Ref yr(y.data(), L.row_shape(), L.row_strides(), 8), wrr(wr.data(), L.row_shape(), L.row_strides(), s);
  xent::run_hessian<T>(HessianOp::kSoftmaxDiag, zr.ref, nullptr, nullptr, &yr.ref, &wrr.ref, &hr.ref, &gr.ref, threads);
  xent::run_hessian<T>(HessianOp::kSoftmaxHvp, zr.ref, nullptr, &vr.ref, nullptr, &wrr.ref, &hvr.ref, nullptr, threads);
  xent::run_hessian<T>(HessianOp::kSigmoid, zr.ref, &tr.ref, nullptr, nullptr, &wer.ref, &shr.ref, &sgr.ref, threads);
  // the per-row weights broadcast along the class axis (class stride 0), as Python passes an
  // (n, 1) sample_weight: units of whole rows with the weights in the kernel (dense layouts)
  std::vector<int64_t> wst = L.row_strides();
  wst.push_back(0);
  Ref wbr(wr.data(), L.shape(), wst, s), shwr = ref(shw.data()), sgwr = ref(sgw.data());
  xent::run_hessian<T>(HessianOp::kSigmoid, zr.ref, &tr.ref, nullptr, nullptr, &wbr.ref, &shwr.ref, &sgwr.ref,
                       threads);
  HsRun<T> res;
  for (int64_t r = 0; r < L.R; ++r)
    for (int64_t c = 0; c < L.C; ++c) {
      const int64_t o = L.off(r, c);
      res.hess.push_back(h[o]), res.grad.push_back(g[o]), res.hvp.push_back(hv[o]);
      res.sh.push_back(sh[o]), res.sg.push_back(sg[o]);
      res.sh_rw.push_back(shw[o]), res.sg_rw.push_back(sgw[o]);
    }
  return res;
}

template <class T>
void hs_inputs(const SmCase<T>& k, uint64_t seed, std::vector<T>& v, std::vector<T>& w) {
  Rng rng(seed);
  v.resize(k.z.size());
  for (auto& x : v) x = static_cast<T>(rng.normal());
  w.resize(k.L.R);
  for (int64_t r = 0; r < k.L.R; ++r) w[r] = r % 5 == 0 ? T(0) : static_cast<T>(rng.uniform(0.5, 2));
}

template <class T>
void test_hessian_case(const SmCase<T>& k, uint64_t seed, std::map<std::string, IsaOut>& scalar_out) {
  using Rt = MathRef<T>;
  const int64_t R = k.L.R, C = k.L.C, n = R * C;
  const double u = unit_roundoff<T>(), tn = 2 * tiny<T>();
  const double dcap = sizeof(T) == 4 ? 88 : 709;  // |z - m| beyond which p underflows to 0
  std::vector<T> v, w;
  hs_inputs(k, seed, v, w);
  std::vector<LD> h(n), g(n), hv(n), sh(n), sg(n);
  std::vector<double> htol(n), gtol(n), hvtol(n), shtol(n), sgtol(n);
  for (int64_t r = 0; r < R; ++r) {
    const Rt m = k.m[r], wr = w[r];
    const bool nan = std::isnan(static_cast<double>(m)), msk = k.masked[r];
    const LD* p = &k.p[r * C];
    // 1 - p_c as the sum of the other probabilities (prefix + suffix), and the class of the max
    std::vector<Rt> pre(C + 1, 0), suf(C + 1, 0);
    for (int64_t c = 0; c < C; ++c) pre[c + 1] = pre[c] + static_cast<Rt>(p[c]);
    for (int64_t c = C - 1; c >= 0; --c) suf[c] = suf[c + 1] + static_cast<Rt>(p[c]);
    int64_t top = 0;
    double dmax = 0;  // largest |z - m| of a class with p > 0: the rounding of z - m scales with it
    for (int64_t c = 0; c < C; ++c) {
      if (k.z[r * C + c] == static_cast<T>(m) && k.z[r * C + top] != static_cast<T>(m)) top = c;
      if (!msk && !nan && p[c] > 0) dmax = std::max(dmax, std::min(dcap, static_cast<double>(m - k.z[r * C + c])));
    }
    const Rt vt = v[r * C + top];
    Rt dsum = 0, dabs = 0;
    for (int64_t c = 0; c < C; ++c) {
      dsum += static_cast<Rt>(p[c]) * (v[r * C + c] - vt);
      dabs += static_cast<Rt>(p[c]) * std::fabs(v[r * C + c] - vt);
    }
    const double rel = u * (24 + 2 * 2 * dmax);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      const Rt pc = static_cast<Rt>(p[c]), oth = pre[c] + suf[c + 1], d = v[i] - vt;
      h[i] = wr * pc * oth;
      htol[i] = rel * std::fabs(static_cast<double>(h[i])) + tn;
      // p_y - 1 = -(the others), without cancellation; a NaN row is NaN (even with one class)
      g[i] = nan ? pc : msk ? 0 : c == k.y[r] ? -wr * oth : wr * pc;
      gtol[i] = rel * std::fabs(static_cast<double>(wr)) * static_cast<double>(c == k.y[r] ? oth : pc) + tn;
      hv[i] = wr * pc * (d - dsum);
      hvtol[i] = rel * static_cast<double>(wr * pc * (2 * std::fabs(d) + dabs)) + tn;
      // binomial, elementwise: h = 1 / ((1 + e^-z)(1 + e^z)); gradient sigmoid(z) - t
      const Rt z = k.z[i], t = k.t[i], e = std::exp(-std::fabs(z));
      sh[i] = std::isnan(z) ? z : wr * (e / ((1 + e) * (1 + e)));
      shtol[i] = 12 * u * std::fabs(static_cast<double>(sh[i])) + tn;
      const Rt q = e / (1 + e), x = z >= 0 ? (1 - t) - q : q - t;
      sg[i] = std::isnan(z) ? z : wr * x;
      sgtol[i] = static_cast<double>(wr) * u * (2 * std::fabs(1 - t) + 8 * q + 4 * std::fabs(x)) + tn;
    }
  }
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string grp = isa + " " + dtype_name<T>() + " hessian";
    IsaOut res;
    auto rec = [&](const std::string& what, const std::vector<T>& got, const std::vector<LD>& rf,
                   const std::vector<double>& tol) {
      check_close(grp, k.name + " " + what, got.data(), rf.data(), tol.data(), n);
      res[what] = {std::vector<double>(got.begin(), got.end()), tol};
    };
    const HsRun<T> o = run_hs(k, v, w);
    rec("softmax diagonal", o.hess, h, htol);
    rec("softmax diagonal gradient", o.grad, g, gtol);
    rec("softmax H v", o.hvp, hv, hvtol);
    rec("sigmoid hessian", o.sh, sh, shtol);
    rec("sigmoid gradient", o.sg, sg, sgtol);
    report().check(grp, same_values(o.sh_rw, o.sh) && same_values(o.sg_rw, o.sg), 0,
                   k.name + " sigmoid with one weight per row: the values of the weights per element");
    if (isa == "scalar")
      scalar_out[k.name] = res;
    else
      compare_with_scalar(isa + " " + dtype_name<T>() + " vs scalar", "hessian " + k.name, res, scalar_out[k.name]);
  }
}

template <class T>
void test_hessian_threads(const std::string& isa) {
  use_isa(isa);
  const std::string grp = isa + " " + dtype_name<T>() + " threads 1/2/3";
  for (bool strided : {false, true}) {
    const SmCase<T> k = make_sm_case<T>(700, 300, Pattern::kMasked, strided, 91, false);
    std::vector<T> v, w;
    hs_inputs(k, 92, v, w);
    const HsRun<T> r1 = run_hs(k, v, w, 1);
    bool ok = true;
    for (int th : {2, 3}) {
      const HsRun<T> rt = run_hs(k, v, w, th);
      ok = ok && same_values(rt.hess, r1.hess) && same_values(rt.grad, r1.grad) && same_values(rt.hvp, r1.hvp) &&
           same_values(rt.sh, r1.sh) && same_values(rt.sg, r1.sg);
    }
    report().check(grp, ok, 0, fmt("hessian ops %s: same values for 1, 2, 3 threads", k.name.c_str()));
  }
}

}  // namespace xt
