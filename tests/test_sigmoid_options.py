"""sigmoid_cross_entropy options: weight, pos_weight, sample_weight, label_smoothing, against
PyTorch, scikit-learn and written-out float64 references; gradients by finite differences."""
import numpy as np
import pytest

import reference as ref
import sigmoid_ref as sref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]


def _expected(z, t, ax, w=None, q=None, sw=None, eps=0.0, reduction="mean"):
    """Weighted losses and gradients written out: element loss l times w[class] times sw[sample];
    "none" per element (axis None) or summed over axis; "mean" over sum(sw) * (terms per sample)
    for axis=None, over sum(sw) (or the number of rows) with axis given."""
    z = np.asarray(z, dtype=np.float64)
    cax = (z.ndim - 1 if z.ndim else None) if ax is None else ax % z.ndim
    shape = [1] * z.ndim
    if cax is not None:
        shape[cax] = -1
    qq = None if q is None else np.asarray(q, dtype=np.float64).reshape(shape)
    l, g = sref.bce(z, t, qq, eps)
    wt = np.ones(z.shape, dtype=np.longdouble)
    if w is not None:
        wt = wt * np.asarray(w, dtype=np.float64).reshape(shape)
    if sw is not None:
        sw = np.asarray(sw, dtype=np.float64)
        if ax is None and z.ndim <= 1:
            wt = wt * sw
        else:
            wt = wt * np.expand_dims(sw, cax)
    lw = np.where(wt == 0, 0, l * wt)
    gw = np.where(wt == 0, 0, g * wt)
    per = lw if ax is None else lw.sum(axis=cax)
    if reduction == "none":
        return per.astype(np.float64), gw.astype(np.float64)
    if reduction == "sum":
        return float(per.sum()), gw.astype(np.float64)
    if sw is None:
        d = per.size
    elif ax is None:
        d = sw.sum() * (z.shape[-1] if z.ndim >= 2 else 1)
    else:
        d = sw.sum()
    return (float(per.sum() / d) if d else 0.0), (gw / d if d else gw).astype(np.float64)


def _tol(dtype, reduction):
    return LOSS_TOL[dtype] if reduction == "none" else dict(rtol=2e-6 if dtype == np.float32 else 1e-13)


# ---- PyTorch ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(30, 7), (4, 5, 9), (50,)])
def test_weight_and_pos_weight_match_torch(isa, rng, dtype, reduction, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    C = shape[-1]
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.random(shape).astype(dtype)
    t[..., ::2] = np.round(t[..., ::2])
    w = (rng.random(C) * 2).astype(dtype)
    q = (rng.random(C) * 4).astype(dtype)
    loss, grad = xent.sigmoid_cross_entropy(z, t, weight=w, pos_weight=q, reduction=reduction, return_grad=True)
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    tl = F.binary_cross_entropy_with_logits(
        zt, torch.tensor(t.astype(np.float64)), weight=torch.tensor(w.astype(np.float64)),
        pos_weight=torch.tensor(q.astype(np.float64)), reduction=reduction,
    )
    tl.sum().backward()
    tol = _tol(dtype, reduction)
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=tol["rtol"] * 5, atol=tol.get("atol", 0))
    np.testing.assert_allclose(grad, zt.grad.numpy(), **GRAD_TOL[dtype])
    # and PyTorch's own float32 computation agrees at float32 accuracy
    if dtype == np.float32:
        t32 = F.binary_cross_entropy_with_logits(
            torch.tensor(z), torch.tensor(t), weight=torch.tensor(w), pos_weight=torch.tensor(q), reduction=reduction
        )
        np.testing.assert_allclose(loss, t32.numpy(), rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_class_axis_given_matches_torch_broadcast(isa, rng, dtype, reduction):
    """axis=1 on (N, C, H): PyTorch's weight/pos_weight as (C, 1), xent's summed over axis 1."""
    torch = pytest.importorskip("torch")
    N, C, H = 6, 5, 11
    z = (rng.standard_normal((N, C, H)) * 2).astype(dtype)
    t = (rng.random((N, C, H)) < 0.3).astype(dtype)
    w, q = rng.random(C).astype(dtype), (rng.random(C) * 3).astype(dtype)
    loss, grad = xent.sigmoid_cross_entropy(z, t, axis=1, weight=w, pos_weight=q, reduction=reduction,
                                            return_grad=True)
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    el = torch.nn.functional.binary_cross_entropy_with_logits(
        zt, torch.tensor(t.astype(np.float64)), weight=torch.tensor(w.astype(np.float64)).view(C, 1),
        pos_weight=torch.tensor(q.astype(np.float64)).view(C, 1), reduction="none",
    ).sum(dim=1)
    tl = el if reduction == "none" else el.mean()
    tl.sum().backward()
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-5 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(grad, zt.grad.numpy(), **GRAD_TOL[dtype])


def test_smoothing_matches_torch_on_smoothed_targets(isa, rng):
    torch = pytest.importorskip("torch")
    z, t = rng.standard_normal((20, 6)) * 3, (rng.random((20, 6)) < 0.5).astype(np.float64)
    eps = 0.1
    zt = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor((1 - eps) * t + eps / 2))
    tl.backward()
    loss, grad = xent.sigmoid_cross_entropy(z, t, label_smoothing=eps, return_grad=True)
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-14)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-13, atol=1e-16)


