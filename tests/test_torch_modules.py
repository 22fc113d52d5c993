"""xent.torch.CrossEntropyLoss and BCEWithLogitsLoss against PyTorch's own modules (run in
float64 as the reference), torch.autograd.gradcheck, zero-copy, module plumbing and errors."""
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
xt = pytest.importorskip("xent.torch")
nn = torch.nn

TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _run(module, x, t, upstream):
    """Loss and input gradient of ``module(x, t)`` backpropagating ``upstream`` (a tensor of the
    loss's shape, or None for 1)."""
    x = x.detach().clone().requires_grad_(True)
    loss = module(x, t)
    loss.backward(torch.ones_like(loss) if upstream is None else upstream.to(loss.dtype))
    return loss.detach(), x.grad


def _compare(ours, ref, x, t, upstream=None, dtype=torch.float64):
    """``ours`` on ``x`` in ``dtype`` against ``ref`` (PyTorch) in float64."""
    x0, t0 = x.detach().clone(), t.clone()
    l1, g1 = _run(ours, x.to(dtype), t.to(dtype) if t.is_floating_point() else t, upstream)
    l2, g2 = _run(ref.double(), x.double(), t.double() if t.is_floating_point() else t, upstream)
    assert l1.dtype == g1.dtype == dtype and l1.shape == l2.shape and g1.shape == x.shape
    torch.testing.assert_close(l1.double(), l2, **TOL[dtype])
    torch.testing.assert_close(g1.double(), g2, **TOL[dtype])
    assert torch.equal(x, x0) and torch.equal(t, t0)  # inputs untouched


def test_import_xent_leaves_torch_out_and_xent_torch_brings_it():
    code = ("import sys, xent; a = 'torch' in sys.modules; import xent.torch; "
            "print(a, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


CE_OPTS = [dict(), dict(weight=True), dict(ignore_index=1), dict(ignore_index=-3), dict(label_smoothing=0.2),
           dict(weight=True, label_smoothing=0.1, ignore_index=-100)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(40, 7), (6, 5, 3, 4), (9,)])
@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("opts", CE_OPTS, ids=lambda o: "-".join(o) or "plain")
def test_cross_entropy_matches_pytorch(dtype, reduction, shape, probs, opts):
    g = _gen(1)
    C = shape[1] if len(shape) > 1 else shape[0]
    row = shape[:1] + shape[2:] if len(shape) > 1 else ()
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if probs:
        t = torch.rand(shape, generator=g, dtype=torch.float64).softmax(1 if len(shape) > 1 else 0)
    else:
        t = torch.randint(0, C, row, generator=g)
        if "ignore_index" in opts and t.ndim:
            t.view(-1)[::3] = opts["ignore_index"]
    kw = dict(opts, reduction=reduction)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(C, generator=g, dtype=torch.float64) + 0.1
    up = torch.randn(row, generator=g, dtype=torch.float64) if reduction == "none" else torch.tensor(0.7)
    ours = xt.CrossEntropyLoss(**{k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in kw.items()})
    if probs and kw.get("ignore_index", -1) >= 0:  # PyTorch refuses a class as ignore_index here
        with pytest.raises(RuntimeError, match="ignore_index"):
            nn.CrossEntropyLoss(**kw)(x, t)
        with pytest.raises(ValueError, match="ignore_index=1 is not supported"):
            ours(x.to(dtype), t.to(dtype))
        return
    _compare(ours, nn.CrossEntropyLoss(**kw), x, t, up, dtype)


def test_cross_entropy_large_vocabulary_float32():
    g = _gen(2)
    x, y = torch.randn(6, 50_304, generator=g, dtype=torch.float64) * 4, torch.randint(0, 50_304, (6,), generator=g)
    _compare(xt.CrossEntropyLoss(), nn.CrossEntropyLoss(), x, y, None, torch.float32)


