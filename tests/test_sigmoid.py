"""sigmoid_cross_entropy against the extended-precision reference."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 25, 8191, 8193, 50_000])
def test_elementwise_random(isa, rng, dtype, n):
    z = (rng.standard_normal(n) * 5).astype(dtype)
    t = rng.random(n).astype(dtype)
    t[::3] = np.round(t[::3])
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    rl, rg = ref.sigmoid_xent(z, t)
    assert loss.dtype == dtype and loss.shape == z.shape
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_extremes_without_cancellation(isa, dtype):
    big = np.finfo(dtype).max
    z = np.array([1e4, -1e4, 1e4, -1e4, 30, -30, 0, 1e-30, big, -big, 88, -88, 17, -745], dtype=dtype)
    for tv in (0.0, 1.0, 0.5, 1 - 1e-6, 1e-6):
        t = np.full_like(z, tv)
        loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
        rl, rg = ref.sigmoid_xent(z, t)
        assert not np.isnan(loss).any() and not np.isnan(grad).any()
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(loss, rl.astype(dtype), **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


def test_infinite_logits(isa):
    z = np.array([-np.inf, np.inf, -np.inf, np.inf])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, [0, 0, np.inf, np.inf])
    np.testing.assert_array_equal(grad, [0, 0, -1, 1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_detection_head_axis(isa, rng, dtype):
    z = (rng.standard_normal((2, 13, 13, 3, 20)) * 2).astype(dtype)
    t = (rng.random(z.shape) < 0.1).astype(dtype)
    per = xent.sigmoid_cross_entropy(z, t, axis=-1, reduction="none")
    assert per.shape == (2, 13, 13, 3)
    rl, rg = ref.sigmoid_xent(z, t)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else LOSS_TOL[dtype]
    np.testing.assert_allclose(per, rl.sum(-1), **tol)
    m, g = xent.sigmoid_cross_entropy(z, t, axis=-1, reduction="mean", return_grad=True)
    np.testing.assert_allclose(m, rl.sum(-1).mean(), rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(g, rg / per.size, rtol=GRAD_TOL[dtype]["rtol"], atol=GRAD_TOL[dtype]["atol"] / per.size)
    # other axes: sum over axis 1
    per1 = xent.sigmoid_cross_entropy(z, t, axis=1, reduction="none")
    np.testing.assert_allclose(per1, rl.sum(1), **tol)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("axis", [None, 1])
def test_gradient_matches_finite_differences(isa, rng, reduction, axis):
    z = rng.standard_normal((3, 5)) * 3
    t = rng.random((3, 5))
    _, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, reduction=reduction, return_grad=True)
    num = ref.numeric_grad(lambda v: xent.sigmoid_cross_entropy(v, t, axis=axis, reduction=reduction), z)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_reductions(isa, rng):
    z = rng.standard_normal((40, 7)).astype(np.float32)
    t = rng.random((40, 7)).astype(np.float32)
    rl, _ = ref.sigmoid_xent(z, t)
    np.testing.assert_allclose(xent.sigmoid_cross_entropy(z, t, reduction="sum"), rl.sum(), rtol=1e-6)
    np.testing.assert_allclose(xent.sigmoid_cross_entropy(z, t), rl.mean(), rtol=1e-6)


def test_bool_and_int_targets(isa, rng):
    z = rng.standard_normal(30)
    t = rng.random(30) < 0.5
    expect = xent.sigmoid_cross_entropy(z, t.astype(np.float64), reduction="none")
    np.testing.assert_array_equal(xent.sigmoid_cross_entropy(z, t, reduction="none"), expect)
    np.testing.assert_array_equal(xent.sigmoid_cross_entropy(z, t.astype(np.int8), reduction="none"), expect)


def test_strided_and_scalar_and_empty(isa, rng):
    base = rng.standard_normal((10, 12))
    z, t = base[::2, ::3], rng.random((10, 12))[1::2, ::3]
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    rl, rg = ref.sigmoid_xent(z, t)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float64])
    np.testing.assert_allclose(grad, rg, **GRAD_TOL[np.float64])
    l0 = xent.sigmoid_cross_entropy(np.float64(2.0), np.float64(1.0), reduction="none")
    np.testing.assert_allclose(l0, np.log1p(np.exp(-2.0)), rtol=1e-15)
    e = np.zeros((0, 3))
    assert xent.sigmoid_cross_entropy(e, e) == 0.0
    assert xent.sigmoid_cross_entropy(e, e, axis=1, reduction="none").shape == (0,)
    z0 = np.zeros((4, 0))
    np.testing.assert_array_equal(xent.sigmoid_cross_entropy(z0, z0, axis=1, reduction="none"), np.zeros(4))


def test_nan_confined(isa):
    z = np.zeros((3, 5), dtype=np.float32)
    z[1, 2] = np.nan
    loss, grad = xent.sigmoid_cross_entropy(z, np.zeros_like(z), axis=1, reduction="none", return_grad=True)
    assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
    assert np.isnan(grad[1, 2]) and np.isfinite(np.delete(grad.ravel(), 7)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_options_out_of_cache_same_values(isa, rng, dtype):
    """Jobs of 16 MiB or more (logits, targets and gradient) run the option loops with each
    block's operands prefetched ahead; every element's loss and gradient is the one the same
    rows give in calls small enough to run without, and the sum is within the float64
    reference's tolerance."""
    n, c = 1400 if dtype == np.float32 else 700, 1000  # 16.8 MB
    z = (4 * rng.standard_normal((n, c))).astype(dtype)
    t = (rng.random((n, c)) < 0.3).astype(dtype)
    w = (rng.random(c) + 0.5).astype(dtype)
    for f, kw in (
        (xent.sigmoid_cross_entropy, dict(weight=w, pos_weight=w)),
        (xent.sigmoid_cross_entropy, dict(label_smoothing=0.1)),
        (xent.sigmoid_focal_loss, dict(gamma=2.0)),
    ):
        loss, grad = f(z, t, reduction="none", return_grad=True, **kw)
        for r0 in range(0, n, 100):
            lr, gr = f(z[r0 : r0 + 100], t[r0 : r0 + 100], reduction="none", return_grad=True, **kw)
            assert np.array_equal(loss[r0 : r0 + 100], lr) and np.array_equal(grad[r0 : r0 + 100], gr)
    # a weight per element of a 1-d input (prefetched too), zeros among them
    zf, tf = z.ravel(), t.ravel()
    ew = rng.random(zf.size).astype(dtype)
    ew[::7] = 0.0
    loss, grad = xent.sigmoid_cross_entropy(zf, tf, sample_weight=ew, reduction="none", return_grad=True)
    for e0 in range(0, zf.size, 100_000):
        part = slice(e0, e0 + 100_000)
        lr, gr = xent.sigmoid_cross_entropy(zf[part], tf[part], sample_weight=ew[part], reduction="none",
                                            return_grad=True)
        assert np.array_equal(loss[part], lr) and np.array_equal(grad[part], gr)
    mean, mgrad = xent.sigmoid_cross_entropy(zf, tf, sample_weight=ew, return_grad=True)
    rl, rg = ref.sigmoid_xent(zf.astype(np.float64), tf.astype(np.float64))
    e64 = ew.astype(np.float64)
    np.testing.assert_allclose(mean, (rl * e64).sum() / e64.sum(), **LOSS_TOL[dtype])
    np.testing.assert_allclose(mgrad, rg * e64 / e64.sum(), rtol=GRAD_TOL[dtype]["rtol"], atol=1e-14)
    loss = xent.sigmoid_cross_entropy(z, t, weight=w, reduction="sum")
    rl, _ = ref.sigmoid_xent(z.astype(np.float64), t.astype(np.float64))
    np.testing.assert_allclose(loss, (rl * w.astype(np.float64)).sum(), **LOSS_TOL[dtype])
