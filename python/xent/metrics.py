"""Metrics with scikit-learn's signatures and numbers, computed by xent's kernels.

``xent.metrics`` does not import scikit-learn (nor is it imported by ``import xent``
before first use).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import _core
from ._proba import _BINARY, _CAT_LABEL, _CAT_TARGET
from ._validate import n_threads_arg

__all__ = ["log_loss"]


def _check_y_pred(y_pred) -> np.ndarray:
    """scikit-learn's check_array(ensure_2d=False, dtype=(float64, float32)) and the [0, 1]
    checks of log_loss, with min/max reductions only (no temporaries of the input's size)."""
    p = np.asarray(y_pred)
    if p.dtype.kind not in "fiub":
        try:
            p = p.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y_pred must be numeric probabilities: {exc}") from None
    if p.dtype.kind != "f" or p.dtype.itemsize not in (4, 8):
        p = p.astype(np.float64)  # as check_array: float32 and float64 are kept, the rest -> float64
    elif not p.dtype.isnative or not p.flags.aligned:
        p = p.astype(p.dtype.newbyteorder("="))
    if p.ndim > 2:
        raise ValueError(f"Found array with dim {p.ndim}. log_loss expected <= 2.")
    if p.ndim == 0:
        raise ValueError(f"Expected a 1-d or 2-d array of probabilities, got a scalar: {p!r}")
    if p.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={p.shape}) while a minimum of 1 is required.")
    if p.ndim == 2 and p.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={p.shape}) while a minimum of 1 is required.")
    hi, lo = p.max(), p.min()
    if np.isnan(hi) or np.isnan(lo):
        raise ValueError("Input y_pred contains NaN.")
    if np.isinf(hi) or np.isinf(lo):
        raise ValueError(f"Input y_pred contains infinity or a value too large for dtype({p.dtype.name!r}).")
    if hi > 1:
        raise ValueError(f"y_prob contains values greater than 1: {hi}")
    if lo < 0:
        raise ValueError(f"y_prob contains values lower than 0: {lo}")
    return p


def _classes(y: np.ndarray) -> np.ndarray:
    """Sorted distinct labels of a 1-d y (scikit-learn's unique_labels), with its errors."""
    if y.dtype.kind == "f" and y.size and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise ValueError(f"Unknown label type: continuous. y_true must hold class labels, got {y[:5]!r}...")
    if y.dtype.kind in "iu" and y.size and y.min() >= 0 and y.max() < 4 * y.size + 1024:
        return np.flatnonzero(np.bincount(y))  # O(n), no sort
    if y.dtype.kind == "O":
        vals = set(y.tolist())
        if len({isinstance(v, str) for v in vals}) > 1:
            raise ValueError(f"Mix of label input types (string and number); got {sorted(map(repr, vals))}.")
        return np.asarray(sorted(vals))
    return np.unique(y)


def _indicator(y: np.ndarray) -> bool:
    return y.ndim == 2 and y.shape[1] > 1 and bool(np.isin(y, (0, 1)).all())


