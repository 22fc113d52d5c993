"""The penalised objective that SoftmaxRegression minimises, its gradient and its exact
Hessian-vector products, over a flat parameter vector ``theta = [W.ravel(), b]``.

Objective (scikit-learn's LogisticRegression, written in its "mean" form)::

    f(W, b) = sum_i s_i * l_i(W x_i + b) / S  +  0.5 * lam * ||W||^2,   lam = 1 / (C * S)

with ``s_i`` the row weights (sample_weight times the class weight of the row's label),
``S = sum_i s_i``, and ``l_i`` the cross-entropy of row i: softmax over ``K`` classes, or,
for two classes, the sigmoid (binomial) loss of one logit ``z = w.x + b`` (scikit-learn's
binary LogisticRegression). Its minimiser is that of ``sum_i s_i l_i + 0.5/C ||W||^2``.
The intercept ``b`` is not penalised.

The loss and its gradient with respect to the logits come from xent's kernels
(``softmax_cross_entropy`` / ``sigmoid_cross_entropy``, one fused pass); the products with
``X`` are BLAS matmuls (``X @ W.T`` and ``X.T @ G``; ``X`` may be a SciPy sparse matrix).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from .._hessian import sigmoid_hessian, softmax_hvp
from .._sigmoid import sigmoid_cross_entropy
from .._softmax import softmax_cross_entropy


class Objective:
    """``f``, ``grad f`` and ``v -> H v`` for one data set; see the module docstring.

    ``y`` holds class indices in ``[0, n_classes)``; ``sw`` the row weights (``None`` for
    all ones, which lets the kernels skip the weights). ``n_classes == 2`` gives the
    binomial model with a single coefficient row.
    """

    def __init__(self, X, y, n_classes, sw, C, fit_intercept, label_smoothing, n_threads):
        self.X = X
        self._sparse = sparse.issparse(X)
        self.n_samples, self.n_features = X.shape
        self.binary = n_classes == 2
        self.K = 1 if self.binary else n_classes
        self.sw = sw
        self.S = float(self.n_samples if sw is None else sw.sum(dtype=np.float64))
        self.lam = 0.0 if np.isinf(C) else 1.0 / (C * self.S)
        self.fit_intercept = fit_intercept
        self.eps = float(label_smoothing)
        self.n_threads = n_threads
        if self.binary:
            # The binomial targets with Keras's binary smoothing (1 - eps) * y + eps / 2,
            # which is exactly the 2-class softmax smoothing (1 - eps) * onehot + eps / 2.
            self.y = (1.0 - self.eps) * y.astype(np.float64) + 0.5 * self.eps
        else:
            self.y = y
        self._z = None  # logits at the last point evaluated, for the Hessian

    def _xt_dot(self, G: np.ndarray) -> np.ndarray:
        """``G.T @ X``, shape (K, n_features): one BLAS call on dense ``X`` (faster than
        ``(X.T @ G).T`` there), the sparse product on sparse ``X``."""
        return np.asarray(self.X.T @ G).T if self._sparse else G.T @ self.X

    @property
    def size(self) -> int:
        return self.K * (self.n_features + int(self.fit_intercept))

    def split(self, theta):
        """``(W, b)`` views into ``theta``: ``W`` of shape (K, n_features), ``b`` (K,) or None."""
        kp = self.K * self.n_features
        W = theta[:kp].reshape(self.K, self.n_features)
        return W, (theta[kp:] if self.fit_intercept else None)

    def logits(self, theta) -> np.ndarray:
        W, b = self.split(theta)
        z = np.asarray(self.X @ W.T)
        if b is not None:
            z += b
        return z[:, 0] if self.binary else z

    def loss_grad(self, theta):
        """``(f(theta), grad f(theta))``; remembers the logits for :meth:`hessp`."""
        W, _ = self.split(theta)
        z = self.logits(theta)
        if self.binary:
            if self.sw is None:
                total, g = sigmoid_cross_entropy(
                    z, self.y, reduction="sum", return_grad=True, n_threads=self.n_threads
                )
            else:
                rows, g = sigmoid_cross_entropy(
                    z, self.y, reduction="none", return_grad=True, n_threads=self.n_threads
                )
                total = float(np.dot(rows, self.sw))
                g *= self.sw
            G = g[:, None]
        else:
            total, G = softmax_cross_entropy(
                z, self.y, sample_weight=self.sw, label_smoothing=self.eps, reduction="sum",
                return_grad=True, n_threads=self.n_threads,
            )
        self._z = z
        return self._finish(total / self.S, W, G)

    def _finish(self, f, W, G):
        """Adds the penalty and maps the logits' gradient ``G`` (N, K) to the parameters."""
        out = np.empty(self.size)
        gW, gb = self.split(out)
        gW[...] = self._xt_dot(G)
        gW /= self.S
        if self.lam:
            f += 0.5 * self.lam * float(np.dot(W.ravel(), W.ravel()))
            gW += self.lam * W
        if gb is not None:
            gb[...] = G.sum(axis=0) / self.S
        return f, out

    def hessp(self):
        """``v -> H v`` at the point of the last :meth:`loss_grad` call (exact Hessian)."""
        z = self._z
        if self.binary:  # the binomial Hessian sw * p (1 - p), one kernel pass
            h = sigmoid_hessian(z, sample_weight=self.sw, n_threads=self.n_threads)

        def hv(v):
            V, vb = self.split(v)
            dz = np.asarray(self.X @ V.T)
            if vb is not None:
                dz += vb
            if self.binary:
                R = h[:, None] * dz
            else:
                # the exact per-row product sw * (p*v - p*(p.v)), never forming C x C
                R = softmax_hvp(z, dz, sample_weight=self.sw, n_threads=self.n_threads)
            out = np.empty(self.size)
            oW, ob = self.split(out)
            oW[...] = self._xt_dot(R)
            oW /= self.S
            if self.lam:
                oW += self.lam * V
            if ob is not None:
                ob[...] = R.sum(axis=0) / self.S
            return out

        return hv
