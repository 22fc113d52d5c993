"""Extended-precision references for the Hessian tests (long double; no formula shared
with the kernels), the tolerance check they use, and test logits."""
import numpy as np

LD = np.longdouble
# Relative accuracy of the Hessians: a few ulp (exp, two roundings, the normalisation), plus
# in float32 the rounding of z - m before exp (up to 2**-24 |z - m| absolute: 5e-6 relative in
# p at |z - m| = 87, below which p underflows), as in xent.softmax.
HTOL = {np.float32: 1e-5, np.float64: 4e-14}
TINY = {np.float32: 1e-37, np.float64: 1e-300}  # exp underflow below the smallest normal

def ref_sigmoid_hessian(z):
    z = np.asarray(z, dtype=LD)
    with np.errstate(over="ignore"):
        return (1 / ((1 + np.exp(-z)) * (1 + np.exp(z)))).astype(np.float64)


def _probs_rows(z):
    """Rows of softmax in long double, and the sum of the other classes' probabilities
    (1 - p_c without cancellation, from prefix and suffix sums of non-negative terms)."""
    z = np.asarray(z, dtype=LD)
    p = np.zeros_like(z)
    others = np.zeros_like(z)
    for i, r in enumerate(z):
        m = r.max() if r.size else -np.inf
        if m == -np.inf:
            continue
        e = np.exp(r - m)
        s = e.sum()
        pre = np.concatenate([[LD(0)], np.cumsum(e)[:-1]])
        suf = np.concatenate([np.cumsum(e[::-1])[::-1][1:], [LD(0)]])
        p[i] = e / s
        others[i] = (pre + suf) / s
    return p, others


def _rows(x, axis):
    a = np.moveaxis(np.asarray(x), axis, -1)
    return a.reshape(-1, a.shape[-1]) if a.shape[-1] else a.reshape(-1, 0), a.shape


def _back(r, shape, axis):
    return np.moveaxis(np.asarray(r).reshape(shape), -1, axis)


def ref_softmax_hessian_diag(z, axis=-1):
    rows, shape = _rows(z, axis)
    p, others = _probs_rows(rows)
    return _back((p * others).astype(np.float64), shape, axis)


def ref_softmax_hvp(z, v, axis=-1):
    """(H v)_c = p_c sum_k p_k (v_c - v_k) (= p_c v_c - p_c (p . v) as sum p = 1), and the
    scale of its rounding error, p_c (sum_k p_k |v_c - v_k| + |v_c - v_r|), r the argmax."""
    rows, shape = _rows(z, axis)
    vr, _ = _rows(v, axis)
    p, _ = _probs_rows(rows)
    out = np.zeros(rows.shape, dtype=LD)
    scale = np.zeros(rows.shape, dtype=LD)
    for i in range(len(rows)):
        vi = vr[i].astype(LD)
        diff = vi[:, None] - vi[None, :]
        out[i] = p[i] * (diff * p[i][None, :]).sum(1)
        r = int(np.argmax(rows[i])) if rows.shape[1] else 0
        scale[i] = p[i] * ((np.abs(diff) * p[i][None, :]).sum(1) + np.abs(vi - vi[r]) if rows.shape[1] else 0)
    return _back(out.astype(np.float64), shape, axis), _back(scale.astype(np.float64), shape, axis)


def assert_rel(actual, expected, dtype, scale=None):
    actual = np.asarray(actual, dtype=np.float64)
    scale = np.abs(expected) if scale is None else scale
    err = np.abs(actual - expected)
    bad = err > HTOL[dtype] * scale + TINY[dtype]
    assert not bad.any(), (
        f"{bad.sum()} bad, worst at {np.unravel_index(np.argmax(err - HTOL[dtype] * scale), err.shape)}: "
        f"{actual[bad][:5]} vs {expected[bad][:5]}"
    )


def logits(rng, shape, dtype, pattern="random"):
    z = rng.standard_normal(shape) * 4
    if pattern == "big":
        z *= 2500  # |z| ~ 1e4
    elif pattern == "confident":
        z[..., 0] += 40  # p_0 = 1 - 1e-17: 1 - p_0 rounds to 0 in float64
    elif pattern == "masked":
        z[rng.random(shape) < 0.3] = -np.inf
    return z.astype(dtype)
