"""xent.torch.BCEWithLogitsLoss: torch.nn.BCEWithLogitsLoss computed by xent's fused kernel."""
from __future__ import annotations

import math

import numpy as np
import torch

from .._sigmoid import sigmoid_cross_entropy
from ._common import as_loss, check_tensor, float_view, fused_loss, threads

_NAME = "BCEWithLogitsLoss"


def _per_last_dim(t: torch.Tensor, shape: torch.Size, name: str) -> bool:
    """True if ``t`` broadcast to ``shape`` varies along the last dim only (one value per class,
    or one value); ValueError if it does not broadcast to ``shape`` at all."""
    try:
        full = torch.broadcast_shapes(t.shape, shape)
    except RuntimeError:
        full = None
    if full != shape:
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to input's shape {tuple(shape)}")
    return all(s == 1 for s in t.shape[:-1])


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """``torch.nn.BCEWithLogitsLoss`` with the loss and its gradient computed in one fused pass
    by xent's SIMD kernel (a subclass: same constructor, attributes, ``weight`` and
    ``pos_weight`` buffers, ``state_dict`` and repr).

    ``forward(input, target)``, both of one shape: elementwise
    ``l = w * [(1 - t) x - (1 + (q - 1) t) log sigmoid(x)]`` (``q = pos_weight``, 1 if None;
    ``w = weight``, 1 if None), computed without cancellation; ``"mean"`` divides by the element
    count, ``"sum"`` adds, ``"none"`` keeps the shape. ``weight`` broadcasts against the input
    as in PyTorch (any broadcastable shape; a weight that varies along the last dim only is
    applied inside the kernel, any other shape is applied to the elementwise loss and gradient
    afterwards); ``pos_weight`` is one value per class along the last dim (shape ``(C,)``,
    ``(1,)``, or with leading 1s; another shape is a ValueError). The legacy
    ``size_average``/``reduce`` arguments are mapped by PyTorch's own helper.

    xent-only keyword: ``n_threads`` (None: ``torch.get_num_threads()``).

    Where it differs from PyTorch: CPU tensors only (ValueError otherwise); float16/bfloat16
    inputs are computed in float32 (a converted copy); targets may be any real dtype (bool and
    integers are converted); an element of weight 0 contributes exactly 0 even where its loss is
    infinite or NaN (PyTorch: NaN); an empty input's ``"mean"`` is 0.0 (PyTorch: NaN). No
    gradient with respect to ``target``, ``weight`` or ``pos_weight`` (ValueError in forward if
    one requires grad); double backward raises.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None, *,
                 n_threads=None):
        super().__init__(weight, size_average, reduce, reduction, pos_weight)
        self.n_threads = n_threads

    def extra_repr(self) -> str:
        return "" if self.n_threads is None else f"n_threads={self.n_threads}"

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = float_view(input, "input", _NAME)
        check_tensor(target, "target", _NAME)
        if target.shape != input.shape:
            raise ValueError(
                f"target has shape {tuple(target.shape)}; it must have input's shape {tuple(input.shape)}"
            )
        t = float_view(target, "target", _NAME) if target.is_floating_point() else target.detach().numpy()
        n_classes = x.shape[-1] if x.ndim else 1
        w, pw = self.weight, self.pos_weight
        cw = ew = pwn = None
        if pw is not None:
            if not _per_last_dim(check_tensor(pw, "pos_weight", _NAME), input.shape, "pos_weight"):
                raise ValueError(
                    f"pos_weight of shape {tuple(pw.shape)} must hold one value per class along the last dim "
                    f"({n_classes},) (leading dims of size 1 allowed)"
                )
            pwn = float_view(pw, "pos_weight", _NAME).reshape(-1)
        if w is not None:
            wn = float_view(check_tensor(w, "weight", _NAME), "weight", _NAME)
            if _per_last_dim(w, input.shape, "weight"):
                cw = wn.reshape(-1)
            else:
                ew = wn
        dtype, reduction = input.dtype, self.reduction

        def compute(need_grad):
            kw = dict(pos_weight=pwn, n_threads=threads(self.n_threads), return_grad=need_grad)
            if ew is None:
                res = sigmoid_cross_entropy(x, t, weight=cw, reduction=reduction, **kw)
                loss, grad = res if need_grad else (res, None)
            else:
                loss, grad = _general_weight(x, t, ew, reduction, need_grad, kw)
            return as_loss(loss, dtype), None if grad is None else torch.from_numpy(grad), None

        consts = {n: c for n, c in (("target", target), ("weight", w), ("pos_weight", pw)) if c is not None}
        return fused_loss(compute, input, consts)


def _general_weight(x, t, ew, reduction, need_grad, kw):
    """A weight that varies along other dims than the last: the unweighted elementwise loss and
    gradient from the kernel, then multiplied by the broadcast weight in place."""
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
    res = sigmoid_cross_entropy(x, t, reduction="none", **kw)
    loss, grad = res if need_grad else (res, None)
    # weight 0 gives exactly 0, as the kernel's class weights do
    np.multiply(loss, ew, out=loss, where=np.broadcast_to(ew != 0, loss.shape))
    loss[np.broadcast_to(ew == 0, loss.shape)] = 0
    if grad is not None:
        scale = ew if reduction != "mean" else ew / max(math.prod(x.shape), 1)
        np.multiply(grad, scale, out=grad)
        grad[np.broadcast_to(scale == 0, grad.shape)] = 0
    if reduction == "none":
        return loss, grad
    total = float(loss.sum(dtype=np.float64))
    return (total if reduction == "sum" else (total / loss.size if loss.size else 0.0)), grad
