"""The poly-1 and focal losses of target distributions (row_target_factor in
cpp/src/kernels/xent_more-inl.hpp: every class's term in vector lanes, q_c = 1 - p_c from the
sums): against an extended-precision reference of Keras's and optax's formulas, loss and
gradient, at every C (one class, partial vectors, several blocks of 2048), with alpha,
class and sample weights, the soft cap, masked classes, special rows, layouts, half storage
and threads."""
from functools import partial

import numpy as np
import pytest

from conftest import (
    FACTOR_LOSSES,
    GRAD_TOL,
    LOSS_TOL,
    assert_close_specials,
    assert_huge_weight_rows,
    assert_in_place_and_threads,
    factor_loss,
    mixed_rows,
)

LD = np.longdouble
CLASSES = [1, 2, 3, 9, 16, 17, 40, 129, 2050, 4099]
DTYPES = [np.float32, np.float64]


def _reference(kind, param, z, t, a=None, cap=None):
    """Per-row loss sum_c a_c t_c f(p_c) and gradient (sum_c G_c) p - G, G_c = a_c t_c g(p_c),
    in long double (class_term's f and g; 0 log 0 = 0). A fully masked row: +inf where a
    target has mass, zero gradient; a NaN or +inf logit: NaN where a target has mass."""
    zz = z.astype(LD)
    if cap is not None:
        with np.errstate(invalid="ignore"):
            zz = np.where(zz == -np.inf, zz, LD(cap) * np.tanh(zz / LD(cap)))
    n, C = z.shape
    tt = t.astype(LD) * (np.ones(C, dtype=LD) if a is None else np.asarray(a, dtype=LD))
    loss = np.zeros(n, dtype=LD)
    grad = np.zeros((n, C), dtype=LD)
    for i in range(n):
        r, ti = zz[i], tt[i]
        live = ti != 0
        if np.isnan(r).any() or np.isposinf(r).any():
            loss[i] = np.nan if live.any() else 0
            grad[i] = np.nan
            continue
        m = r.max()
        if m == -np.inf:  # +inf per positive target; a negative one adds itself
            loss[i] = np.where(ti > 0, np.inf, ti)[live].sum()
            continue
        e = np.exp(r - m)
        top = r == m  # log(s) as log1p of the rest (1 + 1e-26 rounds to 1 in long double)
        ls = np.log1p((top.sum() - 1) + e[~top].sum())
        s = e.sum()
        nlp = (m - r) + ls
        p = e / s
        q = -np.expm1(-nlp)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if kind == "focal":
                qg = np.ones(C, dtype=LD) if param == 0 else q ** LD(param)
                f = np.where(qg == 0, 0, qg * nlp)
                ratio = np.where(q > 0, nlp / np.where(q > 0, q, 1), 1)
                g = np.where(p == 0, qg, qg * (1 + LD(param) * p * ratio))
            else:
                f = nlp + LD(param) * q
                g = 1 + LD(param) * p
            loss[i] = np.where(live, ti * f, 0).sum()
        G = np.where(live, ti * g, 0)
        grad[i] = G.sum() * p - G
    if cap is not None:  # the chain rule through the cap: sech^2(z / cap)
        with np.errstate(invalid="ignore"):
            d = np.where(z == -np.inf, 0, 1 / np.cosh(z.astype(LD) / LD(cap)) ** 2)
        grad = np.where(np.isnan(grad), grad, grad * d)
    return loss.astype(np.float64), grad.astype(np.float64)


def _targets(rng, n, C, dtype):
    """Soft rows, one-hot rows, rows of no mass and rows of mass 2 in one call."""
    t = rng.dirichlet(np.ones(C), n) * rng.choice([0.0, 1.0, 2.0], size=(n, 1))
    t[::4] = 0
    t[::4, rng.integers(0, C)] = 1.0
    if C > 2:
        t[1::3, rng.integers(0, C)] = 0  # a class of no mass in a soft row
    return t.astype(dtype)


def _check(kind, param, z, t, dtype, a=None, sw=None, cap=None):
    want, want_grad = _reference(kind, param, z, t, a, cap)
    if sw is not None:  # a row of weight 0 adds exactly 0, whatever its logits
        with np.errstate(invalid="ignore"):
            want = np.where(sw == 0, 0.0, want * sw)
            want_grad = np.where(sw[:, None] == 0, 0.0, want_grad * sw[:, None])
    kw = dict(sample_weight=sw, softcap=cap, reduction="none")
    if a is not None:
        kw["alpha" if kind == "focal" else "weight"] = a
    loss, grad = factor_loss(kind, param, z, t, return_grad=True, **kw)
    assert_close_specials(loss, want, dtype, LOSS_TOL)
    assert_close_specials(grad, want_grad, dtype, GRAD_TOL)
    np.testing.assert_array_equal(factor_loss(kind, param, z, t, **kw), loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", CLASSES)
@pytest.mark.parametrize("kind, param", FACTOR_LOSSES)
def test_matches_reference(isa, rng, dtype, C, kind, param):
    n = 3 if C > 1000 else 21
    z = mixed_rows(rng, n, C, dtype)
    t = _targets(rng, n, C, dtype)
    _check(kind, param, z, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 17, 129])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("focal", 1.5), ("poly1", 2.0)])
