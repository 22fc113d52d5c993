"""xent.torch.LinearCrossEntropyLoss: a linear layer + softmax cross-entropy without the logits."""
from __future__ import annotations

import torch

from .._linear import linear_cross_entropy
from .._weights import ignore_arg, smoothing_arg, softcap_arg, z_loss_arg
from ._common import as_loss, check_tensor, float_view, threads

_NAME = "CrossEntropyLoss on torch.nn.functional.linear"


class LinearCrossEntropyLoss(torch.nn.Module):
    """``cross_entropy(hidden @ weight.T + bias, target)`` without ever holding the
    ``N x V`` logits (``xent.linear_cross_entropy``): the value of
    ``torch.nn.CrossEntropyLoss(ignore_index=..., label_smoothing=..., reduction=...)`` applied
    to ``torch.nn.functional.linear(hidden, weight, bias)``, with the gradients of ``hidden``,
    ``weight`` and ``bias``.

    ``forward(hidden, weight, target, bias=None)``: ``hidden`` ``(..., H)`` (e.g. ``(B, T, H)``),
    ``weight`` ``(V, H)`` (an ``nn.Linear``'s or a tied embedding's ``.weight``), ``target``
    class indices of ``hidden``'s shape without the last dim, ``bias`` ``(V,)`` or None.
    ``"none"`` returns ``target``'s shape; ``"mean"`` divides by the number of targets that are
    not ``ignore_index`` (0.0 when there are none, where PyTorch gives NaN). xent-only options:
    ``z_loss`` (``+ z_loss * logsumexp(z)**2`` per row), ``softcap`` (``c * tanh(z / c)``
    first), ``chunk_size`` (rows per tile, or ``(rows, vocab_block)``: see
    ``xent.linear_cross_entropy``), ``n_threads`` (None: ``torch.get_num_threads()``).
    ``label_smoothing`` spreads over the classes whose logit is not ``-inf``.

    Gradients: with ``"mean"``/``"sum"`` forward computes the loss and all three gradients in
    one pass and backward scales them by the upstream scalar (no work when it is 1). With
    ``"none"`` the per-row upstream gradient is only known in backward, which therefore runs
    the fused computation again with it (one more product of ``hidden`` and ``weight``).
    CPU tensors only; float32/float64 are read in place when C-contiguous (otherwise one
    contiguous copy); float16/bfloat16 are computed in float32 (converted copies, of the
    weight too). ``hidden``, ``weight`` and ``bias`` must share one dtype (TypeError). No class
    weights; double backward raises.
    """

    def __init__(self, ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="mean",
                 chunk_size=None, n_threads=None):
        super().__init__()
        self.ignore_index = ignore_arg(ignore_index)
        self.label_smoothing = smoothing_arg(label_smoothing)
        self.z_loss = z_loss_arg(z_loss)
        softcap_arg(softcap)
        self.softcap = softcap
        self.reduction = reduction
        self.chunk_size = chunk_size
        self.n_threads = n_threads

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, z_loss={self.z_loss}, "
                f"softcap={self.softcap}, reduction={self.reduction!r}")

    def forward(self, hidden, weight, target, bias=None):
        check_tensor(hidden, "hidden", _NAME)
        check_tensor(target, "target", _NAME)
        if hidden.ndim < 1 or target.shape != hidden.shape[:-1]:
            raise ValueError(f"target has shape {tuple(target.shape)}; it must have hidden's shape without the "
                             f"last dim, {tuple(hidden.shape[:-1])} (hidden has shape {tuple(hidden.shape)})")
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"target has dtype {target.dtype}; expected class indices (int64)")
        h2 = hidden.reshape(-1, hidden.shape[-1])  # a view when it can be; autograd reshapes the gradient back
        opts = dict(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing, z_loss=self.z_loss,
                    softcap=self.softcap, reduction=self.reduction, chunk_size=self.chunk_size,
                    n_threads=threads(self.n_threads))
        loss = _FusedLinear.apply(opts, target.reshape(-1).detach().numpy(), h2, weight, bias)
        return loss.reshape(target.shape) if self.reduction == "none" else loss


def _arrays(h, w, b):
    return (float_view(h, "hidden", _NAME), float_view(w, "weight", _NAME),
            None if b is None else float_view(b, "bias", _NAME))


class _FusedLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, opts, y, h, w, b):
        ctx.opts, ctx.y = opts, y
        ctx.dtypes = (h.dtype, w.dtype, None if b is None else b.dtype)
        need = any(ctx.needs_input_grad[2:])
        fused = need and opts["reduction"] != "none"
        hn, wn, bn = _arrays(h, w, b)
        res = linear_cross_entropy(hn, wn, y, bias=bn, return_grad=fused, **opts)
        loss, grads = res if fused else (res, None)
        if grads is not None:
            ctx.save_for_backward(*(None if a is None else torch.from_numpy(a) for a in grads))
        elif need:
            ctx.save_for_backward(h, w, b)  # reduction="none": recomputed in backward with the upstream rows
        return as_loss(loss, h.dtype)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError("xent.torch losses do not support double backward (create_graph=True)")
        saved = ctx.saved_tensors
        if ctx.opts["reduction"] == "none":
            hn, wn, bn = _arrays(*saved)
            _, grads = linear_cross_entropy(hn, wn, ctx.y, bias=bn, return_grad=True,
                                            grad_scale=g.detach().to(torch.float64).numpy(), **ctx.opts)
            out = [None if a is None else torch.from_numpy(a) for a in grads]
        else:
            scale = g.item()
            out = [t if (t is None or scale == 1.0) else t * scale for t in saved]
        res = []
        for t, dtype, need in zip(out, ctx.dtypes, ctx.needs_input_grad[2:]):
            res.append(None if (t is None or not need) else (t if t.dtype == dtype else t.to(dtype)))
        return (None, None, *res)
