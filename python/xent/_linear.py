"""Fused linear layer + softmax cross-entropy that never holds the N x V logits."""
from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np

from ._linear_blas import blas_threads, matmul_acc
from ._linear_blocked import blocked_path
from ._loss_common import int_labels
from ._softmax import softmax_cross_entropy
from ._validate import as_float_array, check_reduction, n_threads_arg
from ._weights import ignore_arg, smoothing_arg, softcap_arg, z_loss_arg

TILE_ELEMENTS = 2**24  # default logits per tile: 64 MiB in float32, 128 MiB in float64
MIN_ROWS = 64  # below this many rows per whole-vocabulary tile, go vocabulary-blocked
BLOCKED_ROWS = 256  # rows per chunk of the default vocabulary-blocked path


class LinearCrossEntropyGrads(NamedTuple):
    """Gradients of :func:`linear_cross_entropy` (``bias`` is None when no bias was given)."""

    hidden: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None


def _matrix(x, name):
    a = as_float_array(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-d, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _chunks(chunk_size, n, v):
    """(rows per chunk, vocabulary block) from ``chunk_size``."""
    if chunk_size is None:
        rows = TILE_ELEMENTS // max(v, 1)
        if rows >= MIN_ROWS or rows >= n:
            return max(1, min(n, rows)), v
        return max(1, min(n, BLOCKED_ROWS)), max(1, TILE_ELEMENTS // BLOCKED_ROWS)
    pair = chunk_size if isinstance(chunk_size, tuple) else (chunk_size, v)
    if len(pair) != 2:
        raise ValueError(f"chunk_size must be an integer or a pair (rows, vocab_block), got {chunk_size!r}")
    out = []
    for k in pair:
        try:
            k = operator.index(k)
        except TypeError:
            raise TypeError(f"chunk_size must hold integers, got {chunk_size!r}") from None
        if k < 1:
            raise ValueError(f"chunk_size entries must be >= 1, got {chunk_size!r}")
        out.append(k)
    return out[0], min(out[1], max(v, 1))


def _row_scale(grad_scale, reduction, n, n_terms):
    """The factor of each row's gradient, float64 (N,): grad_scale, over n_terms for "mean"."""
    if grad_scale is None:
        s = np.ones(n)
    else:
        g = np.asarray(grad_scale)
        if g.dtype.kind not in "fiub":
            raise TypeError(f"grad_scale must be real numbers, got dtype {g.dtype}")
        if g.ndim == 0:
            s = np.full(n, float(g))
        elif reduction == "none" and g.shape == (n,):
            s = g.astype(np.float64)
        else:
            need = f"a scalar or shape ({n},)" if reduction == "none" else "a scalar"
            raise ValueError(f"grad_scale has shape {g.shape}; with reduction={reduction!r} it must be {need}")
    if reduction == "mean":
        s = s / n_terms if n_terms else np.zeros(n)
    return s


def linear_cross_entropy(
    hidden,
    weight,
    labels,
    *,
    bias=None,
    ignore_index=None,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    return_grad=False,
    grad_scale=None,
    chunk_size=None,
    n_threads=None,
):
    """Softmax cross-entropy of the logits ``z = hidden @ weight.T + bias`` without forming them.

    ``hidden`` (N, H), ``weight`` (V, H), ``bias`` (V,) or None, integer ``labels`` (N,).
    The result equals ``softmax_cross_entropy(hidden @ weight.T + bias, labels, ...)``
    (to float rounding: the logits are computed tile by tile). The options mean exactly what
    they mean there: ``ignore_index`` (off by default; ignored rows add nothing and are not
    counted by ``"mean"``), ``label_smoothing`` (spread over the unmasked classes), ``z_loss``
    (``+ z_loss * lse(z)**2`` per row), ``softcap`` (``c * tanh(z / c)`` first); a ``-inf``
    bias entry masks its class. ``reduction``: ``"none"`` gives the (N,) per-row losses,
    ``"sum"`` and ``"mean"`` a Python float (float64 sums; ``"mean"`` divides by the number
    of rows not ignored, PyTorch's rule, 0.0 when there are none, where PyTorch gives NaN).

    dtypes: float32 or float64 (float16 computes in float32, integers in float64). ``hidden``,
    ``weight`` and ``bias`` must end in one dtype: mixing float32 and float64 is a TypeError
    (no silent float64 copy of a large weight matrix).

    ``return_grad=True`` returns ``(loss, LinearCrossEntropyGrads(hidden, weight, bias))``,
    the gradients of ``grad_scale * loss`` (``"sum"``, ``"mean"``) or, for ``"none"``, of
    ``sum(grad_scale * losses)``. ``grad_scale`` (default 1) is a scalar, or for ``"none"``
    an (N,) array: the upstream gradient an autograd function passes down. With
    ``G = dL/dz`` (per row ``softmax(z) - target``, through the soft cap, times the row's
    scale): ``grad.hidden = G @ weight``, ``grad.weight = G.T @ hidden``,
    ``grad.bias = G.sum(0)`` (None without ``bias``).

    How (``chunk_size``): the rows go in chunks of ``R``; when a chunk's ``R x V`` tile is
    allowed, it is computed once (one product), the fused kernel turns it into ``G`` in
    place, and two more products give the gradients (three products in all, as the unfused
    computation). Otherwise the vocabulary goes in blocks of ``B``: a first sweep combines
    each block's log-sum-exp online, a second recomputes each block's logits for ``G``
    (four products). ``chunk_size``: None (default: ``R = min(N, 2**24 // V)`` with whole-
    vocabulary tiles while ``R >= 64``, else ``R = 256``, ``B = 2**16``); an integer ``R``
    (whole-vocabulary tiles); or a pair ``(R, B)`` (``B >= V`` is the one-tile path).

    Peak extra memory, in elements of the dtype (besides inputs and their converted copies
    when they are not C-contiguous float32/float64): ``R * B`` for the tile (doubled by
    ``softcap`` in the vocabulary-blocked path), plus the outputs: ``N`` (``"none"``) and,
    with ``return_grad``, ``N*H + V*H + V`` (and ``V`` while summing the bias gradient),
    plus ``R*H`` of row scratch, plus O(N + V + R * V / B) float64 and bool bookkeeping.
    Without SciPy, accumulating products adds ``min(2048, V) * H``.
    Default N=4096, H=768, V=50304 float32: ``333 * 50304 + 4096 * 768 + 50304 * 769``
    elements, about 237 MB, where the materialised logits alone take 824 MB.

    ``n_threads``: the xent kernels' threads; BLAS is limited to it too when threadpoolctl
    is importable (otherwise BLAS keeps its own setting, e.g. ``OPENBLAS_NUM_THREADS``).
    Inputs are never modified. PyTorch has no fused form; this matches
    ``F.cross_entropy(F.linear(hidden, weight, bias), labels, ...)`` and Liger-Kernel's /
    Apple's Cut Cross-Entropy fused losses in value.
    """
    h = _matrix(hidden, "hidden")
    w = _matrix(weight, "weight")
    (n, hd), (v, hw) = h.shape, w.shape
    if hd != hw:
        raise ValueError(f"hidden has {hd} features (shape {h.shape}) but weight has {hw} (shape {w.shape})")
    b = None
    if bias is not None:
        b = np.ascontiguousarray(as_float_array(bias, "bias"))
        if b.shape != (v,):
            raise ValueError(f"bias has shape {b.shape} but must be ({v},), one per row of weight")
    dts = {a.dtype for a in (h, w, b) if a is not None}
    if len(dts) > 1:
        raise TypeError(f"hidden, weight and bias must share one dtype, got {sorted(d.name for d in dts)}")
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {lab.dtype}")
    if lab.shape != (n,):
        raise ValueError(f"labels have shape {lab.shape} but must be ({n},), one per row of hidden")
    ignore = ignore_arg(ignore_index)
    y = int_labels(lab, v, (n,), ignore) if n else lab.astype(np.int64)
    if v == 0 and n:
        raise ValueError("weight has 0 rows: the vocabulary is empty")
    reduction = check_reduction(reduction)
    if grad_scale is not None and not return_grad:
        raise ValueError("grad_scale needs return_grad=True")
    opts = {"ignore_index": ignore, "label_smoothing": smoothing_arg(label_smoothing),
            "z_loss": z_loss_arg(z_loss), "softcap": softcap_arg(softcap) or None}
    nt = n_threads_arg(n_threads)
    rows, block = _chunks(chunk_size, n, v)
    valid = n if ignore is None else int(np.count_nonzero(y != ignore))
    scale = _row_scale(grad_scale, reduction, n, valid) if return_grad else None
    dt = h.dtype
    losses = np.zeros(n, dtype=dt)
    grads = None
    if return_grad:
        grads = LinearCrossEntropyGrads(np.empty_like(h), np.zeros_like(w), None if b is None else np.zeros_like(b))
    with blas_threads(n_threads):
        if block >= v:
            total = _one_tile_path(h, w, b, y, rows, opts, nt, losses, grads, scale)
        else:
            total = blocked_path(h, w, b, y, rows, block, opts, nt, losses, grads, scale)
    loss: np.ndarray | float = losses
    if reduction != "none":
        loss = total if reduction == "sum" else (total / valid if valid else 0.0)
    return (loss, grads) if return_grad else loss


def _one_tile_path(h, w, b, y, rows, opts, nt, losses, grads, scale):
    """Row chunks with whole-vocabulary tiles: one product for the logits, the fused kernel
    writes G over them in place, two products for the gradients. Returns the loss sum."""
    n, v = h.shape[0], w.shape[0]
    tile_buf = np.empty((min(rows, n), v), dtype=h.dtype)
    total = 0.0
    for i, r0 in enumerate(range(0, n, rows)):
        r1 = min(n, r0 + rows)
        tile = tile_buf[: r1 - r0]
        hc = h[r0:r1]
        np.matmul(hc, w.T, out=tile)
        if b is not None:
            tile += b
        if grads is None:
            row_loss = softmax_cross_entropy(tile, y[r0:r1], reduction="none", n_threads=nt, **opts)
        else:
            row_loss, _ = softmax_cross_entropy(tile, y[r0:r1], reduction="none", return_grad=True,
                                                grad_out=tile, n_threads=nt, **opts)
        losses[r0:r1] = row_loss
        total += float(row_loss.sum(dtype=np.float64))
        if grads is None:
            continue
        # rows scale on the small side: (s * G) @ W = s * (G @ W), G.T @ (s * h), s @ G
        s = scale[r0:r1].astype(h.dtype)
        gh = grads.hidden[r0:r1]
        np.matmul(tile, w, out=gh)
        gh *= s[:, None]
        matmul_acc(grads.weight, tile.T, hc * s[:, None], first=i == 0)
        if grads.bias is not None:
            np.add(grads.bias, s @ tile, out=grads.bias)
    return total