def test_weights_and_softcap(isa, rng, dtype, C, kind, param):
    n = 30
    z = mixed_rows(rng, n, C, dtype)
    t = _targets(rng, n, C, dtype)
    a = rng.uniform(0.1, 2.0, C).astype(dtype)
    a[rng.integers(0, C)] = 0  # a class of multiplier 0: its terms add nothing
    sw = rng.uniform(0.0, 3.0, n).astype(dtype)
    sw[::5] = 0
    _check(kind, param, z, t, dtype, a=a, sw=sw)
    zc = (rng.standard_normal((n, C)) * 8).astype(dtype)
    zc[2, : max(1, C // 2)] = -np.inf
    tc = _targets(rng, n, C, dtype)
    tc[2, : max(1, C // 2)] = 0
    _check(kind, param, zc, tc, dtype, a=a, cap=5.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [2, 9, 40, 129])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("focal", 0.7), ("poly1", -1.0)])
def test_special_rows(isa, rng, dtype, C, kind, param):
    # fully masked, NaN and +inf rows among finite ones; target mass on a masked class: +inf
    z = mixed_rows(rng, 33, C, dtype, special=True)
    t = _targets(rng, 33, C, dtype)
    t[2, 0] = 0.5  # row 2 masks class 0 (mixed_rows): its loss is +inf
    t[7] = 0  # row 7's +inf logit is at C - 1: NaN, though its target mass is elsewhere
    t[7, 0] = 1
    t[11] = 0  # a fully masked row of one negative target: it adds itself
    t[11, 0] = -0.5
    z[13, 0] = np.inf  # a +inf logit and targets of no mass: 0 (0 log 0), a NaN gradient
    t[13] = 0
    _check(kind, param, z, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("focal", 0.5), ("poly1", 2.0)])
def test_confident_rows(isa, dtype, kind, param):
    # 1 - p_c ~ 1e-26 at the max from the sums (not 1 - p rounded to 0), ties at the max
    z = np.array([[60.0, 0.0, 0.0, 0.0], [60.0, 60.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=dtype)
    t = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=dtype)
    _check(kind, param, z, t, dtype)
    if kind == "focal" and dtype == np.float64:
        loss = factor_loss(kind, param, z, t, reduction="none")
        assert 0 < loss[0] < 1e-20


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [5, 40, 2050])
def test_layouts_in_place_and_threads(isa, rng, dtype, C):
    n = 40 if C < 1000 else 6
    z = mixed_rows(rng, n, C, dtype)
    t = _targets(rng, n, C, dtype)
    a = rng.uniform(0.1, 1.0, C)
    for kind, param, kw in (("focal", 2.0, dict(alpha=a)), ("poly1", 2.0, dict(weight=a)), ("focal", 1.5, {})):
        loss, grad = factor_loss(kind, param, z, t, reduction="none", return_grad=True, **kw)
        zf, tf = np.asfortranarray(z), np.asfortranarray(t)
        lf, gf = factor_loss(kind, param, zf, tf, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(lf, loss)
        np.testing.assert_array_equal(gf, grad)
        la, ga = factor_loss(kind, param, z.T, t.T, axis=0, reduction="none", return_grad=True, **kw)
        np.testing.assert_array_equal(la, loss)
        np.testing.assert_array_equal(ga, grad.T)
        assert_in_place_and_threads(partial(factor_loss, kind, param), z, t, loss, grad, **kw)


@pytest.mark.parametrize("C", [3, 45, 300])
def test_half_storage(isa, rng, C):
    z = (rng.standard_normal((30, C)) * 4).astype(np.float16)
    z[3, : C // 2] = -np.inf
    t = rng.dirichlet(np.ones(C), 30).astype(np.float16)
    t[3, : C // 2] = 0
    for kind, param in (("focal", 2.0), ("poly1", 2.0)):
        loss, grad = factor_loss(kind, param, z, t, reduction="none", return_grad=True)
        z32, t32 = z.astype(np.float32), t.astype(np.float32)
        l32, g32 = factor_loss(kind, param, z32, t32, reduction="none", return_grad=True)
        assert grad.dtype == np.float16
        np.testing.assert_array_equal(loss, l32)
        np.testing.assert_array_equal(grad, g32.astype(np.float16))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [6, 129])
@pytest.mark.parametrize("kind, param", [("focal", 2.0), ("poly1", 2.0)])
def test_huge_weights_split_scale(isa, rng, dtype, C, kind, param):
    # a row whose gradient scale times the class multipliers' sum nears the largest value:
    # scaled in two steps (weight_scale-inl.hpp), its loss weighed exactly
    n = 12
    z = rng.standard_normal((n, C)).astype(dtype)
    t = rng.dirichlet(np.ones(C), n).astype(dtype)
    a = rng.uniform(10.0, 40.0, C).astype(dtype)  # G_c up to ~120 times the row's scale
    sw = np.ones(n, dtype=dtype)
    big = np.finfo(dtype).max / 16
    sw[5] = big
    want, want_grad = _reference(kind, param, z, t, a)
    kw = {"alpha" if kind == "focal" else "weight": a}
    loss, grad = factor_loss(kind, param, z, t, sample_weight=sw, reduction="none", return_grad=True, **kw)
    assert_huge_weight_rows(loss, grad, want, want_grad, sw, 5, dtype, np.arange(n) != 5)
