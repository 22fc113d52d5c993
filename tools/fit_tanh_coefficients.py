"""Where the constants of xent's vector tanh polynomial (cpp/src/simd/math-inl.hpp) come from.

For |x| < 0.55, tanh(x) = x + x**3 q(x**2), with q(s) = (tanh(sqrt s) - sqrt s) / s**1.5
analytic on s in [0, 0.3025] (tanh's nearest singularities are at x = +-i pi/2, s = -2.47).
q is approximated by its Chebyshev interpolant on that interval (mpmath.chebyfit: close to
the minimax polynomial), which converges at about 0.029 per term against the Taylor
series' 0.12: 5 terms in float32 where Taylor needed 8, 11 in float64 where it needed 18,
for the same error. The relative error of x + x**3 q against tanh is at most
s |q - q_exact| / (tanh(x) / x) <= 0.35 |q - q_exact|; the figures printed are measured
on a dense grid with the coefficients rounded to the target type (the evaluation's own
roundings come on top: tests/test_softcap.py and cpp/tests/test_options.hpp check the
<= 2 ulp contract on every ISA).

Run: python tools/fit_tanh_coefficients.py   (needs mpmath; prints the C++ literals)
"""
import mpmath as mp
import numpy as np

SMALL = 0.55
TERMS = {"float": 5, "double": 11}


def q_exact(s):
    if s == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(s)
    return (mp.tanh(x) - x) / x**3


def main():
    mp.mp.dps = 50
    top = mp.mpf(SMALL) ** 2
    for ctype, n in TERMS.items():
        poly, _ = mp.chebyfit(q_exact, [0, top], n, error=True)
        coef = list(reversed(poly))  # lowest degree first
        rounded = [mp.mpf(float(np.float32(c))) if ctype == "float" else mp.mpf(float(c)) for c in coef]
        worst = mp.mpf(0)
        for k in range(1, 4001):
            x = mp.mpf(SMALL) * k / 4000
            s = x * x
            t = x + x**3 * mp.polyval(list(reversed(rounded)), s)
            worst = max(worst, abs(t / mp.tanh(x) - 1))
        print(f"// {ctype}, {n} terms: max relative error {mp.nstr(worst, 3)} (coefficients rounded)")
        suffix = "f" if ctype == "float" else ""
        print(", ".join(f"{float(np.float32(c)) if ctype == 'float' else float(c)!r}{suffix}" for c in coef))


if __name__ == "__main__":
    main()
