"""float16 and bfloat16 logits, read directly by the kernels (no float32 copy), computed in
float32: the softmax family and sigmoid cross-entropy.

What is asserted, and why exactly:
- losses (and logsumexp) are float32 and *equal* to the float32 call on the upcast logits:
  half -> float32 is exact, and the kernels run the same float32 code on those values;
  they are also within the float32 accuracy contract of the float64 reference;
- gradients, softmax and log_softmax keep the logits' dtype and are *exactly* the float32
  result rounded to nearest even (NumPy's ``astype(float16)``, ml_dtypes' for bfloat16):
  the kernel rounds its float32 value once, with that rounding; so they are within one
  half ulp of the float64 reference (half an ulp of rounding plus float32's few ulp), plus
  float32's absolute error near zero.
"""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import LOSS_TOL, RUNNABLE_ISAS
from xent import _core


def _bf16():
    return pytest.importorskip("ml_dtypes").bfloat16


@pytest.fixture(params=["float16", "bfloat16"])
def half(request):
    return np.dtype(np.float16) if request.param == "float16" else np.dtype(_bf16())


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


def assert_rounded(got, want32, dtype):
    """got (half) == want32 (float32) rounded to half, bit for bit (NaN: any NaN)."""
    assert got.dtype == dtype
    want = want32.astype(dtype)
    nan = np.isnan(want32)
    assert np.array_equal(np.isnan(got.astype(np.float32)), nan)
    assert np.array_equal(_bits(got)[~nan], _bits(want)[~nan])


def assert_same_f32(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.float32
    assert np.array_equal(got, want, equal_nan=True)


def assert_same_loss(got, want):
    """An array of float32 losses (assert_same_f32), or the same reduced value."""
    if np.ndim(want):
        assert_same_f32(got, want)
    else:
        assert type(got) is type(want) and got == want


def one_half_ulp(ref64, dtype):
    """One ulp of the half format at |ref64| (its subnormal spacing below the normal range)."""
    mant, emin = (10, -14) if dtype == np.float16 else (7, -126)
    e = np.floor(np.log2(np.maximum(np.abs(ref64), np.finfo(np.float64).tiny)))
    return np.ldexp(1.0, (np.maximum(e, emin) - mant).astype(int))


def logits(rng, shape, dtype, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("c", [1, 3, 8, 17, 40, 41, 96, 97, 128, 129, 1000, 2049])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_xent_labels(half, c, reduction, rng, isa):
    n = 37
    z = logits(rng, (n, c), half)
    y = rng.integers(0, c, n)
    keep = z.copy()
    loss, grad = xent.softmax_cross_entropy(z, y, reduction=reduction, return_grad=True)
    loss32, grad32 = xent.softmax_cross_entropy(z.astype(np.float32), y, reduction=reduction, return_grad=True)
    assert np.array_equal(_bits(z), _bits(keep))  # input untouched
    if reduction == "none":
        assert_same_f32(loss, loss32)
    else:
        assert loss == loss32
    assert_rounded(grad, grad32, half)
    # against the float64 reference on the (exact) half values
    rl, rg = ref.softmax_xent_labels(z.astype(np.float64), y)
    scale = 1.0 / n if reduction == "mean" else 1.0
    if reduction == "none":
        np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float32])
    rg = rg * scale
    err = np.abs(grad.astype(np.float64) - rg)
    # plus float32's absolute error (GRAD_TOL's atol, at the gradient's scale): a zero
    # reference (one class) becomes the float32 rounding of gscale - gscale * 1
    assert np.all(err <= one_half_ulp(rg, half) + 4e-7 * scale)


@pytest.mark.parametrize(
    "opts",
    [
        dict(weight=True),
        dict(sample_weight=True),
        dict(ignore_index=1),
        dict(label_smoothing=0.1),
        dict(label_smoothing=0.1, weight=True),
        dict(z_loss=1e-3),
        dict(softcap=4.0),
        dict(weight=True, sample_weight=True, ignore_index=0, z_loss=1e-4),
    ],
    ids=lambda o: "+".join(o),
)
@pytest.mark.parametrize("c", [5, 300])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_xent_options(half, opts, c, reduction, rng):
    n = 23
    z = logits(rng, (n, c), half)
    y = rng.integers(0, c, n)
    kw = dict(opts)
    if kw.pop("weight", False):
        kw["weight"] = rng.random(c) + 0.5
    if kw.pop("sample_weight", False):
        kw["sample_weight"] = rng.random(n)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction=reduction, return_grad=True, **kw)
    loss32, grad32 = xent.softmax_cross_entropy(z.astype(np.float32), y, reduction=reduction, return_grad=True, **kw)
    if reduction == "none":
        assert_same_f32(loss, loss32)
    else:
        assert loss == loss32
    assert_rounded(grad, grad32, half)


