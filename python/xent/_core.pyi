# Type stub of the extension module xent._core (cpp/bindings/*.cpp). Keep it in step with
# the bindings: CI runs `python -m mypy.stubtest xent._core` against the built module.
# The bindings trust their caller (python/xent): exact float32/float64 dtypes, native byte
# order, aligned arrays, the class axis last; integer labels int32 or int64.
from typing import ClassVar, SupportsIndex, SupportsInt, TypedDict

import numpy as np

class SoftmaxOp:
    """Which softmax-family op softmax_op runs (a pybind11 enum)."""

    logsumexp: ClassVar[SoftmaxOp]
    softmax: ClassVar[SoftmaxOp]
    log_softmax: ClassVar[SoftmaxOp]
    xent_label: ClassVar[SoftmaxOp]
    xent_target: ClassVar[SoftmaxOp]
    nll_label: ClassVar[SoftmaxOp]
    kl_div: ClassVar[SoftmaxOp]
    kl_div_log: ClassVar[SoftmaxOp]
    poly1_label: ClassVar[SoftmaxOp]
    poly1_target: ClassVar[SoftmaxOp]
    focal_label: ClassVar[SoftmaxOp]
    focal_target: ClassVar[SoftmaxOp]
    __members__: ClassVar[dict[str, SoftmaxOp]]
    def __init__(self, value: SupportsInt | SupportsIndex) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __int__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class HessianOp:
    """Which Hessian op hessian_op runs (a pybind11 enum)."""

    sigmoid: ClassVar[HessianOp]
    softmax_diag: ClassVar[HessianOp]
    softmax_hvp: ClassVar[HessianOp]
    __members__: ClassVar[dict[str, HessianOp]]
    def __init__(self, value: SupportsInt | SupportsIndex) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    def __int__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class _Config(TypedDict):
    compiled_isas: list[str]
    runnable_isas: list[str]
    isa: str
    hardware_threads: int
    spin_us: float

def softmax_op(
    op: SoftmaxOp | int,
    z: np.ndarray,
    t: np.ndarray | None,
    y: np.ndarray | None,
    out: np.ndarray | None,
    row_out: np.ndarray | None,
    gscale: float,
    n_threads: int,
    weight: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    ignore_index: int | None = None,
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    softcap: float = 0.0,
    param: float = 0.0,
    class_a: np.ndarray | None = None,
    inner: bool = False,
) -> float:
    """Runs one softmax-family op (class axis last); returns the sum of the (weighted) row results. inner: the
    caller's class axis was not its array's last (integer-label cross-entropy then computes rows in vector lanes,
    whatever the layout)."""

def find_bad_label(labels: np.ndarray, n_classes: int, ignore_index: int | None = None) -> tuple[int, int] | None:
    """(flat index, value) of the first label outside [0, n_classes) other than ignore_index, or None."""

def label_weight_sum(
    labels: np.ndarray, weight: np.ndarray | None, sample_weight: np.ndarray | None, ignore_index: int | None
) -> float:
    """Sum over rows of weight[y] * sample_weight (float64 terms), ignored rows left out: the denominator of a
    weighted mean. Over contiguous labels a count, the sample weights' vector sum, or by class (count_c *
    weight[c]) where the form allows; else compensated row by row."""

def weight_sum(weights: np.ndarray) -> float:
    """Sum of the weights of a C-contiguous float32/float64 array (float64 terms, blocks of 1024 in 16 lanes, the
    blocks compensated; the same bits on every ISA): the denominator of a weighted mean."""

def weight_stats(weights: np.ndarray) -> tuple[float, float]:
    """(sum, largest value) of a C-contiguous float32/float64 array, the largest +inf if any value is NaN, negative
    or infinite: the weights' check and their sum in one vector pass."""

def sigmoid_op(
    z: np.ndarray,
    t: np.ndarray,
    grad: np.ndarray | None,
    loss: np.ndarray | None,
    elementwise: bool,
    gscale: float,
    n_threads: int,
    weight: np.ndarray | None = None,
    pos_weight: np.ndarray | None = None,
    elem_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
    focal: bool = False,
    gamma: float = 0.0,
    alpha: float = -1.0,
    softcap: float = 0.0,
) -> float:
    """Sigmoid cross-entropy or focal loss (summed axis last unless elementwise); returns the total loss."""

