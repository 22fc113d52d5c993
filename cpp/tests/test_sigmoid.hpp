// run_sigmoid (elementwise and summed over the last axis, with gradient) through
// xent::ArrayRef against a plain high-precision reference, on every runnable ISA.
#pragma once
#include "test_cases.hpp"

namespace xt {

template <class T>
struct SgCase {
  explicit SgCase(const Layout& l) : L(l) {}
  Layout L;
  std::string name;
  std::vector<T> z, t;
  std::vector<LD> loss, x, q;  // reference per element: loss, dl/dz, sigmoid(-|z|)
};

// Random logits with t uniform in [0, 1]; +-1e4 with hard 0/1 or random targets; or
// -inf masks (t = 0: loss and gradient 0), one -inf with t = 1/2 (loss +inf), and a +inf
// with t = 1 (loss 0), and a NaN.
template <class T>
SgCase<T> make_sg_case(int64_t C, int64_t R, Pattern p, bool strided, uint64_t seed, bool with_ref = true) {
  SgCase<T> k(Layout(R, C, strided));
  k.name = fmt("C=%lld R=%lld %s%s", static_cast<long long>(C), static_cast<long long>(R), pattern_name(p),
               strided ? " strided" : "");
  const T inf = std::numeric_limits<T>::infinity();
  Rng rng(seed);
  const int64_t n = R * C;
  k.z.resize(n);
  k.t.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    k.t[i] = static_cast<T>(rng.uniform());
    if (p == Pattern::kConstant) {
      k.z[i] = static_cast<T>(0.3 - 0.7 * (i / C));
      k.t[i] = T(0.37);
    } else if (p == Pattern::kBig) {
      k.z[i] = static_cast<T>((rng.uniform() < 0.5 ? 1e4 : -1e4) + rng.uniform(-4, 4));
      if (rng.uniform() < 0.5) k.t[i] = rng.uniform() < 0.5 ? T(0) : T(1);
    } else {
      k.z[i] = static_cast<T>(4 * rng.normal());
      if (p == Pattern::kMasked && rng.uniform() < 0.2) k.z[i] = -inf, k.t[i] = 0;
    }
  }
  if (p == Pattern::kMasked) {
    k.z[n / 2] = -inf, k.t[n / 2] = T(0.5);
    if (n > 1) k.z[n - 1] = inf, k.t[n - 1] = 1;
    if (R > 3) k.z[3 * C] = std::numeric_limits<T>::quiet_NaN();  // NaN: its loss, gradient, row sum
  }
  if (!with_ref) return k;
  using Rt = MathRef<T>;
  for (int64_t i = 0; i < n; ++i) {
    const Rt z = k.z[i], t = k.t[i];
    const Rt a = z >= 0 ? 1 - t : -t;
    const Rt e = std::exp(-std::fabs(z)), q = e / (1 + e);
    k.loss.push_back((a == 0 ? 0 : z * a) + std::log1p(e));
    k.x.push_back(z >= 0 ? (1 - t) - q : q - t);
    k.q.push_back(q);
  }
  return k;
}

template <class T>
struct SgRun {
  std::vector<T> loss, grad;
  double ret = 0;
};

// elementwise: loss has z's layout; otherwise one loss per row (the last axis is summed).
template <class T>
SgRun<T> run_sg(const SgCase<T>& k, bool elementwise, bool want_loss, bool want_grad, double gscale,
                int threads = 1) {
  const Layout& L = k.L;
  const int64_t n = L.R * L.C, s = sizeof(T);
  Guarded<T> z(n), t(n), g(n), l(elementwise ? n : L.R);
  for (int64_t r = 0; r < L.R; ++r)
    for (int64_t c = 0; c < L.C; ++c) z[L.off(r, c)] = k.z[r * L.C + c], t[L.off(r, c)] = k.t[r * L.C + c];
  Ref zr(z.data(), L.shape(), L.strides(), s), tr(t.data(), L.shape(), L.strides(), s);
  Ref gr(g.data(), L.shape(), L.strides(), s);
  Ref lr = elementwise ? Ref(l.data(), L.shape(), L.strides(), s) : Ref(l.data(), L.row_shape(), L.row_strides(), s);
  SgRun<T> res;
  res.ret = xent::run_sigmoid<T>(zr.ref, tr.ref, want_grad ? &gr.ref : nullptr, want_loss ? &lr.ref : nullptr,
                                 elementwise, gscale, threads);
  for (int64_t r = 0; r < L.R; ++r) {
    for (int64_t c = 0; c < L.C; ++c) {
      if (want_grad) res.grad.push_back(g[L.off(r, c)]);
      if (want_loss && elementwise) res.loss.push_back(l[L.off(r, c)]);
    }
    if (want_loss && !elementwise) res.loss.push_back(l[L.roff(r)]);
  }
  return res;
}

