"""Label smoothing and target distributions for small C, where the kernels put rows in vector
lanes (cpp/src/kernels/smallc-inl.hpp, lanes_xent_soft; C <= 128 float32, 80 float64): with
class weights, sample weights, ignore_index and the z-loss, masked classes, rows of every
kind in one group, partial groups, every layout, half storage and two threads, against an
extended-precision reference of the row's effective target."""
import numpy as np
import pytest

import xent
from conftest import (
    GRAD_TOL,
    LANES_CLASSES,
    LANES_ROWS,
    LOSS_TOL,
    assert_close_specials,
    assert_huge_weight_rows,
    assert_in_place_and_threads,
    half_dtype,
    labels_on_live,
    mixed_rows,
)

LD = np.longdouble
DTYPES = [np.float32, np.float64]


def _effective(z, eps, cw, y=None, t=None):
    """The target each row's loss takes: (1 - eps) times the label (or t), weighted, plus
    eps / K w_c over the K unmasked classes (docs/losses.md)."""
    n, C = z.shape
    w = np.ones(C, dtype=LD) if cw is None else cw.astype(LD)
    live = z > -np.inf
    K = live.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        smooth = np.where(live, LD(eps) / K * w, LD(0)) if eps else np.zeros((n, C), dtype=LD)
    if t is None:
        base = np.zeros((n, C), dtype=LD)
        base[np.arange(n), y] = w[y]
    else:
        base = t.astype(LD) * w
    return (LD(1) - LD(eps)) * base + smooth if eps != 1.0 else smooth, base


def _reference(z, tt, base, zl=0.0, label=False):
    """Loss sum_c T_c (lse - z_c) (+ zl lse^2) and gradient (sum T + 2 zl lse) p - T, in long
    double; a fully masked row: +inf (0 without target mass), zero gradient; a NaN or +inf
    logit: NaN loss and gradient."""
    zz = z.astype(LD)
    n, C = z.shape
    loss = np.zeros(n, dtype=LD)
    grad = np.zeros((n, C), dtype=LD)
    for i in range(n):
        r, ti = zz[i], tt[i]
        if np.isnan(r).any() or np.isposinf(r).any():
            # NaN, but targets of no mass give 0 (0 log 0 on every class) without a z-loss
            loss[i] = 0 if not label and zl == 0 and not ti.any() else np.nan
            grad[i] = np.nan
            continue
        m = r.max()
        if m == -np.inf:
            mass = base[i].sum()
            loss[i] = np.inf if label or mass > 0 else (0 if mass == 0 else mass)
            continue
        e = np.exp(r - m)
        s = e.sum()
        lse = m + np.log(s)
        with np.errstate(invalid="ignore", over="ignore"):
            terms = np.where(ti == 0, 0, ti * ((m - r) + np.log(s)))
        loss[i] = terms.sum() + LD(zl) * lse * lse
        grad[i] = (ti.sum() + 2 * LD(zl) * lse) * (e / s) - ti
    return loss.astype(np.float64), grad.astype(np.float64)