# ---- scikit-learn: sample weights on binary labels ----------------------------------------


def test_sample_weight_mean_is_sklearn_log_loss(isa, rng):
    metrics = pytest.importorskip("sklearn.metrics")
    z = rng.standard_normal(200) * 2
    y = (rng.random(200) < 0.4).astype(np.float64)
    sw = rng.random(200) * 3
    p = 1 / (1 + np.exp(-z))
    expect = metrics.log_loss(y, p, sample_weight=sw)
    got = xent.sigmoid_cross_entropy(z, y, sample_weight=sw)
    np.testing.assert_allclose(got, expect, rtol=1e-12)


# ---- written-out references ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize(
    "shape,axis", [((40, 9), None), ((3, 8, 5), None), ((77,), None), ((), None), ((6, 5, 7), 1), ((7, 4), 0),
                   ((5, 3, 2), -1)]
)
def test_all_options_against_reference(isa, rng, dtype, reduction, shape, axis):
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.random(shape).astype(dtype)
    nd = len(shape)
    C = 1 if nd == 0 else (shape[-1] if axis is None else shape[axis])
    if axis is None:
        sw_shape = shape[:-1] if nd >= 2 else shape
    else:
        sw_shape = shape[: axis % nd] + shape[axis % nd + 1 :]
    w = (rng.random(C) + 0.2).astype(dtype)
    q = (rng.random(C) * 3).astype(dtype)
    sw = rng.random(sw_shape).astype(dtype)
    kw = dict(weight=w, pos_weight=q, sample_weight=sw, label_smoothing=0.05)
    loss, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, reduction=reduction, return_grad=True, **kw)
    rl, rg = _expected(z, t, axis, w, q, sw, 0.05, reduction)
    np.testing.assert_allclose(loss, rl, **_tol(dtype, reduction))
    g = GRAD_TOL[dtype]
    np.testing.assert_allclose(grad, rg, rtol=g["rtol"], atol=g["atol"] / (z.size if reduction == "mean" else 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 8, 9, 13, 8193])
