// run_softmax (all five ops) through xent::ArrayRef against a plain high-precision
// reference, on every runnable ISA, and each SIMD ISA against the scalar one.
#pragma once
#include "test_cases.hpp"

namespace xt {

template <class T>
struct SmRun {
  std::vector<T> out, rows;
  double ret = 0;
};

// Runs one op on the active ISA. out (if wanted) is gathered back to logical order.
template <class T>
SmRun<T> run_sm(const SmCase<T>& k, xent::SoftmaxOp op, bool want_out, bool want_rows, int threads = 1,
                bool in_place = false) {
  using xent::SoftmaxOp;
  const Layout& L = k.L;
  const int64_t n = L.R * L.C, s = sizeof(T);
  Guarded<T> z(n), t(n), out(n), rows(L.R);
  Guarded<int64_t> y8(L.R);
  Guarded<int32_t> y4(L.R);
  for (int64_t r = 0; r < L.R; ++r) {
    for (int64_t c = 0; c < L.C; ++c) z[L.off(r, c)] = k.z[r * L.C + c], t[L.off(r, c)] = k.t[r * L.C + c];
    y8[L.roff(r)] = k.y[r];
    y4[L.roff(r)] = static_cast<int32_t>(k.y[r]);
  }
  if (in_place) std::memcpy(out.data(), z.data(), n * s);
  Ref zr(in_place ? out.data() : z.data(), L.shape(), L.strides(), s), tr(t.data(), L.shape(), L.strides(), s);
  Ref outr(out.data(), L.shape(), L.strides(), s), rowr(rows.data(), L.row_shape(), L.row_strides(), s);
  // int64 labels in the contiguous layout, int32 in the strided one
  Ref yr(L.strided ? static_cast<void*>(y4.data()) : static_cast<void*>(y8.data()), L.row_shape(),
         L.row_strides(), L.strided ? 4 : 8);
  SmRun<T> res;
  res.ret = xent::run_softmax<T>(op, zr.ref, op == SoftmaxOp::kXentTarget ? &tr.ref : nullptr,
                                 op == SoftmaxOp::kXentLabel ? &yr.ref : nullptr, want_out ? &outr.ref : nullptr,
                                 want_rows ? &rowr.ref : nullptr, k.gscale, threads);
  if (want_out) {
    res.out.resize(n);
    for (int64_t r = 0; r < L.R; ++r)
      for (int64_t c = 0; c < L.C; ++c) res.out[r * L.C + c] = out[L.off(r, c)];
  }
  if (want_rows)
    for (int64_t r = 0; r < L.R; ++r) res.rows.push_back(rows[L.roff(r)]);
  return res;
}

// The kernel's own lse and log(s) (s = sum exp(z - m)) of row r, in double: a one-row call
// returns its row result unrounded; a label at the row max makes the loss (m - z_y) + log s
// exactly log s.
template <class T>
double kernel_row(const SmCase<T>& k, int64_t r, bool log_s) {
  Guarded<T> z(k.L.C);
  std::memcpy(z.data(), &k.z[r * k.L.C], k.L.C * sizeof(T));
  int64_t y = 0;
  for (int64_t c = 0; c < k.L.C; ++c)
    if (z[c] > z[y]) y = c;
  Ref zr(z.data(), {k.L.C}, {1}, sizeof(T)), yr(&y, {}, {}, 8);
  return xent::run_softmax<T>(log_s ? xent::SoftmaxOp::kXentLabel : xent::SoftmaxOp::kLogsumexp, zr.ref, nullptr,
                              log_s ? &yr.ref : nullptr, nullptr, nullptr, 1.0, 1);
}

// Probabilities and gradients, ref = G (S p - t) with p = exp(z - lse). The kernel computes
// p = fl(e * f): e = exp_nonpos(fl(z - m_b)) (m_b the block's reference max; contract
// 2 ulp <= 4u), f = G S / s in double, or exp((m_b - m) - log s) G S where m_b < m (<= 3u
// in double), rounded to T (u); the product (u); for gradients one more rounding of
// G S p - t (u |ref|, and u G t from rounding G to T). The rounded exponent arguments err
// by at most u (lse - z) each: with the rest, 10u + 2u (lse - z) relative. The error d of
// the kernel's log s (checked on its own against the reference) adds em1 = expm1(d)
// relatively; exp_nonpos flushes results below the smallest normal to 0, which the floor
// covers.
template <class T>
double prob_tol(double arg, double p, double G, double S, double t, double ref, double em1) {
  const double u = unit_roundoff<T>();
  if (!std::isfinite(arg)) arg = 0;  // masked logit: p = 0 exactly
  return G * S * p * (u * (10 + 2 * arg) + em1) + u * std::fabs(ref) + u * G * t + 4 * tiny<T>() * (G * S + 1);
}

template <class T>
void test_softmax_case(const SmCase<T>& k, std::map<std::string, IsaOut>& scalar_out) {
  using xent::SoftmaxOp;
  const int64_t R = k.L.R, C = k.L.C, n = R * C;
  const double u = unit_roundoff<T>(), ud = unit_roundoff<double>(), G = k.gscale;
  const LD inf = std::numeric_limits<LD>::infinity();
  // references (ISA-independent): log-probabilities, label/target gradients and losses
  std::vector<LD> lsm(n), glab(n), gtgt(n), llab(R), ltgt(R);
  std::vector<double> arg(n);  // lse - z: the condition number of p = exp(z - lse)
  for (int64_t r = 0; r < R; ++r) {
    const LD S = k.tsum[r];
    LD a = 0;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      const LD z = k.z[i], t = k.t[i], oh = c == k.y[r] ? 1 : 0;
      arg[i] = static_cast<double>(k.lse[r] - z);
      lsm[i] = k.masked[r] ? -inf : (z - k.m[r]) - k.logs[r];  // -inf at masks; NaN rows NaN
      glab[i] = k.masked[r] ? 0 : G * (k.p[i] - oh);
      gtgt[i] = k.masked[r] ? 0 : G * (S * k.p[i] - t);
      if (t != 0) a += t * (k.lse[r] - z);  // 0 log 0 = 0
    }
    llab[r] = k.masked[r] ? inf : (k.m[r] - LD(k.z[r * C + k.y[r]])) + k.logs[r];  // +inf: masked label
    ltgt[r] = k.masked[r] ? (S > 0 ? inf : 0) : a;
  }
  std::vector<double> tol_llab(R), tol_ltgt(R), tol_logs(R);
  for (int64_t r = 0; r < R; ++r) {
    tol_llab[r] = loss_tol<T>(static_cast<double>(llab[r]));
    tol_ltgt[r] = loss_tol<T>(static_cast<double>(ltgt[r]));
    tol_logs[r] = loss_tol<T>(static_cast<double>(k.logs[r]));
  }

  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string pre = isa + " " + dtype_name<T>() + " ";
    IsaOut res;
    auto rec = [&](const std::string& op, const std::string& what, const auto& got, const std::vector<LD>& ref,
                   const std::vector<double>& tol) {
      check_close(pre + op, k.name + " " + what, got.data(), ref.data(), tol.data(), static_cast<int64_t>(tol.size()));
      res[op + " " + what] = {std::vector<double>(got.begin(), got.end()), tol};
    };
    auto ret_check = [&](const std::string& op, double got, const std::vector<LD>& ref,
                         const std::vector<double>& tol) {
      LD sr = 0;
      double st = 0, sa = 0;
      for (int64_t r = 0; r < R; ++r) sr += ref[r], st += tol[r], sa += std::fabs(static_cast<double>(ref[r]));
      rec(op, "return", std::vector<double>{got}, {sr}, {st + 2 * R * ud * sa});
    };

