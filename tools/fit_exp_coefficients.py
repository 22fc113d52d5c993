"""Where the constants of xent's vector exp (cpp/src/simd/math-inl.hpp) come from.

exp(x) = 2**n * p(r), n = round(x / ln2), r = x - n*ln2 in [-ln2/2, ln2/2].

float32: p(r) = 1 + c1 r + ... + c6 r**6 with p(0) = 1 exactly (so exp(0) == 1 and a
one-class softmax loss is exactly 0).  c1..c6 minimise the maximum relative error of p
against exp on the interval: Lawson's iteratively reweighted least squares, which
converges to the minimax (equioscillating) solution, then rounded to float32.
Degree 6, not 5: degree 5's error (9.5e-8) is up to 1.6 ulp where the result's mantissa
is near 2, and with the roundings of the evaluation it exceeded the 2 ulp contract (2.014
ulp at x = -59.912388f, found by an exhaustive float32 sweep); degree 6 gives 1.7e-8 and
an exhaustive maximum of 1.05 ulp.

float64: the Taylor polynomial of degree 13 (c_k = 1/k!); its truncation error on the
interval is below 4e-18, far under half an ulp, so no fit is needed.

Run: python tools/fit_exp_coefficients.py   (prints the C++ literals and the errors)
"""
import math

import numpy as np


def lawson(degree, half, iters=400, n=20001):
    r = np.linspace(-half, half, n)
    f = np.exp(r)
    # relative error of 1 + sum c_k r^k against e^r: (1 + A c) / f - 1 = A' c - b
    a = np.stack([r ** k / f for k in range(1, degree + 1)], axis=1)
    b = 1.0 - 1.0 / f
    w = np.full(n, 1.0 / n)
    c = None
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
        err = np.abs(a @ c - b)
        w = w * err
        w /= w.sum()
    return c, np.abs(a @ c - b).max()


DEGREE = 6


def main():
    half = math.log(2) / 2
    c, _ = lawson(DEGREE, half)
    c32 = np.float32(c)
    r = np.linspace(-half, half, 200001)
    p = 1.0 + sum(np.float64(c32[k]) * r ** (k + 1) for k in range(DEGREE))
    err = np.abs(p / np.exp(r) - 1).max()
    print(f"// float32, degree {DEGREE}: max relative error of p (float32 coefficients): {err:.3g}")
    for k, v in enumerate(c32):
        print(f"  c{k + 1} = {float(v)!r}f")
    t = half ** 14 / math.factorial(14)
    print(f"// float64, Taylor degree 13: truncation error bound {t:.3g}")


if __name__ == "__main__":
    main()