@pytest.mark.parametrize("opt", ["weight", "pos_weight", "sample_weight"])
def test_layouts_and_merged_runs(isa, rng, dtype, C, opt):
    """Rows of a small class axis are merged into long runs in the kernel (per-class values
    repeat along them); transposed and strided inputs take the gathering path."""
    n = max(2, 24000 // C)
    base = (rng.standard_normal((n, C)) * 3).astype(dtype)
    t = rng.random((n, C)).astype(dtype)
    vec = (rng.random(C) * 2).astype(dtype)
    sw = rng.random(n).astype(dtype)
    kw = {"weight": dict(weight=vec), "pos_weight": dict(pos_weight=vec), "sample_weight": dict(sample_weight=sw)}[opt]
    rk = {"weight": dict(w=vec), "pos_weight": dict(q=vec), "sample_weight": dict(sw=sw)}[opt]
    for z, tt in ((base, t), (np.asfortranarray(base), t), (base[::2], t[::2])):
        kws = dict(kw)
        rks = dict(rk)
        if opt == "sample_weight":
            kws["sample_weight"] = rks["sw"] = sw[: len(z)]
        loss, grad = xent.sigmoid_cross_entropy(z, tt, reduction="none", return_grad=True, **kws)
        rl, rg = _expected(z, tt, None, reduction="none", **rks)
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("axis", [None, 1, 0])
def test_gradient_with_options_matches_finite_differences(isa, rng, reduction, axis):
    z = rng.standard_normal((4, 5)) * 3
    t = rng.random((4, 5))
    C = 5 if axis in (None, 1) else 4
    sw_shape = (4,) if axis in (None, 1) else (5,)
    kw = dict(weight=rng.random(C) + 0.3, pos_weight=rng.random(C) * 3, sample_weight=rng.random(sw_shape) + 0.1,
              label_smoothing=0.2, axis=axis, reduction=reduction)
    _, grad = xent.sigmoid_cross_entropy(z, t, return_grad=True, **kw)
    num = ref.numeric_grad(lambda v: xent.sigmoid_cross_entropy(v, t, **kw), z)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


# ---- edge cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_with_options(isa, dtype):
    big = np.finfo(dtype).max
    z = np.array([1e4, -1e4, 40, -40, 0, big, -big, 88, -88, -745], dtype=dtype)
    for tv in (0.0, 1.0, 0.5, 1e-6):
        t = np.full_like(z, tv)
        q = np.full(z.size, 2.5, dtype=dtype)
        loss, grad = xent.sigmoid_cross_entropy(z, t, pos_weight=q, label_smoothing=0.01, reduction="none",
                                                return_grad=True)
        rl, rg = sref.bce(z, t, q, 0.01)
        assert not np.isnan(loss).any() and not np.isnan(grad).any()
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(loss, rl.astype(dtype), **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, rg.astype(np.float64), **GRAD_TOL[dtype])


def test_infinite_logits_semantics(isa):
    inf = np.inf
    z = np.array([-inf, inf, -inf, inf, -inf, -inf])
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    q = np.array([3.0, 3.0, 3.0, 3.0, 0.0, 3.0])
    loss, grad = xent.sigmoid_cross_entropy(z, t, weight=np.ones(6), pos_weight=q, reduction="none",
                                            return_grad=True)
    # -inf with t=0 and +inf with t=1 cost 0; wrong side costs +inf; q = 0 removes the positive term
    np.testing.assert_array_equal(loss, [0, 0, inf, inf, 0, 0])
    np.testing.assert_array_equal(grad, [0, 0, -3, 1, 0, 0])
    # smoothing puts mass on both sides: every infinite logit costs +inf, gradients stay finite
    loss, grad = xent.sigmoid_cross_entropy(z, t, label_smoothing=0.1, reduction="none", return_grad=True)
    assert np.all(loss == inf) and np.all(np.isfinite(grad))
    # weight 0 makes an infinite (or NaN) element contribute exactly 0
    zz = np.array([-inf, np.nan, 1.0])
    tt = np.array([1.0, 0.5, 0.0])
    loss, grad = xent.sigmoid_cross_entropy(zz, tt, weight=np.array([0.0, 0.0, 1.0]), reduction="sum",
                                            return_grad=True)
    np.testing.assert_allclose(loss, np.log1p(np.e))
    assert grad[0] == 0 and grad[1] == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [16, 32, 40])
