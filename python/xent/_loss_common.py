"""Argument handling shared by the softmax-family losses (cross-entropy, poly-1, focal, NLL):
labels or targets, weights, ignore_index, the weighted-mean denominator, out=/grad_out=,
check_finite. The maths is in the C++ kernels; here only validation and O(N) bookkeeping."""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validate import (
    as_float_array,
    as_targets,
    check_finite,
    check_out,
    check_reduction,
    compute_dtype,
    finish,
    grad_scale,
    is_half,
    n_threads_arg,
    normalize_axis,
)
from ._weights import (
    ignore_arg,
    inrow_shift,
    label_row_weight_sum,
    rescale_tiny_weights,
    shrink_huge_weights,
    top_exp,
    weight_array,
    weight_sum,
)

_OP = _core.SoftmaxOp
# kind -> (op for integer labels, op for float targets or None)
OPS = {
    "xent": (_OP.xent_label, _OP.xent_target),
    "poly1": (_OP.poly1_label, _OP.poly1_target),
    "focal": (_OP.focal_label, _OP.focal_target),
    "nll": (_OP.nll_label, None),
}


def last(a: np.ndarray, axis: int) -> np.ndarray:
    return a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)


def prepare(x, axis, name="x"):
    """``x`` as a float array (float16 and bfloat16 kept: the kernels read them directly)
    and ``axis`` normalised."""
    a = as_float_array(x, name, keep_half=True)
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the class axis)")
    return a, normalize_axis(axis, a.ndim)


def int_labels(labels: np.ndarray, n_classes: int, shape: tuple, ignore_index=None) -> np.ndarray:
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


def out_buffers(a, row_shape, reduction, return_grad, out, grad_out, read_only):
    """The per-row loss buffer (reduction "none") and the gradient buffer: the caller's
    ``out`` / ``grad_out`` after checks, or new arrays. ``grad_out`` may be ``a`` itself
    (the kernels copy a row to scratch where they need the logits after writing the
    gradient) but must not overlap any array of ``read_only`` (labels, targets, weights)."""
    row_out = None
    if out is not None:
        if reduction != "none":
            raise ValueError(f"out= holds per-row losses and needs reduction='none', not {reduction!r}")
        row_out = check_out(out, row_shape, compute_dtype(a), "out", (a, *read_only))
    elif reduction == "none":
        row_out = np.empty(row_shape, dtype=compute_dtype(a))
    grad = None
    if grad_out is not None:
        if not return_grad:
            raise ValueError("grad_out= needs return_grad=True")
        grad = check_out(grad_out, a.shape, a.dtype, "grad_out", (a,))
        for x in read_only:
            if x is not None and np.may_share_memory(grad, x):
                raise ValueError("grad_out overlaps the labels, the targets or the weights (it may only be the logits)")
        if row_out is not None and np.may_share_memory(grad, row_out):
            raise ValueError("grad_out overlaps out")
    elif return_grad:
        grad = np.empty_like(a)
    return row_out, grad


