"""Softmax family: logsumexp, log_softmax, softmax and softmax cross-entropy."""
from __future__ import annotations

import math

import numpy as np

from . import _core
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
from ._weights import ignore_arg, label_row_weight_sum, smoothing_arg, weight_array, z_loss_arg

_OP = _core.SoftmaxOp


def _last(a: np.ndarray, axis: int) -> np.ndarray:
    return a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)


def _prepare(x, axis, name="x"):
    a = as_float_array(x, name)
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the class axis)")
    return a, normalize_axis(axis, a.ndim)


def logsumexp(x, axis=-1, *, n_threads=None):
    """``log(sum(exp(x), axis))``, computed stably: ``m + log(sum(exp(x - m)))``.

    Returns an array of ``x``'s shape without ``axis`` (a NumPy scalar for 1-d input),
    in float32 for float32/float16 input and float64 otherwise. ``-inf`` entries are
    masks (they add nothing); a row that is all ``-inf`` gives ``-inf``; an empty axis
    gives ``-inf`` (the log of an empty sum); NaN and ``+inf`` propagate to their row.
    """
    a, ax = _prepare(x, axis)
    z = _last(a, ax)
    res = np.empty(z.shape[:-1], dtype=a.dtype)
    _core.softmax_op(_OP.logsumexp, z, None, None, None, res, 1.0, n_threads_arg(n_threads))
    return res[()] if res.ndim == 0 else res


def _normalizer(kind, x, axis, out, n_threads):
    a, ax = _prepare(x, axis)
    if out is None:
        out = np.empty_like(a)
    else:
        check_out(out, a.shape, a.dtype, "out", (a,))
    _core.softmax_op(kind, _last(a, ax), None, None, _last(out, ax), None, 1.0, n_threads_arg(n_threads))
    return out


def softmax(x, axis=-1, out=None, *, n_threads=None):
    """``exp(x - logsumexp(x))`` along ``axis``; ``out`` may be ``x`` itself.

    ``-inf`` entries get probability 0; a row that is all ``-inf`` (fully masked) gives all
    zeros (PyTorch and SciPy give NaN there); NaN and ``+inf`` propagate to their row.
    """
    return _normalizer(_OP.softmax, x, axis, out, n_threads)


def log_softmax(x, axis=-1, out=None, *, n_threads=None):
    """``x - logsumexp(x)`` along ``axis``, computed as ``(x - m) - log(sum(exp(x - m)))``;
    ``out`` may be ``x`` itself. A fully masked row (all ``-inf``) gives all ``-inf``."""
    return _normalizer(_OP.log_softmax, x, axis, out, n_threads)


def _int_labels(labels: np.ndarray, n_classes: int, shape: tuple, ignore_index=None) -> np.ndarray:
    if labels.shape != shape:
        raise ValueError(
            f"integer labels have shape {labels.shape} but must have the logits' shape without "
            f"the class axis, {shape}"
        )
    y = labels
    if y.dtype.kind == "u" and y.dtype.itemsize >= 8 and y.size and int(y.max()) > np.iinfo(np.int64).max:
        at = int(np.argmax(y))
        raise ValueError(_bad_label_msg(np.unravel_index(at, shape), int(y.flat[at]), n_classes))
    if y.dtype != np.int64 and y.dtype != np.int32:
        y = y.astype(np.int64)
    elif not y.dtype.isnative or not y.flags.aligned:
        y = y.astype(y.dtype.newbyteorder("="))
    bad = _core.find_bad_label(y, n_classes, ignore_index)
    if bad is not None:
        at, value = bad
        raise ValueError(_bad_label_msg(np.unravel_index(at, shape), value, n_classes))
    return y


def _bad_label_msg(pos, value, n_classes):
    pos = tuple(int(p) for p in pos)
    return f"labels{list(pos)} = {value} is out of range: labels must be in [0, {n_classes}) or be ignore_index"


