"""Softmax family: logsumexp, log_softmax, softmax and softmax cross-entropy."""
from __future__ import annotations

import numpy as np

from . import _core
from ._fast import LAST, ZERO
from ._loss_common import last as _last
from ._loss_common import prepare as _prepare
from ._loss_common import run_softmax_loss
from ._validate import check_finite as _check_finite
from ._validate import check_out, compute_dtype, n_threads_arg
from ._weights import smoothing_arg, softcap_arg, z_loss_arg

_OP = _core.SoftmaxOp

_CAP_DOC = """``softcap``: None, or ``c > 0`` to replace ``x`` by ``c * tanh(x / c)`` first (Gemma 2's
    logit soft-capping; ``-inf`` stays ``-inf``, ``+inf`` becomes ``c``). ``check_finite``:
    if True, a NaN or ``+inf`` in ``x`` raises ValueError naming its index (``-inf`` is a mask)."""


def logsumexp(x, axis=LAST, *, softcap=None, check_finite=False, n_threads=None):
    """``log(sum(exp(x), axis))``, computed stably: ``m + log(sum(exp(x - m)))``.

    Returns an array of ``x``'s shape without ``axis`` (a NumPy scalar for 1-d input),
    in float32 for float32, float16 and bfloat16 input and float64 otherwise (half input is
    read directly, not copied: see docs/losses.md, "dtypes"; softmax and log_softmax of half
    input are in its dtype, the float32 result rounded to nearest even). ``-inf`` entries are
    masks (they add nothing); a row that is all ``-inf`` gives ``-inf``; an empty axis
    gives ``-inf`` (the log of an empty sum); NaN and ``+inf`` propagate to their row.

    {cap}
    """
    if axis is LAST and softcap is None and check_finite is False:
        r = _core.softmax_norm_fast(_OP.logsumexp, x, n_threads)
        if r is not None:
            return r
    a, ax = _prepare(x, axis)
    cap = softcap_arg(softcap)
    if check_finite:
        _check_finite(a, "x")
    z = _last(a, ax)
    res = np.empty(z.shape[:-1], dtype=compute_dtype(a))
    _core.softmax_op(_OP.logsumexp, z, None, None, None, res, 1.0, n_threads_arg(n_threads), softcap=cap)
    return res[()] if res.ndim == 0 else res


def _normalizer(kind, x, axis, out, softcap, check_finite, n_threads):
    if axis is LAST and out is None and softcap is None and check_finite is False:
        r = _core.softmax_norm_fast(kind, x, n_threads)
        if r is not None:
            return r
    a, ax = _prepare(x, axis)
    cap = softcap_arg(softcap)
    if check_finite:
        _check_finite(a, "x")
    if out is None:
        out = np.empty_like(a)
    else:
        check_out(out, a.shape, a.dtype, "out", (a,))
    _core.softmax_op(kind, _last(a, ax), None, None, _last(out, ax), None, 1.0, n_threads_arg(n_threads), softcap=cap)
    return out


def softmax(x, axis=LAST, out=None, *, softcap=None, check_finite=False, n_threads=None):
    """``exp(x - logsumexp(x))`` along ``axis``; ``out`` may be ``x`` itself.

    ``-inf`` entries get probability 0; a row that is all ``-inf`` (fully masked) gives all
    zeros (PyTorch and SciPy give NaN there); NaN and ``+inf`` propagate to their row.

    {cap}
    """
    return _normalizer(_OP.softmax, x, axis, out, softcap, check_finite, n_threads)


def log_softmax(x, axis=LAST, out=None, *, softcap=None, check_finite=False, n_threads=None):
    """``x - logsumexp(x)`` along ``axis``, computed as ``(x - m) - log(sum(exp(x - m)))``;
    ``out`` may be ``x`` itself. A fully masked row (all ``-inf``) gives all ``-inf``.

    {cap}
    """
    return _normalizer(_OP.log_softmax, x, axis, out, softcap, check_finite, n_threads)


def softmax_cross_entropy(
    logits,
    labels,
    *,
    axis=LAST,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    z_loss=ZERO,
    label_smoothing=ZERO,
    softcap=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
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
    in ``logits``' float dtype; float32 for float16 / bfloat16 logits, whose gradient keeps
    their dtype: the float32 gradient rounded to nearest even, as PyTorch's gradient has
    its input's dtype but unlike its half loss); ``"sum"`` and ``"mean"`` return a Python float accumulated
    in float64; ``"mean"`` divides by the number (or total weight) of rows, 0.0 if none.

    With ``return_grad=True`` returns ``(loss, grad)``: the gradient of the returned value
    with respect to ``logits`` (for ``"none"``, of each row's own loss), i.e.
    ``softmax(z) - onehot(y)`` or ``sum(t) * softmax(z) - t`` times the row weight, over the
    denominator for ``"mean"``.

    - ``softcap`` ``c > 0``: the logits become ``c * tanh(z / c)`` first (Gemma 2, CCE);
      the gradient goes through it (times ``1 - tanh(z / c)**2``); ``-inf`` stays ``-inf``.
      In float32 the capped logits are float32 numbers (within 2 ulp of ``c``), so per-row
      losses are within ``2e-6`` relative + ``1e-6`` + ``2 ulp(c)`` of float64 (tested).

    Masks: ``-inf`` logits take no probability. A label (or target mass) on a masked class
    costs ``+inf``; a fully masked row costs ``+inf`` with a zero gradient. Finite input
    never gives NaN; NaN or ``+inf`` logits give NaN in their own row only, unless
    ``check_finite=True``, which raises ValueError naming the first NaN or ``+inf`` of
    ``logits`` (``-inf`` is a mask, not an error) or non-finite target.

    Buffers: ``out`` (reduction ``"none"`` only) receives the per-row losses and is
    returned; ``grad_out`` (with ``return_grad=True``) receives the gradient and is
    returned. Each must have exactly the result's shape (else ValueError) and dtype (else
    TypeError). ``grad_out`` may be ``logits`` itself (the gradient overwrites the logits,
    a buffer a training loop reuses); it may not overlap the labels, the targets or the weights.
    """
    if axis is LAST and check_finite is False:
        r = _core.softmax_xent_fast(
            logits, labels, reduction, return_grad, n_threads, out, grad_out, weight, sample_weight, ignore_index,
            z_loss, label_smoothing, softcap,
        )
        if r is not None:
            return r
    return run_softmax_loss(
        "xent", logits, labels, axis=axis, weight=weight, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, return_grad=return_grad, n_threads=n_threads,
        out=out, grad_out=grad_out, check_finite_=check_finite, z_loss=z_loss_arg(z_loss),
        smoothing=smoothing_arg(label_smoothing), softcap=softcap_arg(softcap),
    )


for _f in (logsumexp, softmax, log_softmax):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__.replace("{cap}", _CAP_DOC)
