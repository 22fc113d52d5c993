"""Exact references for tests/test_weight_overflow*.py: huge weights (products that overflow
the dtype) combined with float64 terms in Python fractions, and the checks against them."""
import math
from fractions import Fraction

import numpy as np

DT = [np.float32, np.float64]
RED = ["none", "sum", "mean"]
HUGE = {np.float32: (1e30, 1e20), np.float64: (1e264, 1e300)}
RTOL = {np.float32: 3e-6, np.float64: 1e-12}


def to_float(x: Fraction) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def close(got, ref, bound, dt, what, range_dt=None):
    """``got`` (array) against exact ``ref`` (Fractions, same shape, flattened lists) with the
    magnitude ``bound`` of the terms that make it: within rtol * bound where the exact value
    is well inside the range of ``range_dt`` (default ``dt``), +-inf of the right sign where
    it is well beyond it."""
    big = float(np.finfo(range_dt or dt).max)
    got = np.asarray(got, dtype=np.float64).ravel()
    assert not np.isnan(got).any(), f"{what}: NaN {got}"
    for g, r, b in zip(got, ref, bound):
        rf = to_float(r)
        if abs(rf) <= big / 4:
            assert abs(g - rf) <= RTOL[dt] * to_float(b) + float(np.finfo(dt).tiny), f"{what}: {g} vs {rf}"
        elif abs(rf) >= 4 * big:
            assert g == math.copysign(math.inf, rf), f"{what}: {g} vs {rf}"


def logits(dt, n=5, c=4):
    z = np.array([[0, 0, 0, 0], [50, -50, 0, 1], [30, 0, 0, 0], [0, -3, 1, 2], [-3, 3, 20, -20]])[:n, :c]
    return z.astype(dt)


def softmax_parts(z):
    """Row max m, log(sum(exp(z - m))) without cancellation, and softmax(z), in float64."""
    z = z.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    rest = e.copy()
    rest[np.arange(len(z)), z.argmax(axis=1)] = 0.0  # the max's term, exactly 1
    rest = rest.sum(axis=1)
    return m[:, 0], np.log1p(rest), e / (1.0 + rest)[:, None]


def tiny_term(dt) -> Fraction:
    """An absolute error allowed in an unweighted term (below it the dtype's exponentials
    underflow: exp(-100) is 0 in float32), before the weights multiply it."""
    return Fraction(float(np.finfo(dt).tiny)) * 64


def ref_xent(z, y, t, cw, sw, zl, eps, red):
    """Exact softmax cross-entropy (xent.softmax_cross_entropy's docstring) of float64 terms."""
    n, c = z.shape
    tiny = tiny_term(z.dtype)
    m, log_s, p = softmax_parts(z)
    one = Fraction(1)
    cwf = [one] * c if cw is None else [Fraction(float(v)) for v in cw]
    swf = [one] * n if sw is None else [Fraction(float(v)) for v in sw]
    epsf = Fraction(eps)
    rows, grads, gbound, lbound = [], [], [], []
    for i in range(n):
        M, ls, zi = Fraction(float(m[i])), Fraction(float(log_s[i])), [Fraction(float(v)) for v in z[i]]
        L = M + ls
        dist = [(M - zi[k]) + ls for k in range(c)]  # lse - z_k without cancellation
        if y is not None and eps == 0:
            tt, rw = [one if k == y[i] else 0 for k in range(c)], swf[i] * cwf[y[i]]
        else:
            base = [one if k == y[i] else 0 for k in range(c)] if y is not None else [Fraction(float(v)) for v in t[i]]
            tt = [((1 - epsf) * base[k] + epsf / c) * cwf[k] for k in range(c)]
            rw = swf[i]
        tsum = sum(tt)
        loss = sum(tt[k] * dist[k] for k in range(c)) + Fraction(zl) * L * L
        rows.append(rw * loss)
        pf = tsum + 2 * Fraction(zl) * L
        grads.append([(rw, pf * Fraction(float(p[i, k])) - tt[k]) for k in range(c)])
        gbound.append([(rw, abs(pf) * Fraction(float(p[i, k])) + tt[k] + tiny) for k in range(c)])
        lbound.append(rw * (sum(tt[k] * abs(dist[k]) for k in range(c)) + Fraction(zl) * L * L + tiny))
    if red == "mean":
        den = sum(swf[i] * (cwf[y[i]] if (y is not None and cw is not None) else 1) for i in range(n))
        gs = 1 / den
    else:
        gs = Fraction(1)
    g = [rw * gs * v for row in grads for rw, v in row]
    gb = [rw * gs * v for row in gbound for rw, v in row]
    if red == "none":
        return rows, lbound, g, gb
    tot, totb = sum(rows), sum(lbound)
    return [tot * gs], [totb * gs], g, gb


