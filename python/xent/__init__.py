"""xent: cross-entropy losses and their gradients on the CPU, with SIMD C++ kernels.

Functions (all take NumPy arrays; see each docstring for the exact formula):
    logsumexp, log_softmax, softmax
    softmax_cross_entropy   integer labels or target distributions, any class axis
    sigmoid_cross_entropy   binary / multi-label, elementwise or summed over an axis
    show_config             version, compiled ISAs, the ISA in use, threads

Subpackage (imported on first use; needs scikit-learn):
    linear_model            SoftmaxRegression, a scikit-learn estimator on these kernels

``xent.__version__`` is the installed distribution's version (its one source is
pyproject.toml), read on first use.
"""
from ._config import show_config
from ._sigmoid import sigmoid_cross_entropy
from ._softmax import log_softmax, logsumexp, softmax, softmax_cross_entropy

__version__: str  # set by __getattr__ on first use


def __getattr__(name: str):
    # Lazy: importlib.metadata would add 10-30 ms to `import xent` (see tests/test_packaging.py).
    if name == "linear_model":  # needs scikit-learn: imported on first use only
        import importlib

        return importlib.import_module(f"{__name__}.linear_model")
    if name == "__version__":
        from ._config import _version

        globals()["__version__"] = v = _version()
        return v
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "logsumexp",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "show_config",
]