@pytest.mark.parametrize("c", [5, 300])  # the small-C lanes kernel and the row kernel
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_huge_weights(half, c, reduction, rng, isa):
    """Rows whose weight times gradient scale overflows float32 take the split-scale path
    (docs/losses.md, huge weights): the half gradient is still the float32 one rounded."""
    n = 11
    z = logits(rng, (n, c), half)
    y = rng.integers(0, c, n)
    kw = dict(weight=np.full(c, 3e38), sample_weight=np.linspace(0.5, 20.0, n))
    loss, grad = xent.softmax_cross_entropy(z, y, reduction=reduction, return_grad=True, **kw)
    loss32, grad32 = xent.softmax_cross_entropy(z.astype(np.float32), y, reduction=reduction, return_grad=True, **kw)
    assert not np.isnan(grad.astype(np.float32)).any() and not np.isnan(loss).any()
    assert np.isinf(grad32).any()  # the case is real: some entries overflow float32
    if reduction == "none":
        assert_same_f32(loss, loss32)
    else:
        assert loss == loss32
    assert_rounded(grad, grad32, half)


def test_targets_and_more_losses(half, rng):
    """Float targets (in the logits' dtype), poly-1, focal, NLL: the same rule."""
    z = logits(rng, (19, 11), half)
    t = rng.dirichlet(np.ones(11), 19).astype(half)
    z32, t32 = z.astype(np.float32), t.astype(np.float32)
    y = rng.integers(0, 11, 19)
    calls = [
        (xent.softmax_cross_entropy, (z, t), (z32, t32), {}),
        (xent.softmax_cross_entropy, (z, t), (z32, t32), dict(label_smoothing=0.2)),
        (xent.poly1_cross_entropy, (z, y), (z32, y), dict(epsilon=1.0)),
        (xent.softmax_focal_loss, (z, y), (z32, y), dict(gamma=2.0)),
        (xent.softmax_focal_loss, (z, t), (z32, t32), dict(gamma=1.5)),
    ]
    for f, a, a32, kw in calls:
        loss, grad = f(*a, reduction="none", return_grad=True, **kw)
        loss32, grad32 = f(*a32, reduction="none", return_grad=True, **kw)
        assert_same_f32(loss, loss32)
        assert_rounded(grad, grad32, half)


@pytest.mark.parametrize("c", [1, 7, 8, 9, 96, 97, 128, 129, 2049])
def test_normalizers(half, c, rng, isa):
    z = logits(rng, (13, c), half)
    z32 = z.astype(np.float32)
    assert_same_f32(xent.logsumexp(z), xent.logsumexp(z32))
    np.testing.assert_allclose(xent.logsumexp(z), ref.logsumexp(z.astype(np.float64)), **LOSS_TOL[np.float32])
    assert_rounded(xent.softmax(z), xent.softmax(z32), half)
    assert_rounded(xent.log_softmax(z), xent.log_softmax(z32), half)
    # a class axis that is not last (strided rows), and out= in the logits' dtype
    out = np.empty_like(z)
    assert xent.softmax(z, axis=0, out=out) is out
    assert_rounded(out, xent.softmax(z32, axis=0), half)


