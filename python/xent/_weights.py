"""Validation of the weighting options (class weights, sample weights, ignore_index,
z_loss) and the weighted-mean denominator, shared by the loss functions."""
from __future__ import annotations

import math
import operator

import numpy as np

from . import _core

_SUM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # native byte order


def all_in(a: np.ndarray, hi: float) -> bool:
    """Whether every value of ``a`` is in [0, hi] (NaN is not): one vector pass of the core
    for a C-contiguous, aligned float32/float64 array; False (not known) for any other, the
    callers then look for the bad value with NumPy."""
    if a.dtype not in _SUM_DTYPES or not (a.flags.c_contiguous and a.flags.aligned):
        return False
    return _core.weight_stats(a)[1] <= hi


def _first_bad(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "f" and all_in(a, float(np.finfo(a.dtype).max)):
        return  # (the usual case: one vector pass)
    ok = np.isfinite(a) & (a >= 0)
    if not ok.all():
        at = int(np.flatnonzero(~ok.ravel())[0])
        pos = [int(p) for p in np.unravel_index(at, a.shape)] if a.ndim else ""  # a scalar: no index
        raise ValueError(f"{name}{pos} = {a.ravel()[at].item()!r}: weights must be finite and >= 0")


def weight_array(w, shape: tuple, dtype: np.dtype, name: str, what: str) -> np.ndarray:
    """``w`` as a C-contiguous, aligned array of ``dtype`` and exactly ``shape``, finite and >= 0
    (checked after the conversion, so a float64 weight overflowing float32 is caught)."""
    a = np.asarray(w)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} but must have shape {shape} ({what})")
    with np.errstate(over="ignore"):  # an overflow to inf is reported just below
        a = np.require(a, dtype=dtype, requirements=["C", "A"])  # a misaligned one is copied
    _first_bad(a, name)
    return a


def rescale_tiny_weights(sw, n: float):
    """For a weighted mean whose denominator ``n`` is so small (a sum of subnormal weights)
    that ``1/n`` overflows (float64, or the weights' dtype: the sigmoid kernels take ``1/n``
    in it): the weights ``sw`` that make up ``n`` (sample or class weights) and ``n`` times
    one power of two, which changes no ratio ``sw / n`` (exact for every finite weight), so
    the gradient scale ``1/n`` stays finite and ``inf * 0`` cannot make a NaN. Otherwise
    both unchanged."""
    if sw is None or not n:
        return sw, n
    big = float(np.finfo(sw.dtype).max)
    with np.errstate(over="ignore"):
        inv = 1.0 / n if n > 1.0 / big else math.inf
    if inv <= big:
        return sw, n
    # n 2**k near 1/2; but no larger than keeps the largest weight finite (its ratio to the
    # tiny sum can exceed the dtype's range only in the most extreme inputs)
    top = float(np.max(sw, initial=0.0))
    k = min(-math.frexp(n)[1], np.finfo(sw.dtype).maxexp - 1 - math.frexp(top)[1])
    if k <= 0:
        return sw, n
    # np.ldexp of a 0-d array is a NumPy scalar: keep an array (the core takes only arrays)
    return np.ascontiguousarray(np.ldexp(sw, k), dtype=sw.dtype).reshape(sw.shape), math.ldexp(n, k)


def weight_sum(a) -> float:
    """``sum(a)`` of weights >= 0: float64 terms, blocks of 1024 in 16 lanes, the blocks
    compensated (the same bits on every ISA), by the core (the fast path of
    small calls calls the same function, so both paths divide by the same bits); +inf when
    huge weights overflow it (the callers then rescale them: shrink_huge_weights)."""
    a = np.asarray(a)
    dtype = a.dtype if a.dtype in _SUM_DTYPES else np.float64  # (other types: their values in float64)
    return _core.weight_sum(np.require(a, dtype=dtype, requirements=["C", "A"]))


def _pow2_shrink(a, k: int):
    """``a * 2**-k`` in ``a``'s dtype, C-contiguous (exact but where it underflows)."""
    return np.ascontiguousarray(np.ldexp(a, -k), dtype=a.dtype).reshape(a.shape)


def top_exp(a) -> int:
    """The binary exponent of ``max(a)`` (``a`` >= 0; 0 for an empty or all-zero array)."""
    top = float(np.max(a, initial=0.0))
    return math.frexp(top)[1] if top else 0


