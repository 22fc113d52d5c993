"""The row kernels leave the log of each row's sum to a batch of rows (LogBatch in
cpp/src/kernels/units-inl.hpp), finished together in the rows' order: every row keeps its
own value, weight and place in the per-row output and the sums, for any row count (full
and partial batches), rows of every kind in one batch, and any split between threads."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL, assert_close_specials, labels_on_live

# all past the rows-in-lanes limits (128 float32, 80 float64): the row kernels; 2049 and
# 5000 span more than one block of 2048 (the gradient then needs the log at once)
CLASSES = [129, 300, 2048, 2049, 5000]
ROWS = [1, 15, 16, 17, 33, 70]
DTYPES = [np.float32, np.float64]


def _mixed(rng, n, C, dtype, special=True):
    """Logits whose rows differ in scale and kind, so that a row given another row's log
    or weight shows; with `special`, masked, partly masked, NaN and +inf rows among them."""
    z = rng.standard_normal((n, C)) * rng.choice([0.5, 3.0, 20.0], size=(n, 1))
    z += rng.uniform(-50, 50, size=(n, 1))
    z[1::7, rng.integers(0, C)] += 40.0  # confident rows: s = 1 + tiny
    z[2::9, : C // 3] = -np.inf  # partly masked
    if special:
        z[3::11] = -np.inf  # fully masked: lse -inf, loss +inf
        z[5::13, C // 2] = np.nan
        z[6::17, C - 1] = np.inf
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("n", ROWS)
def test_per_row_values(isa, rng, dtype, C, n):
    z = _mixed(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    want, want_grad = ref.softmax_xent_labels(z, y)
    assert_close_specials(xent.softmax_cross_entropy(z, y, reduction="none"), want, dtype)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    assert_close_specials(loss, want, dtype)
    assert_close_specials(xent.logsumexp(z, axis=-1)[~np.isnan(z).any(1) & ~np.isposinf(z).any(1)],
           ref.logsumexp(z)[~np.isnan(z).any(1) & ~np.isposinf(z).any(1)], dtype)
    finite = np.isfinite(want)
    assert_close_specials(grad[finite], want_grad[finite], dtype, GRAD_TOL)
    assert_close_specials(xent.softmax(z[finite], axis=-1), ref.softmax(z[finite]), dtype, GRAD_TOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("n", [15, 17, 33])
def test_smoothing_and_targets(isa, rng, dtype, C, n):
    # their rows leave T log(s) to the batch, T the row's target mass (not 1)
    z = _mixed(rng, n, C, dtype, special=False)
    y = labels_on_live(rng, z)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    eps = 0.2
    live = z > -np.inf
    t = np.where(live, eps / live.sum(1, keepdims=True), 0.0)
    t[np.arange(n), y] += 1 - eps
    for weight in (None, cw):
        want = ref.softmax_xent_targets(z, t if weight is None else t * weight)[0]
        for grad in (False, True):
            out = xent.softmax_cross_entropy(z, y, weight=weight, label_smoothing=eps, reduction="none",
                                             return_grad=grad)
            assert_close_specials(out[0] if grad else out, want, dtype)
    soft = rng.random((n, C)) ** 3 * rng.choice([0.0, 0.5, 1.0, 2.0], size=(n, 1)) / C * 4
    soft[~live] = 0.0
    soft = soft.astype(dtype)
    for weight in (None, cw):
        want = ref.softmax_xent_targets(z, soft if weight is None else soft * weight)[0]
        for grad in (False, True):
            out = xent.softmax_cross_entropy(z, soft, weight=weight, reduction="none", return_grad=grad)
            assert_close_specials(out[0] if grad else out, want, dtype)
        got = xent.softmax_cross_entropy(z, soft, weight=weight, reduction="sum")
        np.testing.assert_allclose(got, np.sum(want), **LOSS_TOL[dtype])


# log_softmax (and z-loss gradients) batch rows up to 32 KiB a batch: up to 512 float32 /
# 256 float64 classes on AVX-512, 1024 / 512 on AVX2, 4096 / 2048 on the scalar set
LOG_SOFTMAX_CLASSES = [81, 100, 129, 160, 256, 257, 512, 513, 1024, 1025, 2048]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LOG_SOFTMAX_CLASSES)
@pytest.mark.parametrize("n", ROWS)
def test_log_softmax_rows(isa, rng, dtype, C, n):
    z = _mixed(rng, n, C, dtype)
    want = ref.log_softmax(z)
    assert_close_specials(xent.log_softmax(z, axis=-1), want, dtype, GRAD_TOL)
    inplace = z.copy()
    assert xent.log_softmax(inplace, axis=-1, out=inplace) is inplace
    assert_close_specials(inplace, want, dtype, GRAD_TOL)
    wide = np.full((n, 2 * C), 7.0, dtype)  # rows apart from each other: still batched
    xent.log_softmax(z, axis=-1, out=wide[:, :C])
    assert_close_specials(wide[:, :C], want, dtype, GRAD_TOL)
    assert np.all(wide[:, C:] == 7.0)
    strided = np.empty((n, 2 * C), dtype)[:, ::2]  # classes 2 apart: row by row
    xent.log_softmax(z, axis=-1, out=strided)
    assert_close_specials(strided, want, dtype, GRAD_TOL)


def _zloss_ref(z, y, zl):
    loss, _ = ref.softmax_xent_labels(z, y)
    lse = ref.logsumexp(z)
    p = ref.softmax(z)
    grad = (1 + 2 * zl * lse)[:, None] * p
    grad[np.arange(len(y)), y] -= 1.0
    return loss + zl * lse**2, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [129, 256, 257, 512, 513, 1024, 2049])
@pytest.mark.parametrize("n", [1, 17, 33])
def test_z_loss_rows(isa, rng, dtype, C, n):
    # z-loss rows leave their log, and with a gradient its rescaling pass, to the batch
    z = _mixed(rng, n, C, dtype, special=False)
    y = labels_on_live(rng, z)
    zl = 1e-3
    want, want_grad = _zloss_ref(z, y, zl)
    assert_close_specials(xent.softmax_cross_entropy(z, y, z_loss=zl, reduction="none"), want, dtype)
    loss, grad = xent.softmax_cross_entropy(z, y, z_loss=zl, reduction="none", return_grad=True)
    assert_close_specials(loss, want, dtype)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    sw = rng.uniform(0.0, 3.0, n)
    loss, grad = xent.softmax_cross_entropy(z, y, z_loss=zl, sample_weight=sw, reduction="sum", return_grad=True)
    np.testing.assert_allclose(loss, np.sum(sw * want), **LOSS_TOL[dtype])
    assert_close_specials(grad, sw[:, None] * want_grad, dtype, GRAD_TOL)
    inplace = z.copy()  # the gradient over the logits
    loss, grad = xent.softmax_cross_entropy(inplace, y, z_loss=zl, reduction="none", return_grad=True,
                                            grad_out=inplace)
    assert grad is inplace
    assert_close_specials(loss, want, dtype)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    strided = np.empty((n, 2 * C), dtype)[:, ::2]  # written row by row, at once
    loss, grad = xent.softmax_cross_entropy(z, y, z_loss=zl, reduction="none", return_grad=True, grad_out=strided)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    big = np.full(n, np.finfo(dtype).max / 4)  # weights whose product with the scale is split
    loss, grad = xent.softmax_cross_entropy(z, y, z_loss=zl, sample_weight=big, weight=np.full(C, 8.0),
                                            reduction="none", return_grad=True)
    _, g1 = xent.softmax_cross_entropy(z, y, z_loss=zl, reduction="none", return_grad=True)
    with np.errstate(over="ignore"):  # the unweighted gradient times the weights, rounded once
        exact = (np.longdouble(8) * big[:, None].astype(np.longdouble) * g1).astype(dtype)
    assert_close_specials(grad, exact, dtype, GRAD_TOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("n", ROWS)
def test_weighted_rows_and_sums(isa, rng, dtype, C, n):
    z = _mixed(rng, n, C, dtype, special=False)
    y = labels_on_live(rng, z)
    cw = rng.uniform(0.1, 4.0, C)
    sw = rng.uniform(0.0, 3.0, n)
    sw[::5] = 0.0
    ig = int(y[n // 2])
    rows = ref.softmax_xent_labels(z, y)[0]
    w = cw[y] * sw * (y != ig)
    kw = dict(weight=cw, sample_weight=sw, ignore_index=ig)
    for grad in (False, True):
        out = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=grad, **kw)
        assert_close_specials(out[0] if grad else out, rows * w, dtype)
        got = xent.softmax_cross_entropy(z, y, reduction="sum", return_grad=grad, **kw)
        np.testing.assert_allclose(got[0] if grad else got, np.sum(rows * w), **LOSS_TOL[dtype])
        got = xent.softmax_cross_entropy(z, y, reduction="mean", return_grad=grad, **kw)
        want = np.sum(rows * w) / np.sum(w) if np.sum(w) > 0 else 0.0
        np.testing.assert_allclose(got[0] if grad else got, want, **LOSS_TOL[dtype])
    np.testing.assert_allclose(xent.logsumexp(z, axis=-1), ref.logsumexp(z), **LOSS_TOL[dtype])


@pytest.mark.parametrize("C", [300, 2049])
def test_threads_split_batches_bit_for_bit(rng, C):
    # 200 rows of 300 or 2049 float32 go to two threads, which split the row batches
    z = _mixed(rng, 200, C, np.float32, special=False)
    y = labels_on_live(rng, z)
    sw = rng.uniform(0.0, 2.0, 200)
    for red in ("none", "sum", "mean"):
        one = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction=red, return_grad=True, n_threads=1)
        two = xent.softmax_cross_entropy(z, y, sample_weight=sw, reduction=red, return_grad=True, n_threads=2)
        assert np.asarray(one[0]).tobytes() == np.asarray(two[0]).tobytes()
        assert one[1].tobytes() == two[1].tobytes()
    one = xent.logsumexp(z, axis=-1, n_threads=1)
    assert one.tobytes() == xent.logsumexp(z, axis=-1, n_threads=2).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_jobs_same_values(isa, rng, dtype):
    # Jobs of 16 MiB or more (logits and output) prefetch the output rows ahead for writing
    # (log_softmax's output pass; the exponentials' pass of rows of one block does at any
    # size): every row is the one the same rows give in calls small enough to run without,
    # masked, NaN and +inf rows included, on one and two threads.
    n, C = (4200, 500) if dtype == np.float32 else (2100, 500)  # 16.8 MB of logits and output
    z = _mixed(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    lsm = xent.log_softmax(z, axis=-1)
    sm = xent.softmax(z, axis=-1)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    t = rng.random((n, C)).astype(dtype)  # soft targets (their rows prefetched ahead too)
    t[np.isneginf(z)] = 0.0
    tloss, tgrad = xent.softmax_cross_entropy(z, t, reduction="none", return_grad=True)
    assert xent.log_softmax(z, axis=-1, n_threads=2).tobytes() == lsm.tobytes()
    for r0 in range(0, n, 300):
        rows = slice(r0, r0 + 300)
        assert np.array_equal(xent.log_softmax(z[rows], axis=-1), lsm[rows], equal_nan=True)
        assert np.array_equal(xent.softmax(z[rows], axis=-1), sm[rows], equal_nan=True)
        lr, gr = xent.softmax_cross_entropy(z[rows], y[rows], reduction="none", return_grad=True)
        assert np.array_equal(lr, loss[rows], equal_nan=True) and np.array_equal(gr, grad[rows], equal_nan=True)
        lr, gr = xent.softmax_cross_entropy(z[rows], t[rows], reduction="none", return_grad=True)
        assert np.array_equal(lr, tloss[rows], equal_nan=True) and np.array_equal(gr, tgrad[rows], equal_nan=True)
    live = np.isfinite(z).all(axis=1)
    assert_close_specials(lsm[live], ref.log_softmax(z[live].astype(np.float64)), dtype)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("C", [300, 2049])
def test_half_rows(isa, rng, half, C):
    # half logits are read by the forward pass directly, and their rows batched the same way
    if half == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dt = ml_dtypes.bfloat16
    else:
        dt = np.float16
    z = _mixed(rng, 37, C, np.float32).clip(-60000, 60000).astype(dt)
    y = labels_on_live(rng, z.astype(np.float32))
    zf = z.astype(np.float32)
    assert_close_specials(xent.softmax_cross_entropy(z, y, reduction="none"), ref.softmax_xent_labels(zf, y)[0],
                          np.float32)
    ok = ~np.isnan(zf).any(1) & ~np.isposinf(zf).any(1)
    assert_close_specials(xent.logsumexp(z, axis=-1)[ok], ref.logsumexp(zf)[ok], np.float32)


def test_3d_rows_land_in_place(rng):
    # per-row outputs of a (4, 9, C) batch: each finished row goes to its own (i, j)
    z = _mixed(rng, 36, 300, np.float64, special=False).reshape(4, 9, 300)
    y = rng.integers(0, 300, (4, 9))
    want = ref.softmax_xent_labels(z.reshape(36, 300), y.reshape(36))[0].reshape(4, 9)
    np.testing.assert_allclose(xent.softmax_cross_entropy(z, y, reduction="none"), want, **LOSS_TOL[np.float64])
    np.testing.assert_allclose(xent.logsumexp(z, axis=-1), ref.logsumexp(z), **LOSS_TOL[np.float64])
