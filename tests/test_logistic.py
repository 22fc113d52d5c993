"""log_logistic, its equivalence with the sigmoid loss for labels in {-1, +1} (scikit-learn's
logistic-regression objective), and compute_class_weight."""
import math

import numpy as np
import pytest

import xent
from conftest import LOSS_TOL

LD = np.longdouble


def ref_log_logistic(x):
    x = np.asarray(x, dtype=LD)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x >= 0, -np.log1p(np.exp(-x)), x - np.log1p(np.exp(x)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3, 8, 9, 100, 20_000])
def test_log_logistic_random(isa, rng, dtype, n):
    x = (rng.standard_normal(n) * 20).astype(dtype)
    y = xent.log_logistic(x)
    assert y.dtype == dtype and y.shape == x.shape
    ref = ref_log_logistic(x)
    # relative to |result|, which is tiny for large positive x: no cancellation allowed; results
    # below the smallest normal number may flush to 0 (the exp contract)
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(y, ref.astype(np.float64), rtol=LOSS_TOL[dtype]["rtol"], atol=tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_logistic_extremes(isa, dtype):
    big = np.finfo(dtype).max
    x = np.array([0, 1e-30, -1e-30, 30, -30, 80, -80, 700, -700, big, -big, np.inf, -np.inf], dtype=dtype)
    with np.errstate(over="ignore"):
        ref = ref_log_logistic(x).astype(dtype)
    y = xent.log_logistic(x)
    np.testing.assert_allclose(y, ref, rtol=LOSS_TOL[dtype]["rtol"], atol=0)
    assert y[-2] == 0 and y[-1] == -np.inf
    assert np.isnan(xent.log_logistic(np.array([np.nan], dtype))[0])


def test_log_logistic_out_and_shapes(isa, rng):
    x = rng.standard_normal((5, 7))[:, ::2]
    expect = ref_log_logistic(x).astype(np.float64)
    np.testing.assert_allclose(xent.log_logistic(x), expect, rtol=1e-13)
    buf = x.copy()
    assert xent.log_logistic(buf, out=buf) is buf
    np.testing.assert_allclose(buf, expect, rtol=1e-13)
    assert isinstance(xent.log_logistic(2.0), np.floating)
    assert xent.log_logistic(np.float16(1)).dtype == np.float32
    assert xent.log_logistic(np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(TypeError):
        xent.log_logistic(x, out=np.empty(x.shape, np.float32))
    with pytest.raises(ValueError):
        xent.log_logistic(x, out=np.empty((3, 3)))


def test_pm1_label_equivalence_and_sklearn_objective(rng):
    """For s in {-1, +1}, z = X @ w: sum of sigmoid CE with t = (s + 1)/2 equals
    -sum(log_logistic(s * z)); plus 0.5*alpha*w.w that is scikit-learn's objective."""
    n, d, alpha = 200, 6, 0.7
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) * 2
    s = np.where(rng.random(n) < 0.4, -1.0, 1.0)
    z = X @ w
    pen = 0.5 * alpha * (w @ w)
    a = xent.sigmoid_cross_entropy(z, (s + 1) / 2, reduction="sum") + pen
    b = -xent.log_logistic(s * z).sum() + pen
    c = float(np.sum(-ref_log_logistic(s * z))) + pen
    assert a == pytest.approx(c, rel=1e-13) and b == pytest.approx(c, rel=1e-13)
    # scikit-learn 1.9: sklearn._loss.HalfBinomialLoss and LogisticRegression's LinearModelLoss
    # (mean loss + 0.5 * l2 * w.w, so l2 = alpha / n gives the sum form divided by n)
    _loss = pytest.importorskip("sklearn._loss")
    ll = pytest.importorskip("sklearn.linear_model._linear_loss")
    y01 = (s + 1) / 2
    hb = _loss.HalfBinomialLoss().loss(y_true=y01, raw_prediction=z).sum()
    assert hb + pen == pytest.approx(a, rel=1e-12)
    lm = ll.LinearModelLoss(base_loss=_loss.HalfBinomialLoss(), fit_intercept=False)
    obj = lm.loss(w, X, y01, l2_reg_strength=alpha / n)
    assert obj * n == pytest.approx(a, rel=1e-12)


def test_class_weight_arithmetic():
    counts = [1000, 2300, 20310, 6700]
    y = np.repeat(np.arange(4), counts)
    n = sum(counts)
    w = xent.compute_class_weight(y, "log")
    expect = [max(1.0, math.log(n / c)) for c in counts]
    np.testing.assert_allclose(w, expect, rtol=1e-15)
    # n = 30310: log(30.31), log(13.178), max(1, log(1.4924)), log(4.5239)
    np.testing.assert_allclose(w, [3.41148, 2.57857, 1.0, 1.50937], atol=1e-5)
    wn = xent.compute_class_weight(y, "log", normalize=True)
    np.testing.assert_allclose(wn, np.array(expect) / max(expect), rtol=1e-15)
    np.testing.assert_allclose(wn, [1.0, 0.75585, 0.29313, 0.44244], atol=1e-5)
    wb = xent.compute_class_weight(y, "balanced")
    np.testing.assert_allclose(wb, [n / (4 * c) for c in counts], rtol=1e-15)
    np.testing.assert_allclose(xent.compute_class_weight(y, "balanced", normalize=True), wb / wb.max(), rtol=1e-15)


@pytest.mark.parametrize("labels", ["int", "str", "gap"])
def test_class_weight_balanced_matches_sklearn(rng, labels):
    cw = pytest.importorskip("sklearn.utils.class_weight")
    y = rng.integers(0, 5, 500)
    if labels == "str":
        y = np.array(["cat", "dog", "emu", "fox", "gnu"])[y]
    elif labels == "gap":
        y = np.array([2, 3, 7, 11, 40])[y]
    classes = np.unique(y)
    ours = xent.compute_class_weight(y, "balanced", classes=classes)
    theirs = cw.compute_class_weight("balanced", classes=classes, y=y)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    if labels != "gap":
        np.testing.assert_allclose(xent.compute_class_weight(y, "balanced"), theirs, rtol=1e-15)
    # classes= in another order: weights follow it
    perm = classes[::-1]
    np.testing.assert_allclose(xent.compute_class_weight(y, "balanced", classes=perm), theirs[::-1], rtol=1e-15)


def test_class_weight_with_sample_weight_matches_sklearn(rng):
    from sklearn.utils.class_weight import compute_class_weight as sk_ccw

    y = rng.integers(0, 4, 500)
    sw = rng.random(500) * 3
    got = xent.compute_class_weight(y, "balanced", sample_weight=sw)
    np.testing.assert_allclose(got, sk_ccw("balanced", classes=np.arange(4), y=y, sample_weight=sw), rtol=1e-13)
    # "log" uses the same weighted counts; integer sample weights equal repeated labels
    iw = rng.integers(0, 3, 500)
    np.testing.assert_allclose(
        xent.compute_class_weight(y, "log", sample_weight=iw), xent.compute_class_weight(np.repeat(y, iw), "log")
    )
    with pytest.raises(ValueError, match="sample_weight"):
        xent.compute_class_weight(y, "log", sample_weight=-sw)
    with pytest.raises(ValueError, match="no \\(weighted\\) samples"):
        xent.compute_class_weight([0, 1, 1], "log", sample_weight=[0.0, 1.0, 1.0])


def test_class_weight_errors():
    with pytest.raises(ValueError, match=r"\[2\] have no \(weighted\) samples.*classes="):
        xent.compute_class_weight(np.array([0, 1, 3, 3]))  # label 2 absent
    with pytest.raises(ValueError, match=r"\['z'\] have no \(weighted\) samples"):
        xent.compute_class_weight(np.array(["a", "b"]), classes=["a", "b", "z"])
    with pytest.raises(ValueError, match="not in classes"):
        xent.compute_class_weight(np.array([0, 1, 2]), classes=[0, 1])
    with pytest.raises(ValueError, match="scheme"):
        xent.compute_class_weight([0, 1], "sqrt")
    with pytest.raises(ValueError, match="empty"):
        xent.compute_class_weight(np.array([], int))
    with pytest.raises(ValueError, match="negative"):
        xent.compute_class_weight(np.array([-1, 0]))
    with pytest.raises(ValueError, match="duplicates"):
        xent.compute_class_weight(np.array([0, 1]), classes=[0, 1, 1])
    # with classes= a gap in the integer labels is fine
    w = xent.compute_class_weight(np.array([0, 1, 3, 3]), classes=[0, 1, 3])
    np.testing.assert_allclose(w, [4 / 3, 4 / 3, 2 / 3])
