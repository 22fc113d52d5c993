"""sigmoid_focal_loss against torchvision's formula (run in PyTorch float64 with autograd, since
torchvision itself is not a dependency), a long-double reference, finite differences, and the
edge cases of log space (huge and infinite logits, gamma < 1, gamma = 0)."""
import numpy as np
import pytest

import reference as ref
import sigmoid_ref as sref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]


def _torchvision_focal(torch, z, t, gamma, alpha, reduction):
    """torchvision.ops.sigmoid_focal_loss, line for line (alpha < 0: no balancing)."""
    F = torch.nn.functional
    p = torch.sigmoid(z)
    ce_loss = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss = alpha_t * loss
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.5, None), (0.0, 0.25), (3.7, 0.9), (1.0, -1)])
@pytest.mark.parametrize("soft", [False, True])
def test_matches_torchvision_formula(isa, rng, reduction, gamma, alpha, soft):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((25, 6)) * 4
    t = rng.random((25, 6)) if soft else (rng.random((25, 6)) < 0.3).astype(np.float64)
    loss, grad = xent.sigmoid_focal_loss(z, t, gamma=gamma, alpha=alpha, reduction=reduction, return_grad=True)
    zt = torch.tensor(z, requires_grad=True)
    tl = _torchvision_focal(torch, zt, torch.tensor(t), gamma, -1 if alpha is None else alpha, reduction)
    tl.sum().backward()
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.25, None), (5.0, 0.6)])
def test_against_long_double_reference(isa, rng, dtype, gamma, alpha):
    n = 3001
    z = (rng.standard_normal(n) * 5).astype(dtype)
    t = rng.random(n).astype(dtype)
    t[::2] = np.round(t[::2])
    loss, grad = xent.sigmoid_focal_loss(z, t, gamma=gamma, alpha=alpha, reduction="none", return_grad=True)
    rl, rg = sref.focal(z, t, gamma, alpha)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss, rl.astype(np.float64), **LOSS_TOL[dtype])
    g = GRAD_TOL[dtype]
    np.testing.assert_allclose(grad, rg.astype(np.float64), rtol=g["rtol"] * 2, atol=g["atol"])
    s = xent.sigmoid_focal_loss(z, t, gamma=gamma, alpha=alpha, reduction="sum")
    np.testing.assert_allclose(s, float(rl.sum()), rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("alpha", [0.25, None, 1.0])
@pytest.mark.parametrize("variant", ["plain", "weights", "sample weights", "loss only"])
def test_integer_gamma_against_long_double(isa, rng, dtype, gamma, alpha, variant):
    """Integer gammas take their own kernel (the power by products, no log space): each of its
    compiled option sets against the long-double reference, on random, large and tied logits."""
    z = (rng.standard_normal((40, 37)) * 5).astype(dtype)
    z[0] = np.linspace(-60, 60, 37)
    z[1, :5] = 0
    t = rng.random((40, 37)).astype(dtype)
    t[::3] = np.round(t[::3])
    t[2] = 0.5  # dm/dz = 0
    kw, w, sw = {}, np.ones(37), np.ones(40)
    if variant == "weights":
        w, sw = rng.random(37) + 0.5, rng.random(40) + 0.5
        kw = dict(weight=w, sample_weight=sw)
    elif variant == "sample weights":
        sw = rng.random(40) + 0.5
        kw = dict(sample_weight=sw)
    grad = variant != "loss only"
    res = xent.sigmoid_focal_loss(z, t, gamma=gamma, alpha=alpha, reduction="none", return_grad=grad, **kw)
    loss = res[0] if grad else res
    rl, rg = sref.focal(z, t, gamma, alpha)
    scale = w[None, :] * sw[:, None]
    np.testing.assert_allclose(loss, (rl * scale).astype(np.float64), **LOSS_TOL[dtype])
    if grad:
        g = GRAD_TOL[dtype]
        np.testing.assert_allclose(res[1], (rg * scale).astype(np.float64), rtol=g["rtol"] * 2, atol=g["atol"])


def test_integer_gamma_zero_alpha_weight_and_infinite_logits(isa):
    """alpha = 1 (0) makes alpha_t = 0 where t = 0 (1): such an element is exactly 0, even with an
    infinite logit (0 * inf would be NaN); the others keep their infinite loss."""
    inf = np.inf
    z = np.array([inf, -inf, inf, -inf, 3.0])
    t = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    for gamma in (1.0, 2.0, 4.0):
        loss, grad = xent.sigmoid_focal_loss(z, t, gamma=gamma, alpha=1.0, reduction="none", return_grad=True)
        np.testing.assert_array_equal(loss, [0, 0, 0, inf, 0])
        np.testing.assert_array_equal(grad[[0, 1, 2, 4]], 0)
        assert grad[3] == -1
        loss, grad = xent.sigmoid_focal_loss(-z, 1 - t, gamma=gamma, alpha=0.0, reduction="none", return_grad=True)
        np.testing.assert_array_equal(loss, [0, 0, 0, inf, 0])
        assert not np.isnan(grad).any()


def test_gamma_zero_is_alpha_weighted_cross_entropy(isa, rng):
    z = rng.standard_normal((30, 4)) * 6
    t = rng.random((30, 4))
    t[:10] = np.round(t[:10])
    # alpha None, gamma 0: the cross-entropy itself, bit for bit (same kernel arithmetic)
    a = xent.sigmoid_focal_loss(z, t, gamma=0.0, alpha=None, reduction="none", return_grad=True)
    b = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # alpha: weighted by alpha_t = alpha t + (1 - alpha)(1 - t), written out
    alpha = 0.3
    at = alpha * t + (1 - alpha) * (1 - t)
    loss, grad = xent.sigmoid_focal_loss(z, t, gamma=0.0, alpha=alpha, reduction="mean", return_grad=True)
    np.testing.assert_allclose(loss, (at * b[0]).mean(), rtol=1e-13)
    np.testing.assert_allclose(grad, at * b[1] / z.size, rtol=1e-13, atol=1e-18)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("axis", [None, 0])
def test_gradient_matches_finite_differences(isa, rng, reduction, gamma, axis):
    z = rng.standard_normal((4, 6)) * 3
    t = rng.random((4, 6))
    t[0] = np.round(t[0])
    C = 6 if axis is None else 4
    kw = dict(gamma=gamma, alpha=0.4, axis=axis, reduction=reduction, weight=rng.random(C) + 0.5,
              sample_weight=rng.random(4 if axis is None else 6) + 0.1)
    _, grad = xent.sigmoid_focal_loss(z, t, return_grad=True, **kw)
    num = ref.numeric_grad(lambda v: xent.sigmoid_focal_loss(v, t, **kw), z)
    np.testing.assert_allclose(grad, num, rtol=2e-7, atol=1e-9)


def test_weights_and_axis_follow_the_cross_entropy_rules(isa, rng):
    z = rng.standard_normal((5, 3, 4)) * 2
    t = rng.random((5, 3, 4))
    w, sw = rng.random(3) + 0.1, rng.random((5, 4))
    rl, _ = sref.focal(z, t, 2.0, 0.25)
    el = rl.astype(np.float64) * w[None, :, None] * sw[:, None, :]
    per = xent.sigmoid_focal_loss(z, t, axis=1, weight=w, sample_weight=sw, reduction="none")
    np.testing.assert_allclose(per, el.sum(1), rtol=1e-13)
    m = xent.sigmoid_focal_loss(z, t, axis=1, weight=w, sample_weight=sw)
    np.testing.assert_allclose(m, el.sum() / sw.sum(), rtol=1e-13)
    sw2 = rng.random((5, 3))
    m2 = xent.sigmoid_focal_loss(z, t, weight=rng.random(4) * 0 + 1, sample_weight=sw2)
    np.testing.assert_allclose(m2, (rl.astype(np.float64) * sw2[..., None]).sum() / (sw2.sum() * 4), rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_no_nan(isa, dtype):
    big = np.finfo(dtype).max
    z = np.array([1e4, -1e4, 60, -60, 200, -200, big, -big, 0.0], dtype=dtype)
    for tv in (0.0, 1.0, 0.5, 0.9, 1e-3):
        for gamma in (0.0, 0.3, 2.0, 7.0):
            t = np.full_like(z, tv)
            loss, grad = xent.sigmoid_focal_loss(z, t, gamma=gamma, reduction="none", return_grad=True)
            assert not np.isnan(loss).any() and not np.isnan(grad).any(), (tv, gamma)
            assert np.all(loss >= 0)
            rl, _ = sref.focal(z, t, gamma, 0.25)
            with np.errstate(over="ignore", invalid="ignore"):
                ok = np.isfinite(rl.astype(dtype))
            np.testing.assert_allclose(loss[ok], rl[ok].astype(np.float64), **LOSS_TOL[dtype])


def test_infinite_logits(isa):
    inf = np.inf
    z = np.array([inf, -inf, -inf, inf, -inf, inf])
    t = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.999])
    loss, grad = xent.sigmoid_focal_loss(z, t, gamma=2.0, alpha=None, reduction="none", return_grad=True)
    # right side: 0; wrong side: +inf with gradient -(1 - p_t)^gamma (t - p) = -1 / +1; soft: +inf
    np.testing.assert_array_equal(loss, [0, 0, inf, inf, inf, inf])
    np.testing.assert_allclose(grad, [0, 0, -1, 1, -0.5 * 0.5**2, (1 - 0.999) ** 3], rtol=1e-13)
    # a large gamma underflows (1 - p_t)^gamma, but an infinite cross-entropy stays +inf, not NaN
    loss = xent.sigmoid_focal_loss(np.array([inf]), np.array([0.999]), gamma=300.0, reduction="none")
    assert loss[0] == inf


