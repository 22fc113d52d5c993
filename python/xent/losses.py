"""Loss objects for estimator authors, with the API of scikit-learn's private ``sklearn._loss``
(``HalfMultinomialLoss``, ``HalfBinomialLoss``), computed by xent's C++ kernels.

Code written against scikit-learn's loss objects switches by changing the constructor::

    loss = xent.losses.MultinomialLoss(n_classes=K)   # sklearn: HalfMultinomialLoss(n_classes=K)
    loss = xent.losses.BinomialLoss()                 # sklearn: HalfBinomialLoss()

Every method takes ``y_true, raw_prediction, sample_weight=None, *_out=None, n_threads=1``
as scikit-learn's does and returns the same numbers (tested against scikit-learn 1.9):
the per-sample loss, gradient and Hessian with respect to ``raw_prediction``, each multiplied
by the sample weight, written into the ``*_out`` arrays when given (and then returned).
Shapes: ``y_true`` and ``sample_weight`` ``(n_samples,)``; ``raw_prediction``
``(n_samples, n_classes)`` (multinomial, any memory layout) or ``(n_samples,)`` /
``(n_samples, 1)`` (binomial). Default output dtypes are scikit-learn's: losses in
``y_true``'s dtype, gradients and Hessians in ``raw_prediction``'s.

Where xent knowingly differs from scikit-learn:

- bad input raises: ``y_true`` not a class index in ``[0, n_classes)`` (scikit-learn reads
  out of bounds), sample weights negative or not finite, ``*_out`` of the wrong shape or
  dtype, ``raw_prediction`` with a column count other than ``n_classes``, a ``*_out``
  overlapping ``y_true``, ``sample_weight`` or another output, or overlapping
  ``raw_prediction`` without being it (``gradient_proba``'s outputs not even then: it
  reads ``raw_prediction`` again after the gradient), where scikit-learn returns whatever
  its loops leave;
- ``y_true``, ``raw_prediction`` and ``sample_weight`` need not share one dtype (scikit-learn
  requires it): the kernels compute in ``raw_prediction``'s dtype; an output of the other
  float dtype is filled through one temporary of its size;
- ``__call__`` accumulates in float64 and gives 0.0 (not NaN or ZeroDivisionError) for
  an empty batch or a total sample weight of 0;
- the multinomial Hessian diagonal ``p (1 - p)`` and the label entry of the gradients keep
  their digits for confident rows (``p`` near 1), where scikit-learn's ``1 - p`` rounds to 0;
- rows of sample weight 0 give exact zeros (scikit-learn: ``0 * value``, NaN for NaN input).

There is no ``link`` attribute; ``predict_proba`` and ``fit_intercept_only`` cover its uses.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from . import _loss_args as A
from ._loss_args import Interval
from ._softmax import softmax
from ._weights import shrink_huge_weights, weight_sum

__all__ = ["BinomialLoss", "Interval", "MultinomialLoss"]

_SM = _core.SoftmaxOp
_H = _core.HessianOp


class _Loss:
    differentiable = True
    is_multiclass = False

    def __init__(self, n_classes):
        self.n_classes = n_classes
        self.approx_hessian = False
        self.constant_hessian = False
        self.interval_y_true = Interval(-np.inf, np.inf, False, False)
        self.interval_y_pred = Interval(0, 1, False, False)

    # per loss: validated (raw_prediction, y_true, sample_weight, n_threads); the kernels
    def _args(self, y_true, raw_prediction, sample_weight, n_threads):
        raise NotImplementedError

    def _loss_grad(self, a, t, sw, loss, grad, nt):
        raise NotImplementedError

    def _total(self, a, t, sw, nt) -> float:
        raise NotImplementedError

    def in_y_true_range(self, y) -> bool:
        """True if every value of ``y`` is a valid ``y_true``."""
        return self.interval_y_true.includes(y)

    def in_y_pred_range(self, y) -> bool:
        """True if every value of ``y`` is a valid predicted probability, in (0, 1)."""
        return self.interval_y_pred.includes(y)

    def constant_to_optimal_zero(self, y_true, sample_weight=None):
        """The term that, added to the loss, makes the loss of perfect predictions zero."""
        return np.zeros_like(y_true)

    def init_gradient_and_hessian(self, n_samples, dtype=np.float64, order="F"):
        """Uninitialised gradient and Hessian arrays of ``(n_samples,)`` or
        ``(n_samples, n_classes)``, as scikit-learn's."""
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"Valid options for 'dtype' are np.float32 and np.float64. Got dtype={dtype} instead.")
        if self.is_multiclass:
            if self.n_classes is None:
                raise ValueError("init_gradient_and_hessian needs n_classes: construct the loss with it")
            shape: tuple = (n_samples, self.n_classes)
        else:
            shape = (n_samples,)
        return np.empty(shape, dtype=dtype, order=order), np.empty(shape, dtype=dtype, order=order)

    def loss_gradient(self, y_true, raw_prediction, sample_weight=None, loss_out=None, gradient_out=None, n_threads=1):
        """Per-sample loss and gradient with respect to ``raw_prediction``; returns
        ``(loss, gradient)``."""
        a, t, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        pairs = ((loss_out, a.shape[:1], "loss_out"), (gradient_out, a.shape, "gradient_out"))
        lo, go = A.outputs(a, pairs, (A.y_dtype(y_true, a), a.dtype), (a, t, sw), a)
        self._loss_grad(a, t, sw, lo.buf, go.buf, nt)
        return lo.done(), go.done()

    def loss(self, y_true, raw_prediction, sample_weight=None, loss_out=None, n_threads=1):
        """Per-sample loss, ``(n_samples,)``, times the sample weight."""
        a, t, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        out = A.new_like(a, a.shape[:1], A.y_dtype(y_true, a)) if loss_out is None else A.check_out(
            loss_out, a.shape[:1], "loss_out", (a, t, sw), a
        )
        lo = A.Target(out, a.dtype)
        self._loss_grad(a, t, sw, lo.buf, None, nt)
        return lo.done()

    def gradient(self, y_true, raw_prediction, sample_weight=None, gradient_out=None, n_threads=1):
        """Per-sample gradient with respect to ``raw_prediction``, times the sample weight."""
        a, t, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        out = np.empty_like(a) if gradient_out is None else A.check_out(
            gradient_out, a.shape, "gradient_out", (a, t, sw), a
        )
        go = A.Target(out, a.dtype)
        self._loss_grad(a, t, sw, None, go.buf, nt)
        return go.done()

    def gradient_hessian(
        self, y_true, raw_prediction, sample_weight=None, gradient_out=None, hessian_out=None, n_threads=1
    ):
        """Per-sample gradient and Hessian (its diagonal for the multinomial loss) with
        respect to ``raw_prediction``, times the sample weight, in one pass of the kernels;
        returns ``(gradient, hessian)``."""
        a, t, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        pairs = ((gradient_out, a.shape, "gradient_out"), (hessian_out, a.shape, "hessian_out"))
        go, ho = A.outputs(a, pairs, (a.dtype, a.dtype), (a, t, sw), a)
        op = _H.softmax_diag if self.is_multiclass else _H.sigmoid
        _core.hessian_op(op, a, None if self.is_multiclass else t, None, t if self.is_multiclass else None, sw,
                         ho.buf, go.buf, nt)
        return go.done(), ho.done()

    def __call__(self, y_true, raw_prediction, sample_weight=None, n_threads=1):
        """Weighted mean loss ``sum(sw * l) / sum(sw)`` (plain mean without weights), summed in
        float64; a NumPy scalar of the loss dtype (0.0 when there is no weight at all)."""
        a, t, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        den = a.shape[0] if sw is None else weight_sum(sw)
        if sw is not None:  # huge weights: only their ratios matter (docs/losses.md)
            (sw,), shrunk = shrink_huge_weights([sw], den, a.dtype)
            den = weight_sum(sw) if shrunk else den
        total = self._total(a, t, sw, nt)
        return A.y_dtype(y_true, a).type(total / den if den else 0.0)


