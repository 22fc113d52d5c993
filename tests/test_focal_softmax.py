"""softmax_focal_loss and poly1_cross_entropy: extended-precision references of the Keras and
optax formulas, finite differences, options, masks, every ISA, thread counts."""
import numpy as np
import pytest

import xent
from conftest import GRAD_TOL, LOSS_TOL
from reference import numeric_grad

LD = np.longdouble


def _lsm(z):
    z = z.astype(LD)
    m = z.max(-1, keepdims=True)
    return (z - m) - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _targets(lab, C):
    if lab.dtype.kind == "f":
        return lab.astype(LD)
    return np.eye(C, dtype=LD)[lab]


def focal_ref(z, lab, gamma, alpha=None):
    """Keras CategoricalFocalCrossentropy without its clip: -sum_c a_c t_c (1 - p_c)^g log p_c."""
    lp = _lsm(z)
    t = _targets(lab, z.shape[-1])
    a = np.ones(z.shape[-1], LD) if alpha is None else np.broadcast_to(np.asarray(alpha, LD), (z.shape[-1],))
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(t == 0, 0, -a * t * (-np.expm1(lp)) ** LD(gamma) * lp)
    return terms.sum(-1)


def poly1_ref(z, lab, eps):
    """optax.poly_loss_cross_entropy: CE + eps * sum_c t_c (1 - p_c)."""
    lp = _lsm(z)
    t = _targets(lab, z.shape[-1])
    with np.errstate(invalid="ignore"):
        ce = np.where(t == 0, 0, -t * lp).sum(-1)
    return ce + LD(eps) * (t * -np.expm1(lp)).sum(-1)


def _data(rng, n=120, C=9, scale=4.0, targets=False):
    z = rng.standard_normal((n, C)) * scale
    z[0] = [60.0] + [0.0] * (C - 1)  # confident: 1 - p_y ~ 1e-26
    y = rng.integers(0, C, n)
    y[0] = 0
    if not targets:
        return z, y
    t = rng.random((n, C))
    t[:, 1] = 0
    t /= t.sum(1, keepdims=True)
    return z, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (0.5, 0.25), (2.0, None), (5.0, "per_class")])
