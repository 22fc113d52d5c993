"""Extended-precision references for the sigmoid options and the sigmoid focal loss, written
out from the peers' formulas (PyTorch's pos_weight, Keras's binary label smoothing,
torchvision's / optax's focal loss) in long double, elementwise. Weights and reductions are
applied by the callers (tests), which spell out the denominators they expect.
"""
import numpy as np

LD = np.longdouble


def _sig(z):
    """sigmoid(z) and sigmoid(-z), each without cancellation."""
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    q = np.where(z >= 0, e / (1 + e), 1 / (1 + e))
    return p, q


def smooth(t, eps):
    """Keras: t -> (1 - eps) t + eps/2, and 1 - t of the result (from 1 - t, not from t')."""
    t = np.asarray(t, dtype=LD)
    eps = LD(eps)
    return (1 - eps) * t + eps / 2, (1 - eps) * (1 - t) + eps / 2


def bce(x, t, pos_weight=None, eps=0.0):
    """PyTorch's l = (1 - t) z - (1 + (q - 1) t) log sigmoid(z) with Keras smoothing, and dl/dz.
    log sigmoid(z) = -(max(-z, 0) + log1p(exp(-|z|))); for z < 0 the z terms are combined
    by hand, (1 - t) z + b (-z) = -q t z, so the reference loses nothing to cancellation.
    Zero factors give zero terms even for infinite z (0 * inf = 0)."""
    z = np.asarray(x, dtype=LD)
    ts, omt = smooth(t, eps)
    q = LD(1) if pos_weight is None else np.asarray(pos_weight, dtype=LD)
    with np.errstate(invalid="ignore", over="ignore"):
        b = omt + q * ts
        a = np.where(z >= 0, omt, -q * ts)
        lin = np.where(a == 0, 0, z * a)
        l1p = np.log1p(np.exp(-np.abs(z)))
        loss = lin + np.where(b == 0, 0, b * l1p)
        _, sn = _sig(z)
        grad = omt - b * sn
    return loss, grad


def focal(x, t, gamma, alpha=None):
    """torchvision: FL = alpha_t (1 - p_t)^gamma CE, p_t = p t + (1 - p)(1 - t), and dFL/dz =
    alpha_t [gamma m^(gamma-1) dm/dz CE + m^gamma (p - t)], m = 1 - p_t = p (1 - t) + (1 - p) t,
    dm/dz = p (1 - p)(1 - 2t). Valid where m > 0 and CE is finite (the tests' random data)."""
    z = np.asarray(x, dtype=LD)
    tt = np.asarray(t, dtype=LD)
    ce, _ = bce(z, tt)
    p, pn = _sig(z)
    m = p * (1 - tt) + pn * tt
    g = LD(gamma)
    fac = m**g
    at = LD(1) if alpha is None else LD(alpha) * tt + (1 - LD(alpha)) * (1 - tt)
    loss = at * fac * ce
    dm = p * pn * (1 - 2 * tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        dfac = np.where(dm == 0, 0, g * m ** (g - 1) * dm) if gamma != 0 else 0
    grad = at * (dfac * ce + fac * (p - tt))
    return loss, grad
