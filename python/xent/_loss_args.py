"""Argument handling of the loss objects in xent.losses: scikit-learn's ``sklearn._loss``
conventions (shapes, default output dtypes, in-place ``*_out`` arrays) over xent's kernels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from ._validate import as_float_array, n_threads_arg, same_view
from ._weights import weight_array


@dataclass
class Interval:
    """An interval of valid values, as ``sklearn._loss.link.Interval``."""

    low: float
    high: float
    low_inclusive: bool
    high_inclusive: bool

    def __post_init__(self):
        if self.low > self.high:
            raise ValueError(f"One must have low <= high; got low={self.low}, high={self.high}.")

    def includes(self, x) -> bool:
        """True if every value of ``x`` lies in the interval."""
        x = np.asarray(x)
        low = np.greater_equal(x, self.low) if self.low_inclusive else np.greater(x, self.low)
        if not np.all(low):
            return False
        high = np.less_equal(x, self.high) if self.high_inclusive else np.less(x, self.high)
        return bool(np.all(high))


def raw_binary(raw_prediction) -> np.ndarray:
    """Raw predictions of a binary loss: shape (n,), or (n, 1) taken as (n,)."""
    a = as_float_array(raw_prediction, "raw_prediction")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"raw_prediction must have shape (n_samples,) or (n_samples, 1), got {a.shape}")
    return a


def raw_multi(raw_prediction, n_classes) -> np.ndarray:
    a = as_float_array(raw_prediction, "raw_prediction")
    if a.ndim != 2:
        raise ValueError(f"raw_prediction must have shape (n_samples, n_classes), got {a.shape}")
    if n_classes is not None and a.shape[1] != n_classes:
        raise ValueError(f"raw_prediction has {a.shape[1]} columns but the loss has n_classes={n_classes}")
    return a


def y_array(y_true, n: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"y_true must be an array of real numbers, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"y_true has shape {y.shape} but raw_prediction has {n} samples")
    return y


def labels(y_true, n: int, n_classes: int) -> np.ndarray:
    """Label-encoded y_true (floats holding integers, as scikit-learn passes them) as int64,
    each in [0, n_classes); ValueError naming the first bad one."""
    y = y_array(y_true, n)
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~(np.isfinite(y) & (y == np.floor(y))))
        if bad.size:
            raise ValueError(f"y_true[{bad[0]}] = {y[bad[0]].item()!r} is not an integer class index")
    yi = y.astype(np.int64)
    found = _core.find_bad_label(yi, n_classes, None)
    if found is not None:
        at, value = found
        raise ValueError(f"y_true[{at}] = {value} is out of range: class indices must be in [0, {n_classes})")
    return yi


def targets(y_true, n: int, dtype) -> np.ndarray:
    y = y_array(y_true, n)
    return np.ascontiguousarray(y, dtype=dtype)


def weights(sample_weight, n: int, dtype) -> np.ndarray | None:
    if sample_weight is None:
        return None
    return weight_array(sample_weight, (n,), dtype, "sample_weight", "one per sample")


def threads(n_threads) -> int:
    return n_threads_arg(n_threads)


def y_dtype(y_true, a: np.ndarray) -> np.dtype:
    """Default dtype of a loss array: y_true's (scikit-learn's ``np.empty_like(y_true)``) when
    it is float32 or float64, else the raw predictions'."""
    dt = np.asarray(y_true).dtype
    return dt if dt in (np.float32, np.float64) else a.dtype


def check_out(out, shape: tuple, name: str, inputs=(), may_be=None) -> np.ndarray:
    """A caller's ``*_out`` array: float32 or float64 (TypeError), the shape of the result
    (ValueError; (n, 1) is taken as (n,) where the result is (n,)), writeable, and apart
    from every array the kernel reads, ``inputs`` (ValueError), except that it may be
    ``may_be`` itself (the raw prediction, where the kernel reads each value before it
    writes it)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got dtype {out.dtype}")
    if len(shape) == 1 and out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape} but the result has shape {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.dtype.isnative or not out.flags.aligned:
        raise ValueError(f"{name} must be aligned and in native byte order")
    for x in inputs:
        if x is None or not np.may_share_memory(out, x):
            continue
        if not (x is may_be and out.dtype == x.dtype and same_view(out, x)):
            raise ValueError(f"{name} overlaps an input (raw_prediction, y_true or sample_weight)")
    return out


class Target:
    """Where a kernel writes one result: the caller's array when it has the computation's
    dtype, else a temporary copied into it by ``done()`` (scikit-learn lets outputs be
    float32 for float64 inputs and the reverse)."""

    def __init__(self, out: np.ndarray, dtype):
        self.out = out
        self.buf = out if out.dtype == dtype else np.empty(out.shape, dtype=dtype)

    def done(self) -> np.ndarray:
        if self.buf is not self.out:
            np.copyto(self.out, self.buf, casting="same_kind")
        return self.out


def new_like(a: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """A new result of ``shape``: in ``a``'s memory layout when it has ``a``'s shape (as
    scikit-learn's ``np.empty_like(raw_prediction)``)."""
    return np.empty_like(a, dtype=dtype) if a.shape == shape else np.empty(shape, dtype=dtype)


def outputs(a: np.ndarray, pairs, dtypes, inputs, may_be=None):
    """Two result arrays with scikit-learn's defaults. pairs: ((out, shape, name), ...) for
    the two results. Each given array is checked (check_out: apart from ``inputs``, or
    ``may_be`` itself); if neither is given, both are new, of ``dtypes``; if one is given,
    the other is new and of its dtype."""
    (o1, s1, n1), (o2, s2, n2) = pairs
    o1 = None if o1 is None else check_out(o1, s1, n1, inputs, may_be)
    o2 = None if o2 is None else check_out(o2, s2, n2, inputs, may_be)
    if o1 is not None and o2 is not None and np.may_share_memory(o1, o2):
        raise ValueError(f"{n1} and {n2} must not overlap")
    d1, d2 = dtypes
    if o1 is None and o2 is None:
        o1, o2 = new_like(a, s1, d1), new_like(a, s2, d2)
    elif o1 is None:
        assert o2 is not None
        o1 = new_like(a, s1, o2.dtype)
    elif o2 is None:
        o2 = new_like(a, s2, o1.dtype)
    return Target(o1, a.dtype), Target(o2, a.dtype)