def hessian_op(
    op: HessianOp | int,
    z: np.ndarray,
    t: np.ndarray | None,
    v: np.ndarray | None,
    y: np.ndarray | None,
    sample_weight: np.ndarray | None,
    hess: np.ndarray | None,
    grad: np.ndarray | None,
    n_threads: int,
) -> None:
    """Runs one Hessian op: elementwise sigmoid, or softmax diagonal / Hessian-vector product (class axis last)."""

def proba_op(
    op: int,
    p: np.ndarray,
    t: np.ndarray | None,
    y: np.ndarray | None,
    grad: np.ndarray | None,
    loss: np.ndarray | None,
    elementwise: bool,
    renorm: bool,
    eps: float,
    label_smoothing: float,
    gscale: float,
    n_threads: int,
) -> float:
    """Cross-entropy from probabilities (op 0: categorical, labels; 1: categorical, targets;
    2: binary) or log_logistic (op 3, into loss); returns the total loss, NaN if a probability
    is outside [0, 1]."""

# Lean entries for calls without options (cpp/bindings/fast.cpp, gated by python/xent/_fast.py):
# the public result, or None for any input they do not take (the general path then runs).
# Builtins of positional arguments only, all of them given (no pybind11 dispatcher).
def softmax_xent_fast(
    logits: object,
    labels: object,
    reduction: object,
    return_grad: object,
    n_threads: object,
    out: object,
    grad_out: object,
    weight: object,
    sample_weight: object,
    ignore_index: object,
    z_loss: object,
    label_smoothing: object,
    softcap: object,
    /,
) -> float | np.ndarray | tuple[float | np.ndarray, np.ndarray] | None:
    """softmax_cross_entropy with integer labels along the last axis, its options included (out= and grad_out=
    buffers taken), or None where the general path must run."""

def softmax_factor_fast(
    focal: object,
    logits: object,
    labels: object,
    param: object,
    alpha: object,
    reduction: object,
    return_grad: object,
    n_threads: object,
    out: object,
    grad_out: object,
    weight: object,
    sample_weight: object,
    ignore_index: object,
    softcap: object,
    /,
) -> float | np.ndarray | tuple[float | np.ndarray, np.ndarray] | None:
    """softmax_focal_loss (focal=True, param gamma) or poly1_cross_entropy (param epsilon) with integer labels
    along the last axis, their options included, or None where the general path must run."""

def sigmoid_xent_fast(
    logits: object,
    targets: object,
    reduction: object,
    return_grad: object,
    n_threads: object,
    out: object,
    grad_out: object,
    weight: object,
    pos_weight: object,
    sample_weight: object,
    label_smoothing: object,
    softcap: object,
    axis: object,
    /,
) -> float | np.ndarray | tuple[float | np.ndarray, np.ndarray] | None:
    """sigmoid_cross_entropy with axis None or the last axis, its options included (out= and grad_out= buffers
    taken), or None where the general path must run."""

def softmax_norm_fast(op: SoftmaxOp, x: object, n_threads: object, /) -> np.ndarray | np.floating | None:
    """logsumexp, softmax or log_softmax along the last axis, or None where the general path must run."""

def config() -> _Config:
    """Build and run-time configuration of the kernels."""

def set_isa(name: str) -> bool:
    """Switches the kernel set for this process; False if it cannot run here."""

def set_spin_us(us: float) -> bool:
    """Sets how long idle worker threads poll before sleeping (microseconds); False if not in [0, 1e6]."""

def vector_math(fn: str, x: np.ndarray, y: np.ndarray) -> None:
    """y = exp(x) (x <= 0), log1p(x) (0 <= x <= 1), tanh(x), log(x) (0 < x <= 1) or log1m: log(1 - x)
    (0 <= x < 1) with the active ISA's vector code."""
