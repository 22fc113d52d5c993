"""Hessians of the cross-entropy losses with respect to the logits, for Newton-type solvers
(IRLS, Newton-CG, trust-region, L-BFGS preconditioners, gradient-boosted trees).

All three are computed in the C++ kernels (cpp/src/kernels/hessian-inl.hpp), in one pass
over the logits, never forming a C x C matrix.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._loss_common import int_labels as _int_labels
from ._loss_common import last as _last
from ._loss_common import prepare as _prepare
from ._validate import as_float_array, as_targets, check_out, n_threads_arg
from ._weights import weight_array

_OP = _core.HessianOp


def _outputs(a, out, grad_out, return_grad, inputs):
    """The Hessian and gradient buffers: the caller's (checked) or new ones."""
    if grad_out is not None and not return_grad:
        raise ValueError("grad_out is given but return_grad is False")
    if out is None:
        out = np.empty_like(a)
    else:
        check_out(out, a.shape, a.dtype, "out", inputs)
    grad = None
    if return_grad:
        if grad_out is None:
            grad = np.empty_like(a)
        else:
            grad = check_out(grad_out, a.shape, a.dtype, "grad_out", inputs)
            if np.may_share_memory(grad, out):
                raise ValueError("grad_out and out must not overlap")
    return out, grad


def _need(x, name, what):
    if x is None:
        raise ValueError(f"return_grad=True needs {name} (the gradient is {what})")


def sigmoid_hessian(
    logits, targets=None, *, sample_weight=None, return_grad=False, out=None, grad_out=None, n_threads=None
):
    """Binomial Hessian ``h = p * (1 - p)``, ``p = sigmoid(logits)``, elementwise: the second
    derivative of the sigmoid cross-entropy ``max(z, 0) - z*t + log1p(exp(-|z|))`` (and of
    scikit-learn's ``HalfBinomialLoss``) with respect to each logit.

    Computed as ``e / (1 + e)**2`` with ``e = exp(-|z|)``: accurate to a few ulp for every
    finite logit (``1e-30`` and ``-700`` included), exactly 0 at ``z = +-inf``, never NaN for
    non-NaN input.

    sample_weight: multiplies the Hessian (and the gradient) elementwise; any shape that
    broadcasts to ``logits``' shape (e.g. one weight per row of a ``(n, k)`` multi-label
    array: pass it as ``(n, 1)``); finite and >= 0.

    With ``return_grad=True`` (``targets`` required, ``logits``' shape; not read otherwise) returns
    ``(hessian, gradient)``, the gradient ``sw * (sigmoid(z) - t)`` of the elementwise loss,
    computed in the same pass. ``out`` and ``grad_out`` are optional preallocated results of
    ``logits``' shape and dtype (float32 for float16 input); either may be ``logits`` itself.
    """
    z = as_float_array(logits, "logits")
    nt = n_threads_arg(n_threads)
    t = None if targets is None else as_targets(targets, z, "targets")
    if return_grad:
        _need(t, "targets", "sigmoid(z) - targets")
    sw = None
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        try:
            fits = np.broadcast_shapes(w.shape, z.shape) == z.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"sample_weight has shape {w.shape}, which does not broadcast to logits' shape {z.shape}")
        sw = np.broadcast_to(weight_array(w, w.shape, z.dtype, "sample_weight", "broadcast to logits"), z.shape)
    hess, grad = _outputs(z, out, grad_out, return_grad, (z, t, sw))
    _core.hessian_op(_OP.sigmoid, z, t if return_grad else None, None, None, sw, hess, grad, nt)
    return (hess, grad) if return_grad else hess


def _row_weights(sample_weight, a, ax):
    if sample_weight is None:
        return None
    row_shape = a.shape[:ax] + a.shape[ax + 1 :]
    return weight_array(sample_weight, row_shape, a.dtype, "sample_weight", "one per row")


