"""Sigmoid (binary and multi-label) cross-entropy from logits."""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validate import (
    as_float_array,
    as_targets,
    check_reduction,
    finish,
    grad_scale,
    n_threads_arg,
    normalize_axis,
)


def sigmoid_cross_entropy(logits, targets, *, axis=None, reduction="mean", return_grad=False, n_threads=None):
    """Sigmoid cross-entropy from logits, ``l = max(z, 0) - z*t + log1p(exp(-|z|))``
    (PyTorch's ``binary_cross_entropy_with_logits``, optax's ``sigmoid_binary_cross_entropy``),
    computed without cancellation; targets in [0, 1] (bool and integer targets are accepted
    and converted), of ``logits``' shape.

    axis: ``None`` (default) keeps the loss elementwise: ``"none"`` returns ``logits``'
    shape and ``"mean"`` averages over every element (as PyTorch). With ``axis=k`` the
    losses are summed over that axis first: a ``(b, 13, 13, 3, 20)`` detection head with
    ``axis=-1, reduction="none"`` gives ``(b, 13, 13, 3)``, and ``"mean"`` averages those
    sums (Keras instead averages over the last axis).

    With ``return_grad=True`` returns ``(loss, grad)``, the gradient of the returned value:
    ``sigmoid(z) - t``, divided by the number of averaged terms for ``"mean"``.
    An empty input gives 0.0 for ``"sum"`` and ``"mean"``.
    """
    z = as_float_array(logits, "logits")
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    t = as_targets(targets, z, "targets")
    grad = np.empty_like(z) if return_grad else None
    if axis is None:
        n_terms = z.size
        loss = np.empty_like(z) if reduction == "none" else None
        elementwise = True
        zz, tt, gg = z, t, grad
    else:
        if z.ndim == 0:
            raise ValueError("logits must have at least one dimension when axis is given")
        ax = normalize_axis(axis, z.ndim)
        row_shape = z.shape[:ax] + z.shape[ax + 1 :]
        n_terms = math.prod(row_shape)
        loss = None
        if reduction == "none":
            # rows summed over an empty axis are 0
            loss = (np.zeros if z.shape[ax] == 0 else np.empty)(row_shape, dtype=z.dtype)
        elementwise = False
        zz, tt = np.moveaxis(z, ax, -1), np.moveaxis(t, ax, -1)
        gg = None if grad is None else np.moveaxis(grad, ax, -1)
    total = _core.sigmoid_op(zz, tt, gg, loss, elementwise, grad_scale(reduction, n_terms), nt)
    return finish(reduction, total, n_terms, loss, grad, return_grad)