template <class T>
void test_sigmoid_case(const SgCase<T>& k, std::map<std::string, IsaOut>& scalar_out) {
  const int64_t R = k.L.R, C = k.L.C, n = R * C;
  const double u = unit_roundoff<T>(), ud = unit_roundoff<double>();
  // loss = z a + log1p(e), a = 1 - t or -t, e = exp(-|z|): e errs by <= 2 ulp (4u), which
  // log1p damps (its condition number is <= 1), log1p itself by <= 3 ulp (6u), z a by 2u
  // (1 - t rounded, the product), the sum by u; both terms are >= 0, so <= 11u |loss|.
  std::vector<double> ltol(n), rtol(R);
  std::vector<LD> rows(R, 0), total(1, 0);
  for (int64_t i = 0; i < n; ++i) {
    ltol[i] = 12 * u * std::fabs(static_cast<double>(k.loss[i])) + 2 * tiny<T>();
    rows[i / C] += k.loss[i];
    total[0] += k.loss[i];
  }
  // a row's C losses are summed in double, in some order: (C - 1) ud of the sum of |terms| (all >= 0)
  for (int64_t r = 0; r < R; ++r) {
    const double rr = static_cast<double>(rows[r]);
    rtol[r] = loss_tol<T>(rr) + static_cast<double>(C) * ud * std::fabs(rr);
  }
  const double tt = static_cast<double>(total[0]);
  const std::vector<double> total_tol{loss_tol<T>(tt) + n * ud * std::fabs(tt)};
  // gradient G x, x = (1 - t) - q or q - t, q = e / (1 + e): q errs by 6u q (e, 1 + e, the
  // division), 1 - t by u |1 - t|, x by u |x|; then G x rounds twice (G to T, product).
  const double Ge = 1.0 / static_cast<double>(n), Gs = 1.0 / static_cast<double>(R);
  std::vector<LD> gref_e(n), gref_s(n);
  std::vector<double> gtol_e(n), gtol_s(n);
  for (int64_t i = 0; i < n; ++i) {
    const double t = k.t[i], x = static_cast<double>(k.x[i]);
    const double base = u * (2 * std::fabs(1 - t) + 8 * static_cast<double>(k.q[i]) + 4 * std::fabs(x));
    gref_e[i] = Ge * k.x[i];
    gref_s[i] = Gs * k.x[i];
    gtol_e[i] = Ge * base + 4 * tiny<T>() * (Ge + 1);
    gtol_s[i] = Gs * base + 4 * tiny<T>() * (Gs + 1);
  }
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " sigmoid";
    IsaOut res;
    auto rec = [&](const std::string& what, const auto& got, const std::vector<LD>& ref,
                   const std::vector<double>& tol) {
      check_close(g, k.name + " " + what, got.data(), ref.data(), tol.data(), static_cast<int64_t>(tol.size()));
      res[what] = {std::vector<double>(got.begin(), got.end()), tol};
    };
    SgRun<T> o = run_sg(k, true, true, true, Ge);
    rec("elementwise loss", o.loss, k.loss, ltol);
    rec("elementwise gradient", o.grad, gref_e, gtol_e);
    rec("elementwise return", std::vector<double>{o.ret}, total, total_tol);
    SgRun<T> o2 = run_sg(k, true, false, true, Ge);
    report().check(g, same_values(o2.grad, o.grad) && same_values(std::vector<double>{o2.ret}, {o.ret}), 0,
                   k.name + " elementwise without loss output: same gradient and sum");
    o = run_sg(k, false, true, true, Gs);
    rec("summed losses", o.loss, rows, rtol);
    rec("summed gradient", o.grad, gref_s, gtol_s);
    rec("summed return", std::vector<double>{o.ret}, total, total_tol);
    if (isa == "scalar")
      scalar_out[k.name] = res;
    else
      compare_with_scalar(isa + " " + dtype_name<T>() + " vs scalar", "sigmoid " + k.name, res, scalar_out[k.name]);
  }
}

}  // namespace xt