def softmax_cross_entropy(
    logits,
    labels,
    *,
    axis=-1,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    z_loss=0.0,
    label_smoothing=0.0,
    reduction="mean",
    return_grad=False,
    n_threads=None,
):
    """Softmax cross-entropy from logits.

    ``labels`` is either integer class indices, with ``logits``' shape without ``axis``,
    giving ``l = logsumexp(z) - z[y]``; or float targets of ``logits``' shape (one-hot,
    soft, smoothed), giving ``l = sum(t) * logsumexp(z) - sum(t * z)`` with ``0*log 0 = 0``.

    Options (all computed in the kernels, gradients included):

    - ``weight``: one weight per class. With integer labels a row weighs ``weight[y]`` and
      ``"mean"`` is ``sum(weight[y] * l) / sum(weight[y])`` (PyTorch); with targets each
      term is weighted, ``t_c -> weight_c * t_c``, and ``"mean"`` divides by the number of
      rows (PyTorch too).
    - ``sample_weight``: one weight per row (``logits``' shape without ``axis``); it
      multiplies the row weight, and ``"mean"`` divides by the sum of the row weights
      (scikit-learn's ``sum(sw * l) / sum(sw)``).
    - ``ignore_index``: integer labels equal to it add nothing to the loss, the gradient or
      the denominator (off by default; PyTorch's default is -100). A batch whose rows are
      all ignored (or of total weight 0) gives 0.0 and a zero gradient, not NaN.
    - ``z_loss``: adds ``z_loss * logsumexp(z)**2`` to each row's loss, before the row weight.
    - ``label_smoothing`` ``eps`` in [0, 1]: the target becomes ``(1 - eps) * t + eps / K``
      (``t`` the one-hot label or the given targets), spread over the ``K`` classes that are
      not masked (PyTorch spreads over all ``C`` and so gives NaN or inf on masked logits);
      with class weights each class's share is weighted, and the weighted ``"mean"``
      divides by ``sum(weight[y])`` as PyTorch does.

    Weights must be finite and >= 0. A row of weight 0 contributes exactly 0 (even if its
    loss is infinite). Note that a weighted ``"mean"`` differs from ``reduction="none"``
    followed by ``.mean()``: ``"none"`` returns the weighted per-row losses.

    reduction: ``"none"`` returns the per-row losses (``logits``' shape without ``axis``,
    in ``logits``' float dtype); ``"sum"`` and ``"mean"`` return a Python float accumulated
    in float64; ``"mean"`` divides by the number (or total weight) of rows, 0.0 if none.

    With ``return_grad=True`` returns ``(loss, grad)``: the gradient of the returned value
    with respect to ``logits`` (for ``"none"``, of each row's own loss), i.e.
    ``softmax(z) - onehot(y)`` or ``sum(t) * softmax(z) - t`` times the row weight, over the
    denominator for ``"mean"``.

    Masks: ``-inf`` logits take no probability. A label (or target mass) on a masked class
    costs ``+inf``; a fully masked row costs ``+inf`` with a zero gradient. Finite input
    never gives NaN; NaN or ``+inf`` logits give NaN in their own row only.
    """
    a, ax = _prepare(logits, axis, "logits")
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    ignore = ignore_arg(ignore_index)
    zl = z_loss_arg(z_loss)
    eps = smoothing_arg(label_smoothing)
    n_classes = a.shape[ax]
    row_shape = a.shape[:ax] + a.shape[ax + 1 :]
    w = None if weight is None else weight_array(weight, (n_classes,), a.dtype, "weight", "one per class")
    sw = None
    if sample_weight is not None:
        sw = weight_array(sample_weight, row_shape, a.dtype, "sample_weight", "one per row")
    lab = np.asarray(labels)
    if lab.dtype.kind in "iu":
        if n_classes == 0 and lab.size:
            raise ValueError("logits have 0 classes along the class axis")
        y = _int_labels(lab, n_classes, row_shape, ignore)
        op, t = _OP.xent_label, None
        weighted = w is not None or sw is not None or ignore is not None
        denom = label_row_weight_sum(y, w, sw, ignore) if (weighted and reduction == "mean") else None
    elif lab.dtype.kind == "f":
        if ignore is not None:
            raise ValueError("ignore_index applies to integer labels only, not to float targets")
        t = _last(as_targets(lab, a, "labels"), ax)
        op, y = _OP.xent_target, None
        denom = float(sw.sum(dtype=np.float64)) if (sw is not None and reduction == "mean") else None
    else:
        raise TypeError(f"labels must be integer class indices or float targets, got dtype {lab.dtype}")
    n = math.prod(row_shape) if denom is None else denom
    row_out = np.empty(row_shape, dtype=a.dtype) if reduction == "none" else None
    grad = np.empty_like(a) if return_grad else None
    total = _core.softmax_op(
        op, _last(a, ax), t, y, None if grad is None else _last(grad, ax), row_out, grad_scale(reduction, n), nt,
        w, sw, ignore, zl, eps,
    )
    return finish(reduction, total, n, row_out, grad, return_grad)
