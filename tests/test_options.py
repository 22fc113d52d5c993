"""softmax_cross_entropy options: class weights, sample weights, ignore_index, z_loss."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL


def _ref_weighted(x, y, w=None, sw=None, ignore=None, zl=0.0, reduction="mean"):
    """Float64 reference: per-row losses and gradients from reference.py, weighted by hand."""
    yy = np.where(y == ignore, 0, y) if ignore is not None else y
    l, g = ref.softmax_xent_labels(x, yy)
    lse = ref.logsumexp(x)
    p = ref.softmax(x)
    l = l + zl * lse**2
    g = g + 2 * zl * lse[:, None] * p
    rw = np.ones(len(y)) if w is None else w[yy].astype(np.float64)
    if sw is not None:
        rw = rw * sw
    if ignore is not None:
        rw = np.where(y == ignore, 0.0, rw)
    lw = np.where(rw == 0, 0.0, l * rw)
    gw = np.where(rw[:, None] == 0, 0.0, g * rw[:, None])
    if reduction == "none":
        return lw, gw
    if reduction == "sum":
        return lw.sum(), gw
    d = rw.sum()
    return (lw.sum() / d if d else 0.0), (gw / d if d else gw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_all_options_against_reference(isa, rng, dtype, reduction):
    n, C = 40, 2049
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    y = rng.integers(0, C, n)
    y[[3, 17]] = -100
    w = rng.random(C).astype(dtype) + 0.1
    sw = rng.random(n).astype(dtype)
    loss, grad = xent.softmax_cross_entropy(
        x, y, weight=w, sample_weight=sw, ignore_index=-100, z_loss=1e-3, reduction=reduction, return_grad=True
    )
    rl, rg = _ref_weighted(x, y, w, sw, -100, 1e-3, reduction)
    tol = LOSS_TOL[dtype] if reduction == "none" else dict(rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(loss, rl, **tol)
    gtol = GRAD_TOL[dtype]
    np.testing.assert_allclose(grad, rg, rtol=gtol["rtol"], atol=gtol["atol"] / (1 + (reduction == "mean") * 10))
    assert np.all(grad[[3, 17]] == 0)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("target", ["int", "soft"])
def test_gradient_with_options_matches_finite_differences(isa, rng, reduction, target):
    x = rng.standard_normal((4, 5)) * 2
    w = rng.random(5) + 0.5
    sw = rng.random(4) + 0.2
    if target == "int":
        y = np.array([1, 4, 0, 2])
        kw = dict(weight=w, sample_weight=sw, ignore_index=4, z_loss=0.05, reduction=reduction)
    else:
        y = rng.random((4, 5))
        kw = dict(weight=w, sample_weight=sw, z_loss=0.05, reduction=reduction)
    _, grad = xent.softmax_cross_entropy(x, y, return_grad=True, **kw)
    num = ref.numeric_grad(lambda v: xent.softmax_cross_entropy(v, y, **kw), x)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_soft_targets_with_class_weights_and_sample_weights(isa, rng):
    x = rng.standard_normal((6, 7))
    t = rng.random((6, 7))
    w = rng.random(7)
    sw = rng.random(6)
    l, g = ref.softmax_xent_targets(x, t * w)
    loss, grad = xent.softmax_cross_entropy(x, t, weight=w, sample_weight=sw, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, l * sw, rtol=1e-13)
    np.testing.assert_allclose(grad, g * sw[:, None], rtol=1e-13, atol=1e-15)
    m = xent.softmax_cross_entropy(x, t, weight=w, sample_weight=sw)
    np.testing.assert_allclose(m, (l * sw).sum() / sw.sum(), rtol=1e-13)
    assert np.isclose(xent.softmax_cross_entropy(x, t, weight=w), l.mean(), rtol=1e-13)  # divides by N


def test_all_ignored_or_zero_weight_is_zero(isa, rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = np.full(5, -1)
    for kw in (dict(ignore_index=-1), dict(ignore_index=-1, weight=np.ones(3))):
        loss, grad = xent.softmax_cross_entropy(x, y, return_grad=True, **kw)
        assert loss == 0.0 and np.all(grad == 0)
    y = np.zeros(5, dtype=int)
    loss, grad = xent.softmax_cross_entropy(x, y, sample_weight=np.zeros(5), return_grad=True)
    assert loss == 0.0 and np.all(grad == 0)
    # a zero-weight row whose loss is infinite adds exactly 0 (PyTorch: 0 * inf = NaN)
    xm = x.copy()
    xm[2] = -np.inf
    sw = np.ones(5, np.float32)
    sw[2] = 0
    loss, grad = xent.softmax_cross_entropy(xm, y, sample_weight=sw, return_grad=True)
    assert np.isfinite(loss) and np.isfinite(grad).all() and np.all(grad[2] == 0)


def test_ignore_index_any_value_and_axis(isa, rng):
    x = rng.standard_normal((2, 4, 3))
    y = rng.integers(0, 4, (2, 3))
    y[1, 2] = 99
    loss, grad = xent.softmax_cross_entropy(x, y, axis=1, ignore_index=99, reduction="none", return_grad=True)
    assert loss[1, 2] == 0 and np.all(grad[1, :, 2] == 0)
    yl = y.copy()
    yl[1, 2] = 0
    l2 = xent.softmax_cross_entropy(x, yl, axis=1, reduction="none")
    np.testing.assert_array_equal(np.delete(loss.ravel(), 5), np.delete(l2.ravel(), 5))


def test_option_errors():
    x = np.zeros((3, 4), np.float32)
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match=r"weight has shape \(3,\) but must have shape \(4,\)"):
        xent.softmax_cross_entropy(x, y, weight=np.ones(3))
    with pytest.raises(ValueError, match=r"weight\[2\] = -1.0: weights must be finite and >= 0"):
        xent.softmax_cross_entropy(x, y, weight=np.array([1, 1, -1, 1.0]))
    with pytest.raises(ValueError, match=r"sample_weight\[1\] = nan"):
        xent.softmax_cross_entropy(x, y, sample_weight=np.array([1, np.nan, 1]))
    with pytest.raises(ValueError, match=r"weight\[0\] = inf"):  # overflows float32
        xent.softmax_cross_entropy(x, y, weight=np.array([1e300, 1, 1, 1]))
    with pytest.raises(ValueError, match="sample_weight has shape"):
        xent.softmax_cross_entropy(x, y, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="ignore_index applies to integer labels"):
        xent.softmax_cross_entropy(x, np.zeros((3, 4)), ignore_index=0)
    with pytest.raises(TypeError, match="ignore_index"):
        xent.softmax_cross_entropy(x, y, ignore_index=1.5)
    with pytest.raises(ValueError, match="z_loss"):
        xent.softmax_cross_entropy(x, y, z_loss=-1)
    with pytest.raises(ValueError, match=r"labels\[1\] = -100 is out of range"):
        xent.softmax_cross_entropy(x, np.array([0, -100, 1]))  # ignore_index is off by default
    with pytest.raises(TypeError, match="weight must be real"):
        xent.softmax_cross_entropy(x, y, weight=np.array(["a"] * 4))


def test_options_bit_identical_across_threads(isa, rng):
    x = rng.standard_normal((3000, 100)).astype(np.float32)
    y = rng.integers(0, 100, 3000)
    y[::7] = -1
    kw = dict(weight=rng.random(100), sample_weight=rng.random(3000), ignore_index=-1, z_loss=1e-4)
    runs = [xent.softmax_cross_entropy(x, y, return_grad=True, n_threads=n, **kw) for n in (1, 2, 3)]
    for loss, grad in runs[1:]:
        assert loss == runs[0][0] and np.array_equal(grad, runs[0][1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_weight_and_ignore_index_match_pytorch(rng, dtype, reduction):
    torch = pytest.importorskip("torch")
    x = (rng.standard_normal((50, 6, 3)) * 3).astype(dtype)
    y = rng.integers(0, 6, (50, 3))
    y[rng.random((50, 3)) < 0.2] = -100
    w = (rng.random(6) + 0.1).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(xt, torch.tensor(y), weight=torch.tensor(w), ignore_index=-100,
                                           reduction=reduction)
    tl.backward(torch.ones_like(tl))
    loss, grad = xent.softmax_cross_entropy(x, y, axis=1, weight=w, ignore_index=-100, reduction=reduction,
                                            return_grad=True)
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(loss, tl.detach().numpy(), **tol)
    np.testing.assert_allclose(grad, xt.grad.numpy(), **tol)


def test_soft_target_weight_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((20, 5))
    t = rng.random((20, 5))
    t /= t.sum(1, keepdims=True)
    w = rng.random(5) + 0.1
    xt = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(xt, torch.tensor(t), weight=torch.tensor(w))
    tl.backward()
    loss, grad = xent.softmax_cross_entropy(x, t, weight=w, return_grad=True)
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def _smoothed_targets(x, y, eps, C):
    """The explicit target xent's smoothing implies: (1 - eps) onehot + eps/K on unmasked classes."""
    live = x > -np.inf
    k = live.sum(-1, keepdims=True)
    return (1 - eps) * np.eye(C)[y] + eps * live / k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_equals_explicit_targets(isa, rng, dtype, weighted):
    n, C = 30, 37
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    x[2, ::3] = -np.inf  # masked classes get no smoothing mass
    y = rng.integers(0, C, n)
    y[2] = 1
    w = (rng.random(C) + 0.2).astype(dtype) if weighted else None
    t = _smoothed_targets(x, y, 0.1, C)
    for lab in (y, t.astype(dtype)):
        eps = 0.1 if lab.dtype.kind == "i" else 0.0
        loss, grad = xent.softmax_cross_entropy(x, lab, weight=w, label_smoothing=eps, reduction="none",
                                                return_grad=True)
        rl, rg = ref.softmax_xent_targets(x, t * (1 if w is None else w))
        assert np.isfinite(loss).all() and np.isfinite(grad).all()
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
        np.testing.assert_allclose(grad, rg, **GRAD_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_label_smoothing_across_blocks(isa, rng, dtype, weighted):
    # rows of several 2048-class blocks: the forward pass counts the unmasked classes per
    # block; rows without a masked class take the weights' sum and sum m - z in a pass of
    # two accumulators (blocks of 2 * 16 vectors), the others take their statistics there
    n, C = 6, 5000
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    x[0] += np.linspace(0, 40, C).astype(dtype)  # the max in the last block
    x[1, ::7] = -np.inf  # masks in every block
    x[2, :2048] = -np.inf  # a fully masked first block
    x[3, 4500] = 3e4  # a huge max late in the row
    x[3, 10] = -3e4
    x[4, 100] = 60.0  # the max in the first block
    x[5, :] = x[5, ::-1]
    y = rng.integers(0, C, n)
    y[1], y[2] = 1, 2100  # labels on unmasked classes
    t = _smoothed_targets(x, y, 0.1, C)
    w = None
    if weighted:
        w = (rng.random(C) + 0.2).astype(dtype)
        w[::11] = 0.0  # classes of weight 0 (their share is 0)
        t = t * w  # t_c w_c, as PyTorch weighs smoothed targets
    for rg in (False, True):
        res = xent.softmax_cross_entropy(x, y, weight=w, label_smoothing=0.1, reduction="none", return_grad=rg)
        rl, rgrad = ref.softmax_xent_targets(x, t)
        loss = res[0] if rg else res
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[dtype])
        if rg:
            np.testing.assert_allclose(res[1], rgrad, **GRAD_TOL[dtype])
            assert not res[1][1, ::7].any()  # no smoothing mass on a masked class