@pytest.mark.parametrize("axis", [None, -1])
def test_zero_row_weights_past_a_units_first_row(isa, rng, dtype, C, axis):
    # rows with a sample weight of 0 after a weighted first row, holding +inf on the wrong
    # side and NaN: they add exactly 0 (the kernel's zero test must know that some row
    # weight is 0, whichever row of the unit it is), and their gradient is 0
    R = 1000
    z = rng.standard_normal((R, C)).astype(dtype)
    t = (rng.random((R, C)) < 0.4).astype(dtype)
    sw_full = rng.random(2 * R) + 0.5
    sw_full[2 * np.array([3, 200, 517, 999])] = 0.0
    sw = sw_full[::2]  # (a strided view too)
    z[200, 5], t[200, 5] = np.inf, 0.0
    z[517, 1] = np.nan
    z[999, C - 1], t[999, C - 1] = -np.inf, 1.0
    live = sw != 0
    for reduction in ("sum", "mean", "none"):
        loss, grad = xent.sigmoid_cross_entropy(z, t, axis=axis, sample_weight=sw, reduction=reduction,
                                                return_grad=True)
        want, wgrad = xent.sigmoid_cross_entropy(z[live], t[live], axis=axis, sample_weight=sw[live],
                                                 reduction=reduction, return_grad=True)
        assert not np.isnan(grad).any() and not grad[~live].any()
        if reduction == "none":
            zeros = np.zeros_like(loss[~live])
            np.testing.assert_array_equal(loss[~live], zeros)
            np.testing.assert_allclose(loss[live], want, **LOSS_TOL[dtype])
        else:
            assert np.isfinite(loss)
            np.testing.assert_allclose(loss, want, **LOSS_TOL[dtype])
        # (a weighted mean divides by the weights' sum, to which the zero rows add nothing)
        np.testing.assert_allclose(grad[live], wgrad, **GRAD_TOL[dtype])


def test_zero_total_weight_empty_and_one_class(isa, rng):
    z = rng.standard_normal((5, 3))
    t = rng.random((5, 3))
    loss, grad = xent.sigmoid_cross_entropy(z, t, sample_weight=np.zeros(5), return_grad=True)
    assert loss == 0.0 and not grad.any()
    loss, grad = xent.sigmoid_cross_entropy(z, t, axis=1, sample_weight=np.zeros(5), return_grad=True)
    assert loss == 0.0 and not grad.any()
    e = np.zeros((0, 3))
    assert xent.sigmoid_cross_entropy(e, e, weight=np.ones(3), sample_weight=np.zeros(0)) == 0.0
    r = xent.sigmoid_cross_entropy(e, e, axis=1, pos_weight=np.ones(3), reduction="none")
    assert r.shape == (0,)
    z0 = np.zeros((4, 0))
    np.testing.assert_array_equal(
        xent.sigmoid_cross_entropy(z0, z0, axis=1, weight=np.zeros(0), sample_weight=np.ones(4), reduction="none"),
        np.zeros(4),
    )
    # one class: (N, 1) with a scalar pos_weight, and the axis form
    z1, t1 = rng.standard_normal((9, 1)), (rng.random((9, 1)) < 0.5).astype(float)
    a = xent.sigmoid_cross_entropy(z1, t1, pos_weight=2.0, reduction="none")
    rl, _ = sref.bce(z1, t1, 2.0)
    np.testing.assert_allclose(a, rl.astype(float), rtol=1e-13)
    b = xent.sigmoid_cross_entropy(z1, t1, axis=1, pos_weight=[2.0], reduction="none")
    np.testing.assert_allclose(b, a[:, 0], rtol=1e-15)


def test_scalar_weights_broadcast_over_classes(isa, rng):
    z, t = rng.standard_normal((6, 4)), rng.random((6, 4))
    a = xent.sigmoid_cross_entropy(z, t, weight=0.5, pos_weight=np.array([3.0]), reduction="none")
    b = xent.sigmoid_cross_entropy(z, t, weight=np.full(4, 0.5), pos_weight=np.full(4, 3.0), reduction="none")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("axis", [None, 1])
def test_threads_bit_identical_with_options(isa, rng, axis):
    z = (rng.standard_normal((300, 7, 70)) * 3).astype(np.float32)
    t = rng.random(z.shape).astype(np.float32)
    C = 70 if axis is None else 7
    swshape = (300, 7) if axis is None else (300, 70)
    kw = dict(axis=axis, weight=rng.random(C), pos_weight=rng.random(C) * 2, sample_weight=rng.random(swshape),
              label_smoothing=0.1, return_grad=True)
    for red in ("none", "mean"):
        runs = [xent.sigmoid_cross_entropy(z, t, reduction=red, n_threads=n, **kw) for n in (1, 2, 3)]
        for loss, grad in runs[1:]:
            np.testing.assert_array_equal(loss, runs[0][0])
            np.testing.assert_array_equal(grad, runs[0][1])
