"""xent: cross-entropy losses and their gradients on the CPU, with SIMD C++ kernels.

Functions (all take NumPy arrays; see each docstring for the exact formula):
    logsumexp, log_softmax, softmax
    softmax_cross_entropy   integer labels or target distributions, any class axis
    linear_cross_entropy    fused linear layer + softmax cross-entropy (never holds N x V logits)
    sigmoid_cross_entropy   binary / multi-label, elementwise or summed over an axis
    softmax_focal_loss, poly1_cross_entropy   more losses from logits
    nll_loss, kl_divergence                   losses on given log-probabilities
    sigmoid_focal_loss      focal loss on sigmoid outputs (torchvision / optax form)
    categorical_cross_entropy, binary_cross_entropy   from probabilities (Keras's forms)
    log_logistic            log(sigmoid(x)), stably
    compute_class_weight    "balanced" (scikit-learn) and "log" class weights
    metrics.log_loss        drop-in for sklearn.metrics.log_loss (xent.metrics, loaded on use)
    show_config             version, compiled ISAs, the ISA in use, threads
    evaluate, MetricsAccumulator
                            cross-entropy, perplexity, accuracy, top-k, ECE, per-class loss,
                            streamed chunk by chunk (also the `xent eval` command line)
    sigmoid_hessian, softmax_hessian_diag, softmax_hvp
                            Hessians for Newton-type solvers (p(1-p); diag(p) - p p^T)
    losses                  MultinomialLoss, BinomialLoss: scikit-learn's loss-object API

Submodule, imported on demand: xent.dask (the same metrics, loss and gradient on Dask arrays).

Subpackage (imported on first use; needs scikit-learn):
    linear_model            SoftmaxRegression, a scikit-learn estimator on these kernels

``xent.__version__`` is the installed distribution's version (its one source is
pyproject.toml), read on first use.
"""
from . import losses
from ._class_weight import compute_class_weight
from ._config import show_config
from ._eval_metrics import MetricsAccumulator, evaluate
from ._hessian import sigmoid_hessian, softmax_hessian_diag, softmax_hvp
from ._linear import LinearCrossEntropyGrads, linear_cross_entropy
from ._logprob import kl_divergence, nll_loss
from ._proba import binary_cross_entropy, categorical_cross_entropy, log_logistic
from ._sigmoid import sigmoid_cross_entropy, sigmoid_focal_loss
from ._softmax import log_softmax, logsumexp, softmax, softmax_cross_entropy
from ._softmax_more import poly1_cross_entropy, softmax_focal_loss

__version__: str  # set by __getattr__ on first use


def __getattr__(name: str):
    # Lazy: importlib.metadata would add 10-30 ms to `import xent` (see tests/test_packaging.py).
    if name in ("metrics", "linear_model"):  # linear_model needs scikit-learn: loaded on first use
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
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
    "linear_cross_entropy",
    "LinearCrossEntropyGrads",
    "sigmoid_cross_entropy",
    "softmax_focal_loss",
    "poly1_cross_entropy",
    "nll_loss",
    "kl_divergence",
    "sigmoid_focal_loss",
    "categorical_cross_entropy",
    "binary_cross_entropy",
    "log_logistic",
    "compute_class_weight",
    "show_config",
    "evaluate",
    "MetricsAccumulator",
    "sigmoid_hessian",
    "softmax_hessian_diag",
    "softmax_hvp",
    "losses",
]
