"""Float64 NumPy reference of the fused linear + softmax cross-entropy (loss and gradients)."""
import numpy as np


def linear_xent_ref(h, w, y, b=None, *, ignore_index=None, label_smoothing=0.0, z_loss=0.0, softcap=None,
                    reduction="mean", grad_scale=None):
    """(loss, (grad_hidden, grad_weight, grad_bias)) in float64, written from the formulas:
    z = h w^T + b; zc = c tanh(z / c) (-inf kept); K unmasked classes; target
    (1 - eps) onehot(y) + eps / K on them; row loss lse - target . zc + z_loss lse^2."""
    h, w = np.asarray(h, np.float64), np.asarray(w, np.float64)
    z = h @ w.T
    if b is not None:
        z = z + np.asarray(b, np.float64)
    n, v = z.shape
    masked = z == -np.inf
    if softcap:
        t = np.tanh(z / softcap)
        zc = np.where(masked, -np.inf, softcap * t)
        dcap = 1 - t * t
    else:
        zc, dcap = z, np.ones_like(z)
    live = np.ones(n, bool) if ignore_index is None else y != ignore_index
    losses = np.zeros(n)
    g = np.zeros((n, v))
    k = (~masked).sum(axis=1)
    for i in range(n):
        if not live[i]:
            continue
        m = zc[i].max()
        lse = m + np.log(np.exp(zc[i] - m).sum())
        tgt = np.zeros(v)
        tgt[y[i]] = 1 - label_smoothing
        tgt[~masked[i]] += label_smoothing / k[i]
        zfin = np.where(masked[i], 0.0, zc[i])
        losses[i] = lse - tgt @ zfin + z_loss * lse * lse
        p = np.exp(zc[i] - lse)
        g[i] = ((1 + 2 * z_loss * lse) * p - tgt) * dcap[i]
    n_live = int(live.sum())
    if reduction == "none":
        loss = losses
        s = np.ones(n) if grad_scale is None else np.broadcast_to(np.asarray(grad_scale, np.float64), (n,))
    else:
        loss = losses.sum()
        s = np.full(n, 1.0 if grad_scale is None else float(grad_scale))
        if reduction == "mean":
            loss = loss / n_live if n_live else 0.0
            s = s / n_live if n_live else 0.0 * s
    g = g * s[:, None]
    return loss, (g @ w, g.T @ h, g.sum(axis=0))
