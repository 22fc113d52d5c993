// The rows-in-lanes kernel for a class axis that is not the last (XentOptions::inner,
// kernels/inner-inl.hpp) on every ISA, against the row kernels (inner off) on the same
// problem, which test_softmax holds to the long double reference: logits (N, C, L) with the
// class axis in the middle (rows adjacent, classes L apart) and strided copies of them (the
// tile's gather), lengths L around the lane widths and the tile, C around the rows-in-lanes
// switch of the row kernels (40) and the tile's size limit (512); random, huge and confident
// rows, -inf masks, a fully masked row, a NaN row, +inf; with and without class and sample
// weights, ignore_index and the z-loss. Finite losses within twice the loss tolerance of each
// other (both are within it of the reference), non-finite ones alike (NaN or +inf: the two
// kernels may give either for a +inf logit), gradients within twice the gradient tolerance.
#pragma once
#include <cmath>
#include <vector>

namespace xt {

template <class T>
void test_inner() {
  const double gtol = sizeof(T) == 4 ? 8e-6 : 2e-13, gatol = sizeof(T) == 4 ? 8e-7 : 2e-15;
  for (const std::string& isa : isas()) {
    use_isa(isa);
    const std::string grp = isa + " " + dtype_name<T>() + " inner axis";
    uint64_t seed = 900 + sizeof(T);
    for (int64_t C : {2, 3, 9, 40, 41, 300, 1500})
      for (int64_t L : {1, 3, 8, 13, 70})
        for (int variant = 0; variant < 4; ++variant) {
          const bool opts = variant & 1, strided = variant & 2;
          const int64_t N = 3, R = N * L, sp = strided ? 2 : 1;  // sp: element spacing
          Rng rng(++seed);
          std::vector<T> z(static_cast<size_t>(N * C * L * sp)), w(C), sw(R);
          std::vector<int64_t> y(R);
          auto at = [&](int64_t n, int64_t c, int64_t l) -> T& { return z[((n * C + c) * L + l) * sp]; };
          for (int64_t r = 0; r < R; ++r) {
            const int64_t n = r / L, l = r % L;
            const int kind = static_cast<int>(rng.below(6));
            for (int64_t c = 0; c < C; ++c) {
              double v = 4 * rng.normal();
              if (kind == 1) v = rng.uniform(60, 140) + (sizeof(T) == 8 ? 6e3 : 0);
              if (kind == 2 && rng.uniform() < 0.5) v = -INFINITY;
              if (kind == 3) v = c == 1 ? 30.0 : 0.0;  // confident
              at(n, c, l) = static_cast<T>(v);
            }
            y[r] = rng.below(C);
            if (kind == 2) at(n, y[r], l) = T(1);  // the label's class not masked
            if (opts && rng.uniform() < 0.2) y[r] = -1;  // ignored
            sw[r] = static_cast<T>(rng.uniform(0.5, 2));
          }
          for (int64_t c = 0; c < C; ++c) w[c] = static_cast<T>(rng.uniform(0.25, 2));
          if (R > 4) {
            for (int64_t c = 0; c < C; ++c) at(0, c, 1) = -INFINITY;  // fully masked
            at(1 / L, C / 2, 3 % L) = NAN;
            at(N - 1, 0, L - 1) = INFINITY;
          }
          const std::vector<int64_t> zshape{N, L, C}, zst{C * L * sp, sp, L * sp}, yshape{N, L}, yst{L, 1};
          auto run = [&](bool inner, std::vector<T>& loss, std::vector<T>& grad) {
            loss.assign(static_cast<size_t>(R), T(-7));
            grad.assign(z.size(), T(-7));
            Ref zr(z.data(), zshape, zst, sizeof(T)), gr(grad.data(), zshape, zst, sizeof(T));
            Ref yr(y.data(), yshape, yst, 8), lr(loss.data(), yshape, yst, sizeof(T));
            Ref wr(w.data(), {C}, {1}, sizeof(T)), swr(sw.data(), yshape, yst, sizeof(T));
            xent::XentOptions o;
            o.inner = inner;
            if (opts) {
              o.class_w = &wr.ref;
              o.sw = &swr.ref;
              o.has_ignore = true;
              o.ignore_index = -1;
              o.z_loss = 1e-3;
            }
            return xent::run_softmax<T>(xent::SoftmaxOp::kXentLabel, zr.ref, nullptr, &yr.ref, &gr.ref, &lr.ref,
                                        0.5, 1, o);
          };
          std::vector<T> l1, g1, l2, g2;
          const double t1 = run(true, l1, g1), t2 = run(false, l2, g2);
          const std::string what = fmt("C=%lld L=%lld%s%s", static_cast<long long>(C), static_cast<long long>(L),
                                       opts ? " options" : "", strided ? " strided" : "");
          double worst = 0;
          bool ok = true;
          for (int64_t r = 0; r < R; ++r) {
            const double a = static_cast<double>(l1[r]), b = static_cast<double>(l2[r]);
            if (!std::isfinite(b) || !std::isfinite(a)) {
              ok = ok && !std::isfinite(a) && !std::isfinite(b) && !(a == -b);
              continue;
            }
            const double ratio = std::fabs(a - b) / (2 * loss_tol<T>(b));
            worst = std::max(worst, ratio);
            ok = ok && ratio <= 1;
            const int64_t n = r / L, l = r % L;
            for (int64_t c = 0; c < C; ++c) {
              const size_t i = static_cast<size_t>(((n * C + c) * L + l) * sp);
              const double ga = static_cast<double>(g1[i]), gb = static_cast<double>(g2[i]);
              const double gr = std::fabs(ga - gb) / (gtol * std::fabs(gb) + gatol);
              worst = std::max(worst, gr);
              ok = ok && gr <= 1;
            }
          }
          // the totals: both non-finite (a NaN or +inf row), or within the rows' tolerances
          const bool tot_ok = (!std::isfinite(t1) && !std::isfinite(t2)) ||
                              std::fabs(t1 - t2) <= 2 * loss_tol<T>(t2) * static_cast<double>(R);
          report().check(grp, ok && tot_ok, worst, what);
        }
  }
}

}  // namespace xt