def _check(z, y, t, eps, cw, sw, zl, dtype):
    tt, base = _effective(z, eps, cw, y=y, t=t)
    want, want_grad = _reference(z, tt, base, zl, label=t is None)
    if sw is not None:  # a row of weight 0 adds exactly 0, whatever its logits
        with np.errstate(invalid="ignore"):
            want = np.where(sw == 0, 0.0, want * sw)
            want_grad = np.where(sw[:, None] == 0, 0.0, want_grad * sw[:, None])
    kw = dict(label_smoothing=eps, weight=cw, sample_weight=sw, z_loss=zl, reduction="none")
    target = y if t is None else t
    loss, grad = xent.softmax_cross_entropy(z, target, return_grad=True, **kw)
    assert_close_specials(loss, want, dtype, LOSS_TOL)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    # the forward-only call gives the same losses, and the sums are theirs
    np.testing.assert_array_equal(xent.softmax_cross_entropy(z, target, **kw), loss)
    kw["reduction"] = "sum"
    total = xent.softmax_cross_entropy(z, target, **kw)
    if np.all(np.isfinite(want)):
        np.testing.assert_allclose(total, want.sum(), rtol=1e-12 if dtype == np.float64 else 3e-6,
                                   atol=1e-6 * np.abs(want).sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LANES_CLASSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing(isa, rng, dtype, C, weighted):
    for n in LANES_ROWS:
        z = mixed_rows(rng, n, C, dtype)
        y = labels_on_live(rng, z)
        cw = rng.uniform(0.1, 4.0, C).astype(dtype) if weighted else None
        if weighted and C > 2:
            cw[rng.integers(0, C)] = 0  # a class of weight 0, with or without the label
        for eps in (0.1, 1.0):
            _check(z, y, None, eps, cw, None, 0.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LANES_CLASSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_targets(isa, rng, dtype, C, weighted):
    for n in LANES_ROWS:
        z = mixed_rows(rng, n, C, dtype)
        t = rng.dirichlet(np.ones(C), n) * rng.choice([0.0, 0.5, 1.0, 2.0], size=(n, 1))
        t[::4] = 0
        t[::4, rng.integers(0, C)] = 1.0  # one-hot rows
        t = t.astype(dtype)
        cw = rng.uniform(0.1, 4.0, C).astype(dtype) if weighted else None
        for eps in (0.0, 0.3, 1.0):
            _check(z, None, t, eps, cw, None, 0.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 17, 64])
def test_weights_and_z_loss(isa, rng, dtype, C):
    n = 37
    z = mixed_rows(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    t = (rng.dirichlet(np.ones(C), n) * 1.5).astype(dtype)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    sw = rng.uniform(0.0, 3.0, n).astype(dtype)
    sw[::6] = 0  # rows of weight 0: exactly 0 and a zero gradient
    for zl in (0.0, 1e-3):
        _check(z, y, None, 0.2, cw, sw, zl, dtype)
        _check(z, None, t, 0.2, cw, sw, zl, dtype)
        _check(z, None, t, 0.0, None, sw, zl, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [2, 9, 40])
def test_special_rows_stay_in_their_lane(isa, rng, dtype, C):
    # fully masked, NaN and +inf rows among finite ones: each row gets its own value
    n = 33
    z = mixed_rows(rng, n, C, dtype, special=True)
    y = labels_on_live(rng, z)
    t = (rng.dirichlet(np.ones(C), n) * rng.choice([0.0, 1.0], size=(n, 1))).astype(dtype)
    cw = rng.uniform(0.5, 2.0, C).astype(dtype)
    _check(z, y, None, 0.1, None, None, 0.0, dtype)
    _check(z, y, None, 0.1, cw, None, 1e-4, dtype)
    _check(z, None, t, 0.0, None, None, 0.0, dtype)
    _check(z, None, t, 0.25, cw, None, 0.0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_target_mass_on_a_masked_class(isa, dtype):
    z = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [2.0, 0.0, -np.inf]], dtype=dtype)
    t = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    loss, grad = xent.softmax_cross_entropy(z, t, reduction="none", return_grad=True)
    assert loss[0] == np.inf and loss[1] == 0 and loss[2] == np.inf
    assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0)
    # eps = 1 replaces the targets: the mass on the masked class goes, and so does the inf
    loss = xent.softmax_cross_entropy(z, t, label_smoothing=1.0, reduction="none")
    np.testing.assert_allclose(loss[[0, 2]], [np.log1p(np.exp(-1.0)) + 0.5, np.log1p(np.exp(-2.0)) + 1.0],
                               **LOSS_TOL[dtype])
    assert loss[1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [5, 16, 33])