def ref_sigmoid(z, t, cw, pw, sw, eps, axis, red):
    """Exact sigmoid cross-entropy (pos_weight form) of float64 terms, weight per element
    cw_c * sw_i; "mean" divides by sum(sw) (times C for axis=None)."""
    n, c = z.shape
    one, tiny = Fraction(1), tiny_term(z.dtype)
    zf = z.astype(np.float64)
    sp = np.logaddexp(0.0, -zf)  # softplus(-z)
    sig = 1.0 / (1.0 + np.exp(zf))  # sigmoid(-z)
    loss, lb, g, gb = [], [], [], []
    for i in range(n):
        row, rowb = Fraction(0), Fraction(0)
        for k in range(c):
            tk = (1 - Fraction(eps)) * Fraction(float(t[i, k])) + Fraction(eps) / 2
            q = one if pw is None else Fraction(float(pw[k]))
            b = (1 - tk) + q * tk
            w = (one if cw is None else Fraction(float(cw[k]))) * (one if sw is None else Fraction(float(sw[i])))
            zk = Fraction(float(zf[i, k]))
            val = w * ((1 - tk) * zk + b * Fraction(float(sp[i, k])))
            mag = w * (abs((1 - tk) * zk) + b * Fraction(float(sp[i, k])) + tiny)
            row, rowb = row + val, rowb + mag
            if axis is None:
                loss.append(val)
                lb.append(mag)
            g.append(w * ((1 - tk) - b * Fraction(float(sig[i, k]))))
            gb.append(w * ((1 - tk) + b * Fraction(float(sig[i, k])) + tiny))
        if axis is not None:
            loss.append(row)
            lb.append(rowb)
    if red == "none":
        return loss, lb, g, gb
    den = Fraction(1)
    if red == "mean":
        den = (sum(Fraction(float(v)) for v in sw) if sw is not None else n) * (c if axis is None else 1)
    return [sum(loss) / den], [sum(lb) / den], [v / den for v in g], [v / den for v in gb]


def ldexp_to(x, k, dt):
    """The exact ``x * 2**k`` in ``dt`` (+-inf where it overflows), elementwise."""
    with np.errstate(over="ignore"):
        return np.ldexp(np.asarray(x, dtype=dt), k)


def scaled(r0, k, dt, is_sum_loss, terms_in_dt):
    return ldexp_to(r0, k, np.float64 if (is_sum_loss and not terms_in_dt) else dt).astype(np.float64)


def homogeneous(f, dt, red, a, b, mean_shift=0, terms_in_dt=False):
    """``f(cw, sw, dtype)`` with moderate weights, then with them times 2**a and 2**b: the
    second is the first times 2**(a+b) for "none" / "sum" (exactly; inf where that
    overflows) and times 2**mean_shift for "mean" (the weights of its denominator enter as
    ratios only). The first is computed in float64 and in ``dt``: float32 results must match
    one of them elementwise (the float64 one where float32's own exponentials underflow at
    moderate weights, the float32 one where its rounding, not the weights, sets the error).
    ``terms_in_dt``: the sum adds terms of the dtype (the sigmoid losses), so terms beyond
    its range make it +inf."""
    refs = [f(1, 1, np.float64), f(1, 1, dt)]
    huge = f(2.0**a, 2.0**b, dt)
    k = mean_shift if red == "mean" else a + b
    for part in (0, 1):
        r1 = np.asarray(huge[part], dtype=np.float64).ravel()
        assert not np.isnan(r1).any()
        is_sum_loss = part == 0 and red != "none"
        wants = [scaled(np.ravel(r[part]), k, dt, is_sum_loss and red == "sum", terms_in_dt) for r in refs]
        if is_sum_loss and red == "mean":
            wants = [ldexp_to(np.ravel(r[part]), k, np.float64) for r in refs]
        atol = float(ldexp_to(float(np.finfo(dt).tiny) * 1024, k, np.float64))
        ok = np.zeros(r1.shape, bool)
        for w in wants:
            with np.errstate(invalid="ignore"):
                ok |= (r1 == w) | (np.abs(r1 - w) <= RTOL[dt] * np.abs(w) + atol)
        assert ok.all(), (part, r1[~ok], [w[~ok] for w in wants])


def shifts(dt):
    return (100, 90) if dt == np.float32 else (880, 990)