    // logsumexp: lse = m + log(s); the error sits in log(s), held to the loss tolerance
    std::vector<double> lse_k(R), logs_k(R), em1(R), d(R), tol_lse(R), tol_lse_d(R);
    for (int64_t r = 0; r < R; ++r) {
      lse_k[r] = kernel_row(k, r, false);
      logs_k[r] = k.masked[r] ? 0 : kernel_row(k, r, true);
      d[r] = std::fabs(static_cast<double>(logs_k[r] - k.logs[r]));
      em1[r] = std::expm1(d[r]);
      tol_lse_d[r] = tol_logs[r] + 2 * ud * std::fabs(static_cast<double>(k.lse[r]));
      tol_lse[r] = tol_logs[r] + u * std::fabs(static_cast<double>(k.lse[r]));
    }
    rec("logsumexp", "log s (double)", logs_k, k.logs, tol_logs);
    rec("logsumexp", "lse (double)", lse_k, k.lse, tol_lse_d);
    SmRun<T> o = run_sm(k, SoftmaxOp::kLogsumexp, false, true);
    rec("logsumexp", "row_out", o.rows, k.lse, tol_lse);
    ret_check("logsumexp", o.ret, k.lse, tol_lse_d);

    // softmax (and in place: the same values)
    std::vector<double> tol(n);
    for (int64_t i = 0; i < n; ++i) {
      const double p = static_cast<double>(k.p[i]);
      tol[i] = prob_tol<T>(arg[i], p, 1, 1, 0, p, em1[i / C]);
    }
    o = run_sm(k, SoftmaxOp::kSoftmax, true, false);
    rec("softmax", "probabilities", o.out, k.p, tol);
    SmRun<T> ip = run_sm(k, SoftmaxOp::kSoftmax, true, false, 1, true);
    report().check(pre + "softmax", same_values(ip.out, o.out), 0, k.name + " in place (out aliases z): same values");