def test_a_row_does_not_depend_on_its_group(isa, rng, dtype, C):
    # a group with a masked class takes the masked pass; an unmasked row in it must give the
    # bits it gives in a group without one (and so for any layout and thread split)
    z = mixed_rows(rng, 40, C, dtype)
    z[2::7] = rng.standard_normal((len(z[2::7]), C))  # no masked rows but the one below
    y = labels_on_live(rng, z)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    t = rng.dirichlet(np.ones(C), 40).astype(dtype)
    for target, kw in ((y, dict(label_smoothing=0.1, weight=cw)), (t, dict(label_smoothing=0.1, weight=cw))):
        alone = [xent.softmax_cross_entropy(z[i:i + 1], target[i:i + 1], reduction="none", return_grad=True, **kw)
                 for i in range(40)]
        zm = z.copy()
        zm[0, 0] = -np.inf  # row 0 masks a class: every group holding it takes the masked pass
        loss, grad = xent.softmax_cross_entropy(zm, target, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(loss[1:], np.concatenate([a[0] for a in alone[1:]]))
        np.testing.assert_array_equal(grad[1:], np.concatenate([a[1] for a in alone[1:]]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 16, 45])
def test_layouts_in_place_and_threads(isa, rng, dtype, C):
    n = 70
    z = mixed_rows(rng, n, C, dtype)
    y = labels_on_live(rng, z)
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    cw = rng.uniform(0.1, 4.0, C).astype(dtype)
    for target, kw in ((y, dict(label_smoothing=0.2, weight=cw)), (t, dict(label_smoothing=0.2)), (t, {})):
        loss, grad = xent.softmax_cross_entropy(z, target, reduction="none", return_grad=True, **kw)
        # Fortran order, a strided view, the class axis first
        zf = np.asfortranarray(z)
        tf = np.asfortranarray(target) if target.ndim == 2 else target
        lf, gf = xent.softmax_cross_entropy(zf, tf, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(lf, loss)
        np.testing.assert_array_equal(gf, grad)
        big = np.zeros((n, 2 * C), dtype=dtype)
        big[:, ::2] = z
        ls, gs = xent.softmax_cross_entropy(big[:, ::2], target, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(ls, loss)
        np.testing.assert_array_equal(gs, grad)
        tt = target.T if target.ndim == 2 else target
        la, ga = xent.softmax_cross_entropy(z.T, tt, axis=0, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(la, loss)
        np.testing.assert_array_equal(ga, grad.T)
        # the gradient written over the logits
        assert_in_place_and_threads(xent.softmax_cross_entropy, z, target, loss, grad, **kw)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("C", [3, 16, 45, 128])
def test_half_storage(isa, rng, half, C):
    # half rows computed as float32 on the upcast values, the gradient rounded once
    hdt = half_dtype(half)
    n = 40
    z = (rng.standard_normal((n, C)) * 4).astype(hdt)
    z[3, : C // 2] = -np.inf
    y = labels_on_live(rng, z.astype(np.float32))
    t = rng.dirichlet(np.ones(C), n).astype(hdt)
    cw = rng.uniform(0.1, 4.0, C).astype(np.float32)
    for target, t32, kw in ((y, y, dict(label_smoothing=0.1, weight=cw)), (t, t.astype(np.float32),
                                                                           dict(label_smoothing=0.1))):
        loss, grad = xent.softmax_cross_entropy(z, target, reduction="none", return_grad=True, **kw)
        l32, g32 = xent.softmax_cross_entropy(z.astype(np.float32), t32, reduction="none", return_grad=True, **kw)
        assert grad.dtype == hdt
        np.testing.assert_array_equal(loss, l32)
        np.testing.assert_array_equal(grad, g32.astype(hdt))


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_weights_split_scale(isa, rng, dtype):
    # a row whose gscale * w times the class weights' sum nears the largest value: its
    # gradient is scaled in two steps (weight_scale-inl.hpp), its loss weighed exactly
    C, n = 6, 20
    z = rng.standard_normal((n, C)).astype(dtype)
    y = rng.integers(0, C, n)
    cw = rng.uniform(0.5, 2.0, C).astype(dtype)
    sw = np.ones(n, dtype=dtype)
    big = np.finfo(dtype).max / 16
    sw[5] = big
    sw[11] = np.finfo(dtype).tiny / 4  # below the normal range
    tt, base = _effective(z, 0.3, cw, y=y)
    want, want_grad = _reference(z, tt, base, label=True)
    loss, grad = xent.softmax_cross_entropy(z, y, label_smoothing=0.3, weight=cw, sample_weight=sw,
                                            reduction="none", return_grad=True)
    rest = ~np.isin(np.arange(n), [5, 11])
    assert_huge_weight_rows(loss, grad, want, want_grad, sw, 5, dtype, rest)
    np.testing.assert_allclose(grad[11], want_grad[11] * float(sw[11]), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=2 * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_class_weights_on_every_row(isa, rng, dtype):
    # class weights whose sum nears the largest value, no sample weights: every row's
    # gscale times that sum is out of range, so every row takes the two-step scale (not
    # the group fill of rows of weight 1, units-inl.hpp), in both row drivers (2-d: one row
    # dim; 3-d and strided: the cursor)
    C, n = 6, 40
    z = rng.standard_normal((n, C)).astype(dtype)
    y = rng.integers(0, C, n)
    cw = np.full(C, np.finfo(dtype).max / (16 * C), dtype=dtype)
    tt, base = _effective(z, 0.3, cw, y=y)
    want, want_grad = _reference(z, tt, base, label=True)
    scale = float(cw[0])
    first = None
    for zz, yy in ((z, y), (z.reshape(4, 10, C), y.reshape(4, 10)), (np.repeat(z, 2, axis=0)[::2], y)):
        loss, grad = xent.softmax_cross_entropy(zz, yy, label_smoothing=0.3, weight=cw, reduction="none",
                                                return_grad=True)
        loss, grad = loss.reshape(n), grad.reshape(n, C)
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(loss / scale, want / scale, **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad / scale, want_grad / scale, **GRAD_TOL[dtype])
        first = first or (loss, grad)
        np.testing.assert_array_equal(loss, first[0])  # the same bits in each driver
        np.testing.assert_array_equal(grad, first[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [4, 33, 129])
def test_label_on_a_masked_class(isa, dtype, C):
    # the label's own term has weight (1 - eps) w_y: with eps = 1 or w_y = 0 it adds nothing,
    # even where z_y = -inf (no 0 * inf); else the loss is +inf
    z = np.zeros((3, C), dtype=dtype)
    z[:, 0] = -np.inf
    z[:, 1] = 2.0
    y = np.zeros(3, dtype=np.int64)
    live = C - 1
    want = np.log(np.exp(2.0) + live - 1) - 2.0 / live  # eps / K sum_c (lse - z_c), K = C - 1
    loss, grad = xent.softmax_cross_entropy(z, y, label_smoothing=1.0, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, want, **LOSS_TOL[dtype])
    assert np.isfinite(grad).all() and (grad[:, 0] == 0).all()
    cw = np.ones(C, dtype=dtype)
    cw[0] = 0
    loss = xent.softmax_cross_entropy(z, y, label_smoothing=0.5, weight=cw, reduction="none")
    np.testing.assert_allclose(loss, 0.5 * want, **LOSS_TOL[dtype])
    loss = xent.softmax_cross_entropy(z, y, label_smoothing=0.5, reduction="none")
    assert (loss == np.inf).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 129])
def test_class_of_weight_zero_far_below_the_max(isa, dtype, C):
    # m - z_c overflows to inf for finite logits of both signs near the largest value: a class
    # of weight 0 adds 0 to the smoothing sum there, not 0 * inf = NaN
    big = np.finfo(dtype).max * 0.75  # m - z_1 = 1.5 max
    z = np.full((2, C), big, dtype=dtype)
    z[:, 1] = -big
    w = np.ones(C, dtype=dtype)
    w[1] = 0
    y = np.zeros(2, dtype=np.int64)
    loss, grad = xent.softmax_cross_entropy(z, y, label_smoothing=0.1, weight=w, reduction="none", return_grad=True)
    # every other term of the smoothing sum is 0 (z_c = m): loss = tsum log(C - 1)
    want = (0.9 + 0.1 * (C - 1) / C) * np.log(C - 1)
    np.testing.assert_allclose(loss, want, rtol=2e-6 if dtype == np.float32 else 1e-13)
    assert np.isfinite(grad).all()