def test_long_rows_special_values(half, rng, isa):
    """Rows of three blocks and a tail, read directly from half storage by the forward pass:
    the max rising in a later block, a masked first block, a NaN after a masked block (found
    by the masked-block scan, not the sum), a fully masked row, and the format's extremes."""
    c = 3 * 2048 + 5
    big = float(np.finfo(np.float16).max) if half == np.float16 else 1e38
    z = logits(rng, (7, c), half)
    z[0, -3] = 30.0  # the max in the tail
    z[1, :2048] = -np.inf  # a masked first block
    z[2, :2048] = -np.inf
    z[2, 100] = np.nan  # a NaN inside the masked block
    z[3, :] = -np.inf
    z[4, ::3] = -big
    z[4, 5000] = big
    z[5, :] = 0.0  # ties: every term is exactly 1
    z[6, 4097] = np.nan
    y = np.array([c - 3, 2050, 5, 0, 5000, c - 1, 1])
    z32 = z.astype(np.float32)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    loss32, grad32 = xent.softmax_cross_entropy(z32, y, reduction="none", return_grad=True)
    assert_same_f32(loss, loss32)
    assert_rounded(grad, grad32, half)
    assert np.isnan(loss[2]) and np.isnan(loss[6]) and np.isinf(loss[3])
    assert_same_f32(xent.logsumexp(z), xent.logsumexp(z32))
    assert_rounded(xent.softmax(z), xent.softmax(z32), half)
    ok = ~np.isnan(z32).any(axis=1)
    np.testing.assert_allclose(
        xent.logsumexp(z)[ok], ref.logsumexp(z.astype(np.float64))[ok], **LOSS_TOL[np.float32]
    )