class MultinomialLoss(_Loss):
    """Categorical cross-entropy with the softmax link, for ``n_classes`` classes (scikit-learn's
    ``HalfMultinomialLoss``): ``loss_i = logsumexp(z_i) - z_i[y_i]``, gradient
    ``p_i - onehot(y_i)`` and Hessian diagonal ``p_i (1 - p_i)``, ``p_i = softmax(z_i)``, each
    times ``sample_weight[i]``. ``y_true`` holds class indices (floats or integers). The exact
    Hessian-vector product is ``xent.softmax_hvp``.

    n_classes: if given, ``raw_prediction`` must have that many columns; ``fit_intercept_only``
    and ``init_gradient_and_hessian`` need it. ``sample_weight`` is accepted and ignored, as
    by scikit-learn.
    """

    is_multiclass = True

    def __init__(self, sample_weight=None, n_classes=None):
        if n_classes is not None and (not isinstance(n_classes, (int, np.integer)) or n_classes < 1):
            raise ValueError(f"n_classes must be a positive integer or None, got {n_classes!r}")
        super().__init__(None if n_classes is None else int(n_classes))
        self.interval_y_true = Interval(0, np.inf, True, False)

    def in_y_true_range(self, y) -> bool:
        """True if every value of ``y`` is a non-negative integer."""
        y = np.asarray(y)
        return self.interval_y_true.includes(y) and bool(np.all(y.astype(int) == y))

    def _args(self, y_true, raw_prediction, sample_weight, n_threads):
        a = A.raw_multi(raw_prediction, self.n_classes)
        y = A.labels(y_true, a.shape[0], a.shape[1])
        return a, y, A.weights(sample_weight, a.shape[0], a.dtype), A.threads(n_threads)

    def _loss_grad(self, a, y, sw, loss, grad, nt):
        _core.softmax_op(_SM.xent_label, a, None, y, grad, loss, 1.0, nt, None, sw)

    def _total(self, a, y, sw, nt):
        return _core.softmax_op(_SM.xent_label, a, None, y, None, None, 1.0, nt, None, sw)

    def gradient_proba(
        self, y_true, raw_prediction, sample_weight=None, gradient_out=None, proba_out=None, n_threads=1
    ):
        """Gradient ``sw * (p - onehot(y))`` and probabilities ``p = softmax(raw_prediction)``,
        returns ``(gradient, proba)`` (scikit-learn uses them for Hessian-vector products)."""
        a, y, sw, nt = self._args(y_true, raw_prediction, sample_weight, n_threads)
        pairs = ((gradient_out, a.shape, "gradient_out"), (proba_out, a.shape, "proba_out"))
        # not over raw_prediction: the probabilities are computed from it after the gradient
        go, po = A.outputs(a, pairs, (a.dtype, a.dtype), (a, y, sw))
        self._loss_grad(a, y, sw, None, go.buf, nt)
        _core.softmax_op(_SM.softmax, a, None, None, po.buf, None, 1.0, nt)
        return go.done(), po.done()

    def predict_proba(self, raw_prediction):
        """Class probabilities ``softmax(raw_prediction, axis=1)``, ``(n_samples, n_classes)``."""
        return softmax(A.raw_multi(raw_prediction, self.n_classes), axis=1)

    def fit_intercept_only(self, y_true, sample_weight=None):
        """Raw prediction of an intercept-only model, ``(n_classes,)``: the symmetric
        multinomial logit ``log(f) - mean(log(f))`` of the weighted class frequencies ``f``,
        each clipped to ``[eps, 1 - eps]`` (``eps`` of y_true's float dtype)."""
        if self.n_classes is None:
            raise ValueError("fit_intercept_only needs n_classes: construct the loss with it")
        y = np.asarray(y_true)
        dt = y.dtype if y.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        eps = np.finfo(dt).eps
        f = np.array([np.average(y == k, weights=sample_weight) for k in range(self.n_classes)], dtype=dt)
        logf = np.log(np.clip(f, eps, 1 - eps))
        return logf - np.mean(logf)