def test_focal_matches_reference(isa, rng, dtype, targets, gamma, alpha):
    z, lab = _data(rng, targets=targets)
    if alpha == "per_class":
        alpha = np.linspace(0.1, 1.0, z.shape[1])
    lab_d = lab.astype(dtype) if targets else lab
    per = xent.softmax_focal_loss(z.astype(dtype), lab_d, gamma=gamma, alpha=alpha, reduction="none")
    ref = focal_ref(z.astype(dtype), lab_d, gamma, alpha)
    np.testing.assert_allclose(per.astype(LD), ref, **LOSS_TOL[dtype])
    if not targets and gamma > 0:  # confident row: (1 - p_y)^gamma ~ 1e-26^gamma, not cancelled to 0
        assert 0 <= per[0] < 1e-20 and (per[0] > 0 or dtype == np.float32)
    mean = xent.softmax_focal_loss(z.astype(dtype), lab_d, gamma=gamma, alpha=alpha)
    np.testing.assert_allclose(mean, float(ref.mean()), rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("eps", [2.0, -1.0, 0.0])
def test_poly1_matches_reference(isa, rng, dtype, targets, eps):
    z, lab = _data(rng, targets=targets)
    lab_d = lab.astype(dtype) if targets else lab
    per = xent.poly1_cross_entropy(z.astype(dtype), lab_d, epsilon=eps, reduction="none")
    np.testing.assert_allclose(per.astype(LD), poly1_ref(z.astype(dtype), lab_d, eps), **LOSS_TOL[dtype])


def test_gamma_zero_is_cross_entropy(rng):
    z, y = _data(rng)
    a = np.linspace(0.2, 1.4, 9)
    ce, gce = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    fl, gfl = xent.softmax_focal_loss(z, y, gamma=0.0, alpha=a, reduction="none", return_grad=True)
    np.testing.assert_allclose(fl, a[y] * ce, rtol=1e-14)
    np.testing.assert_allclose(gfl, a[y][:, None] * gce, rtol=1e-13, atol=1e-16)
    _, t = _data(rng, targets=True)
    w = np.linspace(0.5, 2, 9)
    np.testing.assert_allclose(
        xent.softmax_focal_loss(z, t, gamma=0.0, weight=w, reduction="none"),
        xent.softmax_cross_entropy(z, t, weight=w, reduction="none"), rtol=1e-13)
    np.testing.assert_allclose(xent.poly1_cross_entropy(z, t, epsilon=0.0, weight=w),
                               xent.softmax_cross_entropy(z, t, weight=w), rtol=1e-13)


OPTS = [
    {},
    dict(weight=np.linspace(0.3, 2.0, 6)),
    dict(sample_weight="sw", ignore_index=2),
    dict(weight=np.linspace(0.3, 2.0, 6), sample_weight="sw", ignore_index=2, softcap=3.0),
]


FD_FNS = [
    ("focal", dict(gamma=2.0, alpha=np.linspace(0.2, 1, 6))),
    ("focal", dict(gamma=0.7)),
    ("poly1", dict(epsilon=2.0)),
    ("poly1", dict(epsilon=-1.0)),
]


@pytest.mark.parametrize("fn, kw", FD_FNS)
@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_finite_differences(rng, fn, kw, targets, opt, reduction):
    f = xent.softmax_focal_loss if fn == "focal" else xent.poly1_cross_entropy
    z = rng.standard_normal((7, 6)) * 3
    z[2, 4] = -np.inf  # a masked class
    lab = rng.integers(0, 6, 7)
    lab[2] = 1
    o = dict(opt)
    if o.get("sample_weight") == "sw":
        o["sample_weight"] = rng.random(7)
    if targets:
        o.pop("ignore_index", None)
        lab = rng.random((7, 6))
        lab[2, 4] = 0
        lab /= lab.sum(1, keepdims=True)
    loss, grad = f(z, lab, reduction=reduction, return_grad=True, **kw, **o)
    assert np.isfinite(loss).all() and np.isfinite(grad).all() and (grad[2, 4] == 0)

    def scalar(v):
        out = f(v, lab, reduction=reduction, **kw, **o)
        return float(np.sum(out))

    num = numeric_grad(scalar, z)  # (-inf +- h stays -inf: 0 there, as the mask's gradient)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_weighted_means(rng):
    z, y = _data(rng, C=9)
    w = np.linspace(0.2, 2.0, 9)
    sw = rng.random(len(y))
    y[::7] = 4
    per = xent.softmax_focal_loss(z, y, weight=w, sample_weight=sw, ignore_index=4, reduction="none")
    rw = np.where(y == 4, 0.0, w[np.where(y == 4, 0, y)] * sw)
    assert (per[y == 4] == 0).all()
    ref = focal_ref(z, np.where(y == 4, 0, y), 2.0) * rw
    np.testing.assert_allclose(per, ref, rtol=1e-13, atol=1e-300)
    mean = xent.softmax_focal_loss(z, y, weight=w, sample_weight=sw, ignore_index=4)
    np.testing.assert_allclose(mean, float(ref.sum() / rw.sum()), rtol=1e-13)
    pm = xent.poly1_cross_entropy(z, y, weight=w, ignore_index=4)
    rw = np.where(y == 4, 0.0, w[np.where(y == 4, 0, y)])
    np.testing.assert_allclose(pm, float((poly1_ref(z, np.where(y == 4, 0, y), 2.0) * rw).sum() / rw.sum()), rtol=1e-13)


@pytest.mark.parametrize("fn", [xent.softmax_focal_loss, xent.poly1_cross_entropy])
def test_masks_and_edges(isa, fn):
    z = np.array([[0.0, -np.inf, 1.0], [-np.inf] * 3, [2.0, -np.inf, 0.5]])
    y = np.array([0, 2, 1])  # row 1 fully masked, row 2's label masked
    per, g = fn(z, y, reduction="none", return_grad=True)
    assert np.isfinite(per[0]) and per[1] == np.inf and per[2] == np.inf
    assert np.isfinite(g).all() and (g[1] == 0).all() and g[0, 1] == 0
    # a label on a masked class: the gradient of cross-entropy there (-1 at the label), as CE
    np.testing.assert_allclose(g[2], xent.softmax_cross_entropy(z[2:], y[2:], return_grad=True)[1][0], rtol=1e-15)
    t = np.array([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0], [0.2, 0.0, 0.8]])
    per, g = fn(z, t, reduction="none", return_grad=True, ignore_index=None)
    assert np.isfinite(per).all() and np.isfinite(g).all() and per[1] == 0
    assert fn(np.empty((0, 3)), np.empty(0, int)) == 0.0
    loss, g = fn(np.zeros((2, 3)), np.array([5, 5]), ignore_index=5, return_grad=True)
    assert loss == 0.0 and (g == 0).all()
    with pytest.raises(ValueError, match="out of range"):
        fn(np.zeros((2, 3)), np.array([0, 3]))


