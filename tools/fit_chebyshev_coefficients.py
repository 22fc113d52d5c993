"""Where the Chebyshev-fitted constants of xent's vector math (cpp/src/simd/math-inl.hpp) come from.

Each function is a fixed part plus a polynomial q in a reduced variable v on [lo, hi]:
  tanh(x) = x (1 + s q(s)),           s = x**2 in [0, 0.55**2]          (|x| < 0.55)
  log1p(x) = 2 atanh(u) = 2u + 2u z q(z), u = x / (2 + x), z = u**2 in [0, ((sqrt2 - 1) / (sqrt2 + 1))**2]
  exp(r) = 1 + r q(r),                r in [-ln2 / 2, ln2 / 2]          (float64; float32's
                                      table form is tools/fit_exp_coefficients.py)
Each q is analytic on its interval, and its Chebyshev interpolant (mpmath.chebyfit: close to
the minimax polynomial) converges much faster than the Taylor series used before: tanh 5
terms in float32 where Taylor needed 8, 11 in float64 where it needed 18; log 3 and 7 where
it needed 4 and 9; exp 11 where it needed 13 (so 10 multiply-adds instead of 12). The
figures printed are the maximal relative error of the fixed part plus the polynomial, with
the coefficients rounded to the target type, on a dense grid (the evaluation's roundings
come on top: tests/test_math.py, tests/test_softcap.py and cpp/tests/ check each function's
ulp contract on every ISA).

Run: python tools/fit_chebyshev_coefficients.py   (needs mpmath; prints the C++ literals)
"""
import mpmath as mp
import numpy as np


def _q_tanh(s):
    if s == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(s)
    return (mp.tanh(x) / x - 1) / s


def _q_log(z):
    if z == 0:
        return mp.mpf(1) / 3
    u = mp.sqrt(z)
    return (mp.atanh(u) / u - 1) / z


def _q_exp(r):
    return mp.mpf(1) if r == 0 else (mp.exp(r) - 1) / r


def _tanh_err(s, qv):
    x = mp.sqrt(s)
    return x * (1 + s * qv) / mp.tanh(x) - 1 if s else mp.mpf(0)


def _log_err(z, qv):
    u = mp.sqrt(z)
    return (u + u * z * qv) / mp.atanh(u) - 1 if z else mp.mpf(0)


def _exp_err(r, qv):
    return (1 + r * qv) / mp.exp(r) - 1


def _fits():
    mp.mp.dps = 50
    zlog = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2
    half_ln2 = mp.log(2) / 2
    return [
        ("tanh", "float", _q_tanh, _tanh_err, (0, mp.mpf("0.55") ** 2), 5),
        ("tanh", "double", _q_tanh, _tanh_err, (0, mp.mpf("0.55") ** 2), 11),
        ("log", "float", _q_log, _log_err, (0, zlog), 3),
        ("log", "double", _q_log, _log_err, (0, zlog), 7),
        ("exp", "double", _q_exp, _exp_err, (-half_ln2, half_ln2), 11),
    ]


def main():
    for name, ctype, q, err, (lo, hi), n in _fits():
        poly = mp.chebyfit(q, [lo, hi], n)
        if ctype == "float":
            coef = [float(np.float32(float(c))) for c in reversed(poly)]  # lowest degree first
        else:
            coef = [float(c) for c in reversed(poly)]
        rounded = [mp.mpf(c) for c in reversed(coef)]
        worst = max(abs(err(v, mp.polyval(rounded, v))) for v in (lo + (hi - lo) * k / 4000 for k in range(4001)))
        print(f"// {name} {ctype}, {n} terms: max relative error {mp.nstr(worst, 3)} (coefficients rounded)")
        suffix = "f" if ctype == "float" else ""
        print(", ".join(f"{c!r}{suffix}" for c in coef))


if __name__ == "__main__":
    main()