class BinomialLoss(_Loss):
    """Binary cross-entropy (log-loss) with the logit link (scikit-learn's ``HalfBinomialLoss``;
    the "half" is of the deviance, so this is the full log-loss):
    ``loss_i = log1p(exp(z_i)) - y_i z_i``, gradient ``sigmoid(z_i) - y_i``, Hessian
    ``p_i (1 - p_i)``, each times ``sample_weight[i]``; ``y_true`` in [0, 1]. The loss is
    xent's ``sigmoid_cross_entropy`` (computed without cancellation), the gradient and
    Hessian ``xent.sigmoid_hessian``'s kernel. ``sample_weight`` is accepted and ignored.
    """

    def __init__(self, sample_weight=None):
        super().__init__(2)
        self.interval_y_true = Interval(0, 1, True, True)

    def _args(self, y_true, raw_prediction, sample_weight, n_threads):
        a = A.raw_binary(raw_prediction)
        t = A.targets(y_true, a.shape[0], a.dtype)
        return a, t, A.weights(sample_weight, a.shape[0], a.dtype), A.threads(n_threads)

    def _loss_grad(self, a, t, sw, loss, grad, nt):
        if loss is None:
            _core.hessian_op(_H.sigmoid, a, t, None, None, sw, None, grad, nt)
            return
        _core.sigmoid_op(a, t, grad, loss, True, 1.0, nt)
        if sw is not None:  # O(n): the per-sample results are (n,)
            np.multiply(loss, sw, out=loss)
            if grad is not None:
                np.multiply(grad, sw, out=grad)

    def _total(self, a, t, sw, nt):
        if sw is None:
            return _core.sigmoid_op(a, t, None, None, True, 1.0, nt)
        loss = np.empty_like(a)
        _core.sigmoid_op(a, t, None, loss, True, 1.0, nt)
        return math.fsum((loss.astype(np.float64) * sw)[sw != 0])

    def constant_to_optimal_zero(self, y_true, sample_weight=None):
        """``y log y + (1 - y) log(1 - y)`` (0 for y in {0, 1}), times the sample weight."""
        y = np.asarray(y_true)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(y), 0) + np.where(y < 1, (1 - y) * np.log1p(-y), 0)
        term = term.astype(y.dtype if y.dtype.kind == "f" else np.float64)
        if sample_weight is not None:
            term *= sample_weight
        return term

    def predict_proba(self, raw_prediction):
        """``(n_samples, 2)`` probabilities ``[1 - p, p]``, ``p = sigmoid(raw_prediction)``;
        the first column is computed as ``sigmoid(-z)``, so it keeps its digits where p ~ 1
        (scikit-learn's ``1 - p`` rounds to 0 there)."""
        a = A.raw_binary(raw_prediction)
        proba = np.empty((a.shape[0], 2), dtype=a.dtype)
        zeros = np.zeros_like(a)
        _core.sigmoid_op(a, zeros, proba[:, 1], None, True, 1.0, 1)
        _core.sigmoid_op(-a, zeros, proba[:, 0], None, True, 1.0, 1)
        return proba

    def fit_intercept_only(self, y_true, sample_weight=None):
        """``logit`` of the weighted mean of y_true, clipped to ``[10 eps, 1 - 10 eps]``."""
        y_pred = np.average(y_true, weights=sample_weight, axis=0)
        eps = 10 * np.finfo(y_pred.dtype).eps
        p = np.clip(y_pred, eps, 1 - eps)
        return np.log(p) - np.log1p(-p)
