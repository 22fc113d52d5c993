// run_proba (categorical with labels and targets, label smoothing, gradient; binary with
// gradient; log_logistic) through xent::ArrayRef against a plain long double reference
// written here, on every runnable ISA (NEON under qemu). (ISAs sum in different orders, so
// they agree within the tolerances, not bit for bit; thread counts agree bit for bit.)
#pragma once
#include "test_math.hpp"

namespace xt {

// Keras's formulas with exact clip bounds (proba-inl.hpp): per-row loss and gradient.
template <class T>
void ref_categorical(const std::vector<T>& p, const std::vector<T>* t, const std::vector<int64_t>& y, int64_t R,
                     int64_t C, double eps, double ls, std::vector<LD>& loss, std::vector<LD>& grad) {
  loss.assign(R, 0);
  grad.assign(R * C, 0);
  for (int64_t r = 0; r < R; ++r) {
    LD s = 0;
    for (int64_t c = 0; c < C; ++c) s += p[r * C + c];
    const T s_t = s > 0 ? static_cast<T>(s) : T(1);  // the kernel divides by s rounded to T
    LD t_in = 0;
    std::vector<LD> tt(C), q(C), in(C);
    for (int64_t c = 0; c < C; ++c) {
      const LD tc = t ? static_cast<LD>((*t)[r * C + c]) : LD(c == y[r]);
      tt[c] = (1 - LD(ls)) * tc + LD(ls) / C;
      q[c] = static_cast<LD>(p[r * C + c]) / s_t;
      in[c] = (q[c] >= LD(static_cast<T>(eps)) && 1 - q[c] >= LD(static_cast<T>(eps))) ? 1 : 0;
      const LD lq = q[c] < LD(static_cast<T>(eps)) ? std::log(LD(eps)) : in[c] ? std::log(q[c]) : std::log1p(-LD(eps));
      if (tt[c] != 0) loss[r] -= tt[c] * lq;
      t_in += tt[c] * in[c];
    }
    for (int64_t c = 0; c < C; ++c) grad[r * C + c] = (t_in - (in[c] ? tt[c] / q[c] : 0)) / s_t;
  }
}

template <class T>
std::vector<T> random_unit(Rng& rng, int64_t n) {
  std::vector<T> v(n);
  for (int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform();
    v[i] = static_cast<T>(u * u * u);
    if (i % 7 == 0) v[i] = 0;
    if (i % 11 == 3) v[i] = 1;
    if (i % 13 == 5) v[i] = static_cast<T>(1e-9 * rng.uniform());
  }
  return v;
}

template <class T>
void test_proba(uint64_t seed) {
  const double eps = 1e-7;
  Rng rng(seed);
  for (int64_t C : {1, 3, 8, 9, 33, 2049}) {
    const int64_t R = 5;
    const std::vector<T> p = random_unit<T>(rng, R * C);
    std::vector<T> t(R * C);
    for (auto& v : t) v = static_cast<T>(rng.uniform());
    std::vector<int64_t> y(R);
    for (auto& v : y) v = static_cast<int64_t>(rng.uniform() * C) % C;
    for (double ls : {0.0, 0.1})
      for (bool labels : {true, false}) {
        std::vector<LD> rl, rg;
        ref_categorical<T>(p, labels ? nullptr : &t, y, R, C, eps, ls, rl, rg);
        std::vector<double> lt(R), gt(R * C);
        for (int64_t r = 0; r < R; ++r) {
          lt[r] = loss_tol<T>(static_cast<double>(rl[r]));
          LD gmax = 0;
          for (int64_t c = 0; c < C; ++c) gmax = std::max(gmax, std::fabs(rg[r * C + c]));
          for (int64_t c = 0; c < C; ++c)
            gt[r * C + c] = (sizeof(T) == 4 ? 4e-6 : 1e-13) * static_cast<double>(gmax) + 1e-300;
        }
        for (const std::string& isa : isas()) {
          use_isa(isa);
          const std::string g = isa + " " + dtype_name<T>() + " proba categorical";
          std::vector<T> loss(R), grad(R * C);
          Ref pr(const_cast<T*>(p.data()), {R, C}, {C, 1}, sizeof(T)), tr(t.data(), {R, C}, {C, 1}, sizeof(T));
          Ref yr(y.data(), {R}, {1}, 8), lr(loss.data(), {R}, {1}, sizeof(T)), gr(grad.data(), {R, C}, {C, 1}, sizeof(T));
          xent::ProbaArgs a;
          a.op = labels ? xent::ProbaOp::kCategoricalLabel : xent::ProbaOp::kCategoricalTarget;
          a.t = labels ? nullptr : &tr.ref;
          a.y = labels ? &yr.ref : nullptr;
          a.grad = &gr.ref;
          a.loss = &lr.ref;
          a.elementwise = false;
          a.eps = eps;
          a.smoothing = ls;
          xent::run_proba<T>(pr.ref, a, 1);
          const std::string what = fmt("C=%lld ls=%g %s", static_cast<long long>(C), ls, labels ? "labels" : "targets");
          check_close(g, what + " loss", loss.data(), rl.data(), lt.data(), R);
          check_close(g, what + " grad", grad.data(), rg.data(), gt.data(), R * C);
        }
      }
  }
  // binary (elementwise, with gradient) and log_logistic, odd lengths around every width
  for (int64_t n : {1, 3, 4, 5, 8, 9, 17, 1000}) {
    const std::vector<T> p = random_unit<T>(rng, n);
    std::vector<T> t(n), x(n);
    for (int64_t i = 0; i < n; ++i) t[i] = static_cast<T>(rng.uniform()), x[i] = static_cast<T>(30 * rng.normal());
    std::vector<LD> rl(n), rg(n), rx(n);
    std::vector<double> lt(n), gtol(n), xt_(n);
    const LD e = LD(static_cast<T>(eps));
    for (int64_t i = 0; i < n; ++i) {
      const LD pi = p[i], ti = t[i], a = std::min(std::max(pi, LD(eps)), 1 - LD(eps));
      const bool in = pi >= e && 1 - pi >= e;
      rl[i] = -((ti == 0 ? 0 : ti * std::log(a)) + (ti == 1 ? 0 : (1 - ti) * std::log1p(-a)));
      rg[i] = in ? (1 - ti) / (1 - pi) - ti / pi : 0;
      const LD xi = x[i];
      rx[i] = xi >= 0 ? -std::log1p(std::exp(-xi)) : xi - std::log1p(std::exp(xi));
      lt[i] = loss_tol<T>(static_cast<double>(rl[i]));
      gtol[i] = (sizeof(T) == 4 ? 4e-6 : 1e-13) * static_cast<double>(std::fabs(rg[i])) + 1e-300;
      xt_[i] = std::max((sizeof(T) == 4 ? 2e-6 : 1e-13) * static_cast<double>(std::fabs(rx[i])), tiny<T>());
    }
    for (const std::string& isa : isas()) {
      use_isa(isa);
      const std::string g = isa + " " + dtype_name<T>() + " proba binary";
      std::vector<T> loss(n), grad(n), out(n);
      Ref pr(const_cast<T*>(p.data()), {n}, {1}, sizeof(T)), tr(t.data(), {n}, {1}, sizeof(T));
      Ref lr(loss.data(), {n}, {1}, sizeof(T)), gr(grad.data(), {n}, {1}, sizeof(T));
      xent::ProbaArgs a;
      a.t = &tr.ref;
      a.grad = &gr.ref;
      a.loss = &lr.ref;
      xent::run_proba<T>(pr.ref, a, 1);
      check_close(g, fmt("n=%lld loss", static_cast<long long>(n)), loss.data(), rl.data(), lt.data(), n);
      check_close(g, fmt("n=%lld grad", static_cast<long long>(n)), grad.data(), rg.data(), gtol.data(), n);
      Ref xr(x.data(), {n}, {1}, sizeof(T)), orf(out.data(), {n}, {1}, sizeof(T));
      xent::ProbaArgs b;
      b.op = xent::ProbaOp::kLogLogistic;
      b.loss = &orf.ref;
      xent::run_proba<T>(xr.ref, b, 1);
      check_close(isa + " " + dtype_name<T>() + " log_logistic", fmt("n=%lld", static_cast<long long>(n)),
                  out.data(), rx.data(), xt_.data(), n);
    }
  }
}

}  // namespace xt
