"""Argument handling shared by the sigmoid losses: class axis, weights, out= buffers and
the denominator of the mean. The maths runs in the C++ kernel (sigmoid_opt-inl.hpp); NumPy
only validates and does O(N) bookkeeping (no array of the logits' size is allocated here
beyond the results).

Rules (documented for users in sigmoid_cross_entropy's docstring):
- class axis: ``axis`` when given, else the last axis (a 0-d input has one class);
  ``weight`` and ``pos_weight`` hold one value per class (a scalar or a length-1 array is
  the same value for every class, as PyTorch's broadcasting gives).
- ``sample_weight``: one per sample, of the logits' shape without the class axis; with
  ``axis=None`` a 0-d or 1-d input is a batch of single-output samples, so its
  ``sample_weight`` has the logits' own shape.
- "mean" divides by the summed weight of the averaged terms: with ``axis=None`` every
  element is a term and weighs its sample's weight, so the denominator is
  ``sum(sample_weight) * (elements per sample)``; with ``axis`` given the terms are the
  per-sample sums, and the denominator is ``sum(sample_weight)``. Class weights do not enter
  the denominator (PyTorch's BCEWithLogits ``weight`` divides by the element count too).
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validate import (
    as_float_array,
    as_targets,
    check_out,
    check_reduction,
    compute_dtype,
    finish,
    grad_scale,
    n_threads_arg,
    normalize_axis,
)
from ._weights import rescale_tiny_weights, shrink_huge_weights, weight_array, weight_sum


def _per_class(v, n_classes: int, dtype, name: str, where: str):
    if v is None:
        return None
    a = np.asarray(v)
    if a.shape in ((), (1,)) and n_classes != 1:
        one = weight_array(a, a.shape, dtype, name, "")
        return np.full(n_classes, one.reshape(())[()], dtype=dtype)
    return weight_array(a.reshape(1) if a.shape == () else a, (n_classes,), dtype, name, f"one per class along {where}")


def _top(a) -> float:
    return 0.0 if a is None else float(np.max(a, initial=0.0))


def logits_and_targets(logits, targets):
    z = as_float_array(logits, "logits", keep_half=True)  # the kernel reads half directly
    return z, as_targets(targets, z, "targets")


def check_unit_targets(t: np.ndarray) -> None:
    """Targets must lie in [0, 1] (the focal factor is a power of 1 - p_t); ValueError naming the first bad one."""
    if not t.size:
        return
    # +0 <= t <= 1 exactly when t's bits, read as an unsigned integer, are at most 1.0's:
    # nonnegative floats order as their bits, and every negative value, NaN and +inf has
    # larger bits. One integer max instead of a float min and max (NumPy's float16 ones
    # convert each element in software: 10M targets, 34 ms against 1 ms). -0.0 and the
    # errors take the exact check below.
    bits = np.dtype(f"u{t.dtype.itemsize}")
    if t.view(bits).max() <= np.ones((), t.dtype).view(bits):
        return
    if t.dtype.name == "bfloat16":
        t = t.astype(np.float32)  # exact; NumPy's reductions on ml_dtypes types are not relied on
    if t.min() >= 0 and t.max() <= 1:
        return
    bad = ~((t >= 0) & (t <= 1))  # only on the error path
    at = int(np.flatnonzero(bad.ravel())[0])
    pos = [int(p) for p in np.unravel_index(at, t.shape)] if t.ndim else []
    raise ValueError(f"targets{pos} = {t.ravel()[at].item()!r}: targets must be in [0, 1]")


def run(z, t, axis, reduction, return_grad, out, grad_out, n_threads, weight, pos_weight, sample_weight,
        smoothing=0.0, focal=False, gamma=0.0, alpha=-1.0, softcap=0.0):
    """Validates the layout and options, runs the kernel, returns the public result."""
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    per = 1  # terms per sample weight in the mean
    if axis is None:
        ax = None
        n_classes = z.shape[-1] if z.ndim else 1
        res_shape = z.shape
        sw_shape = z.shape[:-1] if z.ndim >= 2 else z.shape
        where = "the last axis"
        sw_what = "one per sample: the logits' shape without the last axis" if z.ndim >= 2 else "one per element"
    else:
        if z.ndim == 0:
            raise ValueError("logits must have at least one dimension when axis is given")
        ax = normalize_axis(axis, z.ndim)
        n_classes = z.shape[ax]
        res_shape = sw_shape = z.shape[:ax] + z.shape[ax + 1 :]
        where = f"axis {ax}"
        sw_what = f"one per sample: the logits' shape without axis {ax}"
    cdt = compute_dtype(z)  # weights and losses: float32 for half logits
    cw = _per_class(weight, n_classes, cdt, "weight", where)
    pw = _per_class(pos_weight, n_classes, cdt, "pos_weight", where)
    sw = None
    if sample_weight is not None:  # (the reshape: ascontiguousarray makes a 0-d array 1-d)
        sw = weight_array(sample_weight, sw_shape, cdt, "sample_weight", sw_what).reshape(sw_shape)
    if ax is None:
        per = n_classes if z.ndim >= 2 else 1
        n_terms = z.size if sw is None else weight_sum(sw) * per
    else:
        n_terms = math.prod(res_shape) if sw is None else weight_sum(sw)
    if reduction == "mean":
        # huge weights (docs/losses.md): sample weights rescaled by a power of two so that
        # no product with the class weights overflows where the mean does not
        (sw,), shrunk = shrink_huge_weights([sw], n_terms * max(1.0, _top(cw)) * max(1.0, _top(pw)), cdt)
        if shrunk:
            n_terms = weight_sum(sw) * per
        sw, n_terms = rescale_tiny_weights(sw, n_terms)
    ew = None  # the sample weight broadcast (stride 0) over the class axis
    if sw is not None:
        if ax is None:
            ew = sw if z.ndim <= 1 else np.broadcast_to(sw[..., None], z.shape)
        else:
            ew = np.broadcast_to(np.expand_dims(sw, ax), z.shape)

    inputs = (z, t, cw, pw, sw)
    loss = None
    if out is not None:
        if reduction != "none":
            raise ValueError(f"out is only used with reduction='none', not {reduction!r}")
        loss = check_out(out, res_shape, cdt, "out", inputs)
        if ax is not None and n_classes == 0:
            loss[...] = 0  # sums over an empty axis
    elif reduction == "none":
        loss = (np.zeros if (ax is not None and n_classes == 0) else np.empty)(res_shape, dtype=cdt)
    grad = None
    if grad_out is not None:
        if not return_grad:
            raise ValueError("grad_out is only used with return_grad=True")
        grad = check_out(grad_out, z.shape, z.dtype, "grad_out", inputs)
        if loss is not None and np.may_share_memory(loss, grad):
            raise ValueError("out and grad_out must not overlap")
    elif return_grad:
        grad = np.empty_like(z)

    def last(a):
        return a if (a is None or ax is None or ax == z.ndim - 1) else np.moveaxis(a, ax, -1)

    total = _core.sigmoid_op(
        last(z), last(t), last(grad), loss, ax is None, grad_scale(reduction, n_terms), nt,
        cw, pw, last(ew), smoothing, focal, gamma, alpha, softcap,
    )
    return finish(reduction, total, n_terms, loss, grad, return_grad)
