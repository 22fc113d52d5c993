"""xent.torch.LinearCrossEntropyLoss against PyTorch's cross_entropy(linear(...)) run in float64:
loss and the gradients of hidden, weight and bias; gradcheck; errors."""
import pytest

torch = pytest.importorskip("torch")
xt = pytest.importorskip("xent.torch")
F = torch.nn.functional

TOL = {torch.float32: dict(rtol=5e-5, atol=5e-6), torch.float64: dict(rtol=1e-11, atol=1e-13)}


def _data(shape=(3, 5), H=8, V=11, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(*shape, H, generator=g, dtype=torch.float64)
    w = torch.randn(V, H, generator=g, dtype=torch.float64) / 2
    b = torch.randn(V, generator=g, dtype=torch.float64) if bias else None
    y = torch.randint(0, V, shape, generator=g)
    return h, w, b, y


def _grads(fn, tensors, upstream):
    ts = [None if t is None else t.detach().clone().requires_grad_(True) for t in tensors]
    loss = fn(*ts)
    loss.backward(torch.ones_like(loss) if upstream is None else upstream.to(loss.dtype))
    return loss.detach(), [None if t is None else t.grad for t in ts]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [dict(), dict(ignore_index=2, label_smoothing=0.1), dict(chunk_size=(4, 3)),
                                  dict(chunk_size=2, ignore_index=-100)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_pytorch(dtype, reduction, opts, bias):
    h, w, b, y = _data(bias=bias)
    if "ignore_index" in opts:
        y.view(-1)[::4] = opts["ignore_index"]
    torch_kw = {k: v for k, v in opts.items() if k != "chunk_size"}
    up = torch.randn(y.shape, dtype=torch.float64) if reduction == "none" else torch.tensor(-0.6)
    m = xt.LinearCrossEntropyLoss(reduction=reduction, **opts)
    l1, g1 = _grads(lambda h, w, b: m(h, w, y, b), [t if t is None else t.to(dtype) for t in (h, w, b)], up)

    def ref(h, w, b):
        z = F.linear(h, w, b)
        return F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction=reduction,
                               **torch_kw).reshape(y.shape if reduction == "none" else ())

    l2, g2 = _grads(ref, [h, w, b], up)
    assert l1.dtype == dtype and l1.shape == l2.shape
    torch.testing.assert_close(l1.double(), l2, **TOL[dtype])
    for a, r in zip(g1, g2):
        assert (a is None) == (r is None)
        if a is not None:
            assert a.dtype == dtype
            torch.testing.assert_close(a.double(), r, **TOL[dtype])


@pytest.mark.parametrize("kw", [dict(), dict(reduction="none", chunk_size=(2, 4)),
                                dict(reduction="sum", z_loss=0.05, softcap=3.0, label_smoothing=0.2)], ids=str)
def test_gradcheck(kw):
    h, w, b, y = _data(shape=(5,), H=4, V=6, seed=1)
    m = xt.LinearCrossEntropyLoss(**kw)
    args = tuple(t.requires_grad_(True) for t in (h, w, b))
    assert torch.autograd.gradcheck(lambda h, w, b: m(h, w, y, b), args)


def test_frozen_weight_all_ignored_and_threads():
    h, w, b, y = _data(seed=2)
    h.requires_grad_(True)
    loss = xt.LinearCrossEntropyLoss()(h, w, y, b)  # only hidden needs a gradient
    loss.backward()
    ref_h = h.detach().clone().requires_grad_(True)
    F.cross_entropy(F.linear(ref_h, w, b).reshape(-1, 11), y.reshape(-1)).backward()
    torch.testing.assert_close(h.grad, ref_h.grad, rtol=1e-11, atol=1e-13)
    h.grad = None
    ignored = xt.LinearCrossEntropyLoss()(h, w, torch.full_like(y, -100), b)
    ignored.backward()
    assert ignored.item() == 0.0 and torch.all(h.grad == 0)
    a, c = (xt.LinearCrossEntropyLoss(n_threads=n)(h.detach().float(), w.float(), y) for n in (1, 2))
    assert torch.equal(a, c)


def test_weight_is_read_in_place(monkeypatch):
    import xent.torch._fused_linear as fl

    seen = {}
    real = fl.linear_cross_entropy

    def spy(h, w, y, **kw):
        seen.setdefault("ptrs", (h.__array_interface__["data"][0], w.__array_interface__["data"][0]))
        return real(h, w, y, **kw)

    monkeypatch.setattr(fl, "linear_cross_entropy", spy)
    lin = torch.nn.Linear(8, 11)
    h, _, _, y = _data()
    h = h.float()
    xt.LinearCrossEntropyLoss()(h, lin.weight, y, lin.bias).backward()
    assert seen["ptrs"] == (h.data_ptr(), lin.weight.data_ptr()) and lin.weight.grad.shape == (11, 8)


def test_bad_input_raises():
    h, w, b, y = _data()
    m = xt.LinearCrossEntropyLoss()
    with pytest.raises(ValueError, match="target has shape"):
        m(h, w, y[:, :2], b)
    with pytest.raises(TypeError, match="target has dtype"):
        m(h, w, y.double(), b)
    with pytest.raises(ValueError, match="hidden has 8 features"):
        m(h, w[:, :3], y, b)
    with pytest.raises(TypeError, match="share one dtype"):
        m(h, w.float(), y, b)
    with pytest.raises(ValueError, match="weight is on device meta"):
        m(h, torch.empty(11, 8, device="meta", dtype=torch.float64), y, b)
    with pytest.raises(RuntimeError, match="double backward"):
        hh = h.clone().requires_grad_(True)
        torch.autograd.grad(m(hh * 2, w, y, b), hh, create_graph=True)


def test_docs_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "torch.md").read_text()
    code = re.search(r"## Usage\n\n```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/torch.md", "exec"), {})