def test_threads_bit_identical(isa, rng):
    z = (rng.standard_normal((500, 300)) * 4).astype(np.float32)
    t = rng.random(z.shape).astype(np.float32)
    runs = [xent.sigmoid_focal_loss(z, t, sample_weight=rng.random(500) * 0 + 0.5, return_grad=True, n_threads=n)
            for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(grad, runs[0][1])


def test_bad_arguments():
    z, t = np.zeros((3, 2)), np.full((3, 2), 0.5)
    for g in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="gamma"):
            xent.sigmoid_focal_loss(z, t, gamma=g)
    for a in (1.5, np.nan):
        with pytest.raises(ValueError, match="alpha"):
            xent.sigmoid_focal_loss(z, t, alpha=a)
    bad = t.copy()
    bad[2, 1] = 1.25
    with pytest.raises(ValueError, match=r"targets\[2, 1\] = 1.25"):
        xent.sigmoid_focal_loss(z, bad)
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"targets\[2, 1\]"):
        xent.sigmoid_focal_loss(z, bad)
    with pytest.raises(ValueError, match="weight"):
        xent.sigmoid_focal_loss(z, t, weight=np.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, "bfloat16"])
def test_bad_targets_in_long_arrays_named(dtype):
    # a bad target anywhere, in NumPy's vector body or its tail, is named (the first check
    # compares the targets' bits with 1.0's, then the exact one names the culprit)
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    half = np.dtype(dtype).itemsize == 2
    z = np.zeros((300, 37), dtype)
    t = np.full((300, 37), 0.5, dtype)
    t[0, 0], t[-1, -1] = 0.0, 1.0  # the bounds are allowed, and -0.0
    t[5, 5] = -0.0
    xent.sigmoid_focal_loss(z, t)
    above = {8: 1.0000001, 4: 1.0001, 2: 1.01}[np.dtype(dtype).itemsize]
    for at in ((150, 20), (299, 36), (0, 0)):
        for v in (above, -1e-3 if half else -1e-30, -np.inf, np.nan, np.inf):
            bad = t.copy()
            bad[at] = v
            with pytest.raises(ValueError, match=rf"targets\[{at[0]}, {at[1]}\]"):
                xent.sigmoid_focal_loss(z, bad)
    # other layouts and dtypes take NumPy's check: the same errors
    bad = np.asfortranarray(t)
    bad[7, 3] = 2.0
    with pytest.raises(ValueError, match=r"targets\[7, 3\] = 2.0"):
        xent.sigmoid_focal_loss(np.asfortranarray(z), bad)


def test_weight_stats_binding():
    from xent import _core

    w = np.linspace(0, 3, 5000)
    s, top = _core.weight_stats(w)
    assert top == 3.0 and s == pytest.approx(w.sum(), rel=1e-14)
    assert s == _core.weight_sum(w)
    for v in (np.nan, -1.0, np.inf):
        bad = w.copy()
        bad[2500] = v
        assert _core.weight_stats(bad)[1] == np.inf
    assert _core.weight_stats(np.zeros(0, np.float32)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.weight_stats(w[::2])