def test_label_smoothing_of_soft_targets(isa, rng):
    x = rng.standard_normal((8, 6))
    x[0, 0] = -np.inf
    t = rng.random((8, 6))
    t[0, 0] = 0
    t /= t.sum(1, keepdims=True)
    live = x > -np.inf
    ts = 0.7 * t + 0.3 * live / live.sum(-1, keepdims=True)
    loss, grad = xent.softmax_cross_entropy(x, t, label_smoothing=0.3, reduction="none", return_grad=True)
    rl, rg = ref.softmax_xent_targets(x, ts)
    np.testing.assert_allclose(loss, rl, rtol=1e-13)
    np.testing.assert_allclose(grad, rg, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("target", ["int", "soft"])
def test_label_smoothing_gradient_finite_differences(isa, rng, target):
    x = rng.standard_normal((3, 5)) * 2
    y = np.array([1, 4, 0]) if target == "int" else rng.random((3, 5))
    kw = dict(weight=rng.random(5) + 0.5, sample_weight=rng.random(3) + 0.2, label_smoothing=0.2, z_loss=0.01)
    _, grad = xent.softmax_cross_entropy(x, y, return_grad=True, **kw)
    num = ref.numeric_grad(lambda v: xent.softmax_cross_entropy(v, y, **kw), x)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_label_smoothing_errors():
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        xent.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_label_smoothing_matches_pytorch(rng, weighted, reduction):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((40, 9, 2)) * 2
    y = rng.integers(0, 9, (40, 2))
    y[::5, 0] = -100
    w = rng.random(9) + 0.1 if weighted else None
    xt = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(xt, torch.tensor(y), weight=None if w is None else torch.tensor(w),
                                           ignore_index=-100, label_smoothing=0.15, reduction=reduction)
    tl.backward(torch.ones_like(tl))
    loss, grad = xent.softmax_cross_entropy(x, y, axis=1, weight=w, ignore_index=-100, label_smoothing=0.15,
                                            reduction=reduction, return_grad=True)
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