def shrink_huge_weights(weights, n: float, dtype, shifts: list | None = None, floors=None):
    """For a weighted mean whose weights are so large that their products, or their sum
    ``n`` (or a bound the caller passes there), can overflow the dtype (class weight 1e264
    times sample weight 1e300, say): each array of ``weights`` (None for absent) divided by
    the power of two that brings its largest element into [1/2, 1). Only ratios of weights
    enter a mean, so this changes nothing but where the old weights overflowed (tiny weights
    far below the largest may underflow, their share of the mean being below the dtype's
    resolution). Returns the new weights and True, or the weights unchanged and False when
    no product can overflow. ``shifts`` (a list, when given) receives each array's power of
    two (0 for None). ``floors`` (when given, one per array, None for none) are lowest
    powers: tiny weights are then scaled up less than to [1/2, 1), so that a quantity the
    caller scales with them (a z-loss, by 2**-power) stays finite."""
    exps = [top_exp(w) if w is not None else 0 for w in weights]
    if floors is not None:
        exps = [e if f is None else max(e, f) for e, f in zip(exps, floors)]
    limit = np.finfo(dtype).maxexp - 32
    if not any(w is not None and w.size for w in weights) or (
        n < math.ldexp(1.0, limit) and sum(max(e, 0) for e in exps) < limit
    ):
        return weights, False
    if shifts is not None:
        shifts[:] = exps
    return [None if w is None else _pow2_shrink(w, e) for w, e in zip(weights, exps)], True


def inrow_shift(cw, dtype) -> int:
    """The power of two ``k`` >= 0 by which class weights that act inside a row (target
    distributions, label smoothing, focal's alpha) are divided so that their sum stays far
    below the dtype's largest value (the kernels sum them, in the dtype, inside a row); the
    row's results are linear in them (and the z-loss, divided too) and are multiplied by
    ``2**k`` afterwards, exactly. 0 when nothing is needed."""
    if cw is None or not cw.size:
        return 0
    top = top_exp(cw)
    if not top:
        return 0
    # sum(cw) < len(cw) * 2**top: its exponent at most top + bit_length(len)
    e = top + int(cw.size).bit_length()
    limit = np.finfo(dtype).maxexp - 24
    return max(0, e - limit)


_INT64 = np.iinfo(np.int64)
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))  # native byte order


def ignore_arg(ignore_index) -> int | None:
    if ignore_index is None:
        return None
    try:
        i = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}") from None
    if not _INT64.min <= i <= _INT64.max:
        raise ValueError(f"ignore_index must fit in int64, got {i}")
    return i


def _real(value, name: str) -> float:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def z_loss_arg(z_loss) -> float:
    z = _real(z_loss, "z_loss")
    if not (math.isfinite(z) and z >= 0):
        raise ValueError(f"z_loss must be finite and >= 0, got {z_loss!r}")
    return z


def smoothing_arg(eps) -> float:
    e = _real(eps, "label_smoothing")
    if not 0.0 <= e <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {eps!r}")
    return e


def label_row_weight_sum(y, weight, sample_weight, ignore_index) -> float:
    """Sum over rows of class_weight[y] * sample_weight, ignored rows excluded: the
    denominator of a weighted mean with integer labels (PyTorch's, and scikit-learn's).
    Computed by the core (float64 terms, compensated sum; +inf when huge weights overflow
    it, rescaled by the caller: shrink_huge_weights), as the fast path of small calls does."""
    y = np.asarray(y)
    if y.dtype not in _INDEX_DTYPES or not y.flags.aligned:
        y = y.astype(np.int64)  # (labels of another integer type: a dask block, say)
    if weight is not None:
        weight = np.require(weight, requirements=["C", "A"])
    if sample_weight is not None:
        sample_weight = np.require(sample_weight, requirements=["A"])  # (a dask block may be misaligned)
    return _core.label_weight_sum(y, weight, sample_weight, ignore_index)


def softcap_arg(softcap) -> float:
    """None -> 0.0 (off); else a finite float > 0."""
    if softcap is None:
        return 0.0
    c = float(softcap)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"softcap must be None or a finite number > 0, got {softcap!r}")
    return c
