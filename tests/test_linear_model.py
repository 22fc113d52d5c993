"""xent.linear_model.SoftmaxRegression: scikit-learn's estimator checks, agreement with
sklearn.linear_model.LogisticRegression, and the estimator API (weights, sparse input,
warm start, meta-estimators, pickling, the scorer).

BLAS and the kernels run on one thread here (n_threads=1, threadpool_limits(1) for
scikit-learn): the test machine is shared, and spinning BLAS threads make small fits slow.
"""
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the whole module needs the optional dependency
scipy_sparse = pytest.importorskip("scipy.sparse")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import xent  # noqa: E402
from xent.linear_model import SoftmaxRegression, neg_log_loss_scorer  # noqa: E402

SOLVERS = ["lbfgs", "newton-cg"]
TIGHT = dict(tol=1e-10, max_iter=10_000, n_threads=1)


ESTIMATORS = [SoftmaxRegression(), SoftmaxRegression(solver="newton-cg")]
_ARRAY_API_RESULTS = {}


def _array_api_check_in_subprocess(estimator, keywords):
    """scikit-learn skips check_array_api_input unless SCIPY_ARRAY_API=1 was set before
    SciPy was imported: run it, for every estimator at once, in a fresh interpreter that has it."""
    key = repr(sorted(keywords.items()))
    if key not in _ARRAY_API_RESULTS:
        code = (
            "import pickle, sys, traceback\n"
            "from sklearn.utils.estimator_checks import check_array_api_input as check\n"
            "for est in pickle.loads(sys.stdin.buffer.read()):\n"
            "    try:\n"
            f"        check(type(est).__name__, est, **{keywords!r}); print('ok')\n"
            "    except Exception:\n"
            "        print(repr(traceback.format_exc()))\n"
        )
        r = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(ESTIMATORS),
                           env={**os.environ, "SCIPY_ARRAY_API": "1"}, capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
        _ARRAY_API_RESULTS[key] = dict(zip(map(repr, ESTIMATORS), r.stdout.decode().splitlines()))
    return _ARRAY_API_RESULTS[key][repr(estimator)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    with threadpool_limits(1):  # the estimator keeps its defaults; only BLAS is capped
        if name == "check_array_api_input" and not os.environ.get("SCIPY_ARRAY_API"):
            assert _array_api_check_in_subprocess(estimator, check.keywords) == "ok"
        else:
            check(estimator)


def _digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _train_log_loss(est, X, y):
    return log_loss(y, est.predict_proba(X), labels=est.classes_)


def _assert_coef_close(a, b, rtol):
    """Relative agreement, elementwise, with an absolute floor at rtol * max|coef|
    (coefficients of constant features are 0 in both)."""
    scale = np.max(np.abs(b))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_sklearn_logistic_regression_on_digits(solver):
    X, y = _digits()
    with threadpool_limits(1):
        ref = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-8, max_iter=10_000).fit(X, y)
    est = SoftmaxRegression(C=1.0, solver=solver, **TIGHT).fit(X, y)
    assert est.coef_.shape == ref.coef_.shape == (10, 64)
    _assert_coef_close(est.coef_, ref.coef_, 1e-4)
    _assert_coef_close(est.intercept_, ref.intercept_, 1e-4)
    assert abs(_train_log_loss(est, X, y) - _train_log_loss(ref, X, y)) <= 1e-6
    np.testing.assert_array_equal(est.classes_, ref.classes_)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_binary_matches_sklearn(solver, fit_intercept):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    labels = np.array(["malignant", "benign"])[y]
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    with threadpool_limits(1):
        ref = LogisticRegression(C=0.5, fit_intercept=fit_intercept, tol=1e-10, max_iter=10_000)
        ref.fit(X, labels, sample_weight=sw)
    est = SoftmaxRegression(C=0.5, fit_intercept=fit_intercept, solver=solver, **TIGHT)
    est.fit(X, labels, sample_weight=sw)
    assert est.coef_.shape == (1, 30) and est.intercept_.shape == (1,)
    _assert_coef_close(est.coef_, ref.coef_, 1e-5)
    _assert_coef_close(est.intercept_, ref.intercept_, 1e-5)
    assert est.decision_function(X).shape == (len(y),)
    p = est.predict_proba(X)
    assert p.shape == (len(y), 2)
    np.testing.assert_allclose(p, ref.predict_proba(X), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
def test_class_weight_matches_sklearn(class_weight):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    sw = np.random.default_rng(1).integers(1, 4, len(y)).astype(float)
    with threadpool_limits(1):
        ref = LogisticRegression(class_weight=class_weight, tol=1e-10, max_iter=10_000).fit(X, y, sample_weight=sw)
    est = SoftmaxRegression(class_weight=class_weight, **TIGHT).fit(X, y, sample_weight=sw)
    _assert_coef_close(est.coef_, ref.coef_, 1e-5)
    _assert_coef_close(est.intercept_, ref.intercept_, 1e-5)


def test_log_class_weight_is_the_recipe():
    # the recipe's arithmetic is tested with xent.compute_class_weight (tests/test_logistic.py);
    # the estimator's "log" is the dict of those weights
    X, yy = make_classification(300, 5, n_informative=3, n_classes=3, weights=[0.7, 0.2, 0.1], random_state=0)
    w = xent.compute_class_weight(yy, "log")
    a = SoftmaxRegression(class_weight="log", **TIGHT).fit(X, yy)
    b = SoftmaxRegression(class_weight=dict(enumerate(w)), **TIGHT).fit(X, yy)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("sparse", [False, True])
def test_sample_weight_equals_repetition(solver, sparse):
    X, y = make_classification(120, 8, n_informative=5, n_classes=3, random_state=2)
    sw = np.random.default_rng(3).integers(0, 4, len(y))
    Xr, yr = np.repeat(X, sw, axis=0), np.repeat(y, sw)
    conv = scipy_sparse.csr_matrix if sparse else np.asarray
    a = SoftmaxRegression(solver=solver, **TIGHT).fit(conv(X), y, sample_weight=sw)
    b = SoftmaxRegression(solver=solver, **TIGHT).fit(conv(Xr), yr)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("n_classes", [2, 4])
def test_sparse_equals_dense(solver, n_classes):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 30)) * (rng.uniform(size=(200, 30)) < 0.2)
    y = rng.integers(0, n_classes, 200)
    dense = SoftmaxRegression(solver=solver, label_smoothing=0.1, **TIGHT).fit(X, y)
    for fmt in (scipy_sparse.csr_matrix, scipy_sparse.csc_array):
        sp = SoftmaxRegression(solver=solver, label_smoothing=0.1, **TIGHT).fit(fmt(X), y)
        np.testing.assert_allclose(sp.coef_, dense.coef_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(sp.predict_proba(fmt(X)), dense.predict_proba(X), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start(solver):
    X, y = _digits()
    params = dict(solver=solver, tol=1e-6, max_iter=10_000, n_threads=1)
    cold = SoftmaxRegression(**params).fit(X, y)
    est = SoftmaxRegression(**{**params, "max_iter": 3}, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    first = est.coef_.copy()
    est.set_params(max_iter=10_000).fit(X, y)  # continues from the 3 iterations above
    assert not np.allclose(first, est.coef_)
    _assert_coef_close(est.coef_, cold.coef_, 1e-3)
    # from a converged fit there is nothing left to do
    est.fit(X, y)
    assert est.n_iter_[0] == 0
    # without warm_start, or with other classes, the fit starts from zero
    again = SoftmaxRegression(**params).fit(X, y).fit(X, y)
    other = SoftmaxRegression(**params, warm_start=True).fit(X[y < 5], y[y < 5]).fit(X, y)
    assert again.n_iter_[0] == other.n_iter_[0] == cold.n_iter_[0]
    np.testing.assert_array_equal(other.coef_, cold.coef_)


def test_pipeline_grid_search_cross_val_clone_pickle():
    X, y = make_classification(300, 10, n_informative=6, n_classes=3, random_state=5)
    labels = np.array(["ant", "bee", "cat"])[y]
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression(n_threads=1))
    grid = GridSearchCV(pipe, {"softmaxregression__C": [0.01, 1.0]}, cv=3, scoring=neg_log_loss_scorer)
    grid.fit(X, labels)
    assert grid.best_params_["softmaxregression__C"] in (0.01, 1.0)
    ours = cross_val_score(pipe, X, labels, cv=3, scoring=neg_log_loss_scorer)
    theirs = cross_val_score(pipe, X, labels, cv=3, scoring="neg_log_loss")
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    est = SoftmaxRegression(C=0.3, solver="newton-cg", label_smoothing=0.05, class_weight="log")
    c = clone(est)
    assert c is not est and c.get_params() == est.get_params()
    est.fit(X, labels)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_scorer_equals_sklearn_log_loss(n_classes):
    X, y = make_classification(200, 6, n_informative=4, n_classes=n_classes, random_state=6)
    labels = np.array([-7, 3, 11])[y]
    est = SoftmaxRegression(n_threads=1).fit(X, labels)
    sw = np.arange(200) % 3 + 0.5
    ours = neg_log_loss_scorer(est, X, labels, sample_weight=sw)
    expected = -log_loss(labels, est.predict_proba(X), sample_weight=sw)
    assert ours == pytest.approx(expected, rel=1e-12)


def test_predict_methods_and_labels():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    est = SoftmaxRegression(C=1e4, **TIGHT).fit(X, labels)
    z = est.decision_function(X)
    np.testing.assert_allclose(est.predict_proba(X), xent.softmax(z), rtol=1e-15)
    lp = est.predict_log_proba(X)
    assert np.isfinite(lp).all()  # log_softmax of the logits: no log(0) where p underflows
    np.testing.assert_allclose(np.exp(lp), est.predict_proba(X), rtol=1e-12, atol=1e-300)
    assert set(est.predict(X)) <= set(labels) and est.score(X, labels) > 0.95


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_and_n_iter(solver):
    X, y = _digits()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = SoftmaxRegression(solver=solver, max_iter=2, n_threads=1).fit(X, y)
    assert est.n_iter_.tolist() == [2] and est.n_iter_.dtype == np.int32
    with pytest.warns(ConvergenceWarning, match="did not converge after 0"):
        est = SoftmaxRegression(solver=solver, max_iter=0, n_threads=1).fit(X, y)
    assert est.n_iter_.tolist() == [0] and not est.coef_.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SoftmaxRegression(solver=solver, max_iter=10_000, n_threads=1).fit(X, y)


def test_verbose_prints_iterations(capsys):
    X, y = load_iris(return_X_y=True)
    for solver in SOLVERS:
        SoftmaxRegression(solver=solver, verbose=1, n_threads=1, max_iter=1000).fit(X, y)
        out = capsys.readouterr().out
        assert f"{solver} iter" in out and "max|grad|" in out


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(C=0.0), "C must be in"),
        (dict(C=-1.0), "C must be in"),
        (dict(solver="sag"), "solver must be one of"),
        (dict(label_smoothing=1.5), "label_smoothing must be in"),
        (dict(tol=-1e-3), "tol must be in"),
        (dict(max_iter=-1), "max_iter must be an integer"),
        (dict(n_threads=0), "n_threads must be None or an integer"),
        (dict(class_weight="auto"), "class_weight must be None, a dict, 'balanced' or 'log'"),
        (dict(class_weight={0: 1.0, 7: 2.0}), "not classes"),
        (dict(class_weight={0: -1.0}), "finite and >= 0"),
    ],
)
def test_bad_parameters(params, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(**params).fit(X, y)


def test_bad_sample_weight_and_single_class():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=r"sample_weight\[3\] = -1.0"):
        SoftmaxRegression().fit(X, y, sample_weight=np.where(np.arange(150) == 3, -1.0, 1.0))
    with pytest.raises(ValueError, match="shape"):
        SoftmaxRegression().fit(X, y, sample_weight=np.ones(149))
    with pytest.raises(ValueError, match="at least 2 classes"):
        SoftmaxRegression().fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="at least 2 classes with a positive weight"):
        SoftmaxRegression().fit(X, y, sample_weight=(y == 1).astype(float))
