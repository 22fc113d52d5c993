"""The poly-1 and focal losses of integer labels: for small C, where the kernels put rows in
vector lanes (cpp/src/kernels/smallc-inl.hpp, lanes_factor; C <= 128 float32, 80 float64),
and above, where the row kernels leave each row's log and factor (and, for rows of one
block, the gradient's rescaling pass) to a batch of rows (LogBatch, units-inl.hpp) or
compute them at once (other layouts, the soft cap, huge weights, half
storage, NaN rows): q = 1 - p_y from the sums, q**gamma in double lanes (label_factor_lanes
on both), with alpha, class and sample weights, ignore_index and the soft cap, masked
classes, rows of every kind in one group or batch, partial groups, every layout, half
storage and two threads, against an extended-precision reference of Keras's and optax's
formulas."""
from functools import partial

import numpy as np
import pytest

import xent
from conftest import (
    FACTOR_LOSSES,
    GRAD_TOL,
    LANES_CLASSES,
    LANES_ROWS,
    LOSS_TOL,
    assert_close_specials,
    assert_huge_weight_rows,
    assert_in_place_and_threads,
    factor_loss,
    half_dtype,
    labels_on_live,
    mixed_rows,
)

LD = np.longdouble
DTYPES = [np.float32, np.float64]


def _reference(kind, param, z, y, alpha=None, cap=None):
    """Per-row loss a_y f(p_y) and gradient a_y G_y (p - onehot(y)), in long double
    (xent_more-inl.hpp's class_term): focal f = (1 - p)^g (-log p), G = (1 - p)^g (1 + g p
    (-log p) / (1 - p)); poly-1 f = -log p + eps (1 - p), G = 1 + eps p. A fully masked row:
    +inf (0 if a_y = 0), zero gradient; a NaN or +inf logit: NaN (the loss 0 if a_y = 0)."""
    zz = z.astype(LD)
    if cap is not None:
        with np.errstate(invalid="ignore"):
            zz = np.where(zz == -np.inf, zz, LD(cap) * np.tanh(zz / LD(cap)))
    n, C = z.shape
    a = np.ones(C, dtype=LD) if alpha is None else np.asarray(alpha, dtype=LD)
    loss = np.zeros(n, dtype=LD)
    grad = np.zeros((n, C), dtype=LD)
    for i in range(n):
        r, ai = zz[i], a[y[i]]
        if np.isnan(r).any() or np.isposinf(r).any():
            loss[i] = 0 if ai == 0 else np.nan
            grad[i] = np.nan
            continue
        m = r.max()
        if m == -np.inf:
            loss[i] = 0 if ai == 0 else np.inf
            continue
        e = np.exp(r - m)
        s = e.sum()
        top = r == m  # log(s) as log1p of the rest (1 + 1e-26 rounds to 1 in long double)
        nlp = (m - r[y[i]]) + np.log1p((top.sum() - 1) + e[~top].sum())
        p = np.exp(-nlp)
        q = -np.expm1(-nlp)
        if kind == "focal":
            qg = LD(1) if param == 0 else q ** LD(param)
            f = 0 if qg == 0 else qg * nlp
            g = qg if p == 0 else qg * (1 + LD(param) * p * (nlp / q if q > 0 else LD(1)))
        else:
            f = nlp + LD(param) * q
            g = 1 + LD(param) * p
        loss[i] = 0 if ai == 0 else ai * f
        grad[i] = ai * g * (e / s)
        grad[i, y[i]] -= ai * g
    if cap is not None:  # the chain rule through the cap: sech^2(z / cap)
        with np.errstate(invalid="ignore"):
            d = np.where(z == -np.inf, 0, 1 / np.cosh(z.astype(LD) / LD(cap)) ** 2)
        grad = np.where(np.isnan(grad), grad, grad * d)
    return loss.astype(np.float64), grad.astype(np.float64)