def run_softmax_loss(
    kind,
    logits,
    labels,
    *,
    axis,
    weight,
    sample_weight,
    ignore_index,
    reduction,
    return_grad,
    n_threads,
    out,
    grad_out,
    check_finite_,
    z_loss=0.0,
    smoothing=0.0,
    softcap=0.0,
    param=0.0,
    alpha=None,
    name="logits",
):
    """One softmax-family loss over ``logits`` with integer labels or float targets.

    ``alpha`` (focal only): None or per-class multipliers (already an array of C values in
    the logits' dtype); with targets it is combined with ``weight`` into one per-class
    factor, as are poly-1's class weights: both act inside the row, like cross-entropy's.
    """
    a, ax = prepare(logits, axis, name)
    reduction = check_reduction(reduction)
    nt = n_threads_arg(n_threads)
    ignore = ignore_arg(ignore_index)
    if check_finite_:
        check_finite(a, name)
    n_classes = a.shape[ax]
    row_shape = a.shape[:ax] + a.shape[ax + 1 :]
    cdt = compute_dtype(a)  # float32 for half logits
    w = None if weight is None else weight_array(weight, (n_classes,), cdt, "weight", "one per class")
    sw = None
    if sample_weight is not None:
        sw = weight_array(sample_weight, row_shape, cdt, "sample_weight", "one per row")
    op_label, op_target = OPS[kind]
    lab = np.asarray(labels)
    class_w, class_a = w, alpha
    pre_shift = 0  # a power of two already taken out of class_a (see _product)
    if lab.dtype.kind in "iu":
        if n_classes == 0 and lab.size:
            raise ValueError(f"{name} have 0 classes along the class axis")
        y = int_labels(lab, n_classes, row_shape, ignore)
        op, t = op_label, None
        weighted = w is not None or sw is not None or ignore is not None
        denom = label_row_weight_sum(y, w, sw, ignore) if (weighted and reduction == "mean") else None
    elif (lab.dtype.kind == "f" or is_half(lab.dtype)) and op_target is not None:
        if ignore is not None:
            raise ValueError("ignore_index applies to integer labels only, not to float targets")
        tt = as_targets(lab, a, "labels")
        if check_finite_:
            check_finite(tt, "labels", allow_neginf=False)
        t = last(tt, ax)
        op, y = op_target, None
        denom = weight_sum(sw) if (sw is not None and reduction == "mean") else None
        if kind in ("poly1", "focal"):  # one per-class factor inside the row
            class_w = None
            if w is not None:
                class_a, pre_shift = (w, 0) if alpha is None else _product(alpha, w, cdt)
    elif op_target is None:
        raise TypeError(f"labels must be integer class indices, got dtype {lab.dtype}")
    else:
        raise TypeError(f"labels must be integer class indices or float targets, got dtype {lab.dtype}")
    n = math.prod(row_shape) if denom is None else denom
    # what the kernel reads besides the logits: no buffer may overlap these (a gradient
    # written over the labels would change the labels of the rows after it)
    read_only = (t, y, sw, w, class_a)
    # huge weights (docs/losses.md): for "mean" the weights that make up its denominator are
    # rescaled by powers of two, so that no product of weights (nor their sum) overflows
    in_denom = y is not None and class_w is not None and denom is not None
    # class weights acting inside rows (not as a row weight): the z-loss is not weighted by them
    inrow_kind = op == _OP.xent_target or (op == _OP.xent_label and smoothing != 0.0)
    if reduction == "mean":
        ks: list = []
        # with the z-loss scaled alike below, tiny class weights are scaled up only so far
        # that z_loss * 2**-k stays finite (at most 2**1000)
        zfloor = math.frexp(z_loss)[1] - 1000 if (in_denom and inrow_kind and z_loss) else None
        (sw, cw2), shrunk = shrink_huge_weights([sw, class_w if in_denom else None], n, cdt, ks, [None, zfloor])
        if shrunk:
            if in_denom:
                class_w = cw2
                if inrow_kind:  # the row is linear in (class weights, z-loss) together
                    z_loss = math.ldexp(z_loss, -ks[1])
            n = label_row_weight_sum(y, class_w, sw, ignore) if y is not None else weight_sum(sw)
    # class weights acting inside rows: divided by 2**shift, the results multiplied by it
    shift = inrow_shift(class_w if inrow_kind else class_a, cdt)
    if shift:  # (inrow_shift is 0 for None)
        if inrow_kind:
            class_w = np.ascontiguousarray(np.ldexp(class_w, -shift), dtype=cdt)  # type: ignore[arg-type]
        else:
            class_a = np.ascontiguousarray(np.ldexp(class_a, -shift), dtype=cdt)
        z_loss = math.ldexp(z_loss, -shift)
        if reduction == "mean" and in_denom and inrow_kind:  # the denominator shrinks alike
            n = label_row_weight_sum(y, class_w, sw, ignore)
            shift = 0
    shift += pre_shift
    # a denominator so small that 1/n overflows: the weights it sums (sample weights, or the
    # class weights when they alone make it) are rescaled by a power of two
    if sw is not None:
        sw, n = rescale_tiny_weights(sw, n)
    elif class_w is not None and denom is not None:
        class_w, n = rescale_tiny_weights(class_w, n)
    row_out, grad = out_buffers(a, row_shape, reduction, return_grad, out, grad_out, read_only)
    total = _core.softmax_op(
        op, last(a, ax), t, y, None if grad is None else last(grad, ax), row_out, grad_scale(reduction, n), nt,
        class_w, sw, ignore, z_loss, smoothing, softcap, param, class_a, inner=ax != a.ndim - 1,
    )
    if shift:
        total = unshift(total, row_out, grad, shift)
    return finish(reduction, total, n, row_out, grad, return_grad)


def _product(alpha: np.ndarray, w: np.ndarray, dtype):
    """``alpha * w`` in ``dtype`` and 0, or, where that product could overflow, ``alpha * w
    / 2**k`` and ``k`` (the caller multiplies the results by ``2**k``)."""
    e = top_exp(alpha) + top_exp(w)
    k = max(0, e - (np.finfo(dtype).maxexp - 24))
    with np.errstate(under="ignore"):
        return np.ascontiguousarray(np.ldexp(alpha, -k) * w, dtype=dtype), k


def unshift(total: float, row_out, grad, shift: int) -> float:
    """Results computed with weights divided by ``2**shift``, multiplied back (exactly; +inf
    or -inf where they overflow, 0 stays 0)."""
    for arr in (row_out, grad):
        if arr is not None and arr.size:
            with np.errstate(over="ignore"):
                np.ldexp(arr, shift, out=arr)
    try:
        return math.ldexp(total, shift)
    except OverflowError:
        return math.copysign(math.inf, total)
