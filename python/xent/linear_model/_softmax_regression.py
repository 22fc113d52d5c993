"""SoftmaxRegression: L2-penalised multinomial logistic regression on xent's kernels."""
from __future__ import annotations

import contextlib
import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._softmax import log_softmax, softmax
from . import _solvers
from ._objective import Objective
from ._weights import check_sample_weight, class_weight_vector

_SOLVERS = {"lbfgs": _solvers.lbfgs, "newton-cg": _solvers.newton_cg}


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression (softmax regression) with an L2 penalty, fitted
    with xent's fused loss-and-gradient kernels.

    It minimises, over ``W`` (n_classes, n_features) and ``b`` (n_classes,)::

        sum_i s_i * CE(softmax(W x_i + b), t_i) / S  +  0.5 * alpha * ||W||^2,
        alpha = 1 / (C * S),   S = sum_i s_i,

    which has the minimiser of scikit-learn's ``sum_i s_i CE_i + 0.5/C ||W||^2``. Here
    ``s_i = sample_weight[i] * class_weight[y_i]`` and ``t_i`` is the one-hot label,
    smoothed to ``(1 - label_smoothing) * onehot + label_smoothing / n_classes``. The
    intercept is not penalised. ``alpha`` is not a parameter: for unit weights it is
    ``1 / (C * n_samples)`` (``C = 1 / (alpha * n_samples)``, the ``alpha`` of ``SGDClassifier``).

    Two classes: the binomial (sigmoid) model, as scikit-learn's ``LogisticRegression``:
    one logit ``z = w.x + b``, ``coef_`` of shape (1, n_features), ``decision_function``
    of shape (n_samples,), and ``predict_proba`` columns ``[1 - sigmoid(z), sigmoid(z)]``
    for ``classes_[0], classes_[1]``; the same ``C`` gives the same coefficients as
    scikit-learn. (A two-class softmax would be the same model with ``w = w_1 - w_0``
    penalised half as much, i.e. ``C`` doubled.)

    Parameters
    ----------
    C : float > 0, default 1.0
        Inverse regularisation strength; ``np.inf`` fits without penalty.
    fit_intercept : bool, default True
    class_weight : None, dict, "balanced" or "log", default None
        A dict maps class labels to weights (missing classes weigh 1). "balanced" is
        ``S / (n_classes * S_c)`` (scikit-learn; ``S_c`` the sum of the sample weights
        of class c); "log" is ``max(1, log(S / S_c))``. They multiply ``sample_weight``.
    label_smoothing : float in [0, 1], default 0.0
        Binary: targets ``(1 - eps) * y + eps / 2`` (Keras), the same as the 2-class
        softmax smoothing. scikit-learn has no label smoothing.
    solver : "lbfgs" or "newton-cg", default "lbfgs"
        ``"lbfgs"``: ``scipy.optimize.minimize(method="L-BFGS-B")`` with scikit-learn's
        options. ``"newton-cg"``: truncated Newton, conjugate gradients on the exact
        Hessian-vector products ``p*v - p*(p.v)`` per row.
    max_iter : int >= 0, default 100
        Iterations of the solver; reaching it without convergence warns (ConvergenceWarning).
    tol : float >= 0, default 1e-4
        Convergence when ``max |grad| <= tol`` (the gradient of the objective above:
        scikit-learn's ``tol`` for both solvers).
    warm_start : bool, default False
        Start from the previous ``coef_`` and ``intercept_`` when the classes and the
        number of features are unchanged (otherwise from zero).
    n_threads : int or None, default None
        Threads of xent's kernels; an integer also caps the BLAS threads of the matmuls
        during ``fit`` (through threadpoolctl). None: all cores, BLAS left as it is.
    verbose : int, default 0
        > 0 prints one line per iteration.

    Attributes
    ----------
    classes_ : (n_classes,) sorted labels. coef_ : (n_classes, n_features), or
    (1, n_features) for two classes. intercept_ : (n_classes,) or (1,), zeros without
    intercept. n_iter_ : (1,) int32, iterations run. n_features_in_, feature_names_in_.
    """

    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray
    n_iter_: np.ndarray

    def __init__(
        self, C=1.0, *, fit_intercept=True, class_weight=None, label_smoothing=0.0, solver="lbfgs",
        max_iter=100, tol=1e-4, warm_start=False, n_threads=None, verbose=0,
    ):
        self.C = C
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _check_params(self):
        def real(name, lo, hi=np.inf, lo_open=False):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or math.isnan(v):
                raise TypeError(f"{name} must be a real number, got {v!r}")
            if v < lo or (lo_open and v == lo) or v > hi:
                raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")

        real("C", 0.0, lo_open=True)
        real("tol", 0.0)
        real("label_smoothing", 0.0, 1.0)
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {tuple(_SOLVERS)}, got {self.solver!r}")
        for name, lo in (("max_iter", 0), ("verbose", 0)):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        nt = self.n_threads
        if nt is not None and (not isinstance(nt, numbers.Integral) or isinstance(nt, bool) or nt < 1):
            raise ValueError(f"n_threads must be None or an integer >= 1, got {nt!r}")

    def fit(self, X, y, sample_weight=None):
        """Fits the model; ``X`` dense or SciPy sparse (n_samples, n_features), ``y`` labels
        of any type scikit-learn accepts, ``sample_weight`` finite and >= 0. Returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, order="C")
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        y_idx = y_idx.reshape(-1).astype(np.int64, copy=False)
        if len(classes) < 2:
            raise ValueError(
                f"SoftmaxRegression needs samples of at least 2 classes; the data has one class: {classes[0]!r}"
            )
        sw = check_sample_weight(sample_weight, X.shape[0])
        cw = class_weight_vector(self.class_weight, classes, y_idx, sw)
        if cw is not None:
            sw = cw[y_idx] if sw is None else sw * cw[y_idx]
        if sw is not None and not sw.any():
            raise ValueError("the sample weights (times class_weight) are all zero: nothing to fit")
        if sw is not None and np.unique(y_idx[sw > 0]).size < 2:
            raise ValueError("SoftmaxRegression needs samples of at least 2 classes with a positive weight")

        obj = Objective(X, y_idx, len(classes), sw, float(self.C), bool(self.fit_intercept),
                        float(self.label_smoothing), self.n_threads)
        theta0 = np.zeros(obj.size)
        if self.warm_start and hasattr(self, "coef_") and _same(self.classes_, classes):
            W0, b0 = obj.split(theta0)
            if self.coef_.shape == W0.shape:
                W0[...] = self.coef_
                if b0 is not None:
                    b0[...] = self.intercept_
        limits = contextlib.nullcontext()
        if self.n_threads is not None:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(limits=int(self.n_threads), user_api="blas")
        with limits:
            theta, n_iter, converged, message = _SOLVERS[self.solver](
                obj, theta0, int(self.max_iter), float(self.tol), int(self.verbose)
            )
        if not converged:
            warnings.warn(
                f"SoftmaxRegression did not converge after {n_iter} iteration(s): {message}. "
                "Increase max_iter, or scale the data.", ConvergenceWarning, stacklevel=2,
            )
        W, b = obj.split(theta)
        self.classes_ = classes
        self.coef_ = W.copy()
        self.intercept_ = np.zeros(obj.K) if b is None else b.copy()
        self.n_iter_ = np.array([n_iter], dtype=np.int32)
        return self

    def decision_function(self, X):
        """Logits ``X @ coef_.T + intercept_``: (n_samples, n_classes), or (n_samples,)
        for two classes (positive values predict ``classes_[1]``)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False)
        z = np.asarray(X @ self.coef_.T, dtype=np.float64) + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def _logits_2d(self, X):
        z = self.decision_function(X)
        if z.ndim == 1:  # binomial: softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]
            z = np.stack([np.zeros_like(z), z], axis=1)
        return z

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_`` (xent's softmax)."""
        return softmax(self._logits_2d(X), n_threads=self.n_threads)

    def predict_log_proba(self, X):
        """Log-probabilities, computed as ``log_softmax`` of the logits (no ``log(0)``)."""
        return log_softmax(self._logits_2d(X), n_threads=self.n_threads)

    def predict(self, X):
        """The class of largest probability (ties: the first in ``classes_``)."""
        idx = np.argmax(self._logits_2d(X), axis=1)
        return self.classes_[idx]


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(np.all(a == b))
