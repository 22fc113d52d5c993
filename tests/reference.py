"""Float64 (extended precision where NumPy has it) references for every xent function.

Written plainly, row by row where that is clearer, following SEMANTICS.md's xent column:
-inf logits are masks, a fully masked row has lse = -inf, loss +inf, probabilities and
gradient 0; 0*log 0 = 0. They are slow on purpose and only used on test-sized inputs.
"""
import numpy as np

LD = np.longdouble


def _rows(x, axis):
    """x as a 2-d (rows, C) longdouble array, and a function putting (rows, C) back."""
    a = np.moveaxis(np.asarray(x, dtype=LD), axis, -1)
    shape = a.shape
    flat = a.reshape(int(np.prod(shape[:-1])), shape[-1])  # also right for 0 rows or 0 classes

    def back(r):
        return np.moveaxis(np.asarray(r).reshape(shape), -1, axis)

    return flat, shape[:-1], back


def _lse_row(z):
    m = np.max(z) if z.size else -np.inf
    if m == -np.inf:
        return LD(-np.inf), LD(-np.inf), LD(0)
    if np.isnan(m) or np.isnan(z).any():
        return LD(np.nan), LD(np.nan), LD(np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.sum(np.exp(z - m))
    return m + np.log(s), m, s


def logsumexp(x, axis=-1):
    z, rshape, _ = _rows(x, axis)
    return np.array([_lse_row(r)[0] for r in z], dtype=np.float64).reshape(rshape)


def softmax(x, axis=-1):
    z, _, back = _rows(x, axis)
    out = np.zeros(z.shape, dtype=LD)
    for i, r in enumerate(z):
        lse, m, _ = _lse_row(r)
        if m == -np.inf:
            continue
        with np.errstate(invalid="ignore"):
            out[i] = np.exp(r - lse)
    return back(out.astype(np.float64))


def log_softmax(x, axis=-1):
    z, _, back = _rows(x, axis)
    out = np.full(z.shape, -np.inf, dtype=LD)
    for i, r in enumerate(z):
        _, m, s = _lse_row(r)
        if m == -np.inf:
            continue
        with np.errstate(invalid="ignore"):
            out[i] = (r - m) - np.log(s)
    return back(out.astype(np.float64))


def softmax_xent_labels(x, y, axis=-1):
    """Per-row losses and per-row gradients (softmax - onehot) for integer labels."""
    z, rshape, back = _rows(x, axis)
    yy = np.asarray(y).reshape(-1)
    loss = np.zeros(len(z), dtype=LD)
    grad = np.zeros(z.shape, dtype=LD)
    for i, r in enumerate(z):
        lse, m, s = _lse_row(r)
        if m == -np.inf:
            loss[i] = np.inf
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            loss[i] = (m - r[yy[i]]) + np.log(s)
            grad[i] = np.exp(r - lse)
        grad[i, yy[i]] -= 1
    return loss.astype(np.float64).reshape(rshape), back(grad.astype(np.float64))


def softmax_xent_targets(x, t, axis=-1):
    """Per-row losses sum_c t_c (lse - z_c) (0 log 0 = 0) and gradients sum(t) p - t."""
    z, rshape, back = _rows(x, axis)
    tt, _, _ = _rows(t, axis)
    loss = np.zeros(len(z), dtype=LD)
    grad = np.zeros(z.shape, dtype=LD)
    for i, (r, ti) in enumerate(zip(z, tt)):
        lse, m, s = _lse_row(r)
        tsum = ti.sum()
        if m == -np.inf:
            loss[i] = np.inf if tsum > 0 else 0
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            terms = np.where(ti == 0, 0, ti * ((m - r) + np.log(s)))
            loss[i] = terms.sum()
            grad[i] = tsum * np.exp(r - lse) - ti
    return loss.astype(np.float64).reshape(rshape), back(grad.astype(np.float64))


def sigmoid_xent(x, t):
    """Elementwise losses max(z,0) - z t + log1p(exp(-|z|)) and gradients sigmoid(z) - t,
    in extended precision (with 0*inf = 0 for a zero factor, as xent defines it)."""
    z = np.asarray(x, dtype=LD)
    tt = np.asarray(t, dtype=LD)
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.where(z >= 0, 1 - tt, -tt)
        lin = np.where(a == 0, 0, z * a)
        e = np.exp(-np.abs(z))
        loss = lin + np.log1p(e)
        sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        grad = sig - tt
    return loss.astype(np.float64), grad.astype(np.float64)


def numeric_grad(f, x, h=1e-5):
    """4th-order central differences of a scalar function f at x (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        orig = x[i]
        vals = []
        for k in (2, 1, -1, -2):
            x[i] = orig + k * h
            vals.append(f(x))
        x[i] = orig
        g[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return g