@pytest.mark.parametrize("shape", [(5,), (9, 17), (3, 4100)])
@pytest.mark.parametrize("summed", [False, True])
def test_sigmoid(half, shape, summed, rng, isa):
    z = logits(rng, shape, half, 4.0)
    t = (rng.random(shape) < 0.3).astype(half)
    kw = dict(axis=-1) if summed else {}
    for extra in ({}, dict(pos_weight=2.0, label_smoothing=0.1)):
        loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True, **kw, **extra)
        loss32, grad32 = xent.sigmoid_cross_entropy(
            z.astype(np.float32), t.astype(np.float32), reduction="none", return_grad=True, **kw, **extra
        )
        assert_same_f32(loss, loss32)
        assert_rounded(grad, grad32, half)
    rl, rg = ref.sigmoid_xent(z.astype(np.float64), t.astype(np.float64))
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, rl, **LOSS_TOL[np.float32])
    assert np.all(np.abs(grad.astype(np.float64) - rg) <= one_half_ulp(rg, half) + 4e-7)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sigmoid_direct_and_converted(half, reduction, rng, isa):
    """Contiguous half operands go straight to the plain sigmoid kernel (converted in its loads
    and stores), in flat units and in rows of more than a unit (8192 elements); strided ones,
    the options and a gradient over the logits go through float32 rows. Every way gives the
    float32 result on the upcast values: equal losses, the gradient rounded once."""
    z = logits(rng, (3, 9000), half, 4.0)
    z[0, :7] = [np.inf, -np.inf, 0.0, 1e-7, -60.0, 60.0, 5.0]
    t = (rng.random(z.shape) < 0.3).astype(half)
    # z = inf with t = 0, z = -inf with t = 1: +inf losses, finite gradients (not in the sums)
    t[0, :2] = [0.0, 1.0] if reduction == "none" else [1.0, 0.0]
    z32, t32 = z.astype(np.float32), t.astype(np.float32)
    wide_z, wide_t = np.zeros((3, 18000), half), np.zeros((3, 18000), half)
    wide_z[:, ::2], wide_t[:, ::2] = z, t
    padded = np.zeros((3, 9100), half)[:, :9000]  # contiguous rows 9100 apart
    padded[:] = z
    layouts = ((z, t), (padded, t), (wide_z[:, ::2], t), (z, wide_t[:, ::2]), (np.asfortranarray(z), t))
    for kw in ({}, dict(axis=-1), dict(axis=None)):
        if reduction != "none" and kw:
            continue
        want_l, want_g = xent.sigmoid_cross_entropy(z32, t32, reduction=reduction, return_grad=True, **kw)
        for zz, tt in layouts:
            loss, grad = xent.sigmoid_cross_entropy(zz, tt, reduction=reduction, return_grad=True, **kw)
            assert_same_loss(loss, want_l)
            assert_rounded(grad, want_g, half)
            assert_same_loss(xent.sigmoid_cross_entropy(zz, tt, reduction=reduction, **kw), want_l)
        g = np.empty_like(z)
        xent.sigmoid_cross_entropy(z, t, reduction=reduction, return_grad=True, grad_out=g, **kw)
        assert np.array_equal(_bits(g), _bits(grad))
        zz = z.copy()
        xent.sigmoid_cross_entropy(zz, t, reduction=reduction, return_grad=True, grad_out=zz, **kw)
        assert np.array_equal(_bits(zz), _bits(grad))
        strided = wide_z.copy()[:, ::2]
        xent.sigmoid_cross_entropy(z, t, reduction=reduction, return_grad=True, grad_out=strided, **kw)
        assert np.array_equal(_bits(strided), _bits(grad))
    rl, rg = ref.sigmoid_xent(z.astype(np.float64), t.astype(np.float64))
    loss, grad = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
    fin = np.isfinite(rl)
    assert fin.sum() == z.size - (2 if reduction == "none" else 0)
    np.testing.assert_allclose(loss[fin], rl[fin], **LOSS_TOL[np.float32])
    assert np.all(np.isinf(loss[~fin]))
    assert np.all(np.abs(grad.astype(np.float64) - rg) <= one_half_ulp(rg, half) + 4e-7)
    total = xent.sigmoid_cross_entropy(z, t, reduction="sum")
    if reduction != "none":
        np.testing.assert_allclose(total, rl.sum(), **LOSS_TOL[np.float32])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sigmoid_options_in_chunks(half, reduction, rng, isa):
    """With options, contiguous half operands go through float32 buffers two of the kernel's
    blocks at a time (the float32 loop run per chunk, each given the previous chunks' sum);
    strided ones a unit (8192 elements) at a time. Both give the float32 result on the upcast
    values: equal losses and sums, the gradient rounded once. Rows of 1500 make chunks start
    inside rows (per-row sample weights) and at every class-weight phase; 7 rows make two
    units, the second ending in a partial chunk and a partial vector."""
    n, c = 7, 1500
    z = logits(rng, (n, c), half, 4.0)
    z[0, :4] = [np.inf, -np.inf, 0.0, 60.0]
    t = (rng.random(z.shape) < 0.3).astype(half)
    t[1] = rng.random(c).astype(half)  # soft targets
    z[3, :2] = [np.inf, -np.inf]  # row 3 has weight 0: exactly 0 there
    t[3, :2] = [0.0, 1.0]
    w = (rng.random(c) + 0.5).astype(np.float32)
    q = (3 * rng.random(c)).astype(np.float32)
    sw = (rng.random(n) + 0.5).astype(np.float32)
    sw[3] = 0.0
    z32, t32 = z.astype(np.float32), t.astype(np.float32)
    wide = np.zeros((n, 2 * c), half)
    wide[:, ::2] = z
    sig, focal = xent.sigmoid_cross_entropy, xent.sigmoid_focal_loss
    cases = [
        (sig, dict(weight=w)),
        (sig, dict(pos_weight=q)),
        (sig, dict(label_smoothing=0.1)),
        (sig, dict(sample_weight=sw)),
        (sig, dict(weight=w, pos_weight=q, label_smoothing=0.05, sample_weight=sw)),
        (sig, dict(softcap=3.0, weight=w)),
        (focal, dict(sample_weight=sw)),
        (focal, dict(gamma=1.5, weight=w)),
        (focal, dict(gamma=3.0, alpha=None)),
    ]
    for axis in ({}, dict(axis=-1)):
        if axis and reduction != "none":
            continue
        for f, kw in cases:
            want_l, want_g = f(z32, t32, reduction=reduction, return_grad=True, **axis, **kw)
            assert np.isfinite(want_g).all()
            for zz, th in ((z, 1), (z, 2), (wide[:, ::2], 1)):
                loss, grad = f(zz, t, reduction=reduction, return_grad=True, n_threads=th, **axis, **kw)
                assert_same_loss(loss, want_l)
                assert_rounded(grad, want_g, half)
                assert_same_loss(f(zz, t, reduction=reduction, n_threads=th, **axis, **kw), want_l)
            if "sample_weight" in kw:
                assert np.all(_bits(grad[3]) & 0x7FFF == 0)
    # against the float64 formula: pos_weight q's loss (1 - t) z + (1 + (q - 1) t) softplus(-z)
    rows = slice(4, 7)
    loss, grad = sig(z[rows], t[rows], pos_weight=q, reduction="none", return_grad=True)
    zd, td, qd = z[rows].astype(np.float64), t[rows].astype(np.float64), q.astype(np.float64)
    b = 1 + (qd - 1) * td
    np.testing.assert_allclose(loss, (1 - td) * zd + b * np.logaddexp(0, -zd), **LOSS_TOL[np.float32])
    g64 = (1 - td) - b / (1 + np.exp(zd))
    assert np.all(np.abs(grad.astype(np.float64) - g64) <= one_half_ulp(g64, half) + 1e-6 * (1 + np.abs(g64)))