def _check(kind, param, z, y, dtype, alpha=None, cw=None, sw=None, ignore=None, cap=None):
    want, want_grad = _reference(kind, param, z, y, alpha, cap)
    rw = np.ones(len(y))
    if cw is not None:
        rw = rw * cw[y].astype(np.float64)
    if sw is not None:
        rw = rw * sw.astype(np.float64)
    if ignore is not None:
        rw = np.where(y == ignore, 0.0, rw)
    with np.errstate(invalid="ignore"):  # a row of weight 0 adds exactly 0, whatever its logits
        want = np.where(rw == 0, 0.0, want * rw)
        want_grad = np.where(rw[:, None] == 0, 0.0, want_grad * rw[:, None])
    kw = dict(weight=cw, sample_weight=sw, ignore_index=ignore, softcap=cap, reduction="none")
    if kind == "focal":
        kw["alpha"] = alpha
    loss, grad = factor_loss(kind, param, z, y, return_grad=True, **kw)
    assert_close_specials(loss, want, dtype, LOSS_TOL)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    # the forward-only call gives the same losses, and the weighted mean is theirs (within
    # the per-row contract: poly-1 with eps = -1 is ~q^2 / 2 on confident rows, q = 1 - p_y,
    # from -log p_y - q: not relatively accurate, as -log p_y is accurate to ~u q only)
    np.testing.assert_array_equal(factor_loss(kind, param, z, y, **kw), loss)
    kw["reduction"] = "mean"
    if np.all(np.isfinite(want)) and rw.sum() > 0:
        np.testing.assert_allclose(factor_loss(kind, param, z, y, **kw), want.sum() / rw.sum(),
                                   rtol=1e-12 if dtype == np.float64 else 3e-6, atol=LOSS_TOL[dtype]["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LANES_CLASSES)
@pytest.mark.parametrize("kind, param", FACTOR_LOSSES)
def test_matches_reference(isa, rng, dtype, C, kind, param):
    for n in LANES_ROWS:
        z = mixed_rows(rng, n, C, dtype)
        y = labels_on_live(rng, z)
        _check(kind, param, z, y, dtype)


# The row kernels: C past the lanes (81 float64, 129 float32), batches of 16 (AVX-512), 8
# (AVX2) or 2 rows (scalar) or of 32 KiB of waiting gradient rows (256 float64 / 512
# float32 classes at 16 rows), full, partial and ended by the bytes, up to a block (2048
# classes: the gradient of a longer row does not wait)
ROW_CLASSES = [81, 160, 256, 257, 512, 513, 1000, 1025, 2048, 2049, 4099]
ROW_ROWS = [1, 7, 8, 16, 17, 40]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", ROW_CLASSES)
@pytest.mark.parametrize("kind, param", FACTOR_LOSSES)
def test_row_kernels_match_reference(isa, rng, dtype, C, kind, param):
    for n in ROW_ROWS:
        z = mixed_rows(rng, n, C, dtype, special=n == 40)  # NaN, +inf, fully masked rows among them
        y = labels_on_live(rng, z)
        _check(kind, param, z, y, dtype)
        if kind == "focal" and n == 40:
            alpha = rng.uniform(0.1, 1.0, C)
            alpha[y[::3]] = 0  # a_y = 0: the row's loss 0, NaN and masked rows too
            _check(kind, param, z, y, dtype, alpha=alpha)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [2, 9, 40, 129, 300, 1000])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("focal", 0.0), ("poly1", 2.0)])
def test_options(isa, rng, dtype, C, kind, param):
    n = 37
    z = mixed_rows(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    sw = rng.uniform(0.0, 3.0, n).astype(dtype)
    sw[::6] = 0  # rows of weight 0: exactly 0 and a zero gradient
    alpha = rng.uniform(0.1, 1.0, C)
    alpha[y[3]] = 0  # a_y = 0 weighs the row's loss 0
    _check(kind, param, z, y, dtype, cw=cw, sw=sw, ignore=int(y[5]))
    if kind == "focal":
        _check(kind, param, z, y, dtype, alpha=alpha, cw=cw)
    zc = (rng.standard_normal((n, C)) * 8).astype(dtype)
    zc[2, : C // 2] = -np.inf
    yc = labels_on_live(rng, zc)
    _check(kind, param, zc, yc, dtype, alpha=alpha if kind == "focal" else None, cw=cw, cap=5.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 9, 40])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("poly1", -1.0)])