def test_keras_categorical_focal_formula(rng):
    # keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0), from_logits=True, written
    # out: p = softmax(z), clipped to [1e-7, 1 - 1e-7]; sum_c -alpha (1 - p)^gamma t log p.
    z = rng.standard_normal((50, 5)) * 2  # moderate: the clip is inactive
    t = rng.random((50, 5))
    t /= t.sum(1, keepdims=True)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    keras = (-0.25 * (1 - p) ** 2.0 * t * np.log(p)).sum(1).mean()  # sum_over_batch_size
    np.testing.assert_allclose(xent.softmax_focal_loss(z, t, gamma=2.0, alpha=0.25), keras, rtol=1e-12)


def test_argument_errors(rng):
    z, y = _data(rng, n=4, C=3)
    with pytest.raises(ValueError, match="gamma"):
        xent.softmax_focal_loss(z, y, gamma=-1)
    with pytest.raises(ValueError, match="alpha"):
        xent.softmax_focal_loss(z, y, alpha=-0.5)
    with pytest.raises(ValueError, match="alpha"):
        xent.softmax_focal_loss(z, y, alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match="epsilon"):
        xent.poly1_cross_entropy(z, y, epsilon=np.nan)
    with pytest.raises(ValueError, match="ignore_index"):
        xent.poly1_cross_entropy(z, np.full((4, 3), 1 / 3), ignore_index=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("targets", [False, True])
def test_float32_gradient_close_to_float64(isa, rng, dtype, targets):
    z, lab = _data(rng, n=60, C=40, targets=targets)
    for f, kw in [(xent.softmax_focal_loss, dict(gamma=2.0)), (xent.poly1_cross_entropy, {})]:
        _, g64 = f(z, lab, reduction="sum", return_grad=True, **kw)
        _, g = f(z.astype(dtype), lab.astype(dtype) if targets else lab, reduction="sum", return_grad=True, **kw)
        np.testing.assert_allclose(g, g64, **GRAD_TOL[dtype])


@pytest.mark.parametrize("targets", [False, True])
def test_threads_identical(rng, targets):
    z, lab = _data(rng, n=3000, C=40, targets=targets)
    z = z.astype(np.float32)
    lab = lab.astype(np.float32) if targets else lab
    for f in (xent.softmax_focal_loss, xent.poly1_cross_entropy):
        base = f(z, lab, reduction="none", return_grad=True, n_threads=1)
        for n in (2, 3):
            got = f(z, lab, reduction="none", return_grad=True, n_threads=n)
            np.testing.assert_array_equal(got[0], base[0])
            np.testing.assert_array_equal(got[1], base[1])
        assert f(z, lab, n_threads=1) == f(z, lab, n_threads=3)
