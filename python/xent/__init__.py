"""xent: cross-entropy losses and their gradients on the CPU, with SIMD C++ kernels.

Functions (all take NumPy arrays; see each docstring for the exact formula):
    logsumexp, log_softmax, softmax
    softmax_cross_entropy   integer labels or target distributions, any class axis
    sigmoid_cross_entropy   binary / multi-label, elementwise or summed over an axis
    categorical_cross_entropy, binary_cross_entropy   from probabilities (Keras's forms)
    log_logistic            log(sigmoid(x)), stably
    compute_class_weight    "balanced" (scikit-learn) and "log" class weights
    metrics.log_loss        drop-in for sklearn.metrics.log_loss (xent.metrics, loaded on use)
    show_config             version, compiled ISAs, the ISA in use, threads

``xent.__version__`` is the installed distribution's version (its one source is
pyproject.toml), read on first use.
"""
from ._class_weight import compute_class_weight
from ._config import show_config
from ._proba import binary_cross_entropy, categorical_cross_entropy, log_logistic
from ._sigmoid import sigmoid_cross_entropy
from ._softmax import log_softmax, logsumexp, softmax, softmax_cross_entropy

__version__: str  # set by __getattr__ on first use


def __getattr__(name: str):
    # Lazy: importlib.metadata would add 10-30 ms to `import xent` (see tests/test_packaging.py).
    if name == "metrics":
        import importlib

        return importlib.import_module(".metrics", __name__)
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
    "categorical_cross_entropy",
    "binary_cross_entropy",
    "log_logistic",
    "compute_class_weight",
    "show_config",
]