def test_special_rows_stay_in_their_lane(isa, rng, dtype, C, kind, param):
    # fully masked, NaN and +inf rows among finite ones: each row gets its own value; with
    # a_y = 0 a NaN or fully masked row still weighs 0
    n = 33
    z = mixed_rows(rng, n, C, dtype, special=True)
    y = labels_on_live(rng, z)
    _check(kind, param, z, y, dtype)
    if kind == "focal":
        alpha = np.linspace(0.0, 1.0, C)  # class 0 of alpha 0
        y[3::8] = 0
        y[5::10] = 0
        _check(kind, param, z, y, dtype, alpha=alpha)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 4, 33, 129, 300])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("focal", 0.0), ("poly1", 2.0)])
def test_labels_confident_and_masked(isa, dtype, C, kind, param):
    # a label on a masked class: +inf, and cross-entropy's gradient times G = 1 (p_y = 0); a
    # confident label: 1 - p_y ~ 1e-26 from the sums, not 1 - p_y rounded to 0 (C = 1: q = 0)
    z = np.zeros((3, C), dtype=dtype)
    z[0, 0] = -np.inf
    z[1, 0] = 60.0
    z[2, -1] = -np.inf
    y = np.array([0, 0, 0])
    if C == 1:
        z, y = z[1:2], y[1:2]
    loss, grad = factor_loss(kind, param, z, y, reduction="none", return_grad=True)
    want, want_grad = _reference(kind, param, z, y)
    assert_close_specials(loss, want, dtype, LOSS_TOL)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    if C > 1:
        assert loss[0] == np.inf and np.isfinite(grad[0]).all() and grad[0, 0] == -1
        ce = xent.softmax_cross_entropy(z[:1], y[:1], reduction="none", return_grad=True)[1]
        np.testing.assert_array_equal(grad[:1], ce)
        if kind == "focal" and param > 0 and dtype == np.float64:
            assert 0 < loss[1] < 1e-40  # (1 - p_y)^2 (-log p_y), 1 - p_y = (C - 1) e^-60
    if kind == "focal":  # alpha_y = 0 weighs the label on a masked class (+inf) 0, not NaN
        alpha = np.ones(C)
        alpha[0] = 0.0
        la, ga = factor_loss(kind, param, z, y, alpha=alpha, reduction="none", return_grad=True)
        np.testing.assert_array_equal(la, np.zeros(len(y)))
        np.testing.assert_array_equal(ga, np.zeros_like(z))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [5, 16, 33, 200, 700])
def test_a_row_does_not_depend_on_its_group(isa, rng, dtype, C):
    z = mixed_rows(rng, 40, C, dtype, special=True)
    y = labels_on_live(rng, z)
    alpha = rng.uniform(0.1, 1.0, C)
    for kind, param, kw in (("focal", 2.0, dict(alpha=alpha)), ("poly1", 2.0, {})):
        loss, grad = factor_loss(kind, param, z, y, reduction="none", return_grad=True, **kw)
        for i in range(40):
            li, gi = factor_loss(kind, param, z[i:i + 1], y[i:i + 1], reduction="none", return_grad=True, **kw)
            np.testing.assert_array_equal(li, loss[i:i + 1])
            np.testing.assert_array_equal(gi, grad[i:i + 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 16, 45, 200, 300, 600])
