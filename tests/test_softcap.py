"""Logit soft-capping (softcap=c: z -> c tanh(z / c) first) and the vector tanh behind it."""
import numpy as np
import pytest

import xent
from conftest import LOSS_TOL
from reference import numeric_grad
from xent import _core


def _vtanh(x):
    y = np.empty_like(x)
    _core.vector_math("tanh", x, y)
    return y


# ---- the contract of tanh_v (cpp/src/simd/math-inl.hpp): <= 2 ulp, odd, +-1 for large |x| ----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_contract(isa, dtype):
    rng = np.random.default_rng(3)
    tiny = -40 if dtype == np.float32 else -300
    x = np.concatenate(
        [
            np.linspace(-30, 30, 600_001),
            rng.standard_normal(100_000) * 3,
            np.logspace(tiny, 1.5, 20_000),
            -np.logspace(tiny, 1.5, 20_000),
            [0.55, np.nextafter(0.55, 0), np.nextafter(0.55, 1), -0.55],
        ]
    ).astype(dtype)
    y = _vtanh(x)
    ref = np.tanh(x.astype(np.longdouble))
    nz = ref != 0
    ulp = np.spacing(np.abs(ref[nz].astype(dtype))).astype(np.longdouble)
    err = np.abs(y[nz].astype(np.longdouble) - ref[nz]) / ulp
    assert err.max() <= 2.0, f"max error {err.max():.3f} ulp at x={x[nz][err.argmax()]!r}"
    np.testing.assert_array_equal(_vtanh(-x), -y)  # odd


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_specials(isa, dtype):
    big = np.finfo(dtype).max
    x = np.array([0.0, -0.0, 40.0, -40.0, 400.0, big, -big, np.inf, -np.inf, np.nan], dtype)
    y = _vtanh(x)
    assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
    np.testing.assert_array_equal(y[2:9], [1, -1, 1, 1, -1, 1, -1])
    assert np.isnan(y[9])


# ---- softcap in the losses --------------------------------------------------------------


def _capped(z, c):
    return np.where(z == -np.inf, -np.inf, c * np.tanh(z / c))  # -inf stays a mask


def _sech2(z, c):
    return 1.0 / np.cosh(z / c) ** 2


OPTIONS = [
    {},
    dict(weight=np.linspace(0.2, 2.0, 7)),
    dict(sample_weight="sw"),
    dict(ignore_index=3),
    dict(z_loss=1e-3),
    dict(label_smoothing=0.15),
    dict(label_smoothing=0.15, weight=np.linspace(0.2, 2.0, 7), ignore_index=3, z_loss=1e-3, sample_weight="sw"),
]


def _opts(o, rng, rows):
    o = dict(o)
    if o.get("sample_weight") == "sw":
        o["sample_weight"] = rng.random(rows)
    return o


@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("opt", OPTIONS)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_softcap_is_the_loss_of_capped_logits(isa, rng, opt, targets, reduction):
    # chain rule: loss(z) = L(c tanh(z/c)), grad = grad_L * sech^2(z/c); L is xent's own
    # uncapped loss (itself tested against PyTorch and the float64 reference).
    c = 4.0
    z = rng.standard_normal((40, 7)) * 10
    z[3, 2] = -np.inf  # masks survive the cap
    y = rng.integers(0, 7, 40)
    y[3] = 1
    y[::5] = 3
    lab = y
    if targets:
        lab = rng.random((40, 7))
        lab[3, 2] = 0.0
        lab /= lab.sum(1, keepdims=True)
    o = _opts(opt, rng, (40,))
    if targets and "ignore_index" in o:
        with pytest.raises(ValueError, match="ignore_index applies to integer labels only"):
            xent.softmax_cross_entropy(z, lab, softcap=c, **o)
        return
    loss, grad = xent.softmax_cross_entropy(z, lab, softcap=c, reduction=reduction, return_grad=True, **o)
    ref_l, ref_g = xent.softmax_cross_entropy(_capped(z, c), lab, reduction=reduction, return_grad=True, **o)
    np.testing.assert_allclose(loss, ref_l, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad, ref_g * np.where(np.isinf(z), 0.0, _sech2(z, c)), rtol=1e-12, atol=1e-15)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert grad[3, 2] == 0.0


