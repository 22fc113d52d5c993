"""categorical_cross_entropy and binary_cross_entropy (from probabilities) against Keras's
documented formula written out in extended precision, finite-difference gradients, edge
cases, threads. The vector log behind them is tested in test_math_log.py."""
import numpy as np
import pytest

import xent
from conftest import LOSS_TOL
from reference import numeric_grad

LD = np.longdouble
DTYPES = [np.float32, np.float64]


def keras_categorical(p, t, eps=1e-7, axis=-1, ls=0.0):
    """Keras 3: t = (1-ls) t + ls/C; q = p / sum(p); q = clip(q, eps, 1-eps); -sum(t log q).
    With exact clip bounds, and a zero row sum giving q = 0 (xent's definitions)."""
    p = np.asarray(p, dtype=LD)
    t = np.asarray(t, dtype=LD)
    C = p.shape[axis]
    t = (1 - ls) * t + LD(ls) / C
    s = p.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(s > 0, p / s, 0)
    q = np.clip(q, LD(eps), 1 - LD(eps))
    return -(np.where(t == 0, 0, t * np.log(q))).sum(axis=axis)


def keras_binary(p, t, eps=1e-7, ls=0.0):
    """Keras 3: t = (1-ls) t + ls/2; a = clip(p, eps, 1-eps); -(t log a + (1-t) log(1-a))."""
    p = np.asarray(p, dtype=LD)
    t = (1 - ls) * np.asarray(t, dtype=LD) + LD(ls) / 2
    a = np.clip(p, LD(eps), 1 - LD(eps))
    return -(np.where(t == 0, 0, t * np.log(a)) + np.where(t == 1, 0, (1 - t) * np.log1p(-a)))


def onehot(y, C, dtype=np.float64):
    return np.eye(C, dtype=dtype)[y]


def random_probs(rng, shape, dtype, axis=-1):
    """Unnormalised rows (renormalisation matters), with exact 0s and 1s here and there."""
    p = rng.random(shape) ** 3
    flat = p.reshape(-1)
    flat[::7] = 0.0
    flat[3::11] = 1.0
    return p.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 3, 7, 8, 9, 33, 100, 2049])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_categorical_random(isa, rng, dtype, C, ls):
    n = 37
    p = random_probs(rng, (n, C), dtype)
    y = rng.integers(0, C, n)
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    t[::4] = onehot(y[::4], C, dtype)
    for targets, tref in ((y, onehot(y, C)), (t, t)):
        loss = xent.categorical_cross_entropy(p, targets, label_smoothing=ls, reduction="none")
        assert loss.dtype == dtype and loss.shape == (n,)
        np.testing.assert_allclose(loss, keras_categorical(p, tref, ls=ls).astype(np.float64), **LOSS_TOL[dtype])
        ref = keras_categorical(p, tref, ls=ls).astype(np.float64)
        assert xent.categorical_cross_entropy(p, targets, label_smoothing=ls) == pytest.approx(ref.mean(), rel=1e-6)
        assert xent.categorical_cross_entropy(p, targets, label_smoothing=ls, reduction="sum") == pytest.approx(
            ref.sum(), rel=1e-6
        )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_categorical_axis_and_strides(isa, rng, axis):
    p = random_probs(rng, (6, 5, 4), np.float64)[:, ::1, ::-1]
    y = rng.integers(0, p.shape[axis], np.delete(p.shape, axis % 3))
    loss, grad = xent.categorical_cross_entropy(p, y, axis=axis, reduction="none", return_grad=True)
    t = np.moveaxis(onehot(y, p.shape[axis]), -1, axis)
    np.testing.assert_allclose(loss, keras_categorical(p, t, axis=axis).astype(np.float64), **LOSS_TOL[np.float64])
    _, g_t = xent.categorical_cross_entropy(p, t, axis=axis, reduction="none", return_grad=True)
    np.testing.assert_allclose(grad, g_t, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_categorical_gradient_finite_differences(isa, rng, labels, ls, reduction):
    # eps = 0.05 so that some entries are clipped (q < eps, and one q > 1 - eps) and stay
    # clipped under the finite-difference steps
    eps = 0.05
    p = rng.uniform(0.2, 0.9, (4, 5))
    p[1, 2] = 0.01  # q < eps: no gradient through its own log, but through the row sum
    p[2] = [1e-3, 0.9, 2e-3, 1e-3, 1e-3]  # q ~ 0.995 > 1 - eps
    y = np.array([2, 1, 1, 4])
    tg = y if labels else rng.dirichlet(np.ones(5), 4)
    _, g = xent.categorical_cross_entropy(p, tg, eps=eps, label_smoothing=ls, reduction=reduction, return_grad=True)
    num = numeric_grad(
        lambda v: xent.categorical_cross_entropy(v, tg, eps=eps, label_smoothing=ls, reduction=reduction), p, h=1e-6
    )
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_edges(isa, dtype):
    eps = 1e-7
    # a probability of 1 with target 0 elsewhere: exact bound -log(eps), also in float32
    p = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0.5, 0.5, 0]], dtype=dtype)
    t = np.array([0, 0, 2, 2])
    loss, grad = xent.categorical_cross_entropy(p, t, reduction="none", return_grad=True)
    expect = [-np.log1p(-eps), -np.log(eps), -np.log(eps), -np.log(eps)]
    np.testing.assert_allclose(loss, expect, **LOSS_TOL[dtype])
    # Keras's float32 would give -log(1.19e-7) = 15.94 for row 1; xent gives 16.118
    assert abs(float(loss[1]) - 16.11809565095832) < 1e-5
    # a row summing to 0: every q clips to eps, zero gradient; clipped q have zero own gradient
    assert np.all(grad[2] == 0)
    assert np.all(np.isfinite(grad))
    # one class: q = 1 always (clipped to 1 - eps)
    one = xent.categorical_cross_entropy(np.array([[0.3], [1.0]], dtype), np.array([0, 0]), reduction="none")
    np.testing.assert_allclose(one, [-np.log1p(-eps)] * 2, rtol=1e-6)
    # empty batch and empty class axis with targets
    e = np.zeros((0, 4), dtype)
    loss, grad = xent.categorical_cross_entropy(e, np.zeros(0, int), return_grad=True)
    assert loss == 0.0 and grad.shape == (0, 4)
    assert xent.categorical_cross_entropy(e, e, reduction="sum") == 0.0
    z = np.zeros((3, 0), dtype)
    np.testing.assert_array_equal(xent.categorical_cross_entropy(z, z, reduction="none"), np.zeros(3))


