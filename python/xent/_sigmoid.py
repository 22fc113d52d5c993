"""Sigmoid (binary and multi-label) cross-entropy and sigmoid focal loss from logits."""
from __future__ import annotations

import math

from . import _core
from . import _sigmoid_call as _call
from ._fast import ZERO
from ._validate import check_finite as _check_finite
from ._weights import smoothing_arg, softcap_arg


def _check_inputs(z, t) -> None:
    _check_finite(z, "logits")
    _check_finite(t, "targets", allow_neginf=False)


def sigmoid_cross_entropy(
    logits,
    targets,
    *,
    axis=None,
    weight=None,
    pos_weight=None,
    sample_weight=None,
    label_smoothing=ZERO,
    softcap=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Sigmoid cross-entropy from logits, ``l = max(z, 0) - z*t + log1p(exp(-|z|))``
    (PyTorch's ``binary_cross_entropy_with_logits``, optax's ``sigmoid_binary_cross_entropy``),
    computed without cancellation; targets in [0, 1] (bool and integer targets are accepted
    and converted), of ``logits``' shape.

    axis: ``None`` (default) keeps the loss elementwise: ``"none"`` returns ``logits``'
    shape and ``"mean"`` averages over every element (as PyTorch). With ``axis=k`` the
    losses are summed over that axis first: a ``(b, 13, 13, 3, 20)`` detection head with
    ``axis=-1, reduction="none"`` gives ``(b, 13, 13, 3)``, and ``"mean"`` averages those
    sums (Keras instead averages over the last axis).

    Options (all computed in the kernel, in one pass with the gradient). The class axis is
    ``axis`` when given, else the last axis:

    - ``label_smoothing`` ``eps`` in [0, 1] (Keras's binary form): ``t -> (1 - eps)*t + eps/2``.
    - ``softcap`` ``c > 0`` (as for the softmax losses; no peer has it): the logits become
      ``c*tanh(z/c)`` first, and the gradient goes through it (times ``1 - tanh(z/c)**2``).
      ``-inf`` stays ``-inf``; ``+inf`` becomes ``c``.
    - ``pos_weight`` ``q``, one per class (PyTorch's formula, broadcast along the class axis):
      ``l = (1 - t)*z - (1 + (q - 1)*t) * log(sigmoid(z))``.
    - ``weight``, one per class: multiplies each element's loss. PyTorch's ``weight``
      broadcasts against the input's trailing dims; here a 1-d weight of length C matches the
      class axis (the last one, as PyTorch, for ``axis=None``). For ``weight`` and
      ``pos_weight`` a scalar or a length-1 array means the same value for every class.
    - ``sample_weight``, one per sample: the logits' shape without the class axis (with
      ``axis=None``, a 0-d or 1-d input is a batch of single-output samples and the sample
      weights have its own shape). It multiplies the sample's losses, and ``"mean"`` divides by
      the summed weights, scikit-learn's ``sum(sw*l) / sum(sw)``: with ``axis=None`` each
      element weighs its sample's weight, so the denominator is ``sum(sw) * C``; with ``axis``
      given it is ``sum(sw)``. Class weights do not enter the denominator (as PyTorch's
      BCEWithLogits ``weight``, whose mean divides by the element count).

    Weights must be finite and >= 0 (ValueError otherwise). An element of weight 0 contributes
    exactly 0 to the loss and the gradient, even where its loss is infinite or NaN. A weighted
    ``"mean"`` differs from ``reduction="none"`` followed by ``.mean()``: ``"none"`` returns the
    weighted losses. A batch of total sample weight 0, or an empty one, gives 0.0.

    Infinite logits: ``z = -inf`` with ``t = 0`` (and ``z = +inf`` with ``t = 1``) costs 0;
    target mass on the wrong side costs ``+inf`` with a finite gradient (so label smoothing
    makes ``-inf`` logits cost ``+inf``); NaN propagates to its own element (row sum, with
    ``axis``).

    With ``return_grad=True`` returns ``(loss, grad)``, the gradient of the returned value:
    ``sigmoid(z) - t`` (with ``pos_weight``: ``(1 - t) - (1 + (q - 1)*t) * sigmoid(-z)``),
    times the element's weight, divided by the denominator for ``"mean"``.

    out: a buffer for the ``"none"`` losses (exactly the result's shape, ValueError, and
    dtype, TypeError; it may be ``logits`` or ``targets`` itself). grad_out: a buffer for the
    gradient (``return_grad=True`` only; ``logits``' shape and float dtype; it may be
    ``logits`` itself, which is then overwritten). Both are returned. float16 / bfloat16
    logits are read directly and computed in float32: losses float32, the gradient in the
    logits' dtype (the float32 one rounded to nearest even).

    check_finite: if True, a NaN or ``+inf`` logit (``-inf`` is allowed, as for the softmax
    losses), or a non-finite target, raises ValueError naming its first position.
    """
    if check_finite is False:
        r = _core.sigmoid_xent_fast(logits, targets, reduction, return_grad, n_threads, out, grad_out, weight,
                                    pos_weight, sample_weight, label_smoothing, softcap, axis)
        if r is not None:
            return r
    z, t = _call.logits_and_targets(logits, targets)
    if check_finite:
        _check_inputs(z, t)
    eps = smoothing_arg(label_smoothing)
    return _call.run(z, t, axis, reduction, return_grad, out, grad_out, n_threads, weight, pos_weight,
                     sample_weight, smoothing=eps, softcap=softcap_arg(softcap))


def sigmoid_focal_loss(
    logits,
    targets,
    *,
    gamma=2.0,
    alpha=0.25,
    axis=None,
    weight=None,
    sample_weight=None,
    reduction="mean",
    return_grad=False,
    out=None,
    grad_out=None,
    check_finite=False,
    n_threads=None,
):
    """Sigmoid focal loss (Lin et al. 2017), torchvision's and optax's form:
    ``FL = alpha_t * (1 - p_t)**gamma * CE`` with ``p = sigmoid(z)``,
    ``p_t = p*t + (1 - p)*(1 - t)``, ``alpha_t = alpha*t + (1 - alpha)*(1 - t)`` and ``CE``
    the sigmoid cross-entropy. Targets must lie in [0, 1] (soft targets allowed; ValueError
    otherwise).

    Computed in log space, without clipping: ``log(1 - p_t) = log((1 - t)*p + t*(1 - p))`` from
    ``exp(-|z|)`` and ``log1p``, exact in log space for hard targets (as optax's
    logsumexp form), so large ``|z|`` neither overflows nor gives NaN, and ``gamma < 1`` is
    safe. The gradient is analytic:
    ``alpha_t * (1 - p_t)**gamma * (gamma * CE * d log(1 - p_t)/dz + sigmoid(z) - t)``.

    gamma: finite, >= 0; ``gamma=0`` gives the ``alpha_t``-weighted cross-entropy.
    alpha: in [0, 1], or ``None`` (or any negative value, torchvision's ``-1``) for no
    balancing. The defaults are torchvision's (``alpha=0.25``; optax's default is ``None``).

    axis, weight, sample_weight, reduction, return_grad, out, grad_out, check_finite, n_threads: as for
    :func:`sigmoid_cross_entropy` (elementwise by default, summed over ``axis`` when given;
    ``weight`` one per class along the class axis, ``sample_weight`` one per sample, ``"mean"``
    divided by the summed sample weights). torchvision's and optax's functions return the
    elementwise losses (``reduction="none"`` here); the default here is ``"mean"``.

    Accuracy: as the cross-entropy, except that the factor ``(1 - p_t)**gamma`` carries the
    rounding of ``gamma*log(1 - p_t)`` (a relative error of a few ulp times
    ``|gamma*log(1 - p_t)|``, where the loss is already tiny for hard targets). An integer
    ``gamma`` from 0 to 4 (2, the usual one) skips the log space: ``1 - p_t`` is computed
    directly (without cancellation, from ``exp(-|z|)``) and raised by products, a few ulp per
    factor, and the loss with its gradient costs 1.5-1.7x the plain cross-entropy instead of 2.3-2.6x.
    """
    z, t = _call.logits_and_targets(logits, targets)
    if check_finite:
        _check_inputs(z, t)
    g = float(gamma)
    if not (math.isfinite(g) and g >= 0):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    if alpha is None:
        a = -1.0
    else:
        a = float(alpha)
        if math.isnan(a) or a > 1:
            raise ValueError(f"alpha must be in [0, 1], or None (or negative) for no balancing; got {alpha!r}")
        a = max(a, -1.0)
    _call.check_unit_targets(t)
    return _call.run(z, t, axis, reduction, return_grad, out, grad_out, n_threads, weight, None, sample_weight,
                     focal=True, gamma=g, alpha=a)
