"""The vocabulary-blocked path of ``linear_cross_entropy``: for each chunk of rows, a first
sweep over vocabulary blocks combines the blocks' log-sum-exps online (``logaddexp`` of
``xent.logsumexp`` per block) and gathers the label logits and, with smoothing, the sum of
the unmasked logits; a second sweep recomputes each block's logits and writes the
gradient ``G = coef * softmax - target`` (through the soft cap) over them before the two
gradient products. Used when a whole-vocabulary tile of the chunk would not fit.

Masks: the logits are ``-inf`` only where the bias is (a ``-inf`` bias entry masks its
class for every row), so the unmasked classes are the bias's finite-or-``+inf`` columns."""
from __future__ import annotations

import numpy as np

from ._linear_blas import matmul_acc
from ._softmax import logsumexp, softmax


def _capped(z: np.ndarray, cap) -> np.ndarray:
    """``cap * tanh(z / cap)`` keeping ``-inf`` (float64 values of a few gathered logits)."""
    if not cap:
        return z
    with np.errstate(invalid="ignore"):
        return np.where(z == -np.inf, -np.inf, cap * np.tanh(z / cap))


def _view(buf: np.ndarray, r: int, c: int) -> np.ndarray:
    """A C-contiguous r x c array at the start of ``buf`` (BLAS writes it without a copy)."""
    return buf.reshape(-1)[: r * c].reshape(r, c)


def _logits(tile, hc, w, b, c0, c1):
    np.matmul(hc, w[c0:c1].T, out=tile)
    if b is not None:
        tile += b[c0:c1]


def _forward(hc, w, b, yc, live, block, opts, nt, tile_buf, t_buf, keep):
    """Per row of the chunk: lse (float64), each block's lse, the label logit and the sum of
    the unmasked logits (capped), in one sweep over the vocabulary blocks."""
    v, r = w.shape[0], hc.shape[0]
    cap, eps = opts["softcap"], opts["label_smoothing"]
    starts = range(0, v, block)
    blk_lse = np.empty((len(starts), r))
    zy = np.zeros(r)
    sumz = np.zeros(r)
    for j, c0 in enumerate(starts):
        c1 = min(v, c0 + block)
        tile = _view(tile_buf, r, c1 - c0)
        _logits(tile, hc, w, b, c0, c1)
        blk_lse[j] = logsumexp(tile, softcap=cap, n_threads=nt)
        at = np.flatnonzero(live & (yc >= c0) & (yc < c1))
        zy[at] = _capped(tile[at, yc[at] - c0].astype(np.float64), cap)
        if eps:
            zc = tile
            if cap:
                zc = _view(t_buf, r, c1 - c0)
                np.divide(tile, cap, out=zc)
                np.tanh(zc, out=zc)
                zc *= cap
            k = None if keep is None else keep[c0:c1]
            sumz += zc.sum(axis=1, dtype=np.float64, where=True if k is None else k[None, :])
    with np.errstate(divide="ignore"):
        lse = np.logaddexp.reduce(blk_lse, axis=0) if len(starts) else np.full(r, -np.inf)
    return lse, blk_lse, zy, sumz


def _grad_block(tile, t, hc, w, b, c0, c1, yc, at, lse, blk, coef, r_lab, r_unif, cap, keep):
    """Writes ``G`` for vocabulary block [c0, c1) of the chunk over ``tile``."""
    _logits(tile, hc, w, b, c0, c1)
    if cap:
        np.divide(tile, cap, out=t)
        np.tanh(t, out=t)
    softmax(tile, out=tile, softcap=cap)  # exp(z - lse_block)
    with np.errstate(invalid="ignore", over="ignore"):
        f = np.where(coef != 0, coef * np.exp(blk - lse), 0.0)
    tile *= f.astype(tile.dtype)[:, None]
    inb = at[(yc[at] >= c0) & (yc[at] < c1)]
    tile[inb, yc[inb] - c0] -= r_lab[inb].astype(tile.dtype)
    if r_unif is not None:
        k = None if keep is None else keep[c0:c1]
        np.subtract(tile, r_unif.astype(tile.dtype)[:, None], out=tile, where=True if k is None else k[None, :])
    if cap:
        np.square(t, out=t)
        np.subtract(1, t, out=t)
        tile *= t


def blocked_path(h, w, b, y, rows, block, opts, nt, losses, grads, scale):
    """Fills ``losses`` (N,) and, if ``grads``, the gradients; returns the loss sum."""
    n, v = h.shape[0], w.shape[0]
    dt = h.dtype
    cap, eps, zl, ignore = opts["softcap"], opts["label_smoothing"], opts["z_loss"], opts["ignore_index"]
    keep = None
    if b is not None and np.isneginf(b).any():
        keep = ~np.isneginf(b)
    n_keep = v if keep is None else int(keep.sum())
    tile_buf = np.empty((min(rows, n), min(block, v)), dtype=dt)
    t_buf = np.empty_like(tile_buf) if cap else None
    total = 0.0
    for i, r0 in enumerate(range(0, n, rows)):
        r1 = min(n, r0 + rows)
        hc, yc = h[r0:r1], y[r0:r1]
        live = np.ones(r1 - r0, bool) if ignore is None else yc != ignore
        lse, blk_lse, zy, sumz = _forward(hc, w, b, yc, live, block, opts, nt, tile_buf, t_buf, keep)
        finite_row = lse > -np.inf
        with np.errstate(invalid="ignore"):
            loss = lse + zl * lse * lse
            if eps < 1:
                loss -= (1 - eps) * zy
            if eps and n_keep:
                loss -= (eps / n_keep) * sumz
        loss = np.where(finite_row, loss, np.inf)
        loss = np.where(live, loss, 0.0)
        losses[r0:r1] = loss
        total += float(loss.sum())
        if grads is None:
            continue
        r = np.where(live & finite_row, scale[r0:r1], 0.0)
        with np.errstate(invalid="ignore"):
            coef = np.where(r != 0, r * (1 + 2 * zl * lse), 0.0)
        at = np.flatnonzero(r != 0)
        r_lab = r * (1 - eps)
        r_unif = r * (eps / n_keep) if (eps and n_keep) else None
        for j, c0 in enumerate(range(0, v, block)):
            c1 = min(v, c0 + block)
            tile = _view(tile_buf, r1 - r0, c1 - c0)
            t = None if t_buf is None else _view(t_buf, r1 - r0, c1 - c0)
            _grad_block(tile, t, hc, w, b, c0, c1, yc, at, lse, blk_lse[j], coef, r_lab, r_unif, cap, keep)
            matmul_acc(grads.hidden[r0:r1], tile, w[c0:c1], first=j == 0)
            matmul_acc(grads.weight[c0:c1], tile.T, hc, first=i == 0)
            if grads.bias is not None:
                gb = grads.bias[c0:c1]
                gb += tile.sum(axis=0)
    return total
