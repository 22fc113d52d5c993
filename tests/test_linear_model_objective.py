"""The objective of xent.linear_model (loss, gradient, exact Hessian-vector products)
against float64 NumPy references and finite differences, and optimality of the fits
for the options scikit-learn does not have (label smoothing, "log" class weights, C=inf)."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
scipy_sparse = pytest.importorskip("scipy.sparse")

import xent  # noqa: E402
from reference import numeric_grad  # noqa: E402
from xent.linear_model import SoftmaxRegression  # noqa: E402
from xent.linear_model._objective import Objective  # noqa: E402


def _reference_objective(theta, X, y, K, sw, C, fit_intercept, eps):
    """The objective written out in NumPy float64, independently of xent's kernels."""
    X = np.asarray(X.todense()) if scipy_sparse.issparse(X) else X
    n, p = X.shape
    binary = K == 2
    k = 1 if binary else K
    W = theta[: k * p].reshape(k, p)
    b = theta[k * p :] if fit_intercept else np.zeros(k)
    z = X @ W.T + b
    if binary:
        z = np.hstack([np.zeros((n, 1)), z])
    t = (1 - eps) * np.eye(K)[y] + eps / K
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    rows = lse - (t * z).sum(axis=1)
    s = np.ones(n) if sw is None else sw
    S = s.sum()
    lam = 0.0 if np.isinf(C) else 1.0 / (C * S)
    return float(s @ rows) / S + 0.5 * lam * float((W * W).sum())


CASES = [
    # K, weighted, C, fit_intercept, label_smoothing, sparse
    (4, False, 1.0, True, 0.0, False),
    (4, True, 0.3, True, 0.2, False),
    (3, True, np.inf, False, 0.0, True),
    (2, False, 1.0, True, 0.0, False),
    (2, True, 2.0, True, 0.3, True),
    (2, True, 0.5, False, 0.0, False),
]


def _problem(K, weighted, sparse, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 5)) * (rng.uniform(size=(40, 5)) < (0.5 if sparse else 1.0))
    y = rng.integers(0, K, 40)
    sw = rng.uniform(0.0, 3.0, 40) if weighted else None
    return (scipy_sparse.csr_matrix(X) if sparse else X), y, sw


@pytest.mark.parametrize("K, weighted, C, fit_intercept, eps, sparse", CASES)
def test_loss_gradient_and_hessian_vector_product(K, weighted, C, fit_intercept, eps, sparse):
    X, y, sw = _problem(K, weighted, sparse)
    obj = Objective(X, y, K, sw, C, fit_intercept, eps, 1)
    rng = np.random.default_rng(1)
    theta = rng.normal(size=obj.size)
    args = (X, y, K, sw, C, fit_intercept, eps)
    f, g = obj.loss_grad(theta)
    assert f == pytest.approx(_reference_objective(theta, *args), rel=1e-13)
    np.testing.assert_allclose(g, numeric_grad(lambda t: _reference_objective(t, *args), theta), rtol=1e-8, atol=1e-10)
    # H v against central differences of the gradient, for random directions
    hv = obj.hessp()
    for _ in range(3):
        v = rng.normal(size=obj.size)
        h = 1e-5
        fd = (obj.loss_grad(theta + h * v)[1] - obj.loss_grad(theta - h * v)[1]) / (2 * h)
        np.testing.assert_allclose(hv(v), fd, rtol=1e-6, atol=1e-8)


def test_softmax_hvp_is_the_hessian_of_logsumexp():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 7)) * 3
    v = rng.normal(size=(5, 7))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    H = np.einsum("ij,jk->ijk", p, np.eye(7)) - p[:, :, None] * p[:, None, :]
    np.testing.assert_allclose(xent.softmax_hvp(z, v), np.einsum("ijk,ik->ij", H, v), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("K, weighted, C, fit_intercept, eps, sparse", CASES)
def test_fit_is_a_minimum_of_the_reference_objective(solver, K, weighted, C, fit_intercept, eps, sparse):
    X, y, sw = _problem(K, weighted, sparse, seed=3)
    est = SoftmaxRegression(C=C, fit_intercept=fit_intercept, label_smoothing=eps, solver=solver,
                            tol=1e-10, max_iter=10_000, n_threads=1)
    est.fit(X, y, sample_weight=sw)
    theta = np.concatenate([est.coef_.ravel(), est.intercept_ if fit_intercept else []])
    args = (X, y, K, sw, C, fit_intercept, eps)
    g = numeric_grad(lambda t: _reference_objective(t, *args), theta)
    assert np.max(np.abs(g)) < 1e-7
    # and the intercepts of the multinomial model are centred (they start at 0 and every
    # gradient and Hessian step sums to 0 over the classes)
    if K > 2 and fit_intercept:
        assert abs(est.intercept_.sum()) < 1e-10
