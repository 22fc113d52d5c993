"""PyTorch drop-ins computed by xent's kernels (needs PyTorch: ``pip install xent[torch]``).

    CrossEntropyLoss     torch.nn.CrossEntropyLoss, plus z_loss, softcap, n_threads
    BCEWithLogitsLoss    torch.nn.BCEWithLogitsLoss, plus n_threads

Each is a subclass of the PyTorch module it replaces (same constructor, buffers, state_dict),
whose forward runs one ``torch.autograd.Function``: the loss and its gradient with respect to
the input in one fused call on the tensors' own memory (CPU tensors, float32/float64 read
without a copy), the gradient saved and scaled by the upstream gradient in backward. See
docs/torch.md for what differs from PyTorch. ``import xent`` never imports torch; only
``import xent.torch`` does.
"""
from ._bce import BCEWithLogitsLoss
from ._ce import CrossEntropyLoss

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss"]
