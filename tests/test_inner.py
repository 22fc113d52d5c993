"""Integer-label softmax cross-entropy along a class axis that is not the last one
(PyTorch's (N, C, H, W) with axis=1), where the kernels put rows in vector lanes
(cpp/src/kernels/inner-inl.hpp): tiles of adjacent rows read a vector per class, other
layouts through a gather, partial groups and tiles, rows of every kind mixed in one group,
the options, against the extended-precision reference; and the same bits whatever the
layout, the thread count or the gradient buffer (in place or not)."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

# around the lane widths (4, 8), the tile (8 groups) and the tile's size limit (C > 512)
SHAPES = [(2, 3, 5, 7), (1, 2, 8, 8), (3, 21, 4, 13), (2, 150, 3, 30), (1, 1000, 2, 9), (2, 17, 1, 1),
          (0, 5, 4, 4), (2, 4, 0, 3)]


def _mixed(rng, shape, dtype):
    """Logits (N, C, H, W) with rows (along C) of every kind: huge, tiny, masked classes,
    fully masked, confident (a loss ~ exp(-30))."""
    N, C, H, W = shape
    z = (4 * rng.standard_normal(shape)).astype(dtype)
    if z.size == 0:
        return z
    rows = np.moveaxis(z, 1, -1).reshape(-1, C)  # a copy: write back below
    kinds = rng.integers(0, 6, size=len(rows))
    for i, k in enumerate(kinds):
        if k == 1:
            rows[i] = rng.random(C) * 80 + 6e3 * (dtype == np.float64) + 60
        elif k == 2:
            rows[i] = rng.standard_normal(C) * 1e-30
        elif k == 3 and C > 1:
            rows[i, rng.random(C) < 0.5] = -np.inf
            rows[i, rng.integers(C)] = 1.0
        elif k == 4 and i % 7 == 0:
            rows[i] = -np.inf
        elif k == 5:
            rows[i] = 0.0
            rows[i, rng.integers(C)] = 30.0
    return np.ascontiguousarray(np.moveaxis(rows.reshape(N, H, W, C), -1, 1))


def _labels(rng, z):
    """A label per row, on a class that is not masked where the row has one."""
    C = z.shape[1]
    rows = np.moveaxis(z, 1, -1).reshape(-1, C)
    y = rng.integers(0, C, len(rows))
    for i, r in enumerate(rows):
        live = np.flatnonzero(r > -np.inf)
        if len(live) and r[y[i]] == -np.inf:
            y[i] = rng.choice(live)
    return y.reshape(z.shape[:1] + z.shape[2:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_against_the_reference(isa, rng, dtype, shape):
    z = _mixed(rng, shape, dtype)
    y = _labels(rng, z)
    loss, grad = xent.softmax_cross_entropy(z, y, axis=1, reduction="none", return_grad=True)
    want, want_grad = ref.softmax_xent_labels(z, y, axis=1)
    assert loss.dtype == dtype and grad.dtype == dtype and grad.shape == z.shape
    np.testing.assert_allclose(loss, want, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, want_grad, **GRAD_TOL[dtype])
    # forward alone: the same losses
    np.testing.assert_array_equal(xent.softmax_cross_entropy(z, y, axis=1, reduction="none"), loss)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_confident_rows_keep_their_relative_accuracy(isa, dtype):
    # loss = log1p((C - 1) e^-d): rounding 1 + rest would lose it (1e-13 .. 1e-9 here)
    C, n = 21, 13
    d = np.linspace(20, 30, n)
    z = np.zeros((1, C, 1, n), dtype)
    z[0, 4, 0, :] = d
    y = np.full((1, 1, n), 4)
    loss = xent.softmax_cross_entropy(z, y, axis=1, reduction="none")
    want = np.log1p((C - 1) * np.exp(-d))
    assert np.all(loss > 0)
    np.testing.assert_allclose(loss[0, 0], want, rtol=LOSS_TOL[dtype]["rtol"], atol=0)


def test_nan_and_inf_stay_in_their_row(isa, rng):
    z = rng.standard_normal((2, 6, 1, 11)).astype(np.float32)
    y = rng.integers(0, 6, (2, 1, 11))
    z[0, 2, 0, 4] = np.nan
    z[1, :, 0, 3] = -np.inf
    z[1, 5, 0, 3] = np.nan  # NaN among masks: NaN, not "fully masked"
    z[1, 1, 0, 7] = np.inf
    loss, grad = xent.softmax_cross_entropy(z, y, axis=1, reduction="none", return_grad=True)
    bad = [(0, 0, 4), (1, 0, 3), (1, 0, 7)]
    for b in bad:  # NaN loss and gradient, as the row kernels and PyTorch give
        assert np.isnan(loss[b]) and np.isnan(grad[b[0], :, b[1], b[2]]).all()
    assert np.isnan(loss[1, 0, 3]) and np.isnan(grad[1, :, 0, 3]).all()
    ok = np.ones(loss.shape, bool)
    for b in bad:
        ok[b] = False
    want, want_grad = ref.softmax_xent_labels(z, y, axis=1)
    np.testing.assert_allclose(loss[ok], want[ok], **LOSS_TOL[np.float32])
    np.testing.assert_allclose(np.moveaxis(grad, 1, -1)[ok], np.moveaxis(want_grad, 1, -1)[ok],
                               **GRAD_TOL[np.float32])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_options_match_the_last_axis_call(isa, rng, dtype, reduction):
    """Class and sample weights, ignore_index (rows and whole groups of them) and the z-loss:
    the same values as the call with the class axis moved last (the row kernels)."""
    shape = (3, 37, 5, 11)
    z = (3 * rng.standard_normal(shape)).astype(dtype)
    y = rng.integers(0, shape[1], (3, 5, 11))
    y[0, 0, :] = 255  # a run of ignored rows (whole groups of lanes)
    y[1, 2, ::3] = 255
    w = (rng.random(shape[1]) + 0.5).astype(dtype)
    w[3] = 0.0
    sw = (rng.random(y.shape) + 0.5).astype(dtype)
    kw = dict(weight=w, sample_weight=sw, ignore_index=255, z_loss=1e-3, reduction=reduction, return_grad=True)
    loss, grad = xent.softmax_cross_entropy(z, y, axis=1, **kw)
    zl = np.ascontiguousarray(np.moveaxis(z, 1, -1))
    want, want_grad = xent.softmax_cross_entropy(zl, y, **kw)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[dtype])
    np.testing.assert_allclose(grad, np.moveaxis(want_grad, -1, 1), **GRAD_TOL[dtype])
    assert not grad[0, :, 0, :].any()  # ignored rows: zero gradient
    if reduction == "none":
        assert not loss[0, 0].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_weights_take_the_split_scale(isa, dtype):
    # rows whose weighted scale overflows the dtype go through the row kernels' split scale,
    # their neighbours in the same group stay in lanes: the reference, weighted in long double
    rng = np.random.default_rng(3)
    z = rng.standard_normal((1, 5, 1, 12)).astype(dtype)
    y = rng.integers(0, 5, (1, 1, 12))
    big = np.finfo(dtype).max / 4
    sw = np.ones((1, 1, 12), dtype)
    sw[0, 0, 5] = big
    with np.errstate(over="ignore"):
        loss, grad = xent.softmax_cross_entropy(z, y, axis=1, sample_weight=sw, weight=np.full(5, 8.0, dtype),
                                                reduction="none", return_grad=True)
    want, want_grad = ref.softmax_xent_labels(z, y, axis=1)
    scale = 8.0 * sw.astype(np.longdouble)
    with np.errstate(over="ignore"):  # rounded to the dtype: +-inf where they overflow it
        np.testing.assert_allclose(loss, (want * scale).astype(dtype), rtol=LOSS_TOL[dtype]["rtol"])
        g = (want_grad * scale[:, None]).astype(dtype)
    np.testing.assert_allclose(grad, g, rtol=GRAD_TOL[dtype]["rtol"], atol=GRAD_TOL[dtype]["atol"])
    assert np.isfinite(grad[0, :, 0, :5]).all() and np.isfinite(grad[0, :, 0, 6:]).all()


def _layouts(a):
    """a (N, C, H, W) in other memory layouts, the same values: C-order, Fortran order,
    channels last, strided, reversed."""
    big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    strided = big[::2, ::2, ::2, ::2]
    strided[...] = a
    rev = np.ascontiguousarray(a[::-1, ::-1, ::-1, ::-1])[::-1, ::-1, ::-1, ::-1]
    chlast = np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
    return {"c": np.ascontiguousarray(a), "f": np.asfortranarray(a), "channels_last": chlast, "strided": strided,
            "reversed": rev}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 40, 600])
def test_same_bits_in_every_layout_thread_count_and_buffer(isa, rng, dtype, C):
    shape = (2, C, 3, 45)
    z = _mixed(rng, shape, dtype)
    y = _labels(rng, z).astype(np.int32)
    y[0, 1, 3:20] = -1
    kw = dict(axis=1, ignore_index=-1, reduction="none", return_grad=True)
    want, want_grad = xent.softmax_cross_entropy(z, y, **kw)
    for name, a in _layouts(z).items():
        for nt in (1, 2):
            loss, grad = xent.softmax_cross_entropy(a, y, n_threads=nt, **kw)
            np.testing.assert_array_equal(loss, want, err_msg=f"{name} {nt}")
            np.testing.assert_array_equal(grad, want_grad, err_msg=f"{name} {nt}")
        # the gradient into a buffer of another layout, and over the logits themselves
        out = _layouts(np.zeros_like(z))["f"]
        loss, grad = xent.softmax_cross_entropy(a, y, grad_out=out, **kw)
        assert grad is out
        np.testing.assert_array_equal(out, want_grad, err_msg=name)
        a = a.copy(order="K")
        loss, grad = xent.softmax_cross_entropy(a, y, grad_out=a, **kw)
        np.testing.assert_array_equal(loss, want, err_msg=f"{name} in place")
        np.testing.assert_array_equal(a, want_grad, err_msg=f"{name} in place")


def test_many_rows_on_two_threads(rng):
    # tasks of whole rows split the tiles differently: the same losses and gradient bits
    z = rng.standard_normal((4, 19, 64, 65)).astype(np.float32)
    y = rng.integers(0, 19, (4, 64, 65))
    one = xent.softmax_cross_entropy(z, y, axis=1, return_grad=True, n_threads=1)
    two = xent.softmax_cross_entropy(z, y, axis=1, return_grad=True, n_threads=2)
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[1], two[1])
    want, want_grad = ref.softmax_xent_labels(z, y, axis=1)
    np.testing.assert_allclose(one[0], want.mean(), rtol=2e-6)
    np.testing.assert_allclose(one[1], want_grad / want.size, rtol=4e-6, atol=1e-10)


def test_class_axis_zero_of_a_matrix(isa, rng):
    # (C, N) with axis=0: rows adjacent, classes N apart
    z = rng.standard_normal((30, 1000))
    y = rng.integers(0, 30, 1000)
    loss, grad = xent.softmax_cross_entropy(z, y, axis=0, reduction="none", return_grad=True)
    want, want_grad = ref.softmax_xent_labels(z, y, axis=0)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[np.float64])
    np.testing.assert_allclose(grad, want_grad, **GRAD_TOL[np.float64])