def test_extremes(half, rng):
    """The format's largest finite values, subnormals, -inf masks, a fully masked row, a NaN row."""
    big = float(np.finfo(np.float16).max) if half == np.float16 else 1e38  # big - (-big) fits float32
    z = np.array(
        [
            [big, -big, 0.0, 1.0, 2.0],
            [6e-8, -6e-8, 0.0, 6e-8, 1e-7],
            [-np.inf, 3.0, -np.inf, 2.0, -np.inf],
            [-np.inf] * 5,
            [1.0, np.nan, 0.0, 2.0, 3.0],
            [big, big, big, big, big],
        ]
    ).astype(half)
    y = np.array([1, 0, 1, 2, 0, 4])
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
    loss32, grad32 = xent.softmax_cross_entropy(z.astype(np.float32), y, reduction="none", return_grad=True)
    assert_same_f32(loss, loss32)
    assert_rounded(grad, grad32, half)
    assert np.isinf(loss[3]) and np.all(grad[3].astype(np.float32) == 0)
    assert np.isnan(loss[4]) and np.all(np.isnan(grad[4].astype(np.float32)))
    np.testing.assert_allclose(loss[[0, 1, 2, 5]], ref.softmax_xent_labels(z.astype(np.float64), y)[0][[0, 1, 2, 5]],
                               **LOSS_TOL[np.float32])


def test_empty_and_one_class(half):
    loss, grad = xent.softmax_cross_entropy(np.zeros((0, 4), half), np.zeros(0, int), return_grad=True)
    assert loss == 0.0 and grad.shape == (0, 4) and grad.dtype == half
    z = np.full((3, 1), 2.5, half)
    loss, grad = xent.softmax_cross_entropy(z, np.zeros(3, int), return_grad=True)
    # p = 1 exactly; the gradient is float32's rounding of 1/3 - 1/3 (mean), as for float32 input
    assert loss == 0.0 and np.all(np.abs(grad.astype(np.float32)) <= 4e-7 / 3)
    assert_rounded(grad, xent.softmax_cross_entropy(z.astype(np.float32), np.zeros(3, int), return_grad=True)[1], half)


def test_isas_agree(half, rng):
    """On every runnable ISA (F16C / NEON conversions, or the software ones), half input gives
    that ISA's float32 result rounded; across ISAs, losses agree within the float32 contract
    (the ISAs sum in different orders, in float32 as well) and gradients within a half ulp."""
    z = logits(rng, (41, 77), half)
    z[3, 5] = -np.inf
    y = rng.integers(0, 77, 41)
    t = (rng.random(z.shape) < 0.5).astype(half)
    z32, t32 = z.astype(np.float32), t.astype(np.float32)
    before = _core.config()["isa"]
    got = {}
    try:
        for name in RUNNABLE_ISAS:
            assert _core.set_isa(name)
            loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True)
            sl, sg = xent.sigmoid_cross_entropy(z, t, reduction="none", return_grad=True)
            sm = xent.softmax(z.T, axis=0)
            assert_same_f32(loss, xent.softmax_cross_entropy(z32, y, reduction="none"))
            assert_rounded(grad, xent.softmax_cross_entropy(z32, y, reduction="none", return_grad=True)[1], half)
            assert_same_f32(sl, xent.sigmoid_cross_entropy(z32, t32, reduction="none"))
            assert_rounded(sg, xent.sigmoid_cross_entropy(z32, t32, reduction="none", return_grad=True)[1], half)
            assert_rounded(sm, xent.softmax(z32.T, axis=0), half)
            got[name] = (loss, grad, sl, sg, sm)
    finally:
        _core.set_isa(before)
    for name in RUNNABLE_ISAS[1:]:
        for i, (a, b) in enumerate(zip(got[name], got["scalar"])):
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if i in (0, 2):
                np.testing.assert_allclose(a64, b64, **LOSS_TOL[np.float32])
            else:
                assert np.all(np.abs(a64 - b64) <= one_half_ulp(b64, half) + 4e-7)