def test_strided_input_matches_and_is_read_in_place(monkeypatch):
    import xent.torch._ce as ce

    seen = {}
    real = ce.softmax_cross_entropy

    def spy(x, y, **kw):
        seen["x"] = x
        res = real(x, y, **kw)
        seen["grad"] = res[1]
        return res

    monkeypatch.setattr(ce, "softmax_cross_entropy", spy)
    g = _gen(3)
    base = torch.randn(7, 30, generator=g, dtype=torch.float64)
    x = base[:, ::3].detach().requires_grad_(True)  # (7, 10), strides (30, 3): not contiguous
    y = torch.randint(0, 10, (7,), generator=g)
    h = x * 1.0  # a non-leaf: the saved gradient reaches the hook without a copy
    hooked = []
    h.register_hook(hooked.append)
    loss = xt.CrossEntropyLoss()(h, y)
    loss.backward()
    assert seen["x"].__array_interface__["data"][0] == h.data_ptr()
    assert seen["x"].strides == tuple(s * 8 for s in h.stride())
    assert hooked[0].data_ptr() == seen["grad"].__array_interface__["data"][0]
    _compare(xt.CrossEntropyLoss(), nn.CrossEntropyLoss(), base[:, ::3], y)
    xs = base.t()  # a transposed (column-major) input, (30, 7)
    _compare(xt.CrossEntropyLoss(), nn.CrossEntropyLoss(), xs, torch.randint(0, 7, (30,), generator=g))


def test_all_ignored_and_empty_batch_give_zero_not_nan():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.full((5,), -100)
    loss = xt.CrossEntropyLoss(weight=torch.rand(4, dtype=torch.float64))(x, y)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)
    assert torch.isnan(nn.CrossEntropyLoss()(x, y))  # PyTorch's answer (documented difference)
    e = torch.zeros(0, 4, requires_grad=True)
    le = xt.CrossEntropyLoss()(e, torch.zeros(0, dtype=torch.int64))
    le.backward()
    assert le.item() == 0.0 and e.grad.shape == (0, 4)
    none = xt.CrossEntropyLoss(reduction="none")(x, torch.tensor([0, -100, 3, -100, 1]))
    ref = nn.CrossEntropyLoss(reduction="none")(x, torch.tensor([0, -100, 3, -100, 1]))
    torch.testing.assert_close(none, ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize("kw, probs, shape", [
    (dict(), False, (4, 5)),
    (dict(reduction="none", weight=True, ignore_index=2), False, (3, 4, 2)),
    (dict(reduction="sum", label_smoothing=0.3, weight=True), False, (5, 3)),
    (dict(z_loss=0.01, softcap=4.0), False, (4, 6)),
    (dict(reduction="none"), True, (3, 4, 2)),
    (dict(weight=True, label_smoothing=0.2, z_loss=0.1), True, (4, 3)),
    (dict(), False, (5,)),
])
def test_cross_entropy_gradcheck(kw, probs, shape):
    g = _gen(4)
    C = shape[1] if len(shape) > 1 else shape[0]
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    if probs:
        t = torch.rand(shape, generator=g, dtype=torch.float64).softmax(1)
    else:
        t = torch.randint(0, C, shape[:1] + shape[2:] if len(shape) > 1 else (), generator=g)
    kw = dict(kw)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(C, generator=g, dtype=torch.float64) + 0.2
    m = xt.CrossEntropyLoss(**kw)
    assert torch.autograd.gradcheck(lambda z: m(z, t), (x,))


def test_z_loss_and_softcap_match_their_formula():
    g = _gen(5)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64) * 5
    y = torch.randint(0, 6, (8,), generator=g)
    c, zl = 3.0, 0.05
    capped = c * torch.tanh(x / c)
    ref = (nn.functional.cross_entropy(capped, y, reduction="none") + zl * capped.logsumexp(1) ** 2).mean()
    got = xt.CrossEntropyLoss(z_loss=zl, softcap=c)(x, y)
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)