def softmax_hessian_diag(
    logits, labels=None, *, axis=-1, sample_weight=None, return_grad=False, out=None, grad_out=None, n_threads=None
):
    """Diagonal of the multinomial Hessian, ``h_c = p_c * (1 - p_c)`` with ``p = softmax(z)``
    along ``axis``, per row: the diagonal of ``diag(p) - p p^T``, the Hessian of the softmax
    cross-entropy ``logsumexp(z) - z[y]`` for one row (what scikit-learn's
    ``HalfMultinomialLoss.gradient_hessian`` returns as its "hessian"). For target
    distributions of total mass ``T`` the Hessian is ``T`` times this.

    ``1 - p_c`` is taken as the sum of the other classes' probabilities for a row's
    confident class, so ``h`` keeps its digits when ``p_c`` is near 1 (``p * (1 - p)``
    computed plainly loses them all, as scikit-learn's does). ``-inf`` logits are masks
    (``h = 0`` there); a fully masked row gives zeros; no NaN for finite input.

    sample_weight: one weight per row (``logits``' shape without ``axis``), finite and >= 0,
    multiplying the row's Hessian (and gradient); a row of weight 0 gives exact zeros.

    With ``return_grad=True`` (integer ``labels`` required, ``logits``' shape without
    ``axis``; they are not read otherwise, the Hessian does not depend on them) returns
    ``(hessian, gradient)``, the gradient ``sw * (softmax(z) - onehot(y))``
    computed in the same pass. ``out`` / ``grad_out``: optional preallocated results of
    ``logits``' shape and dtype; either may be ``logits`` itself.
    """
    a, ax = _prepare(logits, axis, "logits")
    nt = n_threads_arg(n_threads)
    row_shape = a.shape[:ax] + a.shape[ax + 1 :]
    y = None
    if return_grad:
        _need(labels, "integer labels", "softmax(z) - onehot(labels)")
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iu":
            raise TypeError(f"labels must be integer class indices, got dtype {lab.dtype}")
        y = _int_labels(lab, a.shape[ax], row_shape)
    sw = _row_weights(sample_weight, a, ax)
    hess, grad = _outputs(a, out, grad_out, return_grad, (a, y, sw))
    g = None if grad is None else _last(grad, ax)
    _core.hessian_op(_OP.softmax_diag, _last(a, ax), None, None, y, sw, _last(hess, ax), g, nt)
    return (hess, grad) if return_grad else hess


def softmax_hvp(logits, v, *, axis=-1, sample_weight=None, out=None, n_threads=None):
    """Exact multinomial Hessian-vector product per row: ``H v = p * v - p * (p . v)``,
    ``p = softmax(z)`` along ``axis``, ``H = diag(p) - p p^T`` the Hessian of the softmax
    cross-entropy of one row; ``v`` has ``logits``' shape (one vector per row), and so has
    the result. The C x C Hessian is never formed: one pass for ``p``, one for ``p . v``.

    ``v - p . v`` is computed relative to ``v`` at the row's max logit (``p . v`` there is
    ``v_r + sum_k p_k (v_k - v_r)``), so confident rows (``p`` near one-hot) keep their
    digits. ``-inf`` logits are masks (0 there); a fully masked row gives zeros.

    sample_weight: one weight per row (``logits``' shape without ``axis``), finite and >= 0,
    multiplying the row's product. ``out``: an optional preallocated result of ``logits``'
    shape and dtype; it may be ``logits`` or ``v`` itself.

    scikit-learn computes the same product inside ``LogisticRegression``'s ``hessp`` from
    ``gradient_proba`` in NumPy; PyTorch, Keras and optax get it by double backprop.
    """
    a, ax = _prepare(logits, axis, "logits")
    nt = n_threads_arg(n_threads)
    vv = as_targets(v, a, "v")
    sw = _row_weights(sample_weight, a, ax)
    res, _ = _outputs(a, out, None, False, (a, vv, sw))
    _core.hessian_op(_OP.softmax_hvp, _last(a, ax), None, _last(vv, ax), None, sw, _last(res, ax), None, nt)
    return res
