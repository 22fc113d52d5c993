"""Poly-1 cross-entropy and softmax focal loss, from logits (kernels: xent_more-inl.hpp)."""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._fast import LAST
from ._loss_common import prepare, run_softmax_loss
from ._validate import compute_dtype
from ._weights import softcap_arg, weight_array

_COMMON = """
    ``labels``: integer class indices (``logits``' shape without ``axis``) or float targets
    of ``logits``' shape. ``weight``, ``sample_weight``, ``ignore_index``, ``softcap``,
    ``reduction``, ``return_grad``, ``out``, ``grad_out``, ``check_finite`` and
    ``n_threads`` work as in :func:`xent.softmax_cross_entropy`: with integer labels a row
    weighs ``weight[y] * sample_weight`` and ``"mean"`` divides by the sum of those over
    non-ignored rows (PyTorch's weighted mean); with targets ``weight`` weights each class's
    term and ``"mean"`` divides by the number of rows (or the sum of ``sample_weight``).
    ``label_smoothing`` and ``z_loss`` are not offered here (pass smoothed targets instead).
    Everything, gradient included, is computed in the C++ kernels in one pass per row;
    ``-inf`` logits are masks (a label or target mass on a masked class costs ``+inf``).
"""


def poly1_cross_entropy(
    logits,
    labels,
    *,
    epsilon=2.0,
    axis=LAST,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    softcap=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Poly-1 cross-entropy (Leng et al., 2022), as optax's ``poly_loss_cross_entropy``:
    ``l = CE + epsilon * sum_c t_c (1 - p_c)``, ``p = softmax(z)``; for an integer label
    ``l = -log p_y + epsilon * (1 - p_y)``. ``1 - p_y`` comes from the row's sums (the
    others' share of ``sum exp(z - max)``), not from ``1 - p_y`` rounded: no cancellation for
    confident rows. Gradient: ``(sum_c G_c) p - G`` with
    ``G_c = t_c (1 + epsilon p_c)``. ``epsilon`` is any finite real (optax's default 2.0).

    Differences from optax: its default reduction is none (xent: ``"mean"``); optax has no
    class or sample weights; ``-inf`` masks work here (optax's ``where=`` instead).
    """
    eps = float(epsilon)
    if not math.isfinite(eps):
        raise ValueError(f"epsilon must be finite, got {epsilon!r}")
    if axis is LAST and check_finite is False:  # small calls (python/xent/_fast.py)
        r = _core.softmax_factor_fast(
            False, logits, labels, eps, None, reduction, return_grad, n_threads, out, grad_out, weight,
            sample_weight, ignore_index, softcap,
        )
        if r is not None:
            return r
    return run_softmax_loss(
        "poly1", logits, labels, axis=axis, weight=weight, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, return_grad=return_grad, n_threads=n_threads,
        out=out, grad_out=grad_out, check_finite_=check_finite, softcap=softcap_arg(softcap), param=eps,
    )


def softmax_focal_loss(
    logits,
    labels,
    *,
    gamma=2.0,
    alpha=None,
    axis=LAST,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    softcap=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Softmax (categorical) focal loss, Keras's ``CategoricalFocalCrossentropy`` in log
    space: for an integer label ``l = -alpha_y (1 - p_y)**gamma * log p_y``; for target
    distributions ``l = -sum_c alpha_c t_c (1 - p_c)**gamma * log p_c``. ``log p`` comes from
    the log-sum-exp and ``1 - p`` from the row's sums (no cancellation for confident rows,
    where ``1 - p`` may be ~1e-26): no clipping (Keras clips ``p`` to
    ``[1e-7, 1 - 1e-7]``, which caps its loss at ``-log(1e-7)`` where xent gives the true
    value, e.g. ``+inf`` for a label on a masked class). ``gamma = 0`` gives the
    (``alpha``-weighted) cross-entropy.

    ``gamma`` >= 0. ``alpha``: None (1), a number (Keras's default is 0.25; here None, so
    that ``gamma=0`` is exactly CE), or one value per class (finite, >= 0). ``alpha`` is part
    of the loss, not of the weighted-mean denominator (``weight`` is).

    Gradient: ``G_y (p - onehot(y))`` with ``G_y = alpha_y q**gamma (1 + gamma p_y (-log p_y) / q)``,
    ``q = 1 - p_y`` (and ``(sum_c G_c) p - G`` for targets).
    """
    g = float(gamma)
    if not (math.isfinite(g) and g >= 0):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    if axis is LAST and check_finite is False:  # small calls (python/xent/_fast.py)
        r = _core.softmax_factor_fast(
            True, logits, labels, g, alpha, reduction, return_grad, n_threads, out, grad_out, weight, sample_weight,
            ignore_index, softcap,
        )
        if r is not None:
            return r
    a, ax = prepare(logits, axis, "logits")
    n_classes = a.shape[ax]
    alpha_arr = None
    if alpha is not None:
        al = np.asarray(alpha)
        shape = (n_classes,) if al.ndim else ()
        alpha_arr = weight_array(al, shape, compute_dtype(a), "alpha", "a number or one per class")
        if al.ndim == 0:
            alpha_arr = np.full(n_classes, alpha_arr[()], dtype=compute_dtype(a))
    return run_softmax_loss(
        "focal", a, labels, axis=ax, weight=weight, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, return_grad=return_grad, n_threads=n_threads,
        out=out, grad_out=grad_out, check_finite_=check_finite, softcap=softcap_arg(softcap), param=g,
        alpha=alpha_arr,
    )


for _f in (poly1_cross_entropy, softmax_focal_loss):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ += _COMMON