TORCH_OPTIONS = [o for o in OPTIONS if "z_loss" not in o] + [dict(label_smoothing=0.2, weight=1, ignore_index=3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt", TORCH_OPTIONS)
@pytest.mark.parametrize("shape, axis", [((30, 9), 1), ((4, 9, 3, 2), 1), ((5, 3, 9), -1)])
def test_softcap_agrees_with_pytorch(rng, dtype, opt, shape, axis):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    c = 3.0  # (PyTorch has no z-loss: softcap with z_loss is tested above, by the chain rule)
    z = (rng.standard_normal(shape) * 8).astype(dtype)
    C = shape[axis]
    rows = shape[:axis % len(shape)] + shape[axis % len(shape) + 1 :]
    y = rng.integers(0, C, rows)
    o = _opts(opt, rng, rows)
    w = o.get("weight")
    o["weight"] = None if w is None else np.linspace(0.2, 2.0, C)
    zt = torch.tensor(np.moveaxis(z, axis, 1), requires_grad=True)
    kw = dict(label_smoothing=o.get("label_smoothing", 0.0))
    if o["weight"] is not None:
        kw["weight"] = torch.tensor(o["weight"].astype(dtype))
    if "ignore_index" in o:
        kw["ignore_index"] = o["ignore_index"]
    per_row = F.cross_entropy(c * torch.tanh(zt / c), torch.tensor(y), reduction="none", **kw)
    if "sample_weight" in o:
        sw = torch.tensor(o["sample_weight"].astype(dtype))
        tl = (per_row * sw).sum() / sw.sum()
    else:
        tl = F.cross_entropy(c * torch.tanh(zt / c), torch.tensor(y), reduction="mean", **kw)
    tl.backward()
    tg = np.moveaxis(zt.grad.numpy(), 1, axis)
    loss, grad = xent.softmax_cross_entropy(z, y, axis=axis, softcap=c, return_grad=True, **o)
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss, tl.item(), **tol)
    np.testing.assert_allclose(grad, tg, **tol)


@pytest.mark.parametrize("targets", [False, True])
def test_softcap_gradient_finite_differences(rng, targets):
    z = rng.standard_normal((5, 6)) * 4
    y = rng.integers(0, 6, 5)
    lab = y
    if targets:
        lab = rng.random((5, 6))
        lab /= lab.sum(1, keepdims=True)
    o = dict(softcap=2.5, weight=np.linspace(0.5, 1.5, 6), sample_weight=rng.random(5), z_loss=0.01,
             label_smoothing=0.1)
    _, grad = xent.softmax_cross_entropy(z, lab, return_grad=True, **o)
    num = numeric_grad(lambda v: xent.softmax_cross_entropy(v, lab, **o), z)
    np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("cap", [1.0, 5.0, 30.0, 300.0])
def test_softcap_float32_accuracy(isa, rng, cap):
    # The float64 kernels on the same (float32) logits are the reference. The capped logits
    # of a float32 call are float32 numbers, each within ~2 ulp of cap of the exact value,
    # so the documented float32 bound with softcap is 2e-6 relative + 1e-6 + 2 ulp(cap).
    z = (rng.standard_normal((5000, 33)) * 2 * cap).astype(np.float32)
    y = rng.integers(0, 33, 5000)
    l64, g64 = xent.softmax_cross_entropy(z.astype(np.float64), y, softcap=cap, reduction="none", return_grad=True)
    l, g = xent.softmax_cross_entropy(z, y, softcap=cap, reduction="none", return_grad=True)
    bound = 2e-6 * np.abs(l64) + 1e-6 + 2 * float(np.spacing(np.float32(cap)))
    err = np.abs(l.astype(np.float64) - l64)
    assert (err <= bound).all(), f"worst {(err / bound).max():.3f} of the bound"
    np.testing.assert_allclose(g, g64, rtol=0, atol=1e-6 + 2 * float(np.spacing(np.float32(cap))))
    np.testing.assert_allclose(
        xent.softmax_cross_entropy(z.astype(np.float64), y, softcap=cap),
        xent.softmax_cross_entropy(_capped(z.astype(np.float64), cap), y), **LOSS_TOL[np.float64])


@pytest.mark.parametrize("fn", [xent.logsumexp, xent.softmax, xent.log_softmax])
def test_normalizers_softcap(isa, rng, fn):
    z = rng.standard_normal((11, 20)) * 20
    z[2, :5] = -np.inf
    z[4] = -np.inf  # a fully masked row stays fully masked
    got = fn(z, softcap=5.0)
    ref = fn(_capped(z, 5.0))
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-300)
    if fn is xent.softmax:
        assert (got[2, :5] == 0).all() and (got[4] == 0).all()


