"""Cross-entropy from probabilities (Keras's forms) and log_logistic, in the C++ kernels
(cpp/src/kernels/proba-inl.hpp)."""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._loss_common import int_labels as _int_labels
from ._loss_common import last as _last
from ._validate import (
    as_float_array,
    as_targets,
    check_out,
    check_reduction,
    finish,
    grad_scale,
    n_threads_arg,
    normalize_axis,
)
from ._weights import smoothing_arg

# op codes of _core.proba_op
_CAT_LABEL, _CAT_TARGET, _BINARY, _LOG_LOGISTIC = 0, 1, 2, 3


def eps_arg(eps, dtype: np.dtype) -> float:
    e = float(eps)
    if not (0.0 < e < 0.5):
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    if float(np.asarray(e, dtype=dtype)) == 0.0:
        raise ValueError(f"eps = {eps!r} is 0 in {np.dtype(dtype)}")
    return e


def raise_if_outside_unit(p: np.ndarray, name: str = "probs") -> None:
    """ValueError naming the first entry of ``p`` outside [0, 1] (NaN included), if any.
    Called only when a kernel reported one (an error path: temporaries are fine here)."""
    ok = (p >= 0) & (p <= 1)
    if not ok.all():
        at = int(np.flatnonzero(~ok.ravel())[0])
        pos = [int(i) for i in np.unravel_index(at, p.shape)] if p.ndim else []
        raise ValueError(f"{name}{pos} = {p.ravel()[at].item()!r}: probabilities must be in [0, 1]")


def _run(op, p, t, y, grad, loss, elementwise, renorm, eps, ls, gscale, nt) -> float:
    total = _core.proba_op(op, p, t, y, grad, loss, elementwise, renorm, eps, ls, gscale, nt)
    if math.isnan(total):
        raise_if_outside_unit(p)  # else the NaN came from the targets: it is the answer
    return total


def categorical_cross_entropy(
    probs,
    targets,
    *,
    eps=1e-7,
    axis=-1,
    label_smoothing=0.0,
    reduction="mean",
    return_grad=False,
    n_threads=None,
):
    """Categorical cross-entropy from probabilities, Keras's formula:
    ``q = probs / sum(probs, axis)``, ``q = clip(q, eps, 1 - eps)``, ``l = -sum(t * log q)``.

    ``targets`` are integer class indices (``probs``' shape without ``axis``; Keras's
    ``sparse_categorical_crossentropy``) or float targets of ``probs``' shape (one-hot,
    soft). ``label_smoothing`` ``ls`` makes them ``(1 - ls) * t + ls / C`` (Keras's
    ``CategoricalCrossentropy``; with integer labels ``t`` is their one-hot, where Keras's
    sparse form has no smoothing).
    ``probs`` must be in [0, 1] (ValueError naming the first bad position, NaN included).

    Where xent differs from Keras: the clip bounds are exact in float32 too, so a
    probability of 1 with target 0 costs ``-log(eps)`` (Keras computes ``1 - 1e-7`` in
    float32, which rounds to ``1 - 1.19e-7``), and a row summing to 0 is defined: every
    ``q`` is then 0, clipped to ``eps`` (Keras gives NaN). PyTorch has no such loss
    (``nll_loss`` takes log-probabilities); scikit-learn's ``log_loss`` does not renormalise
    and clips at the dtype's epsilon: see ``xent.metrics.log_loss``.

    reduction: ``"none"`` per row (``probs``' shape without ``axis``), ``"sum"``, or
    ``"mean"`` over rows (0.0 for no rows); sums are accumulated in float64.

    With ``return_grad=True`` returns ``(loss, grad)``, the gradient with respect to
    ``probs``, through the renormalisation: ``(T_in - t_j * in_j / q_j) / s`` with ``s``
    the row sum, ``in_j`` 1 where the clip passes the gradient (``eps <= q_j <= 1 - eps``,
    TensorFlow's rule) and ``T_in = sum_c t_c * in_c``; over the number of rows for
    ``"mean"``. A row summing to 0 has a zero gradient.
    """
    p = as_float_array(probs, "probs")
    if p.ndim == 0:
        raise ValueError("probs must have at least one dimension (the class axis)")
    ax = normalize_axis(axis, p.ndim)
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    e = eps_arg(eps, p.dtype)
    ls = smoothing_arg(label_smoothing)
    n_classes = p.shape[ax]
    row_shape = p.shape[:ax] + p.shape[ax + 1 :]
    lab = np.asarray(targets)
    if lab.dtype.kind in "iu":
        if n_classes == 0 and lab.size:
            raise ValueError("probs have 0 classes along the class axis")
        y, t, op = _int_labels(lab, n_classes, row_shape), None, _CAT_LABEL
    elif lab.dtype.kind in "fb":
        y, t, op = None, _last(as_targets(lab, p, "targets"), ax), _CAT_TARGET
    else:
        raise TypeError(f"targets must be integer class indices or float targets, got dtype {lab.dtype}")
    n = math.prod(row_shape)
    loss = np.zeros(row_shape, dtype=p.dtype) if reduction == "none" else None
    grad = np.empty_like(p) if return_grad else None
    total = _run(op, _last(p, ax), t, y, None if grad is None else _last(grad, ax), loss, False, True, e, ls,
                 grad_scale(reduction, n), nt)
    return finish(reduction, total, n, loss, grad, return_grad)


