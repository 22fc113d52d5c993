"""xent.metrics.log_loss against sklearn.metrics.log_loss (scikit-learn 1.9): values,
labels=, normalize, sample_weight, float32 near 0 and 1, string labels, warnings, errors."""
import sys
import warnings

import numpy as np
import pytest

import xent
from xent.metrics import log_loss


def _sk():
    return pytest.importorskip("sklearn.metrics")


def _both(*args, **kw):
    """(xent's, scikit-learn's) results, with the warnings each raised."""
    sk = _sk()
    with warnings.catch_warnings(record=True) as w1:
        warnings.simplefilter("always")
        a = log_loss(*args, **kw)
    with warnings.catch_warnings(record=True) as w2:
        warnings.simplefilter("always")
        b = sk.log_loss(*args, **kw)
    return a, b, [str(w.message) for w in w1], [str(w.message) for w in w2]


def _probs(rng, n, C, dtype=np.float64):
    return rng.dirichlet(np.ones(C) * 0.5, n).astype(dtype)


def test_metrics_is_a_lazy_submodule():
    import subprocess

    code = (
        "import sys, xent; assert 'sklearn' not in sys.modules; xent.metrics.log_loss; "
        "assert 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert xent.metrics.log_loss is log_loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [2, 3, 10])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_random(isa, rng, dtype, C, normalize, weighted):
    n = 300
    y = rng.integers(0, C, n)
    y[:C] = np.arange(C)
    p = _probs(rng, n, C, dtype)
    sw = rng.random(n) * 3 if weighted else None
    a, b, wa, wb = _both(y, p, normalize=normalize, sample_weight=sw)
    assert isinstance(a, float)
    assert a == pytest.approx(b, rel=2e-6 if dtype == np.float32 else 1e-12)
    assert wa == wb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_near_zero_and_one(isa, rng, dtype):
    # exact 0 and 1, values within a few eps of them: clipping at finfo(dtype).eps
    eps = np.finfo(dtype).eps
    vals = np.array([0, eps / 4, eps / 2, eps, 2 * eps, 1e-30, 1 - 2 * eps, 1 - eps, 1 - eps / 2, 1], dtype=dtype)
    n = vals.size
    for y in (np.zeros(n, int), np.ones(n, int)):
        a, b, _, _ = _both(np.r_[y, 0, 1], np.r_[vals, 0.5, 0.5].astype(dtype))
        assert a == pytest.approx(b, rel=1e-6 if dtype == np.float32 else 1e-12)
        p2 = np.stack([1 - vals, vals], axis=1).astype(dtype)
        a, b, _, _ = _both(np.r_[y, 0, 1], np.r_[p2, [[0.5, 0.5]] * 2].astype(dtype))
        assert a == pytest.approx(b, rel=1e-6 if dtype == np.float32 else 1e-12)
    # per-sample values: one row at a time against scikit-learn
    for v in vals:
        for lab in (0, 1):
            a, b, _, _ = _both([lab, 1 - lab], np.array([v, 0.5], dtype), normalize=False)
            assert a == pytest.approx(b, rel=1e-6 if dtype == np.float32 else 1e-12, abs=1e-12)


def test_binary_1d_and_column(rng):
    y = rng.integers(0, 2, 50)
    p = rng.random(50)
    for q in (p, p[:, None]):
        a, b, _, _ = _both(y, q)
        assert a == pytest.approx(b, rel=1e-12)


def test_string_labels_and_labels_argument(rng):
    y = np.array(["spam", "ham", "ham", "spam"])
    p = [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]
    a, b, _, _ = _both(y, p)
    assert a == pytest.approx(b, rel=1e-12) and round(a, 5) == 0.21616
    a, b, _, _ = _both(list(y), p)
    assert a == pytest.approx(b, rel=1e-12)
    # labels= with a class absent from y_true
    y3 = np.array(["a", "c", "a", "c"])
    p3 = _probs(rng, 4, 3)
    a, b, wa, wb = _both(y3, p3, labels=["a", "b", "c"])
    assert a == pytest.approx(b, rel=1e-12) and wa == wb
    # unsorted labels: a warning, columns still in sorted order
    a, b, wa, wb = _both(y3, p3, labels=["c", "b", "a"])
    assert a == pytest.approx(b, rel=1e-12)
    assert len(wa) == len(wb) == 1 and "lexicographically" in wa[0]
    # integer labels with a gap
    yi = np.array([1, 5, 5, 1, 9])
    a, b, _, _ = _both(yi, _probs(rng, 5, 4), labels=[1, 3, 5, 9])
    assert a == pytest.approx(b, rel=1e-12)


def test_indicator_y_true(rng):
    y = np.eye(3, dtype=int)[rng.integers(0, 3, 20)]
    y[:3] = np.eye(3, dtype=int)
    p = _probs(rng, 20, 3)
    a, b, _, _ = _both(y, p)
    assert a == pytest.approx(b, rel=1e-12)


def test_rows_not_summing_to_one_warn(rng):
    p = _probs(rng, 10, 3) * 0.9
    y = np.arange(10) % 3
    a, b, wa, wb = _both(y, p)
    assert a == pytest.approx(b, rel=1e-12)
    assert wa == wb and len(wa) == 1 and "do not sum to one" in wa[0]


def _errors_alike(*args, match, **kw):
    sk = _sk()
    with pytest.raises(ValueError, match=match):
        sk.log_loss(*args, **kw)
    with pytest.raises(ValueError, match=match):
        log_loss(*args, **kw)


def test_errors_alike():
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    _errors_alike([0, 1, 1], np.array([[0.2, 1.1], [0.6, 0.4], [0.5, 0.5]]), match="greater than 1")
    _errors_alike([0, 1, 1], np.array([[0.2, -0.1], [0.6, 0.4], [0.5, 0.5]]), match="lower than 0")
    _errors_alike([0, 1, 1], np.array([[0.2, np.nan], [0.6, 0.4], [0.5, 0.5]]), match="NaN")
    _errors_alike([0, 1], p, match="inconsistent numbers of samples")
    _errors_alike([0, 1, 1], p, sample_weight=[1, 2], match="inconsistent numbers of samples")
    _errors_alike([1, 1, 1], p, match="only one label")
    _errors_alike([1, 1, 1], p, labels=[1], match="at least two labels")
    _errors_alike([0, 1, 2], p, match="different number of classes")
    _errors_alike([0, 1, 1], p, labels=[0, 1, 2], match="number of classes in labels is different")
    _errors_alike([0, 1, 3], p, labels=[0, 1], match="not belonging to the passed labels")
    _errors_alike([0, 1, 1], p, sample_weight=[0, 0, 0], match="at least one non-zero")
    _errors_alike([0.5, 1, 1], p, match="Unknown label type")
    _errors_alike([0, 1, 1], p, normalize="yes", match="'normalize' parameter of log_loss must be")
    with pytest.raises(ValueError, match="Cannot use both"):
        log_loss([0, 1, 1], p, y_proba=p)
    assert log_loss([0, 1, 1], y_proba=p) == log_loss([0, 1, 1], p) == log_loss([0, 1, 1], y_pred=p)


def test_inputs_not_modified(rng):
    p = _probs(rng, 30, 4)
    p[0] = [1, 0, 0, 0]
    before = p.copy()
    log_loss(np.arange(30) % 4, p)
    np.testing.assert_array_equal(p, before)


def test_two_column_indicator_with_1d_y_pred(rng):
    y = np.eye(2, dtype=int)[rng.integers(0, 2, 30)]
    y[:2] = np.eye(2, dtype=int)
    p = rng.random(30)
    a, b, _, _ = _both(y, p)
    assert a == pytest.approx(b, rel=1e-12)