def test_softcap_masks_with_soft_targets_and_smoothing(rng):
    z = rng.standard_normal((8, 5)) * 50
    z[:, 0] = -np.inf
    t = rng.random((8, 5))
    t[:, 0] = 0
    t /= t.sum(1, keepdims=True)
    loss, grad = xent.softmax_cross_entropy(z, t, softcap=10.0, label_smoothing=0.2, reduction="none",
                                            return_grad=True)
    assert np.isfinite(loss).all() and np.isfinite(grad).all() and (grad[:, 0] == 0).all()


def test_softcap_bad_values(rng):
    z = rng.standard_normal((3, 4))
    y = np.array([0, 1, 2])
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="softcap"):
            xent.softmax_cross_entropy(z, y, softcap=bad)
    with pytest.raises(ValueError, match="softcap"):
        xent.softmax(z, softcap=-2.0)


def test_softcap_threads_identical(rng):
    z = rng.standard_normal((3000, 70)).astype(np.float32) * 10
    t = rng.random((3000, 70)).astype(np.float32)
    res = [
        xent.softmax_cross_entropy(z, t, softcap=5.0, label_smoothing=0.1, reduction="none", return_grad=True,
                                   n_threads=n)
        for n in (1, 2, 3)
    ]
    for loss, grad in res[1:]:
        np.testing.assert_array_equal(loss, res[0][0])
        np.testing.assert_array_equal(grad, res[0][1])


