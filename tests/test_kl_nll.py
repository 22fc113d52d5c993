"""nll_loss and kl_divergence: PyTorch agreement, float64 references, finite differences,
edge cases (masks, all ignored, empty), every ISA, thread counts."""
import numpy as np
import pytest

import xent
from conftest import LOSS_TOL
from reference import numeric_grad


def _logp(rng, shape, axis=-1, dtype=np.float64):
    z = rng.standard_normal(shape) * 3
    return (z - np.log(np.exp(z).sum(axis, keepdims=True))).astype(dtype)


def _torch_run(fn, x, axis, *args, **kw):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(np.moveaxis(x, axis, 1), requires_grad=True)
    loss = fn(xt, *args, **kw)
    loss.backward(torch.ones_like(loss))
    return loss.detach().numpy(), np.moveaxis(xt.grad.numpy(), 1, axis)


# ---- nll_loss ------------------------------------------------------------------------------

CASES = [((64, 10), 1), ((64, 10), -1), ((6, 7, 3, 4), 1), ((5, 3, 7), -1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape, axis", CASES)
@pytest.mark.parametrize("opt", [{}, dict(weight=True), dict(ignore_index=2), dict(weight=True, ignore_index=2)])
def test_nll_agrees_with_pytorch(isa, rng, dtype, reduction, shape, axis, opt):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    ax = axis % len(shape)
    C = shape[ax]
    lp = _logp(rng, shape, ax, dtype)
    y = rng.integers(0, C, shape[:ax] + shape[ax + 1 :])
    kw, tkw = {}, {}
    if "weight" in opt:
        kw["weight"] = rng.random(C) + 0.1
        tkw["weight"] = torch.tensor(kw["weight"].astype(dtype))
    if "ignore_index" in opt:
        kw["ignore_index"] = tkw["ignore_index"] = 2
    tl, tg = _torch_run(F.nll_loss, lp, ax, torch.tensor(y), reduction=reduction, **tkw)
    loss, grad = xent.nll_loss(lp, y, axis=axis, reduction=reduction, return_grad=True, **kw)
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss, tl, **tol)
    np.testing.assert_allclose(grad, tg, **tol)


def test_nll_reference_sample_weight_and_fd(rng):
    lp = _logp(rng, (30, 6))
    y = rng.integers(0, 6, 30)
    y[::4] = 5
    w = rng.random(6) + 0.2
    sw = rng.random(30)
    loss, grad = xent.nll_loss(lp, y, weight=w, sample_weight=sw, ignore_index=5, return_grad=True)
    keep = y != 5
    rw = w[y] * sw * keep
    ref = -(rw * lp[np.arange(30), y]).sum() / rw.sum()
    np.testing.assert_allclose(loss, ref, rtol=1e-14)
    num = numeric_grad(lambda v: xent.nll_loss(v, y, weight=w, sample_weight=sw, ignore_index=5), lp)
    np.testing.assert_allclose(grad, num, rtol=1e-8, atol=1e-10)


def test_nll_edges(rng):
    lp = _logp(rng, (4, 3))
    y = np.full(4, 7)
    loss, grad = xent.nll_loss(lp, y, ignore_index=7, return_grad=True)
    assert loss == 0.0 and (grad == 0).all()  # all ignored: 0, not NaN
    loss, grad = xent.nll_loss(np.empty((0, 3)), np.empty(0, int), return_grad=True)
    assert loss == 0.0 and grad.shape == (0, 3)
    lp[1, 2] = -np.inf  # log 0 at the label
    per = xent.nll_loss(lp, np.array([0, 2, 1, 0]), reduction="none")
    assert per[1] == np.inf and np.isfinite(per[[0, 2, 3]]).all()
    with pytest.raises(ValueError, match=r"labels\[2\] = 3 is out of range"):
        xent.nll_loss(lp, np.array([0, 1, 3, 0]))
    with pytest.raises(TypeError, match="integer class indices"):
        xent.nll_loss(lp, lp)


# ---- kl_divergence -----------------------------------------------------------------------


def _kl_ref(lp, t, log_target, axis):
    lp, t = lp.astype(np.float64), t.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            e = np.exp(t)
            terms = np.where(t == -np.inf, 0.0, e * (t - lp))
        else:
            terms = np.where(t == 0, 0.0, t * (np.log(t) - lp))
    return terms.sum(axis)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape, axis", CASES)
def test_kl_agrees_with_pytorch(isa, rng, dtype, log_target, shape, axis):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    ax = axis % len(shape)
    lp = _logp(rng, shape, ax, dtype)
    t = np.exp(_logp(rng, shape, ax)).astype(dtype)
    tt = np.log(t) if log_target else t
    rows = int(np.prod(shape)) // shape[ax]
    for reduction, treduction in [("mean", "batchmean"), ("sum", "sum")]:
        tl, tg = _torch_run(F.kl_div, lp, ax, torch.tensor(np.moveaxis(tt, ax, 1)), reduction=treduction,
                            log_target=log_target)
        loss, grad = xent.kl_divergence(lp, tt, log_target=log_target, axis=axis, reduction=reduction,
                                        return_grad=True)
        tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
        if treduction == "batchmean" and len(shape) > 2:
            # PyTorch's batchmean divides by the size of dim 0 only; xent by the number of rows
            tl = tl * shape[0] / rows
            tg = tg * shape[0] / rows
        np.testing.assert_allclose(loss, tl, **tol)
        np.testing.assert_allclose(grad, tg, **tol)
    # PyTorch's "none" is elementwise: xent's is its sum over the class axis
    tl, _ = _torch_run(F.kl_div, lp, ax, torch.tensor(np.moveaxis(tt, ax, 1)), reduction="none",
                       log_target=log_target)
    per = xent.kl_divergence(lp, tt, log_target=log_target, axis=axis, reduction="none")
    np.testing.assert_allclose(per, tl.sum(1), rtol=2e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    # PyTorch's "mean" is over every element: C times smaller than xent's
    tm = F.kl_div(torch.tensor(np.moveaxis(lp, ax, 1)), torch.tensor(np.moveaxis(tt, ax, 1)), reduction="mean",
                  log_target=log_target).item()
    np.testing.assert_allclose(xent.kl_divergence(lp, tt, log_target=log_target, axis=axis) / shape[ax], tm,
                               rtol=2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_reference_float32_contract(isa, rng, dtype, log_target):
    lp = _logp(rng, (300, 37), dtype=dtype)
    t = np.exp(_logp(rng, (300, 37))).astype(dtype)
    t[::3, 5] = 0
    with np.errstate(divide="ignore"):
        tt = np.log(t) if log_target else t
    per = xent.kl_divergence(lp, tt, log_target=log_target, reduction="none")
    ref = _kl_ref(lp, tt, log_target, -1)
    np.testing.assert_allclose(per, ref, **LOSS_TOL[dtype])
    assert per.dtype == dtype


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_gradient_finite_differences(rng, log_target):
    lp = _logp(rng, (7, 5))
    t = np.exp(_logp(rng, (7, 5)))
    tt = np.log(t) if log_target else t
    sw = rng.random(7)
    _, grad = xent.kl_divergence(lp, tt, log_target=log_target, sample_weight=sw, return_grad=True)
    num = numeric_grad(lambda v: xent.kl_divergence(v, tt, log_target=log_target, sample_weight=sw), lp)
    np.testing.assert_allclose(grad, num, rtol=1e-8, atol=1e-10)
    ref = (sw * _kl_ref(lp, tt, log_target, -1)).sum() / sw.sum()
    np.testing.assert_allclose(xent.kl_divergence(lp, tt, log_target=log_target, sample_weight=sw), ref, rtol=1e-14)


def test_kl_edges(rng):
    lp = _logp(rng, (3, 4))
    lp[0, 1] = -np.inf
    t = np.array([[0.5, 0.0, 0.5, 0.0], [0.25] * 4, [0.0, 0.0, 0.0, 1.0]])
    per = xent.kl_divergence(lp, t, reduction="none")
    assert np.isfinite(per).all()  # 0 * log 0 and 0 * -inf are 0 (PyTorch: NaN)
    with np.errstate(divide="ignore"):
        per_log = xent.kl_divergence(lp, np.log(t), log_target=True, reduction="none")
    np.testing.assert_allclose(per_log, per, rtol=1e-14)
    t2 = t.copy()
    t2[0] = [0.0, 0.5, 0.5, 0.0]  # target mass where log_pred = -inf
    assert xent.kl_divergence(lp, t2, reduction="none")[0] == np.inf
    assert xent.kl_divergence(lp, t2, reduction="none")[1] == per[1]
    assert xent.kl_divergence(lp, np.full_like(lp, np.log(0.25)), log_target=True, reduction="none")[1] >= 0
    with pytest.raises(ValueError, match=r"target has the value -0.5 at index \(1, 2\): targets must be >= 0"):
        bad = t.copy()
        bad[1, 2] = -0.5
        xent.kl_divergence(lp, bad)
    assert xent.kl_divergence(np.empty((0, 4)), np.empty((0, 4))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        xent.kl_divergence(lp, t[:, :3])


@pytest.mark.parametrize("fn", ["nll", "kl", "kl_log"])
def test_threads_identical(rng, fn):
    lp = _logp(rng, (2000, 50), dtype=np.float32)
    y = rng.integers(0, 50, 2000)
    t = np.exp(_logp(rng, (2000, 50))).astype(np.float32)
    call = {
        "nll": lambda n: xent.nll_loss(lp, y, weight=np.linspace(0.1, 1, 50), reduction="none", return_grad=True,
                                       n_threads=n),
        "kl": lambda n: xent.kl_divergence(lp, t, reduction="none", return_grad=True, n_threads=n),
        "kl_log": lambda n: xent.kl_divergence(lp, np.log(t), log_target=True, return_grad=True, n_threads=n),
    }[fn]
    base = call(1)
    for n in (2, 3):
        got = call(n)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