@pytest.mark.parametrize("c", [300, 4200])  # one block, and three with a tail
def test_gradient_written_from_the_rescaling_pass(half, c, rng):
    """Contiguous half gradients and softmax are written by the rescaling pass itself, from
    the float32 exponentials (no float32 row converted afterwards): still the float32
    result rounded once, including a z-loss factor beyond float32's range (the rescaling
    done in double there), masked rows and exponentials that underflow to 0; a strided
    grad_out (through the float32 row) and the gradient over the logits give the same bits."""
    z = logits(rng, (5, c), half)
    z[0] += half.type(30.0)
    z[0, :50] = -60  # lse ~ 30: exp(-90) underflows
    z[1, :3] = -np.inf
    z[2] = -np.inf  # fully masked
    y = rng.integers(0, c, 5)
    for zl in (0.0, 1e-3, 1e37, 3e38):
        with np.errstate(over="ignore"):
            loss, g = xent.softmax_cross_entropy(z, y, z_loss=zl, reduction="none", return_grad=True)
            loss32, g32 = xent.softmax_cross_entropy(
                z.astype(np.float32), y, z_loss=zl, reduction="none", return_grad=True
            )
        assert_same_f32(loss, loss32)
        assert_rounded(g, g32, half)
        strided = np.zeros((5, 2 * c), half)[:, ::2]
        xent.softmax_cross_entropy(z, y, z_loss=zl, return_grad=True, reduction="none", grad_out=strided)
        assert np.array_equal(_bits(strided), _bits(g))
        zz = z.copy()
        xent.softmax_cross_entropy(zz, y, z_loss=zl, return_grad=True, reduction="none", grad_out=zz)
        assert np.array_equal(_bits(zz), _bits(g))
    assert_rounded(xent.softmax(z), xent.softmax(z.astype(np.float32)), half)
    zz = z.copy()
    xent.softmax(zz, out=zz)
    assert np.array_equal(_bits(zz), _bits(xent.softmax(z)))


def test_out_buffers(half, rng):
    z = logits(rng, (6, 9), half)
    y = rng.integers(0, 9, 6)
    g = np.empty_like(z)
    out = np.empty(6, np.float32)
    loss, grad = xent.softmax_cross_entropy(z, y, reduction="none", return_grad=True, out=out, grad_out=g)
    assert loss is out and grad is g
    with pytest.raises(TypeError, match="grad_out"):
        xent.softmax_cross_entropy(z, y, return_grad=True, grad_out=np.empty(z.shape, np.float32))
    with pytest.raises(TypeError, match="out"):
        xent.softmax_cross_entropy(z, y, reduction="none", out=np.empty(6, half))
    # the gradient over the logits themselves
    zz = z.copy()
    _, g2 = xent.softmax_cross_entropy(zz, y, return_grad=True, grad_out=zz)
    assert g2 is zz
    assert np.array_equal(_bits(zz), _bits(xent.softmax_cross_entropy(z, y, return_grad=True)[1]))


def test_threads_bit_identical(half, rng):
    z = logits(rng, (300, 700), half)
    y = rng.integers(0, 700, 300)
    l1, g1 = xent.softmax_cross_entropy(z, y, return_grad=True, n_threads=1)
    l3, g3 = xent.softmax_cross_entropy(z, y, return_grad=True, n_threads=3)
    assert l1 == l3 and np.array_equal(_bits(g1), _bits(g3))


def test_other_paths_convert(rng):
    """Functions without half kernels compute bfloat16 in float32, as float16 always did."""
    bf = _bf16()
    p = rng.random((4, 3)).astype(bf)
    t = (rng.random((4, 3)) < 0.5).astype(np.float32)
    got = xent.binary_cross_entropy(p, t, reduction="none")
    want = xent.binary_cross_entropy(p.astype(np.float32), t, reduction="none")
    assert np.array_equal(got, want)