def _encode(y_true, labels):
    """(integer class index per sample, or the indicator rows as float targets; classes)."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if not _indicator(y):
            raise ValueError("Multioutput target data is not supported with label binarization")
        if labels is not None:
            raise ValueError("The object was not fitted with multilabel input.")
        return None, y, np.arange(y.shape[1])
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-d class labels or a 2-d indicator matrix, got shape {y.shape}")
    if labels is not None:
        lab = np.asarray(labels)
        classes = _classes(lab.ravel())
        if classes.shape != lab.shape or not np.all(classes == lab):
            warnings.warn(
                f"Labels passed were {labels}. But this function assumes labels are ordered lexicographically. "
                f"Pass the ordered labels={classes.tolist()} and ensure that the columns of y_prob correspond "
                "to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        known = np.isin(y, classes)
        if not known.all():
            undeclared = set(y[~known].tolist())
            raise ValueError(f"y_true contains values {undeclared} not belonging to the passed labels {labels}.")
    else:
        classes = _classes(y)
    if classes.shape[0] == 1:
        if labels is None:
            raise ValueError(
                f"y_true contains only one label ({classes[0]}). Please provide the list of all expected class "
                "labels explicitly through the labels argument."
            )
        raise ValueError(f"The labels array needs to contain at least two labels, got {classes}.")
    if y.dtype.kind in "iu" and classes[0] == 0 and classes[-1] == classes.shape[0] - 1:
        return y.astype(np.int64, copy=False), None, classes  # labels 0..C-1 are their own indices
    return np.searchsorted(classes, y).astype(np.int64), None, classes


def _check_sample_weight(sample_weight, n: int) -> np.ndarray:
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must be numbers, got dtype {sw.dtype}")
    sw = sw.astype(np.float64)
    if sw.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. Expected either a scalar value "
            f"or a 1D array of length {n}."
        )
    if not np.isfinite(sw).all():
        raise ValueError("Input sample_weight contains NaN or infinity.")
    if np.all(sw == 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return sw


def log_loss(y_true, y_pred=None, *, normalize=True, sample_weight=None, labels=None, y_proba=None):
    """Log loss (cross-entropy) of predicted probabilities: a drop-in for
    ``sklearn.metrics.log_loss`` (scikit-learn 1.9), computed by xent's kernels.

    ``l_i = -sum_c onehot(y_i)_c * log(clip(p_ic, eps, 1 - eps))`` with ``eps`` the machine
    epsilon of ``y_pred``'s dtype (float32 stays float32; other inputs become float64), then
    the mean (``normalize=True``; weighted: ``sum(sw * l) / sum(sw)``) or the sum
    (weighted: ``sum(sw * l)``). Probabilities are not renormalised (a UserWarning says so
    when rows do not sum to 1 within ``sqrt(eps)``, as scikit-learn).

    As scikit-learn: labels are the sorted distinct values of ``y_true`` (or ``labels``),
    the columns of ``y_pred`` follow that order; a 1-d ``y_pred`` is the probability of the
    second (positive) class; ``y_true`` may be a 2-d 0/1 indicator matrix (one column per
    class). Errors (ValueError, same meaning and wording where it matters): probabilities
    outside [0, 1], NaN or infinite; inconsistent numbers of samples; one class only; a
    ``y_true`` value not in ``labels``; a class count different from ``y_pred``'s columns;
    all-zero sample weights (and ZeroDivisionError if weights sum to 0 with ``normalize``).

    The second argument may also be passed as ``y_proba=`` (scikit-learn 1.9's name) or
    ``y_pred=`` (earlier versions'; no deprecation warning here). Differences from
    scikit-learn: the per-row losses are summed in float64 (scikit-learn sums float32 input
    in float32), and a 1-d ``y_pred``'s ``log(1 - p)`` is not rounded through ``1 - p``:
    both change results by at most a few float ulps.
    """
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"The 'normalize' parameter of log_loss must be an instance of 'bool'. Got {normalize!r}.")
    if y_proba is not None:
        if y_pred is not None:
            raise ValueError("Cannot use both `y_pred` and `y_proba`; pass the probabilities once.")
        y_pred = y_proba
    if y_pred is None:
        raise TypeError("log_loss() missing the predicted probabilities (y_pred)")
    p = _check_y_pred(y_pred)
    n = p.shape[0]
    y_arr = np.asarray(y_true)
    n_true = y_arr.shape[0] if y_arr.ndim else 1
    lengths = [n, n_true] + ([] if sample_weight is None else [int(np.asarray(sample_weight).reshape(-1).shape[0])])
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    sw = None if sample_weight is None else _check_sample_weight(sample_weight, n)
    idx, targets, classes = _encode(y_arr, labels)

    eps = float(np.finfo(p.dtype).eps)
    binary_1d = p.ndim == 1 or p.shape[1] == 1
    if binary_1d:
        q = p.reshape(n)
        with np.errstate(all="ignore"):
            sums = (1 - q) + q
        n_cols = 2
    else:
        # row sums for the "do not sum to one" warning (tolerance sqrt(eps), far above any
        # difference of summation order); a matrix-vector product is much faster than
        # NumPy's reduction along a short axis
        sums = p @ np.ones(p.shape[1], dtype=p.dtype)
        n_cols = p.shape[1]
    if not np.all(np.isclose(sums, 1, rtol=math.sqrt(eps), atol=1e-8)):
        warnings.warn("The y_prob values do not sum to one. Make sure to pass probabilities.", UserWarning,
                      stacklevel=2)
    if classes.shape[0] != n_cols:
        if labels is None:
            raise ValueError(
                f"y_true and y_prob contain different number of classes: {classes.shape[0]} vs {n_cols}. Please "
                f"provide the true labels explicitly through the labels argument. Classes found in y_true: {classes}"
            )
        raise ValueError(
            f"The number of classes in labels is different from that in y_prob. Classes found in labels: {classes}"
        )

    nt = n_threads_arg(None)
    loss = np.empty(n, dtype=p.dtype)
    if binary_1d:
        if targets is None:
            t = idx.astype(p.dtype)
        else:  # a 2-column indicator: the loss of [1 - p, p] against (t0, t1)
            t = None
        if t is not None:
            _core.proba_op(_BINARY, q, t, None, None, loss, True, False, eps, 0.0, 1.0, nt)
        else:
            # rare: indicator rows need not sum to 1; both columns' terms, in O(n)
            tt = np.ascontiguousarray(targets, dtype=p.dtype)
            l1 = np.empty(n, dtype=p.dtype)
            l0 = np.empty(n, dtype=p.dtype)
            _core.proba_op(_BINARY, q, np.ones(n, p.dtype), None, None, l1, True, False, eps, 0.0, 1.0, nt)
            _core.proba_op(_BINARY, q, np.zeros(n, p.dtype), None, None, l0, True, False, eps, 0.0, 1.0, nt)
            loss[:] = tt[:, 1] * l1 + tt[:, 0] * l0
    elif targets is None:
        _core.proba_op(_CAT_LABEL, p, None, idx, None, loss, False, False, eps, 0.0, 1.0, nt)
    else:
        tt = np.asarray(targets, dtype=p.dtype)
        _core.proba_op(_CAT_TARGET, p, tt, None, None, loss, False, False, eps, 0.0, 1.0, nt)

    l64 = loss.astype(np.float64)
    if sw is None:
        return float(l64.mean()) if normalize else float(l64.sum())
    total = float(np.dot(l64, sw))
    if not normalize:
        return total
    denom = float(sw.sum())
    if denom == 0.0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return total / denom
