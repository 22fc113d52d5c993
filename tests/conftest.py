import os

import numpy as np
import pytest

import xent
from xent import _core

RUNNABLE_ISAS = list(_core.config()["runnable_isas"])


def pytest_report_header(config):
    return f"xent._core: {_core.__file__} (isa {_core.config()['isa']}, runnable {', '.join(RUNNABLE_ISAS)})"


def pytest_sessionstart(session):
    # .ci/asan sets this: the tests must run against the sanitized build, not the installed one
    want = os.environ.get("XENT_EXPECT_CORE")
    if want and os.path.realpath(_core.__file__) != os.path.realpath(want):
        raise pytest.UsageError(f"xent._core was imported from {_core.__file__}, expected {want}")


@pytest.fixture(params=RUNNABLE_ISAS)
def isa(request):
    """Runs a test once per kernel set this machine can run, restoring the default after."""
    before = _core.config()["isa"]
    assert _core.set_isa(request.param)
    yield request.param
    _core.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# Tolerances of the accuracy contract (SEMANTICS.md): per-row losses.
LOSS_TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}
# Probabilities and gradients: a few ulp of the largest term in the row.
GRAD_TOL = {np.float32: dict(rtol=4e-6, atol=4e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def labels_on_live(rng, z):
    """Random labels, moved to an unmasked class (z > -inf) where the row has one."""
    n, C = z.shape
    y = rng.integers(0, C, n)
    for i in range(n):
        live = np.flatnonzero(z[i] > -np.inf)
        if live.size and z[i, y[i]] == -np.inf:
            y[i] = live[rng.integers(0, live.size)]
    return y


def assert_close_specials(a, b, dtype, tol=LOSS_TOL):
    """a within tol[dtype] of b where b is finite; NaN where b is NaN, the same infinity where b is."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(a[np.isinf(a)], b[np.isinf(b)])
    f = np.isfinite(b)
    np.testing.assert_allclose(a[f], b[f], **tol[dtype])


def mixed_rows(rng, n, C, dtype, special=False):
    """Rows of different scales and kinds in one call: a row given another lane's value shows."""
    z = rng.standard_normal((n, C)) * rng.choice([0.3, 3.0, 20.0], size=(n, 1))
    z += rng.uniform(-40, 40, size=(n, 1))
    if C > 1:
        z[1::5, rng.integers(0, C)] += 45.0  # confident: s = 1 + tiny
        z[2::7, : max(1, C // 3)] = -np.inf  # partly masked
        z[4::9] = (rng.random(C) * 80 + 1e4)  # huge: exp(z) overflows
        z[6::11] = rng.standard_normal(C) * 1e-30  # tiny
    if special:
        z[3::8] = -np.inf  # fully masked
        z[5::10, C // 2] = np.nan
        if n > 7:
            z[7, C - 1] = np.inf
    return z.astype(dtype)


# the focal and poly-1 losses, each with a few parameters (gamma; epsilon)
FACTOR_LOSSES = [("focal", 0.0), ("focal", 0.5), ("focal", 2.0), ("focal", 3.7), ("poly1", 2.0), ("poly1", -1.0)]


def factor_loss(kind, param, z, labels, **kw):
    """softmax_focal_loss with gamma=param, or poly1_cross_entropy with epsilon=param."""
    if kind == "focal":
        return xent.softmax_focal_loss(z, labels, gamma=param, **kw)
    return xent.poly1_cross_entropy(z, labels, epsilon=param, **kw)


def assert_in_place_and_threads(loss_fn, z, labels, loss, grad, **kw):
    """The gradient written over the logits (grad_out=z) and two threads give the bits of
    (loss, grad) = loss_fn(z, labels, reduction="none", return_grad=True, **kw)."""
    zi = z.copy()
    li = loss_fn(zi, labels, reduction="none", return_grad=True, grad_out=zi, **kw)[0]
    np.testing.assert_array_equal(li, loss)
    np.testing.assert_array_equal(zi, grad)
    for red in ("none", "sum", "mean"):
        one = loss_fn(z, labels, reduction=red, return_grad=True, n_threads=1, **kw)
        two = loss_fn(z, labels, reduction=red, return_grad=True, n_threads=2, **kw)
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[1], two[1])


def half_dtype(name):
    """np.float16, or ml_dtypes' bfloat16 (the test is skipped without ml_dtypes)."""
    if name == "bfloat16":
        return pytest.importorskip("ml_dtypes").bfloat16
    return np.float16


def assert_huge_weight_rows(loss, grad, want, want_grad, sw, big_row, dtype, others):
    """Per-row losses of sample weights sw against want * sw (exactly weighed: +inf where the
    product overflows), and the gradient of the row of weight sw[big_row] / that weight and
    of the rows `others` (a boolean mask) against the unweighted want_grad."""
    with np.errstate(over="ignore"):
        exact = (want * sw.astype(np.float64)).astype(dtype)
    assert_close_specials(loss, exact, dtype, LOSS_TOL)
    np.testing.assert_allclose(grad[big_row] / sw[big_row], want_grad[big_row], **GRAD_TOL[dtype])
    np.testing.assert_allclose(grad[others], want_grad[others], **GRAD_TOL[dtype])


# The rows-in-lanes kernels' cases (cpp/src/kernels/smallc-inl.hpp): C around the lane widths
# (f64 AVX2 4, f32 AVX2 8, AVX-512 16 / f64 8), the partial sums of 16 classes, and the
# switches to the row kernels (after 80 classes float64, 128 float32); groups of 1 row to
# more than two full ones
LANES_CLASSES = [1, 2, 3, 5, 8, 9, 16, 17, 33, 64, 80, 81, 127, 128, 129]
LANES_ROWS = [1, 3, 8, 9, 17, 33]
