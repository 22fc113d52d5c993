"""Input normalisation shared by the functional API: dtypes, axes, out= buffers.

Everything here runs before the C++ core is called; the core then trusts what it gets
(exact dtypes, aligned native-endian arrays, the class axis last).
"""
from __future__ import annotations

import operator

import numpy as np

from . import _core

REDUCTIONS = ("none", "sum", "mean")


def _native(a: np.ndarray) -> np.ndarray:
    """A native-endian, aligned version of ``a`` (a copy only if ``a`` is neither)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.aligned:
        a = np.array(a, copy=True)
    return a


def is_half(dt: np.dtype) -> bool:
    """float16, or bfloat16 (``ml_dtypes.bfloat16``, recognised by its name: ``import xent``
    never imports ml_dtypes)."""
    return dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16")


def compute_dtype(a: np.ndarray) -> np.dtype:
    """The dtype a kernel computes in for ``a``: float32 for half input, else ``a``'s. Losses,
    logsumexp and weights take it; gradients and softmax outputs keep ``a``'s dtype."""
    return np.dtype(np.float32) if is_half(a.dtype) else a.dtype


def as_float_array(x, name: str, keep_half: bool = False) -> np.ndarray:
    """``x`` as float32 or float64. float16 and bfloat16 compute in float32 and integers in
    float64, as NumPy's ufuncs do; bool, complex, object and strings are a TypeError.
    ``keep_half``: float16 and bfloat16 stay as they are (no copy), for the kernels that
    read half storage directly (the softmax family and sigmoid cross-entropy)."""
    a = np.asarray(x)
    dt = a.dtype
    if dt.kind == "f" and dt.itemsize in (4, 8):
        return a if (dt.isnative and a.flags.aligned) else _native(a)
    if is_half(dt):
        if keep_half:
            return a if (dt.isnative and a.flags.aligned) else _native(a)
        return a.astype(np.float32)
    if dt.kind == "f":
        if dt.itemsize < 4:
            return a.astype(np.float32)
        raise TypeError(f"{name} has dtype {dt}; xent computes in float32 or float64")
    if dt.kind in "iu":
        return a.astype(np.float64)
    raise TypeError(f"{name} must be an array of real numbers, got dtype {dt}")


def as_targets(t, like: np.ndarray, name: str) -> np.ndarray:
    """Float targets in the logits' dtype (a converted copy when they differ)."""
    a = np.asarray(t)
    if a.dtype.kind not in "fiub" and not is_half(a.dtype):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}")
    if a.shape != like.shape:
        raise ValueError(f"{name} has shape {a.shape} but logits have shape {like.shape}")
    if a.dtype != like.dtype:
        a = a.astype(like.dtype)
    return _native(a)


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    if not -ndim <= ax < ndim:
        raise np.exceptions.AxisError(ax, ndim) if hasattr(np, "exceptions") else ValueError(
            f"{name} {ax} is out of bounds for an array of dimension {ndim}"
        )
    return ax % ndim


def check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def grad_scale(reduction: str, n_terms: float) -> float:
    """The factor of every gradient term: 1/n for "mean" (n = number or total weight of
    the averaged terms; 1 when that is 0, where every term is 0 anyway), else 1."""
    return 1.0 / n_terms if (reduction == "mean" and n_terms) else 1.0


def finish(reduction: str, total: float, n_terms: float, per_row, grad, return_grad: bool):
    """The public return value: per-row losses for "none", else a Python float (the C++
    sum, accumulated in float64), divided by n_terms for "mean" (0.0 if there are none)."""
    if reduction == "none":
        loss = per_row
    elif reduction == "sum":
        loss = float(total)
    else:
        loss = float(total) / n_terms if n_terms else 0.0
    return (loss, grad) if return_grad else loss


_HW_THREADS = None


def _hw_threads() -> int:
    global _HW_THREADS
    if _HW_THREADS is None:
        _HW_THREADS = int(_core.config()["hardware_threads"])
    return _HW_THREADS


def max_threads() -> int:
    """The most threads a call uses: 4 times the hardware threads, at least 8. Larger
    requests are capped (results are bit-identical for any thread count; the pool keeps
    its threads, so n_threads=10**6 must not start one per work task)."""
    return max(8, 4 * _hw_threads())


def n_threads_arg(n_threads) -> int:
    """None: all hardware threads; else an integer >= 1, capped at max_threads()."""
    if n_threads is None:
        return _hw_threads()
    if isinstance(n_threads, bool):
        raise TypeError(f"n_threads must be an integer or None, got {n_threads!r}")
    try:
        n = operator.index(n_threads)
    except TypeError:
        raise TypeError(f"n_threads must be an integer or None, got {n_threads!r}") from None
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n}")
    return min(n, max_threads())


def same_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays start at the same address with the same shape and strides."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def check_out(out, shape: tuple, dtype: np.dtype, name: str, inputs=()) -> np.ndarray:
    """Validates a caller's output buffer: exact shape (ValueError), exact dtype
    (TypeError), writeable, and not partly overlapping an input (it may *be* one)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype} but the result has dtype {dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape} but the result has shape {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.dtype.isnative or not out.flags.aligned:
        raise ValueError(f"{name} must be aligned and in native byte order")
    for a in inputs:
        if a is None or not np.may_share_memory(out, a):
            continue
        if not same_view(out, a):
            raise ValueError(f"{name} overlaps an input array without being that array")
    return out


def check_finite(a, name: str, *, allow_neginf: bool = True) -> None:
    """Raises ValueError if ``a`` holds a NaN or ``+inf`` (and ``-inf`` too unless
    ``allow_neginf``), naming ``name``, the first bad position (C order over ``a``'s
    logical shape, as an index tuple) and its value. ``-inf`` is allowed by default
    because it is a mask for logits (and ``log 0`` for log-probabilities).

    The passing path makes no copy: one ``max`` (and one ``min``) reduction; NaN
    propagates through ``max``. Only a failing array is scanned for the position.
    """
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)  # exact; NumPy's reductions on ml_dtypes types are not relied on
    if a.size == 0 or a.dtype.kind != "f":
        return
    with np.errstate(invalid="ignore"):
        ok = bool(a.max() < np.inf)
        if ok and not allow_neginf:
            ok = bool(a.min() > -np.inf)
    if ok:
        return
    bad = (np.isnan(a) | (a == np.inf)) if allow_neginf else ~np.isfinite(a)
    at = int(np.flatnonzero(bad)[0])
    pos = tuple(int(p) for p in np.unravel_index(at, a.shape))
    what = "NaN and +inf (-inf is allowed: a mask)" if allow_neginf else "NaN and +-inf"
    raise ValueError(f"{name} has the value {a[pos].item()!r} at index {pos}; check_finite=True rejects {what}")