def test_float32_within_tolerance_of_float64(rng):
    p = random_probs(rng, (500, 40), np.float64)
    y = rng.integers(0, 40, 500)
    l64 = xent.categorical_cross_entropy(p, y, label_smoothing=0.1, reduction="none")
    l32 = xent.categorical_cross_entropy(p.astype(np.float32), y, label_smoothing=0.1, reduction="none")
    ref = keras_categorical(p.astype(np.float32), onehot(y, 40), ls=0.1).astype(np.float64)
    np.testing.assert_allclose(l32, ref, **LOSS_TOL[np.float32])
    np.testing.assert_allclose(l64, keras_categorical(p, onehot(y, 40), ls=0.1).astype(np.float64), rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 9, 33, 8193])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_binary_random(isa, rng, dtype, n, ls):
    p = random_probs(rng, (n,), dtype)
    p[1::5] = rng.random(p[1::5].shape) * 1e-9
    t = rng.random(n).astype(dtype)
    t[::3] = np.round(t[::3])
    loss = xent.binary_cross_entropy(p, t, label_smoothing=ls, reduction="none")
    ref = keras_binary(p, t, ls=ls).astype(np.float64)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, ref, **LOSS_TOL[dtype])
    assert xent.binary_cross_entropy(p, t, label_smoothing=ls) == pytest.approx(ref.mean(), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_axis(isa, rng, dtype):
    p = random_probs(rng, (2, 5, 3, 7), dtype)
    t = (rng.random(p.shape) < 0.3).astype(dtype)
    ref = keras_binary(p, t).astype(np.float64)
    for axis in (-1, 1):
        per = xent.binary_cross_entropy(p, t, axis=axis, reduction="none")
        np.testing.assert_allclose(per, ref.sum(axis), rtol=1e-5 if dtype == np.float32 else 1e-13)
        m = xent.binary_cross_entropy(p, t, axis=axis)
        assert m == pytest.approx(ref.sum(axis).mean(), rel=1e-6)
    assert xent.binary_cross_entropy(p, t, axis=-1, reduction="none").shape == (2, 5, 3)


@pytest.mark.parametrize("axis", [None, 0])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("ls", [0.0, 0.3])
def test_binary_gradient_finite_differences(isa, rng, axis, reduction, ls):
    eps = 0.02
    p = rng.uniform(0.05, 0.95, (4, 6))
    p[0, 0], p[1, 1], p[2, 2] = 0.0, 1.0, 0.99  # clipped: zero gradient (0.99 stays inside)
    p[3, 3] = 0.005
    t = rng.random((4, 6))
    _, g = xent.binary_cross_entropy(p, t, eps=eps, axis=axis, label_smoothing=ls, reduction=reduction,
                                     return_grad=True)
    assert g[0, 0] == 0 and g[1, 1] == 0 and g[3, 3] == 0
    inner = np.ones_like(p, bool)
    inner[0, 0] = inner[1, 1] = False  # no finite differences outside [0, 1]
    f = lambda v: xent.binary_cross_entropy(  # noqa: E731
        np.clip(v, 0, 1), t, eps=eps, axis=axis, label_smoothing=ls, reduction=reduction
    )
    num = numeric_grad(f, p, h=1e-6)
    np.testing.assert_allclose(g[inner], num[inner], rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_exact_bounds_and_edges(isa, dtype):
    eps = 1e-7
    p = np.array([1, 0, 1, 0, 1 - 1e-12, 1e-12, 0.5], dtype=dtype)
    t = np.array([0, 1, 1, 0, 0, 1, 1], dtype=dtype)
    loss, grad = xent.binary_cross_entropy(p, t, reduction="none", return_grad=True)
    le, l1 = -np.log(eps), -np.log1p(-eps)
    np.testing.assert_allclose(loss[:4], [le, le, l1, l1], **LOSS_TOL[dtype])
    np.testing.assert_allclose(loss[6], np.log(2), **LOSS_TOL[dtype])
    np.testing.assert_allclose(loss, keras_binary(p, t).astype(np.float64), **LOSS_TOL[dtype])
    assert abs(float(loss[0]) - 16.11809565095832) < 1e-5  # Keras float32: 15.94
    np.testing.assert_array_equal(grad[:6], 0)
    # empty, 0-d
    e = np.zeros((0, 3), dtype)
    assert xent.binary_cross_entropy(e, e) == 0.0
    np.testing.assert_array_equal(xent.binary_cross_entropy(np.zeros((2, 0)), np.zeros((2, 0)), axis=1,
                                                            reduction="none"), [0, 0])
    assert float(xent.binary_cross_entropy(dtype(0.25), dtype(1), reduction="none")) == pytest.approx(np.log(4))


@pytest.mark.parametrize("fn", ["categorical", "binary"])
def test_bad_probabilities_named(fn):
    p = np.full((3, 4), 0.25)
    f = xent.categorical_cross_entropy if fn == "categorical" else xent.binary_cross_entropy
    t = np.zeros(3, int) if fn == "categorical" else np.zeros((3, 4))
    for bad, text in ((1.5, "1.5"), (-0.1, "-0.1"), (np.nan, "nan"), (np.inf, "inf")):
        q = p.copy()
        q[1, 2] = bad
        before = q.copy()
        with pytest.raises(ValueError, match=r"probs\[1, 2\] = " + text):
            f(q, t, return_grad=True)
        np.testing.assert_array_equal(q, before)
    with pytest.raises(ValueError, match="eps"):
        f(p, t, eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        f(p.astype(np.float32), t, eps=1e-50)
    with pytest.raises(ValueError, match="label_smoothing"):
        f(p, t, label_smoothing=1.5)
    with pytest.raises(TypeError):
        f(p.astype(complex), t)


def test_bad_labels_and_shapes():
    p = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match="out of range"):
        xent.categorical_cross_entropy(p, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="shape"):
        xent.categorical_cross_entropy(p, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        xent.binary_cross_entropy(p, np.zeros(4))


def test_nan_targets_are_not_a_probability_error():
    t = np.array([[0.5, np.nan]])
    loss = xent.categorical_cross_entropy(np.array([[0.5, 0.5]]), t, reduction="none")
    assert np.isnan(loss[0])


@pytest.mark.parametrize("shape", [(3000, 1000), (40, 50_000), (200_000, 3)])
def test_bit_identical_for_any_thread_count(isa, rng, shape):
    p = rng.random(shape).astype(np.float32)
    y = rng.integers(0, shape[1], shape[0])
    runs = [xent.categorical_cross_entropy(p, y, label_smoothing=0.1, return_grad=True, n_threads=n) for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss == runs[0][0] and np.array_equal(grad, runs[0][1])
    t = (rng.random(shape) < 0.5).astype(np.float32)
    b = [xent.binary_cross_entropy(p, t, return_grad=True, n_threads=n) for n in (1, 2, 3)]
    for loss, grad in b[1:]:
        assert loss == b[0][0] and np.array_equal(grad, b[0][1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_against_reference(isa, rng, dtype):
    """Analytic gradients in the input dtype against the float64 formula: binary per element
    (relative; computed as (p - t) / (p (1 - p)), no cancellation), categorical within a few
    ulp of the row's largest term."""
    tol = {np.float32: 4e-6, np.float64: 1e-13}[dtype]
    p = rng.uniform(1e-3, 1 - 1e-3, 5000).astype(dtype)
    t = rng.random(5000).astype(dtype)
    _, g = xent.binary_cross_entropy(p, t, reduction="sum", return_grad=True)
    pl, tl = p.astype(LD), t.astype(LD)
    ref = ((1 - tl) / (1 - pl) - tl / pl).astype(np.float64)
    np.testing.assert_allclose(g, ref, rtol=tol, atol=0)
    P = rng.uniform(0.01, 1, (50, 20)).astype(dtype)
    T = rng.dirichlet(np.ones(20), 50).astype(dtype)
    _, G = xent.categorical_cross_entropy(P, T, reduction="sum", return_grad=True)
    Pl, Tl = P.astype(LD), T.astype(LD)
    s = Pl.sum(1, keepdims=True)
    q = Pl / s
    R = ((Tl.sum(1, keepdims=True) - Tl / q) / s).astype(np.float64)
    scale = np.abs(Tl / q / s).max(1, keepdims=True).astype(np.float64)
    assert np.all(np.abs(G - R) <= 4 * tol * scale)
