// The vector tanh against its contract, and run_softmax with the loss options (class and
// sample weights, ignore_index, z-loss, label smoothing, softcap) and the further ops
// (nll, kl, poly-1, focal) against a long double reference written here, on every ISA
// (NEON under qemu included); in place (gradient over the logits) and 1/2/3 threads.
#pragma once
#include "test_threads.hpp"

namespace xt {

template <class T>
std::vector<T> run_vtanh(const std::vector<T>& x) {
  std::vector<T> y(x.size(), T(-7));
  table<T>()->vtanh(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

// Contract (math-inl.hpp): <= 2 ulp everywhere, odd, +-1 for large |x|, NaN -> NaN.
template <class T>
void test_tanh(int64_t density) {
  using R = MathRef<T>;
  std::vector<T> x;
  add_grid<T>(x, T(-30), T(30), density);
  add_bit_sweep<T>(x, std::numeric_limits<T>::denorm_min(), T(30), density, T(1));
  add_bit_sweep<T>(x, std::numeric_limits<T>::denorm_min(), T(30), density / 4, T(-1));
  std::vector<LD> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = static_cast<LD>(std::tanh(static_cast<R>(x[i])));
  std::vector<T> y_scalar;
  const T inf = std::numeric_limits<T>::infinity(), big = std::numeric_limits<T>::max();
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string g = isa + " " + dtype_name<T>() + " vtanh";
    const std::vector<T> y = run_vtanh(x);
    const UlpStat<T> st = ulp_stat(x, y, ref);
    report().check(g, st.worst <= 2, static_cast<double>(st.worst / 2),
                   fmt("max relative error %.3Lf ulp (contract 2) at %.9Lg", st.worst, static_cast<LD>(st.at)));
    report().note(g, fmt("max %.3Lf ulp (contract 2) over %zu points", st.worst, x.size()));
    std::vector<T> nx(x.size());
    for (size_t i = 0; i < x.size(); ++i) nx[i] = -x[i];
    const std::vector<T> ny = run_vtanh(nx);
    bool odd = true;
    for (size_t i = 0; i < x.size(); ++i) odd = odd && ny[i] == -y[i];
    report().check(g, odd, 0, "odd: tanh(-x) == -tanh(x)");
    const std::vector<T> sp = run_vtanh(std::vector<T>{T(40), T(-40), big, -big, inf, -inf,
                                                       std::numeric_limits<T>::quiet_NaN(), T(0), T(-0.0)});
    report().check(g, sp[0] == 1 && sp[1] == -1 && sp[2] == 1 && sp[3] == -1 && sp[4] == 1 && sp[5] == -1 &&
                          std::isnan(sp[6]) && sp[7] == 0 && !std::signbit(sp[7]) && std::signbit(sp[8]),
                   0, "+-1 for large |x| and +-inf, NaN -> NaN, -0 kept");
    if (isa == "scalar")
      y_scalar = y;
    else
      report().check(g, same_values(y, y_scalar), 0, "bit-identical to the scalar ISA");
  }
}

struct OptCase {
  const char* name;
  xent::SoftmaxOp op;
  bool cw = false, sw = false, ignore = false;
  double zl = 0, eps = 0, cap = 0, param = 0;
  bool alpha = false;
};

// Reference of one row: per-row weighted loss and gradient (times gscale).
template <class T>
void ref_row(const OptCase& o, const T* z0, const T* t0, int64_t y, const T* w, const T* a, double sw, int64_t C,
             double gscale, LD* loss, LD* grad) {
  using xent::SoftmaxOp;
  const LD inf = std::numeric_limits<LD>::infinity();
  std::vector<LD> z(C), d(C, 1), t(C, 0), p(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    z[c] = z0[c];
    if (o.cap > 0 && z[c] != -inf) {
      const LD th = std::tanh(z[c] / LD(o.cap));
      z[c] = LD(o.cap) * th, d[c] = 1 - th * th;
    }
  }
  const bool label = xent::is_label_op(o.op);
  LD rw = sw;
  if (label && o.ignore && y == 2) rw = 0;
  if (rw == 0) {
    *loss = 0;
    for (int64_t c = 0; c < C; ++c) grad[c] = 0;
    return;
  }
  if (o.op == SoftmaxOp::kNllLabel || o.op == SoftmaxOp::kKlDiv) {
    if (o.op == SoftmaxOp::kNllLabel) rw *= o.cw ? LD(w[y]) : 1;
    LD l = 0;
    for (int64_t c = 0; c < C; ++c) {
      const LD tc = o.op == SoftmaxOp::kNllLabel ? (c == y ? 1 : 0) : LD(t0[c]);
      if (tc != 0) l += o.op == SoftmaxOp::kNllLabel ? -z[c] : tc * (std::log(tc) - z[c]);
      grad[c] = -gscale * rw * tc;
    }
    *loss = rw * l;
    return;
  }
  LD m = -inf, s = 0;
  for (int64_t c = 0; c < C; ++c) m = std::max(m, z[c]);
  for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
  const LD lse = m + std::log(s);
  LD K = 0;
  for (int64_t c = 0; c < C; ++c) p[c] = std::exp(z[c] - lse), K += z[c] > -inf ? 1 : 0;
  // targets (before smoothing): onehot(y) or t; class weights per class unless a row weight
  const bool smooth_label = o.op == SoftmaxOp::kXentLabel && o.eps != 0;
  for (int64_t c = 0; c < C; ++c) t[c] = label ? (c == y ? 1 : 0) : LD(t0[c]);
  if (label && o.cw && !smooth_label) rw *= LD(w[y]);
  if (o.cw && (!label || smooth_label))
    for (int64_t c = 0; c < C; ++c) t[c] *= LD(w[c]);
  if (o.eps != 0)
    for (int64_t c = 0; c < C; ++c)
      t[c] = (1 - LD(o.eps)) * t[c] + (z[c] > -inf ? LD(o.eps) / K * (o.cw ? LD(w[c]) : 1) : 0);
  LD l = 0, gs = 0;
  std::vector<LD> G(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    if (t[c] == 0) continue;
    const LD nlp = lse - z[c], q = -std::expm1(-nlp), al = (o.alpha && a) ? LD(a[c]) : 1;
    if (o.op == SoftmaxOp::kPoly1Label || o.op == SoftmaxOp::kPoly1Target) {
      l += t[c] * (nlp + LD(o.param) * q), G[c] = t[c] * (1 + LD(o.param) * p[c]);
    } else if (o.op == SoftmaxOp::kFocalLabel || o.op == SoftmaxOp::kFocalTarget) {
      const LD qg = std::pow(q, LD(o.param));
      l += al * t[c] * qg * nlp, G[c] = al * t[c] * qg * (1 + LD(o.param) * p[c] * (q > 0 ? nlp / q : 1));
    } else {
      l += t[c] * nlp, G[c] = t[c];
    }
    gs += G[c];
  }
  l += LD(o.zl) * lse * lse;
  gs += 2 * LD(o.zl) * lse;
  *loss = rw * l;
  for (int64_t c = 0; c < C; ++c) grad[c] = gscale * rw * (gs * p[c] - G[c]) * d[c];
}

template <class T>
void test_options() {
  using xent::SoftmaxOp;
  using S = SoftmaxOp;
  const OptCase cases[] = {
      {"label w+sw+ignore+zloss", S::kXentLabel, true, true, true, 1e-3},
      {"label smoothing w+ignore", S::kXentLabel, true, false, true, 0, 0.2},
      {"label softcap+smoothing+zloss", S::kXentLabel, false, true, false, 1e-3, 0.1, 4.0},
      {"target w+smoothing", S::kXentTarget, true, true, false, 0, 0.15},
      // (C <= 128 float32 / 80 float64: rows in lanes, kernels/smallc-inl.hpp)
      {"label smoothing+sw+zloss", S::kXentLabel, false, true, false, 1e-3, 0.3},
      {"target plain", S::kXentTarget, false, false, false},
      {"target w+smoothing 1+zloss", S::kXentTarget, true, false, false, 1e-3, 1.0},
      {"label softcap", S::kXentLabel, false, false, false, 0, 0, 5.0},
      {"target softcap+w", S::kXentTarget, true, false, false, 1e-3, 0, 3.0},
      {"nll w+ignore", S::kNllLabel, true, true, true},
      {"kl", S::kKlDiv, false, true},
      {"poly1 label w", S::kPoly1Label, true, false, true, 0, 0, 0, 2.0},
      {"poly1 target softcap", S::kPoly1Target, false, true, false, 0, 0, 5.0, -1.0},
      {"focal label alpha+softcap", S::kFocalLabel, true, false, true, 0, 0, 6.0, 2.0, true},
      {"focal target alpha", S::kFocalTarget, false, true, false, 0, 0, 0, 1.5, true},
      // (C <= 128 float32 / 80 float64: rows in lanes, smallc-inl.hpp's lanes_factor)
      {"focal label sw", S::kFocalLabel, false, true, false, 0, 0, 0, 0.5},
      {"poly1 label sw+softcap", S::kPoly1Label, false, true, false, 0, 0, 4.0, -1.0},
  };
  const double u = unit_roundoff<T>();
  // (300, 1000: row kernels whose rows leave their logs, the factors of poly-1 and focal
  // and those rows' gradient passes to a batch, LogBatch; 2050: two blocks, at once)
  for (int64_t C : {1, 3, 8, 9, 17, 37, 80, 300, 1000, 2050}) {
    const int64_t R = 12, n = R * C;
    Rng rng(static_cast<uint64_t>(C) * 7 + sizeof(T));
    std::vector<T> z(n), t(n), w(C), a(C), sw(R);
    std::vector<int64_t> y(R);
    for (int64_t r = 0; r < R; ++r) {
      LD ts = 0;
      for (int64_t c = 0; c < C; ++c) {
        z[r * C + c] = static_cast<T>(rng.normal() * 5);
        t[r * C + c] = static_cast<T>(rng.uniform() < 0.3 ? 0 : rng.uniform());
        ts += t[r * C + c];
      }
      for (int64_t c = 0; c < C; ++c) t[r * C + c] = ts > 0 ? static_cast<T>(t[r * C + c] / ts) : T(0);
      y[r] = rng.below(C);
      sw[r] = static_cast<T>(rng.uniform());
      if (C > 3 && r % 4 == 1) {  // a masked class with no target mass, not the label
        const int64_t c = (y[r] + 1) % C;
        z[r * C + c] = -std::numeric_limits<T>::infinity();
        t[r * C + c] = 0;
      }
    }
    for (int64_t c = 0; c < C; ++c) w[c] = static_cast<T>(0.2 + rng.uniform()), a[c] = static_cast<T>(rng.uniform());
    for (const OptCase& o : cases) {
      const bool label = xent::is_label_op(o.op);
      const bool logp = o.op == S::kNllLabel || o.op == S::kKlDiv;
      std::vector<T> zin = z;
      if (logp)  // log-probabilities: z - lse per row
        for (int64_t r = 0; r < R; ++r) {
          LD m = -std::numeric_limits<LD>::infinity(), s = 0;
          for (int64_t c = 0; c < C; ++c) m = std::max(m, LD(z[r * C + c]));
          for (int64_t c = 0; c < C; ++c) s += std::exp(LD(z[r * C + c]) - m);
          for (int64_t c = 0; c < C; ++c) zin[r * C + c] = static_cast<T>(LD(z[r * C + c]) - m - std::log(s));
        }
      const double gscale = 0.37;
      std::vector<LD> rl(R), rg(n);
      for (int64_t r = 0; r < R; ++r)
        ref_row<T>(o, &zin[r * C], &t[r * C], y[r], w.data(), a.data(), o.sw ? double(sw[r]) : 1.0, C, gscale,
                   &rl[r], &rg[r * C]);
      std::vector<double> tl(R), tg(n);
      for (int64_t r = 0; r < R; ++r) {
        LD scale = 1;
        for (int64_t c = 0; c < C; ++c) scale = std::max(scale, std::fabs(rg[r * C + c]) / gscale);
        // softcap: the capped logits are T numbers (<= ~3 ulp of cap each)
        const double capt = o.cap > 0 ? 8 * u * o.cap * static_cast<double>(scale) : 0;
        tl[r] = 4 * loss_tol<T>(static_cast<double>(rl[r])) + capt;
        for (int64_t c = 0; c < C; ++c) tg[r * C + c] = gscale * (64 * u * static_cast<double>(scale) + capt) + 1e-30;
      }
      for (const std::string& isa : isas()) {
        use_isa(isa);
        const std::string g = isa + " " + dtype_name<T>() + " options";
        std::vector<T> out(n), rows(R), inpl;
        auto run = [&](T* zp, T* op, int threads) {
          Ref zr(zp, {R, C}, {C, 1}, sizeof(T)), tr(t.data(), {R, C}, {C, 1}, sizeof(T));
          Ref outr(op, {R, C}, {C, 1}, sizeof(T)), rowr(rows.data(), {R}, {1}, sizeof(T));
          Ref yr(y.data(), {R}, {1}, 8), wr(w.data(), {C}, {1}, sizeof(T)), ar(a.data(), {C}, {1}, sizeof(T));
          Ref swr(sw.data(), {R}, {1}, sizeof(T));
          xent::XentOptions opt;
          opt.class_w = (o.cw && o.op != S::kPoly1Target) ? &wr.ref : nullptr;
          opt.sw = o.sw ? &swr.ref : nullptr;
          opt.has_ignore = o.ignore;
          opt.ignore_index = 2;
          opt.z_loss = o.zl;
          opt.smoothing = o.eps;
          opt.softcap = o.cap;
          opt.param = o.param;
          opt.class_a = o.alpha ? &ar.ref : nullptr;
          return xent::run_softmax<T>(o.op, zr.ref, label ? nullptr : &tr.ref, label ? &yr.ref : nullptr, &outr.ref,
                                      &rowr.ref, gscale, threads, opt);
        };
        const double ret = run(zin.data(), out.data(), 1);
        check_close(g, fmt("%s C=%lld losses", o.name, static_cast<long long>(C)), rows.data(), rl.data(),
                    tl.data(), R);
        check_close(g, fmt("%s C=%lld gradient", o.name, static_cast<long long>(C)), out.data(), rg.data(),
                    tg.data(), n);
        LD sr = 0;
        double st = 0;
        for (int64_t r = 0; r < R; ++r) sr += rl[r], st += tl[r];
        check_close(g, fmt("%s C=%lld return", o.name, static_cast<long long>(C)), &ret, &sr, &st, 1);
        const std::vector<T> rows1 = rows;
        inpl = zin;  // the gradient written over the logits: the same values
        const double ret_ip = run(inpl.data(), inpl.data(), 1);
        report().check(g, same_values(inpl, out) && same_values(rows, rows1) && ret_ip == ret, 0,
                       fmt("%s C=%lld in place (gradient over the logits): same values", o.name,
                           static_cast<long long>(C)));
      }
    }
  }
  // thread counts: a batch above the parallel threshold, every op with options
  const int64_t C = 300, R = 400, n = C * R;
  Rng rng(5);
  std::vector<T> z(n), t(n), w(C, T(0.5)), a(C, T(0.25)), sw(R, T(0.7));
  std::vector<int64_t> y(R);
  for (int64_t i = 0; i < n; ++i) z[i] = static_cast<T>(rng.normal() * 3), t[i] = static_cast<T>(rng.uniform() / C);
  for (int64_t r = 0; r < R; ++r) y[r] = rng.below(C);
  for (const std::string& isa : isas()) {
    use_isa(isa);
    for (const OptCase& o : cases) {
      const bool label = xent::is_label_op(o.op);
      std::vector<T> out1, rows1;
      double ret1 = 0;
      bool ok = true;
      for (int th : {1, 2, 3}) {
        std::vector<T> out(n), rows(R);
        Ref zr(z.data(), {R, C}, {C, 1}, sizeof(T)), tr(t.data(), {R, C}, {C, 1}, sizeof(T));
        Ref outr(out.data(), {R, C}, {C, 1}, sizeof(T)), rowr(rows.data(), {R}, {1}, sizeof(T));
        Ref yr(y.data(), {R}, {1}, 8), wr(w.data(), {C}, {1}, sizeof(T)), ar(a.data(), {C}, {1}, sizeof(T));
        Ref swr(sw.data(), {R}, {1}, sizeof(T));
        xent::XentOptions opt;
        opt.class_w = o.cw ? &wr.ref : nullptr;
        opt.sw = o.sw ? &swr.ref : nullptr;
        opt.has_ignore = o.ignore;
        opt.ignore_index = 2;
        opt.z_loss = o.zl, opt.smoothing = o.eps, opt.softcap = o.cap, opt.param = o.param;
        opt.class_a = o.alpha ? &ar.ref : nullptr;
        const double ret = xent::run_softmax<T>(o.op, zr.ref, label ? nullptr : &tr.ref, label ? &yr.ref : nullptr,
                                                &outr.ref, &rowr.ref, 1.0 / R, th, opt);
        if (th == 1)
          out1 = out, rows1 = rows, ret1 = ret;
        else
          ok = ok && same_bits(out, out1) && same_bits(rows, rows1) && std::memcmp(&ret, &ret1, sizeof ret) == 0;
      }
      report().check(isa + " " + dtype_name<T>() + " options threads 1/2/3", ok, 0,
                     fmt("%s bit-identical for 1, 2, 3 threads", o.name));
    }
  }
}

// logsumexp, softmax and log_softmax with a soft cap (the rows-in-lanes kernels for small C,
// the row kernels past them) against long-double references of the capped logits; the
// capped logits are T numbers, within ~2 ulp of cap each.
template <class T>
void test_softcap_normalizers() {
  using xent::SoftmaxOp;
  const double u = unit_roundoff<T>(), cap = 5.0;
  const LD inf = std::numeric_limits<LD>::infinity();
  for (int64_t C : {1, 3, 9, 17, 37, 80, 129, 300}) {
    const int64_t R = 11, n = R * C;
    Rng rng(static_cast<uint64_t>(C) * 13 + sizeof(T));
    std::vector<T> z(n);
    for (int64_t i = 0; i < n; ++i) z[i] = static_cast<T>(rng.normal() * 8);
    for (int64_t c = 0; c < C; c += 2) z[2 * C + c] = -std::numeric_limits<T>::infinity();  // partly masked
    if (C > 1) z[2 * C + 1] = T(1);
    for (int64_t c = 0; c < C; ++c) z[5 * C + c] = -std::numeric_limits<T>::infinity();  // fully masked
    std::vector<LD> lse(R), sm(n), ls(n);
    std::vector<double> tl(R), ts(n), tls(n);
    for (int64_t r = 0; r < R; ++r) {
      LD m = -inf, s = 0;
      std::vector<LD> zc(C);
      for (int64_t c = 0; c < C; ++c) {
        const LD v = LD(z[r * C + c]);
        zc[c] = v == -inf ? -inf : LD(cap) * std::tanh(v / LD(cap));
        m = std::max(m, zc[c]);
      }
      if (m == -inf) {
        lse[r] = -inf;
        for (int64_t c = 0; c < C; ++c) sm[r * C + c] = 0, ls[r * C + c] = -inf, ts[r * C + c] = tls[r * C + c] = 0;
        tl[r] = 0;
        continue;
      }
      for (int64_t c = 0; c < C; ++c) s += std::exp(zc[c] - m);
      lse[r] = m + std::log(s);
      const double capt = 8 * u * cap;  // the capped logits' rounding, through the exponentials
      tl[r] = loss_tol<T>(static_cast<double>(lse[r])) + capt;
      for (int64_t c = 0; c < C; ++c) {
        sm[r * C + c] = std::exp(zc[c] - lse[r]);
        ls[r * C + c] = zc[c] - lse[r];
        const double p = static_cast<double>(sm[r * C + c]);
        ts[r * C + c] = p * (16 * u + 2 * capt) + 4 * tiny<T>();
        tls[r * C + c] = std::fabs(static_cast<double>(ls[r * C + c])) * 4 * u + 2 * capt + tl[r];
      }
    }
    for (const std::string& isa : isas()) {
      use_isa(isa);
      const std::string g = isa + " " + dtype_name<T>() + " softcap normalizers";
      for (SoftmaxOp op : {SoftmaxOp::kLogsumexp, SoftmaxOp::kSoftmax, SoftmaxOp::kLogSoftmax}) {
        std::vector<T> out(n), rows(R);
        Ref zr(z.data(), {R, C}, {C, 1}, sizeof(T)), outr(out.data(), {R, C}, {C, 1}, sizeof(T));
        Ref rowr(rows.data(), {R}, {1}, sizeof(T));
        xent::XentOptions opt;
        opt.softcap = cap;
        const bool lse_op = op == SoftmaxOp::kLogsumexp;
        xent::run_softmax<T>(op, zr.ref, nullptr, nullptr, lse_op ? nullptr : &outr.ref, lse_op ? &rowr.ref : nullptr,
                             1.0, 1, opt);
        const char* name = lse_op ? "logsumexp" : op == SoftmaxOp::kSoftmax ? "softmax" : "log_softmax";
        const std::string what = fmt("%s C=%lld", name, static_cast<long long>(C));
        if (lse_op) check_close(g, what, rows.data(), lse.data(), tl.data(), R);
        else if (op == SoftmaxOp::kSoftmax) check_close(g, what, out.data(), sm.data(), ts.data(), n);
        else check_close(g, what, out.data(), ls.data(), tls.data(), n);
      }
    }
  }
}

}  // namespace xt
