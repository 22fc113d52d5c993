"""PyTorch drop-ins computed by xent's kernels (needs PyTorch: ``pip install xent[torch]``).

    CrossEntropyLoss     torch.nn.CrossEntropyLoss, plus z_loss, softcap, n_threads
    BCEWithLogitsLoss    torch.nn.BCEWithLogitsLoss, plus n_threads
    LinearCrossEntropyLoss
                         forward(hidden, weight, target, bias=None): cross-entropy of
                         F.linear(hidden, weight, bias) without the N x V logits

The first two subclass the PyTorch module they replace (same constructor, buffers,
state_dict). Each forward runs one ``torch.autograd.Function``: the loss and its gradients in
one fused call on the tensors' own memory (CPU tensors, float32/float64 read without a copy),
the gradients saved and scaled by the upstream gradient in backward. See
docs/torch.md for what differs from PyTorch. ``import xent`` never imports torch; only
``import xent.torch`` does.
"""
from ._bce import BCEWithLogitsLoss
from ._ce import CrossEntropyLoss
from ._fused_linear import LinearCrossEntropyLoss

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "LinearCrossEntropyLoss"]