    // log_softmax: fl(fl(z - m) - fl(log s)): u (m - z) + u log s + u |out|, and d
    for (int64_t i = 0; i < n; ++i) {
      const double l = static_cast<double>(lsm[i]);
      tol[i] = std::isfinite(l) ? 2 * u * (arg[i] + std::fabs(l)) + 2 * d[i / C] + tiny<T>() : 0;
    }
    o = run_sm(k, SoftmaxOp::kLogSoftmax, true, false);
    rec("log_softmax", "log-probabilities", o.out, lsm, tol);

    // xent with labels: loss (m - z_y) + log(s); gradient G (p - onehot)
    for (int64_t i = 0; i < n; ++i)
      tol[i] = prob_tol<T>(arg[i], static_cast<double>(k.p[i]), G, 1, i % C == k.y[i / C] ? 1 : 0,
                           static_cast<double>(glab[i]), em1[i / C]);
    o = run_sm(k, SoftmaxOp::kXentLabel, true, true);
    rec("xent_label", "gradient", o.out, glab, tol);
    rec("xent_label", "losses", o.rows, llab, tol_llab);
    ret_check("xent_label", o.ret, llab, tol_llab);
    ip = run_sm(k, SoftmaxOp::kXentLabel, true, true, 1, true);
    report().check(pre + "xent_label", same_values(ip.out, o.out) && same_values(ip.rows, o.rows), 0,
                   k.name + " in place (grad aliases z): same values");
    o = run_sm(k, SoftmaxOp::kXentLabel, false, true);
    rec("xent_label", "losses (no gradient)", o.rows, llab, tol_llab);

    // xent with targets: loss sum t (lse - z) (0 log 0 = 0); gradient G (S p - t)
    for (int64_t i = 0; i < n; ++i)
      tol[i] = prob_tol<T>(arg[i], static_cast<double>(k.p[i]), G, static_cast<double>(k.tsum[i / C]), k.t[i],
                           static_cast<double>(gtgt[i]), em1[i / C]);
    o = run_sm(k, SoftmaxOp::kXentTarget, true, true);
    rec("xent_target", "gradient", o.out, gtgt, tol);
    rec("xent_target", "losses", o.rows, ltgt, tol_ltgt);
    ret_check("xent_target", o.ret, ltgt, tol_ltgt);

    if (isa == "scalar")
      scalar_out[k.name] = res;
    else
      compare_with_scalar(pre + "vs scalar", k.name, res, scalar_out[k.name]);
  }
}

}  // namespace xt
