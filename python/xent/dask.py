"""xent on Dask arrays: the metrics of ``xent eval``, and softmax cross-entropy with its
gradient, computed block by block with xent's kernels, on one machine or a
``dask.distributed`` cluster (needs ``pip install 'xent[dask]'``; ``import xent`` never
imports Dask, only ``import xent.dask`` does).

Arrays are (N, C), chunked by rows: blocks along the class axis are merged first (each row
must sit in one block). Labels are rechunked to the predictions' row blocks. Each task runs
one xent call on one block with ``n_threads`` threads (default 1: Dask already runs one task
per worker thread); per-block partial results are float64 sums and integer counts, merged in
block order, so the results equal the single-machine ones (counts exactly, sums to float64
rounding). Row chunk sizes must be known (``x.compute_chunk_sizes()`` after a filter).
"""
from __future__ import annotations

import math

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - the message is what matters
    raise ImportError("xent.dask needs Dask: pip install 'xent[dask]' (dask[array] and distributed)") from e

from ._eval_metrics import MetricsAccumulator
from ._softmax import softmax_cross_entropy as _sce
from ._validate import check_reduction
from ._weights import label_row_weight_sum

__all__ = ["evaluate", "softmax_cross_entropy"]


def _rows(x, row_chunks, name: str):
    """``x`` as a Dask array chunked like ``row_chunks`` along axis 0, whole along axis 1."""
    a = da.asarray(x)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-d or 2-d, got shape {a.shape}")
    if any(np.isnan(c) for c in a.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes: call {name}.compute_chunk_sizes() first")
    if row_chunks is not None and a.shape[0] != sum(row_chunks):
        raise ValueError(f"{name} has {a.shape[0]} rows but the predictions have {sum(row_chunks)}")
    want = {0: row_chunks} if row_chunks is not None else {}
    if a.ndim == 2:
        want[1] = -1
    return a.rechunk(want) if want else a


def _blocks(a):
    return list(a.to_delayed().ravel())


def _offsets(chunks) -> list:
    return [int(v) for v in np.concatenate([[0], np.cumsum(chunks)[:-1]])]


# -- metrics ------------------------------------------------------------------------------
def _block_metrics(p, y, offset, config):
    acc = MetricsAccumulator(**config)
    acc.row_offset = offset
    return acc.update(p, y)


def _merge(*accs):
    first = accs[0]
    for a in accs[1:]:
        first.merge(a)
    return first


def _tree(parts, split_every: int):
    """Merges delayed parts pairwise-in-order (groups of ``split_every`` consecutive parts)."""
    while len(parts) > 1:
        merge = dask.delayed(_merge, pure=True)
        parts = [merge(*parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def evaluate(predictions, labels, *, from_logits=True, top_k=5, n_bins=15, n_threads=1, split_every=8):
    """The metrics of :func:`xent.evaluate` (see :class:`xent.MetricsAccumulator` for their
    definitions) for Dask (or NumPy) arrays: ``predictions`` (N, C), ``labels`` (N,) integer or
    (N, C) one-hot. Returns a ``dask.delayed`` object; ``.compute()`` gives the result dict.

    One task per row block builds a :class:`~xent.MetricsAccumulator`; the accumulators are
    merged in block order by a tree of fan-in ``split_every``. Bad values raise the same
    ValueError as in memory, naming the global row, when the graph is computed.
    """
    p = da.asarray(predictions)
    if p.ndim != 2:
        raise ValueError(f"predictions must be 2-d (rows, classes), got shape {p.shape}")
    p = _rows(p, None, "predictions")
    y = _rows(labels, p.chunks[0], "labels")
    config = dict(n_classes=p.shape[1], from_logits=from_logits, top_k=top_k, n_bins=n_bins, n_threads=n_threads)
    MetricsAccumulator(**config)  # checks the arguments now, not on a worker
    parts = [
        dask.delayed(_block_metrics, pure=True)(pb, yb, off, config)
        for pb, yb, off in zip(_blocks(p), _blocks(y), _offsets(p.chunks[0]))
    ]
    return dask.delayed(MetricsAccumulator.result, pure=True)(_tree(parts, split_every))


# -- loss and gradient --------------------------------------------------------------------
def _shrunk(sw, dtype, k):
    """Sample weights in the logits' dtype, divided by 2**k (huge weights of a "mean")."""
    if sw is None:
        return None
    sw = np.asarray(sw, dtype=dtype)
    return np.ldexp(sw, -k).astype(dtype) if k else sw


def _sw_shift(top, w_exp, dtype):
    """The power of two dividing the sample weights of a "mean": the exponent of their
    largest, when its product with the largest class weight could overflow, else 0."""
    e = math.frexp(float(top))[1] if top else 0
    return e if e + max(w_exp, 0) >= np.finfo(dtype).maxexp - 32 else 0


def _block_loss(z, y, sw, k, scale, reduction, return_grad, kw):
    out = _sce(z, y, sample_weight=_shrunk(sw, z.dtype, k), reduction="none" if reduction == "none" else "sum",
               return_grad=return_grad, **kw)
    if return_grad and scale != 1.0:
        loss, grad = out
        grad *= grad.dtype.type(scale)
        return loss, grad
    return out


def _block_denominator(y, sw, k, weight, ignore_index, dtype):
    # the weights in the logits' dtype first, as xent.softmax_cross_entropy converts them
    sw = _shrunk(sw, dtype, k)
    if np.asarray(y).dtype.kind == "f":  # targets: rows, or the sum of the sample weights
        return float(len(y)) if sw is None else float(np.sum(sw, dtype=np.float64))
    w = None if weight is None else np.asarray(weight, dtype=dtype)
    return label_row_weight_sum(np.asarray(y), w, sw, ignore_index)


def _sum(*xs):
    return float(sum(xs))


def _inverse(n):
    return 1.0 / n if n else 1.0


def _divide(total, n):
    return total / n if n else 0.0


def softmax_cross_entropy(logits, labels, *, weight=None, sample_weight=None, ignore_index=None, z_loss=0.0,
                          label_smoothing=0.0, reduction="mean", return_grad=False, n_threads=1):
    """:func:`xent.softmax_cross_entropy` of a Dask array of logits (N, C), class axis last.

    ``labels``: (N,) integer classes or (N, C) float targets; ``sample_weight``: (N,) or None
    (both NumPy or Dask, rechunked to the logits' row blocks); ``weight`` (C,) and the other
    options as in :func:`xent.softmax_cross_entropy`, whose formulas apply unchanged.

    Returns, lazily: for ``"none"`` a Dask array (N,) of per-row losses; for ``"sum"`` and
    ``"mean"`` a 0-d float64 Dask array (``float(x.compute())``). With ``return_grad=True``,
    ``(loss, grad)`` with ``grad`` a Dask array like the logits, from the same tasks as the
    loss (each block is read once). ``"mean"`` divides by the number of rows, or by the
    total row weight (computed from the labels first, so that each block's gradient is
    scaled by it); the gradient is the kernel's "sum" gradient times ``1/denominator``, so
    it differs from the single-machine one by rounding (at most a few units in the last place
    of ``1/denominator``; the losses and the other reductions' gradients are identical or
    equal to float64 rounding).
    """
    reduction = check_reduction(reduction)
    z = _rows(logits, None, "logits")
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-d (rows, classes), got shape {z.shape}")
    y = _rows(labels, z.chunks[0], "labels")
    sw = None if sample_weight is None else _rows(sample_weight, z.chunks[0], "sample_weight")
    w = None if weight is None else np.asarray(weight)
    kw = dict(weight=w, ignore_index=ignore_index, z_loss=z_loss, label_smoothing=label_smoothing,
              n_threads=n_threads)
    zb, yb = _blocks(z), _blocks(y)
    swb = _blocks(sw) if sw is not None else [None] * len(zb)
    scale, k = 1.0, 0
    if reduction == "mean":
        # huge weights (docs/losses.md): powers of two keep their products finite; only
        # ratios of the denominator's weights enter a mean (the class weights too for labels)
        limit = np.finfo(z.dtype).maxexp - 32
        w_exp = 0
        if w is not None and w.size:
            wd = np.asarray(w, dtype=z.dtype)
            w_exp = math.frexp(float(np.max(wd)))[1] if np.max(wd) > 0 else 0
            if y.dtype.kind != "f" and w_exp > limit // 2:
                kw["weight"] = np.ldexp(wd, -w_exp).astype(z.dtype)
                if label_smoothing:  # the smoothed row is linear in (class weights, z-loss)
                    kw["z_loss"] = math.ldexp(float(z_loss), -w_exp)
                w, w_exp = kw["weight"], 0
        if sw is not None:
            k = dask.delayed(_sw_shift, pure=True)(sw.max(), w_exp, z.dtype)
        plain = sw is None and (y.dtype.kind == "f" or (w is None and ignore_index is None))
        if plain:
            denom = float(z.shape[0])
        else:
            d = dask.delayed(_block_denominator, pure=True)
            denom = dask.delayed(_sum, pure=True)(*[d(a, b, k, w, ignore_index, z.dtype) for a, b in zip(yb, swb)])
        scale = dask.delayed(_inverse, pure=True)(denom) if return_grad else 1.0
    call = dask.delayed(_block_loss, pure=True, nout=2 if return_grad else None)
    outs = [call(a, b, c, k, scale, reduction, return_grad, kw) for a, b, c in zip(zb, yb, swb)]
    losses = [o[0] for o in outs] if return_grad else outs
    if reduction == "none":
        loss = da.concatenate([da.from_delayed(v, shape=(n,), dtype=z.dtype) for v, n in zip(losses, z.chunks[0])])
    else:
        total = dask.delayed(_sum, pure=True)(*losses)
        if reduction == "mean":
            total = dask.delayed(_divide, pure=True)(total, denom)
        loss = da.from_delayed(total, shape=(), dtype=np.float64)
    if not return_grad:
        return loss
    grad = da.concatenate(
        [da.from_delayed(o[1], shape=(n, z.shape[1]), dtype=z.dtype) for o, n in zip(outs, z.chunks[0])]
    )
    return loss, grad