BCE_WEIGHTS = [None, (6,), (1, 6), (), (5, 1), (5, 6), (1,)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("wshape", BCE_WEIGHTS, ids=str)
@pytest.mark.parametrize("pwshape", [None, (6,), (1,)], ids=str)
def test_bce_with_logits_matches_pytorch(dtype, reduction, wshape, pwshape):
    g = _gen(6)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64) * 4
    t = torch.rand(5, 6, generator=g, dtype=torch.float64)
    kw = dict(reduction=reduction)
    if wshape is not None:
        kw["weight"] = torch.rand(wshape, generator=g, dtype=torch.float64) * 2
    if pwshape is not None:
        kw["pos_weight"] = torch.rand(pwshape, generator=g, dtype=torch.float64) * 3
    up = torch.randn(5, 6, generator=g, dtype=torch.float64) if reduction == "none" else torch.tensor(-1.3)
    ours = xt.BCEWithLogitsLoss(**{k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in kw.items()})
    _compare(ours, nn.BCEWithLogitsLoss(**kw), x, t, up, dtype)


@pytest.mark.parametrize("wshape", [(2, 1, 4), (3, 1), (4,)], ids=str)
def test_bce_with_logits_higher_rank_weights(wshape):
    g = _gen(7)
    x, t = torch.randn(2, 3, 4, generator=g, dtype=torch.float64), torch.rand(2, 3, 4, generator=g, dtype=torch.float64)
    w = torch.rand(wshape, generator=g, dtype=torch.float64)
    w.view(-1)[0] = 0.0  # weight 0: exactly 0
    for red in ("mean", "none"):
        _compare(xt.BCEWithLogitsLoss(weight=w, reduction=red), nn.BCEWithLogitsLoss(weight=w, reduction=red), x, t)


@pytest.mark.parametrize("kw", [dict(), dict(weight=(4,), reduction="sum"), dict(weight=(3, 1), reduction="none"),
                                dict(pos_weight=(4,)), dict(weight=(3, 4), pos_weight=(1,), reduction="none")],
                         ids=str)