def _row_kinds(rng, n_rows, C, c, dtype):
    """Rows whose logits are all well below the cap (the polynomial alone), all beyond it,
    mixed, with masks, and runs of each, so that softcap_row's per-chunk mode changes
    within rows and from row to row."""
    kinds = ["small", "large", "mixed", "masked", "edge"]
    order = [k for k in kinds for _ in range(4)] + list(rng.choice(kinds, n_rows - 4 * len(kinds)))
    z = np.empty((n_rows, C))
    for r, k in enumerate(order):
        if k == "small":
            z[r] = rng.uniform(-0.5, 0.5, C) * c
        elif k == "large":
            z[r] = rng.choice([-1, 1], C) * rng.uniform(0.6, 20, C) * c
        elif k == "mixed":
            z[r] = rng.standard_normal(C) * c
        elif k == "masked":
            z[r] = rng.uniform(-0.5, 0.5, C) * c
            z[r, rng.random(C) < 0.1] = -np.inf
        else:  # around the polynomial's limit 0.55 c, and one small run then one large run
            z[r] = c * (0.55 + rng.uniform(-1e-3, 1e-3, C)) * rng.choice([-1, 1], C)
            z[r, : C // 2] *= 0.1
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("C", [9, 40, 128, 259, 1000])
def test_softcap_row_paths(isa, rng, dtype, C):
    # (C <= 128 float32, 80 float64: rows in vector lanes, each group's tile capped as one run)
    # softcap_row computes most vectors by tanh's polynomial and finishes the others, or
    # (after a chunk of mostly large logits) takes the full tanh: the same bits either way.
    # Each row is computed alone (the first chunk in the polynomial's mode) and in a batch
    # (its mode carried from the rows before), and against the uncapped loss of the capped
    # logits computed in float64.
    c = 7.0
    z = _row_kinds(rng, 60, C, c, dtype)
    y = rng.integers(0, C, 60)
    y[z[np.arange(60), y] == -np.inf] = 0
    z[:, 0] = np.maximum(z[:, 0], dtype(0))  # label 0 never masked
    loss, grad = xent.softmax_cross_entropy(z, y, softcap=c, reduction="none", return_grad=True)
    for r in range(60):
        lr, gr = xent.softmax_cross_entropy(z[r : r + 1], y[r : r + 1], softcap=c, reduction="none",
                                            return_grad=True)
        np.testing.assert_array_equal(lr, loss[r : r + 1])
        np.testing.assert_array_equal(gr, grad[r : r + 1])
    for fn in (xent.softmax, xent.log_softmax):
        got = fn(z, softcap=c)
        for r in (0, 4, 8, 12, 16, 59):
            np.testing.assert_array_equal(fn(z[r : r + 1], softcap=c), got[r : r + 1])
    z64 = z.astype(np.float64)
    capped = _capped(z64, c)
    ref_l, ref_g = xent.softmax_cross_entropy(capped, y, reduction="none", return_grad=True)
    ref_g = ref_g * np.where(np.isinf(z64), 0.0, _sech2(z64, c))
    if dtype == np.float64:
        np.testing.assert_allclose(loss, ref_l, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(grad, ref_g, rtol=1e-12, atol=1e-15)
    else:  # the float32 capped logits: the documented bound (test_softcap_float32_accuracy)
        bound = 2e-6 * np.abs(ref_l) + 1e-6 + 2 * float(np.spacing(np.float32(c)))
        assert (np.abs(loss - ref_l) <= bound).all()
        atol = 1e-6 + 2 * float(np.spacing(np.float32(c))) if dtype == np.float32 else 1e-3
        np.testing.assert_allclose(grad.astype(np.float64), ref_g, rtol=0, atol=atol)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert (grad[np.isinf(z)] == 0).all()


def test_softcap_nan_stays_in_its_row(rng):
    # a NaN lane sends its vector to the full tanh; the rows after it are unaffected
    z = rng.uniform(-1, 1, (4, 300)).astype(np.float32)
    z[1, 77] = np.nan
    loss, grad = xent.softmax_cross_entropy(z, np.zeros(4, np.int64), softcap=5.0, reduction="none",
                                            return_grad=True)
    assert np.isnan(loss[1]) and np.isfinite(np.delete(loss, 1)).all()
    assert np.isfinite(np.delete(grad, 1, axis=0)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softcap_out_of_cache_same_values(isa, rng, dtype):
    """Jobs of 16 MiB or more (logits and output) prefetch the logits ahead in the cap's pass
    (the passes after it read the capped copy); every row's loss and gradient, and every
    softmax row, is the one the same rows give in calls small enough to run without, and the
    loss agrees with the uncapped loss of the capped logits computed in float64."""
    n, c = (2100, 1000) if dtype == np.float32 else (1050, 1000)  # 16.8 MB of logits and gradient
    z = (20 * rng.standard_normal((n, c))).astype(dtype)
    z[5, 7] = -np.inf
    y = rng.integers(0, c, n)
    y[5] = 0
    cap = 30.0
    loss, grad = xent.softmax_cross_entropy(z, y, softcap=cap, reduction="none", return_grad=True)
    sm = xent.softmax(z, softcap=cap)
    for r0 in range(0, n, 150):
        rows = slice(r0, r0 + 150)
        lr, gr = xent.softmax_cross_entropy(z[rows], y[rows], softcap=cap, reduction="none", return_grad=True)
        assert np.array_equal(loss[rows], lr) and np.array_equal(grad[rows], gr)
        assert np.array_equal(sm[rows], xent.softmax(z[rows], softcap=cap))
    assert grad[5, 7] == 0.0 and sm[5, 7] == 0.0
    z64 = z.astype(np.float64)
    ref_l = xent.softmax_cross_entropy(_capped(z64, cap), y, reduction="none")
    bound = 1e-12 * np.abs(ref_l) + 1e-13 if dtype == np.float64 else (
        2e-6 * np.abs(ref_l) + 1e-6 + 2 * float(np.spacing(np.float32(cap))))
    assert (np.abs(loss - ref_l) <= bound).all()
