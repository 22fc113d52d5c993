"""What the xent.torch modules share: tensors as NumPy views (zero-copy), the checks of
device, layout and dtype, and one autograd Function that runs a fused loss-and-gradient call
in forward and scales the saved gradient in backward."""
from __future__ import annotations

import numpy as np
import torch

# float16 and bfloat16 are computed in float32 (a converted copy); float32/float64 are read in place
_HALF = (torch.float16, torch.bfloat16)
_NATIVE = (torch.float32, torch.float64)


def check_tensor(t, name: str, module: str) -> torch.Tensor:
    """``t`` must be a dense CPU tensor (TypeError / ValueError naming ``name`` otherwise)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(
            f"{name} is on device {t.device}: xent.torch computes on the CPU only "
            f"(use torch.nn.{module} for {t.device.type} tensors)"
        )
    if t.layout != torch.strided:
        raise TypeError(f"{name} has layout {t.layout}; xent.torch needs dense (strided) tensors")
    if t.is_complex():
        raise TypeError(f"{name} has dtype {t.dtype}; xent.torch needs real tensors")
    return t


def float_view(t: torch.Tensor, name: str, module: str) -> np.ndarray:
    """A float input as a NumPy array: a view for float32/float64 (any strides), a float32
    copy for float16/bfloat16; other dtypes are a TypeError."""
    check_tensor(t, name, module)
    if t.dtype in _NATIVE:
        return numpy_view(t)
    if t.dtype in _HALF:
        return t.detach().to(torch.float32).numpy()
    raise TypeError(f"{name} has dtype {t.dtype}; expected float32 or float64 (float16/bfloat16 compute in float32)")


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """The tensor's memory as a NumPy array, without a copy (the negative bit, set only by
    some complex views, is resolved first; a no-op otherwise)."""
    return t.detach().resolve_neg().numpy()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF else dtype


def raise_no_grad(name: str) -> None:
    raise ValueError(
        f"{name} requires grad, but xent.torch differentiates with respect to the input only; "
        f"pass {name}.detach() (PyTorch's loss would also differentiate {name})"
    )


def threads(n_threads) -> int:
    """None: PyTorch's intra-op thread count (torch.set_num_threads applies)."""
    return torch.get_num_threads() if n_threads is None else n_threads


def as_loss(value, dtype: torch.dtype) -> torch.Tensor:
    """xent's result (a Python float, or a NumPy array for reduction="none") as a tensor of
    the input's dtype, without a copy for a float32/float64 array."""
    t = torch.from_numpy(value) if isinstance(value, np.ndarray) else torch.tensor(value, dtype=compute_dtype(dtype))
    return t if t.dtype == dtype else t.to(dtype)


def fused_loss(compute, x: torch.Tensor, constants: dict) -> torch.Tensor:
    """Runs ``compute`` through FusedLoss; ``constants`` (name -> tensor) are the other
    tensor arguments, which must not require grad while grad mode is on."""
    grad_on = torch.is_grad_enabled()
    for name, c in constants.items():
        if grad_on and c.requires_grad:
            raise_no_grad(name)
    return FusedLoss.apply(compute, grad_on and x.requires_grad, x, *constants.values())


class FusedLoss(torch.autograd.Function):
    """``apply(compute, need_grad, input, *constants)``: ``compute(need_grad)`` returns
    ``(loss, grad, class_dim)`` with ``grad`` the gradient of ``loss`` with respect to ``input``
    (of each element of ``loss`` for reduction="none", whose class axis ``class_dim`` is
    broadcast in backward; None when the loss is elementwise). Backward returns the saved
    gradient itself when the upstream gradient is the scalar 1 (``loss.backward()``: no copy,
    no pass over it), else one product with the upstream gradient (a new tensor: the saved one
    stays intact for retain_graph, gradcheck and jacobian). Double backward
    (``create_graph=True``) raises: it would need the Hessian."""

    @staticmethod
    def forward(ctx, compute, need_grad, x, *constants):
        loss, grad, class_dim = compute(need_grad)
        ctx.class_dim = class_dim
        ctx.in_dtype = x.dtype
        if grad is not None:
            ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "xent.torch losses do not support double backward (create_graph=True); use the torch.nn loss"
            )
        (grad,) = ctx.saved_tensors
        if g.ndim == 0:
            if g.item() != 1.0:
                grad = grad * g
        else:
            grad = grad * (g if ctx.class_dim is None else g.unsqueeze(ctx.class_dim))
        if grad.dtype != ctx.in_dtype:
            grad = grad.to(ctx.in_dtype)
        return (None, None, grad) + (None,) * (len(ctx.needs_input_grad) - 3)