def binary_cross_entropy(
    probs,
    targets,
    *,
    eps=1e-7,
    axis=None,
    label_smoothing=0.0,
    reduction="mean",
    return_grad=False,
    n_threads=None,
):
    """Binary cross-entropy from probabilities, Keras's formula:
    ``a = clip(p, eps, 1 - eps)``, ``l = -(t * log a + (1 - t) * log(1 - a))``, elementwise;
    ``label_smoothing`` ``ls`` makes the targets ``(1 - ls) * t + ls / 2`` (Keras).
    ``probs`` must be in [0, 1] (ValueError naming the first bad position, NaN included);
    targets (float, int or bool) have ``probs``' shape.

    axis: as ``xent.sigmoid_cross_entropy``: ``None`` (default) elementwise, ``"mean"`` over
    every element (PyTorch's ``binary_cross_entropy``); ``axis=k`` sums over that axis first,
    and ``"mean"`` averages those sums. Keras instead *averages* over the last axis.

    Where xent differs: from PyTorch's ``binary_cross_entropy``, which clamps each log at
    -100 instead of clipping ``p`` (so ``p = 0`` with ``t = 1`` costs 100 there and
    ``-log(eps)`` = 16.1 here), and whose gradient ``(p - t) / max(p (1 - p), 1e-12)`` is
    not 0 outside the clip range as it is here; from Keras,
    by the axis rule above and by exact clip bounds in float32 (``p = 1``, ``t = 0`` costs
    ``-log(eps)``; Keras's float32 gives ``-log(1.19e-7)``). ``log(1 - a)`` is computed
    without rounding ``1 - p`` first.

    With ``return_grad=True`` returns ``(loss, grad)``: ``(1 - t)/(1 - p) - t/p`` where
    ``eps <= p <= 1 - eps`` and 0 elsewhere (the clip's gradient, TensorFlow's rule),
    divided by the number of averaged terms for ``"mean"``.
    """
    p = as_float_array(probs, "probs")
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    e = eps_arg(eps, p.dtype)
    ls = smoothing_arg(label_smoothing)
    t = as_targets(targets, p, "targets")
    grad = np.empty_like(p) if return_grad else None
    if axis is None:
        n_terms = p.size
        loss = np.empty_like(p) if reduction == "none" else None
        elementwise = True
        pp, tt, gg = p, t, grad
    else:
        if p.ndim == 0:
            raise ValueError("probs must have at least one dimension when axis is given")
        ax = normalize_axis(axis, p.ndim)
        row_shape = p.shape[:ax] + p.shape[ax + 1 :]
        n_terms = math.prod(row_shape)
        loss = np.zeros(row_shape, dtype=p.dtype) if reduction == "none" else None
        elementwise = False
        pp, tt = _last(p, ax), _last(t, ax)
        gg = None if grad is None else _last(grad, ax)
    total = _run(_BINARY, pp, tt, None, gg, loss, elementwise, True, e, ls, grad_scale(reduction, n_terms), nt)
    return finish(reduction, total, n_terms, loss, grad, return_grad)


def log_logistic(x, out=None):
    """``log(sigmoid(x)) = -log1p(exp(-x))``, elementwise, computed stably as
    ``min(x, 0) - log1p(exp(-|x|))`` (scikit-learn's former ``utils.extmath.log_logistic``).

    float32 stays float32, float16 computes in float32, integers in float64. ``out`` must
    have the result's shape and dtype and may be ``x`` itself. ``log_logistic(+inf) = 0``,
    ``log_logistic(-inf) = -inf``, NaN propagates.

    With labels ``s`` in {-1, +1} and ``z = X @ w``, logistic regression's objective is
    ``-sum(log_logistic(s * z)) + 0.5 * alpha * w @ w``, which equals
    ``sigmoid_cross_entropy(z, (s + 1) / 2, reduction="sum") + 0.5 * alpha * w @ w``.
    """
    a = as_float_array(x, "x")
    if out is None:
        res = np.empty_like(a)
    else:
        res = check_out(out, a.shape, a.dtype, "out", (a,))
    _core.proba_op(_LOG_LOGISTIC, a, None, None, None, res, True, False, 0.25, 0.0, 1.0, n_threads_arg(None))
    if out is None and res.ndim == 0:
        return res[()]
    return res
