"""Where the constants of xent's vector exp (cpp/src/simd/math-inl.hpp) come from.

float32: exp(x) = 2**(k/8) * p(r), k = round(8 x / ln2), r = x - k ln2/8 in
[-ln2/16, ln2/16]; 2**(k/8) = 2**n * 2**(j/8) with k = 8n + j, 2**(j/8) from a table of
eight (a permute on AVX2, a byte lookup on NEON). Each entry is float32's nearest 2**(j/8)
plus its relative rounding error as a second float, added to the polynomial's part.
p(r) = 1 + r + c2 r**2 + c3 r**3 (p(0) = 1 exactly, so exp(0) == 1 and a one-class
softmax loss is exactly 0); c2, c3 minimise the maximum relative error of p against exp
on the interval: Lawson's iteratively reweighted least squares, which converges to the
minimax (equioscillating) solution, then rounded to float32. Error 2.6e-8; an exhaustive
float32 sweep measured 1.10 ulp at most (the ulp of the rounded true value).
(The previous form, one 2**n and a degree-6 polynomial over [-ln2/2, ln2/2], measured
1.05 ulp and took 5 dependent FMAs instead of 2; degree 5 there broke the 2 ulp
contract: 2.014 ulp at x = -59.912388f.)

float64 keeps one 2**n and a degree-11 polynomial over [-ln2/2, ln2/2]; its constants
come from tools/fit_chebyshev_coefficients.py.

Run: python tools/fit_exp_coefficients.py   (prints the C++ literals and the errors)
"""
import math
from decimal import Decimal, getcontext

import numpy as np


def lawson(degree, half, iters=400, n=20001, first=1):
    """c_first..c_degree of 1 + (r if first == 2) + sum c_k r^k, minimax relative error."""
    r = np.linspace(-half, half, n)
    f = np.exp(r)
    # relative error of 1 + sum c_k r^k against e^r: (1 + A c) / f - 1 = A' c - b
    a = np.stack([r ** k / f for k in range(first, degree + 1)], axis=1)
    b = 1.0 - (1.0 + (r if first == 2 else 0.0)) / f
    w = np.full(n, 1.0 / n)
    c = None
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        err = np.abs(a @ c - b)
        w = w * err
        w /= w.sum()
    return c, np.abs(a @ c - b).max()


def table():
    """2**(j/8) for j < 8: bits of float32's nearest, less the bias and j << 20 (so that
    adding k's biased bits << 20, k = 8n + j, gives 2**n 2**(j/8)), and the relative error."""
    getcontext().prec = 40
    bits, corr = [], []
    for j in range(8):
        t = Decimal(2) ** (Decimal(j) / 8)
        hi = np.float32(float(t))
        b = int(np.array(hi).view(np.uint32))
        bits.append((b - (127 << 23) - (j << 20)) % 2**32)
        corr.append(np.float32(float((t - Decimal(float(hi))) / Decimal(float(hi)))))
    return bits, corr


def main():
    half = math.log(2) / 16
    c, _ = lawson(3, half, first=2)
    c32 = np.float32(c)
    r = np.linspace(-half, half, 200001)
    p = 1.0 + r + np.float64(c32[0]) * r**2 + np.float64(c32[1]) * r**3
    err = np.abs(p / np.exp(r) - 1).max()
    print(f"// float32, 1 + r + c2 r^2 + c3 r^3 on [-ln2/16, ln2/16]: max relative error {err:.3g}")
    print(f"  c2 = {float(c32[0])!r}f, c3 = {float(c32[1])!r}f")
    print(f"  8 / ln2 = {float(np.float32(8 / math.log(2)))!r}f; magic 1.5 * 2**23 + 8 * 127 = {1.5 * 2**23 + 1016}f")
    bits, corr = table()
    print("  exp_tab_bits = {" + ", ".join(f"0x{b:08x}u" for b in bits) + "}")
    print("  exp_tab_corr = {" + ", ".join(f"{float(v)!r}f" for v in corr) + "}")


if __name__ == "__main__":
    main()
