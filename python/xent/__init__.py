"""xent: cross-entropy losses and their gradients on the CPU, with SIMD C++ kernels.

Functions (all take NumPy arrays; see each docstring for the exact formula):
    logsumexp, log_softmax, softmax
    softmax_cross_entropy   integer labels or target distributions, any class axis
    sigmoid_cross_entropy   binary / multi-label, elementwise or summed over an axis
    show_config             version, compiled ISAs, the ISA in use, threads
"""
from ._config import show_config
from ._sigmoid import sigmoid_cross_entropy
from ._softmax import log_softmax, logsumexp, softmax, softmax_cross_entropy

__all__ = [
    "logsumexp",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "show_config",
]
