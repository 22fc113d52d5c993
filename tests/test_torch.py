"""Agreement with PyTorch's cross_entropy and binary_cross_entropy_with_logits on the
options both have (loss and gradient). CI installs the CPU build (torch==2.13.0)."""
import numpy as np
import pytest

import xent

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_ce(x, y, axis, reduction):
    xt = torch.tensor(np.moveaxis(x, axis, 1) if axis != 1 else x, requires_grad=True)
    yt = torch.tensor(y if y.dtype.kind != "f" else (np.moveaxis(y, axis, 1) if axis != 1 else y))
    loss = F.cross_entropy(xt, yt, reduction=reduction)
    loss.backward(torch.ones_like(loss))
    g = xt.grad.numpy()
    return loss.detach().numpy(), (np.moveaxis(g, 1, axis) if axis != 1 else g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape, axis", [((64, 10), 1), ((8, 5, 3, 4), 1), ((6, 50_304), 1)])
def test_cross_entropy_labels(rng, dtype, reduction, shape, axis):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    yshape = shape[:axis] + shape[axis + 1 :]
    y = rng.integers(0, shape[axis], yshape)
    tl, tg = _torch_ce(x, y, axis, reduction)
    loss, grad = xent.softmax_cross_entropy(x, y, axis=axis, reduction=reduction, return_grad=True)
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(loss, tl, **tol)
    np.testing.assert_allclose(grad, tg, **tol)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_cross_entropy_soft_targets(rng, reduction):
    x = rng.standard_normal((32, 7, 3))
    t = rng.random((32, 7, 3))
    t /= t.sum(1, keepdims=True)
    tl, tg = _torch_ce(x, t, 1, reduction)
    loss, grad = xent.softmax_cross_entropy(x, t, axis=1, reduction=reduction, return_grad=True)
    np.testing.assert_allclose(loss, tl, rtol=1e-12)
    np.testing.assert_allclose(grad, tg, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_bce_with_logits(rng, dtype, reduction):
    z = (rng.standard_normal((100, 20)) * 6).astype(dtype)
    t = rng.random((100, 20)).astype(dtype)
    zt = torch.tensor(z, requires_grad=True)
    tl = F.binary_cross_entropy_with_logits(zt, torch.tensor(t), reduction=reduction)
    tl.backward(torch.ones_like(tl))
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction=reduction, return_grad=True)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss, tl.detach().numpy(), **tol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), **tol)
