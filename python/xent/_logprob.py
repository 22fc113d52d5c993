"""Losses on given log-probabilities: NLL and KL divergence (kernels: xent_more-inl.hpp)."""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._loss_common import last, out_buffers, prepare, run_softmax_loss
from ._validate import as_targets, check_reduction, compute_dtype, finish, grad_scale, n_threads_arg
from ._validate import check_finite as _check_finite
from ._weights import rescale_tiny_weights, shrink_huge_weights, weight_array, weight_sum


def nll_loss(
    log_probs,
    labels,
    *,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    axis=-1,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Negative log-likelihood of given log-probabilities, as PyTorch's ``F.nll_loss``:
    ``l = -weight[y] * log_probs[y]`` per row (integer labels only).

    ``"mean"`` is ``sum(l) / sum(weight[y] * sample_weight)`` over non-ignored rows
    (PyTorch's weighted mean; ``sample_weight`` is xent's addition); every row ignored, or
    an empty batch, gives 0.0 and a zero gradient (PyTorch: NaN). ``ignore_index`` is off
    by default (PyTorch's default is -100). The class axis is ``axis`` (-1 by default;
    PyTorch's is 1). ``log_probs`` are used as given (no normalisation); ``-inf`` (log 0)
    at the label costs ``+inf``. The gradient with respect to ``log_probs`` is
    ``-weight[y] * onehot(y)`` (over the denominator for ``"mean"``).
    ``out``, ``grad_out`` (may be ``log_probs`` itself), ``check_finite`` (rejects NaN and
    ``+inf``, not ``-inf``) and ``n_threads`` work as in :func:`xent.softmax_cross_entropy`.
    """
    if np.asarray(labels).dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {np.asarray(labels).dtype}")
    return run_softmax_loss(
        "nll", log_probs, labels, axis=axis, weight=weight, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, return_grad=return_grad, n_threads=n_threads,
        out=out, grad_out=grad_out, check_finite_=check_finite, name="log_probs",
    )


def kl_divergence(
    log_pred,
    target,
    *,
    log_target=False,
    axis=-1,
    sample_weight=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Kullback-Leibler divergence ``KL(target || pred)`` per row, from log-probabilities
    first, as PyTorch's ``F.kl_div(log_pred, target)`` and optax's ``kl_divergence``:
    ``l = sum_c t_c (log t_c - log_pred_c)`` with ``0 * log 0 = 0``; with
    ``log_target=True`` the targets are log-probabilities and
    ``l = sum_c exp(t_c) (t_c - log_pred_c)``.

    ``"mean"`` is the mean over rows of these per-row sums, the true KL divergence:
    PyTorch's ``reduction="batchmean"``. PyTorch's ``"mean"`` divides by the number of
    elements instead (rows times classes): multiply by ``C`` to compare. ``"none"`` returns
    the per-row sums (PyTorch's ``"none"`` is elementwise). ``sample_weight`` (one per row)
    weighs rows, and ``"mean"`` then divides by its sum.

    A zero target (or ``-inf`` log target) adds exactly 0, even where ``log_pred`` is
    ``-inf`` (PyTorch gives NaN there); target mass where ``log_pred = -inf`` costs
    ``+inf``. Targets must be >= 0 (ValueError naming the position; NaN propagates unless
    ``check_finite=True``). The gradient with respect to ``log_pred`` is ``-t`` (or
    ``-exp(t)``), times the row weight, over the denominator for ``"mean"``.
    ``out``, ``grad_out`` (may be ``log_pred`` itself) and ``n_threads`` work as in
    :func:`xent.softmax_cross_entropy`.
    """
    a, ax = prepare(log_pred, axis, "log_pred")
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    t = as_targets(target, a, "target")
    if check_finite:
        _check_finite(a, "log_pred")
        _check_finite(t, "target", allow_neginf=bool(log_target))
    if not log_target and t.size:
        with np.errstate(invalid="ignore"):
            neg = bool(t.min() < 0)
        if neg:
            at = int(np.flatnonzero(t < 0)[0])
            pos = tuple(int(p) for p in np.unravel_index(at, t.shape))
            raise ValueError(f"target has the value {t[pos].item()!r} at index {pos}: targets must be >= 0")
    row_shape = a.shape[:ax] + a.shape[ax + 1 :]
    sw = None
    if sample_weight is not None:
        sw = weight_array(sample_weight, row_shape, compute_dtype(a), "sample_weight", "one per row")
    n = math.prod(row_shape) if sw is None or reduction != "mean" else weight_sum(sw)
    if sw is not None and reduction == "mean":  # huge or tiny weights: powers of two (_weights.py)
        (sw,), shrunk = shrink_huge_weights([sw], n, compute_dtype(a))
        n = weight_sum(sw) if shrunk else n
        sw, n = rescale_tiny_weights(sw, n)
    tl = last(t, ax)
    row_out, grad = out_buffers(a, row_shape, reduction, return_grad, out, grad_out, (tl, sw))
    op = _core.SoftmaxOp.kl_div_log if log_target else _core.SoftmaxOp.kl_div
    total = _core.softmax_op(
        op, last(a, ax), tl, None, None if grad is None else last(grad, ax), row_out, grad_scale(reduction, n), nt,
        None, sw,
    )
    return finish(reduction, total, n, row_out, grad, return_grad)
