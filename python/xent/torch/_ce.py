"""xent.torch.CrossEntropyLoss: torch.nn.CrossEntropyLoss computed by xent's fused kernel."""
from __future__ import annotations

import torch

from .._softmax import softmax_cross_entropy
from .._weights import smoothing_arg, softcap_arg, z_loss_arg
from ._common import as_loss, check_tensor, float_view, fused_loss, threads

_NAME = "CrossEntropyLoss"


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` with the loss and its gradient computed in one fused pass
    by xent's SIMD kernel (a subclass: same constructor, attributes, ``weight`` buffer,
    ``state_dict`` and repr; ``isinstance(m, torch.nn.CrossEntropyLoss)`` holds).

    ``forward(input, target)``: ``input`` of shape ``(C,)``, ``(N, C)`` or
    ``(N, C, d1, ..., dk)`` (class dim 1); ``target`` either class indices of ``input``'s shape
    without the class dim, giving ``l = logsumexp(x) - x[y]``, or class probabilities of
    ``input``'s shape, giving ``l = -sum_c t_c log softmax(x)_c``. With ``weight`` ``w``,
    ``ignore_index``, ``label_smoothing`` ``eps`` (target ``(1 - eps) t + eps / C``) and the
    reductions exactly as PyTorch: ``"mean"`` over class indices is ``sum(w[y] l) / sum(w[y])``
    over the non-ignored elements; over probabilities it divides by the element count.
    The legacy ``size_average``/``reduce`` arguments are mapped by PyTorch's own helper (with
    its deprecation warning), as the parent class does.

    xent-only keywords: ``z_loss`` (adds ``z_loss * logsumexp(x)**2`` per element, before the
    class weight), ``softcap`` ``c`` (logits become ``c * tanh(x / c)`` first, the gradient goes
    through it), ``n_threads`` (None: ``torch.get_num_threads()``).

    Where it differs from PyTorch:

    - an all-ignored (or empty) batch with ``"mean"`` gives 0.0 and a zero gradient, not NaN;
    - ``label_smoothing`` spreads ``eps`` over the classes whose logit is not ``-inf`` (PyTorch
      spreads it over all ``C`` and gives inf/NaN on masked logits);
    - class indices may be any integer dtype (PyTorch wants int64); a label outside
      ``[0, C)`` that is not ``ignore_index`` is a ValueError naming its position;
    - CPU tensors only (ValueError otherwise); float32/float64 inputs are read in place, float16
      and bfloat16 are computed in float32 (a converted copy) and the loss and gradient returned
      in the input's dtype;
    - no gradient with respect to ``target`` or ``weight``: if one requires grad (with grad
      mode on) forward raises ValueError; double backward raises (it would need the Hessian).
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0, *, z_loss=0.0, softcap=None, n_threads=None):
        super().__init__(weight, size_average, ignore_index, reduce, reduction, smoothing_arg(label_smoothing))
        self.z_loss = z_loss_arg(z_loss)
        softcap_arg(softcap)
        self.softcap = softcap
        self.n_threads = n_threads

    def extra_repr(self) -> str:
        extras = [("z_loss", self.z_loss, 0.0), ("softcap", self.softcap, None), ("n_threads", self.n_threads, None)]
        return ", ".join(f"{k}={v}" for k, v, default in extras if v != default)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = float_view(input, "input", _NAME)
        if x.ndim == 0:
            raise ValueError("input must have at least one dimension (C,), (N, C) or (N, C, d1, ...); got a 0-d tensor")
        cd = 1 if x.ndim >= 2 else 0
        check_tensor(target, "target", _NAME)
        if target.is_floating_point():
            if target.shape != input.shape:
                raise ValueError(
                    f"target of class probabilities has shape {tuple(target.shape)}; it must have input's shape "
                    f"{tuple(input.shape)}"
                )
            if self.ignore_index >= 0:  # PyTorch: ignore_index applies to class indices only
                raise ValueError(f"ignore_index={self.ignore_index} is not supported for class-probability targets")
            y = float_view(target, "target", _NAME)
            ignore = None
        else:
            if target.dtype == torch.bool:
                raise TypeError("target has dtype torch.bool; expected class indices (int64) or probabilities (float)")
            row_shape = input.shape[:cd] + input.shape[cd + 1 :]
            if target.shape != row_shape:
                raise ValueError(
                    f"target of class indices has shape {tuple(target.shape)}; it must have input's shape "
                    f"without the class dim {cd}, {tuple(row_shape)}"
                )
            y = target.detach().numpy()
            ignore = self.ignore_index
        w = self.weight
        wn = None if w is None else float_view(w, "weight", _NAME)
        if wn is not None and wn.shape != (x.shape[cd],):
            raise ValueError(f"weight has shape {wn.shape}; it must hold one value per class, ({x.shape[cd]},)")
        dtype = input.dtype

        def compute(need_grad):
            res = softmax_cross_entropy(
                x, y, axis=cd, weight=wn, ignore_index=ignore, label_smoothing=self.label_smoothing,
                z_loss=self.z_loss, softcap=self.softcap, reduction=self.reduction, return_grad=need_grad,
                n_threads=threads(self.n_threads),
            )
            loss, grad = res if need_grad else (res, None)
            return as_loss(loss, dtype), None if grad is None else torch.from_numpy(grad), cd

        return fused_loss(compute, input, {"target": target} if w is None else {"target": target, "weight": w})