def test_bce_gradcheck(kw):
    g = _gen(8)
    x = (torch.randn(3, 4, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    t = torch.rand(3, 4, generator=g, dtype=torch.float64)
    kw = {k: (torch.rand(v, generator=g, dtype=torch.float64) + 0.5 if isinstance(v, tuple) else v)
          for k, v in kw.items()}
    m = xt.BCEWithLogitsLoss(**kw)
    assert torch.autograd.gradcheck(lambda z: m(z, t), (x,))


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(half):
    g = _gen(9)
    x = (torch.randn(16, 10, generator=g) * 3).to(half).requires_grad_(True)
    y = torch.randint(0, 10, (16,), generator=g)
    loss = xt.CrossEntropyLoss()(x, y)
    loss.backward()
    ref_x = x.detach().double().requires_grad_(True)
    ref = nn.functional.cross_entropy(ref_x, y)
    ref.backward()
    assert loss.dtype == x.grad.dtype == half
    torch.testing.assert_close(loss.double(), ref.detach().to(half).double())
    torch.testing.assert_close(x.grad.double(), ref_x.grad.to(half).double())


def test_threads_give_identical_results():
    g = _gen(10)
    x, y = torch.randn(3000, 40, generator=g), torch.randint(0, 40, (3000,), generator=g)
    a = [_run(xt.CrossEntropyLoss(n_threads=n), x, y, None) for n in (1, 2)]
    assert torch.equal(a[0][0], a[1][0]) and torch.equal(a[0][1], a[1][1])


def test_modules_are_pytorch_modules():
    w, pw = torch.rand(5), torch.rand(5)
    ce, ref = xt.CrossEntropyLoss(weight=w, label_smoothing=0.1), nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert isinstance(ce, nn.CrossEntropyLoss) and repr(ce) == repr(ref) == "CrossEntropyLoss()"
    assert dict(ce.named_buffers()).keys() == {"weight"} and list(ce.state_dict()) == list(ref.state_dict())
    ce2 = xt.CrossEntropyLoss(weight=torch.ones(5), z_loss=1e-4)
    ce2.load_state_dict(ref.state_dict())
    assert torch.equal(ce2.weight, w) and repr(ce2) == "CrossEntropyLoss(z_loss=0.0001)"
    assert ce.double().weight.dtype == torch.float64
    b, bref = xt.BCEWithLogitsLoss(weight=w, pos_weight=pw), nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)
    assert isinstance(b, nn.BCEWithLogitsLoss) and repr(b) == repr(bref)
    assert dict(b.state_dict()).keys() == dict(bref.state_dict()).keys() == {"weight", "pos_weight"}
    with pytest.warns(UserWarning, match="deprecated"):
        legacy = xt.CrossEntropyLoss(size_average=False)
    assert legacy.reduction == "sum"
    legacy.reduction = "none"  # read at each call, as PyTorch's
    assert xt.CrossEntropyLoss(reduction="none")(torch.randn(3, 2), torch.tensor([0, 1, 1])).shape == (3,)


def test_double_backward_raises():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(xt.CrossEntropyLoss()(x * 2.0, torch.tensor([0, 1, 2, 0])), x, create_graph=True)


def test_bad_input_raises_naming_the_argument():
    x = torch.randn(4, 3)
    ce, bce = xt.CrossEntropyLoss(), xt.BCEWithLogitsLoss()
    with pytest.raises(ValueError, match="input is on device meta"):
        ce(torch.empty(4, 3, device="meta"), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"input has dtype torch\.int64"):
        ce(torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="target of class indices has shape"):
        ce(x, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="target of class probabilities has shape"):
        ce(x, torch.rand(4, 2))
    with pytest.raises(ValueError, match=r"labels\[2\] = 7"):
        ce(x, torch.tensor([0, 1, 7, 2]))
    with pytest.raises(ValueError, match="weight has shape"):
        xt.CrossEntropyLoss(weight=torch.ones(4))(x, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="label_smoothing"):
        xt.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="target requires grad"):
        ce(x, torch.rand(4, 3, requires_grad=True))
    with pytest.raises(ValueError, match="weight requires grad"):
        xt.CrossEntropyLoss(weight=nn.Parameter(torch.ones(3)))(x, torch.zeros(4, dtype=torch.int64))
    with torch.no_grad():  # constants needing grad are fine when nothing is differentiated
        xt.CrossEntropyLoss(weight=nn.Parameter(torch.ones(3)))(x, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="target has shape"):
        bce(x, torch.rand(4, 2))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        xt.BCEWithLogitsLoss(pos_weight=torch.ones(4, 1))(x, torch.rand(4, 3))
    with pytest.raises(ValueError, match=r"weight of shape .* does not broadcast"):
        xt.BCEWithLogitsLoss(weight=torch.ones(2))(x, torch.rand(4, 3))
    with pytest.raises(ValueError, match="reduction"):
        xt.BCEWithLogitsLoss(reduction="avg")(x, torch.rand(4, 3))


def test_bce_reads_input_and_target_in_place(monkeypatch):
    import xent.torch._bce as bce

    seen = {}
    real = bce.sigmoid_cross_entropy

    def spy(x, t, **kw):
        seen["x"], seen["t"] = x, t
        seen["res"] = res = real(x, t, **kw)
        return res

    monkeypatch.setattr(bce, "sigmoid_cross_entropy", spy)
    x = torch.randn(3, 5, dtype=torch.float64).t().requires_grad_(True)  # (5, 3), column-major
    t = torch.rand(5, 3, dtype=torch.float64)
    loss = xt.BCEWithLogitsLoss(reduction="none")(x, t)
    assert seen["x"].__array_interface__["data"][0] == x.data_ptr()
    assert seen["t"].__array_interface__["data"][0] == t.data_ptr()
    assert loss.data_ptr() == seen["res"][0].__array_interface__["data"][0]  # torch.from_numpy, no copy