def test_layouts_in_place_and_threads(isa, rng, dtype, C):
    # (row kernels: C-order rows leave their factor and rescaling pass to the batch, the
    # Fortran-order blocks and the cap compute them at once: the same bits)
    n = 70
    z = mixed_rows(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    alpha = rng.uniform(0.1, 1.0, C)
    for kind, param, kw in (("focal", 2.0, dict(alpha=alpha, weight=cw)), ("poly1", 2.0, dict(weight=cw)),
                            ("focal", 1.5, dict(softcap=4.0))):
        loss, grad = factor_loss(kind, param, z, y, reduction="none", return_grad=True, **kw)
        lf, gf = factor_loss(kind, param, np.asfortranarray(z), y, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(lf, loss)
        np.testing.assert_array_equal(gf, grad)
        big = np.zeros((n, 2 * C), dtype=dtype)
        big[:, ::2] = z
        ls, gs = factor_loss(kind, param, big[:, ::2], y, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(ls, loss)
        np.testing.assert_array_equal(gs, grad)
        la, ga = factor_loss(kind, param, z.T, y, axis=0, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(la, loss)
        np.testing.assert_array_equal(ga, grad.T)
        assert_in_place_and_threads(partial(factor_loss, kind, param), z, y, loss, grad, **kw)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("C", [3, 16, 45, 128, 300])
def test_half_storage(isa, rng, half, C):
    # half rows computed as float32 on the upcast values, the gradient rounded once
    hdt = half_dtype(half)
    z = (rng.standard_normal((40, C)) * 4).astype(hdt)
    z[3, : C // 2] = -np.inf
    y = labels_on_live(rng, z.astype(np.float32))
    for kind, param, kw in (("focal", 2.0, dict(alpha=rng.uniform(0.1, 1.0, C))), ("poly1", 2.0, {})):
        loss, grad = factor_loss(kind, param, z, y, reduction="none", return_grad=True, **kw)
        l32, g32 = factor_loss(kind, param, z.astype(np.float32), y, reduction="none", return_grad=True, **kw)
        assert grad.dtype == hdt
        np.testing.assert_array_equal(loss, l32)
        np.testing.assert_array_equal(grad, g32.astype(hdt))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [6, 300])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("poly1", 2.0)])
def test_huge_weights_split_scale(isa, rng, dtype, C, kind, param):
    # a row whose gradient scale nears the largest value: scaled in two steps
    # (weight_scale-inl.hpp), its loss weighed exactly (row kernels: that row's factor at
    # once, the others' in the batch)
    n = 20
    z = rng.standard_normal((n, C)).astype(dtype)
    y = rng.integers(0, C, n)
    alpha = rng.uniform(0.5, 1.0, C)
    sw = np.ones(n, dtype=dtype)
    big = np.finfo(dtype).max / 16
    sw[5] = big
    want, want_grad = _reference(kind, param, z, y, alpha if kind == "focal" else None)
    kw = dict(alpha=alpha) if kind == "focal" else {}
    loss, grad = factor_loss(kind, param, z, y, sample_weight=sw, reduction="none", return_grad=True, **kw)
    assert_huge_weight_rows(loss, grad, want, want_grad, sw, 5, dtype, np.arange(n) != 5)


def test_factor_beyond_float32(isa):
    # poly-1's G = 1 + eps p_y with eps = 1e39: the exponentials' factor G / s overflows
    # float32 and is applied in double, so the other classes' terms G p_c stay finite
    z = np.array([[60.0, 0.0, 0.0, 0.0], [0.0, 60.0, 1.0, 2.0]], dtype=np.float32)
    y = np.array([0, 1])
    loss, grad = xent.poly1_cross_entropy(z, y, epsilon=1e39, reduction="none", return_grad=True)
    want, want_grad = _reference("poly1", 1e39, z, y)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[np.float32])
    others = np.ones_like(grad, dtype=bool)
    others[[0, 1], y] = False  # the label's term p_y - 1 cancels (in every kernel)
    np.testing.assert_allclose(grad[others], want_grad[others], **GRAD_TOL[np.float32])
