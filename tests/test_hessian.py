"""sigmoid_hessian, softmax_hessian_diag and softmax_hvp: against extended-precision references
written independently of the kernels' formulas, against finite differences of xent's own
gradients in float64, on every runnable ISA, for any thread count."""
import numpy as np
import pytest

import reference as ref
import xent

LD = np.longdouble
DTYPES = [np.float32, np.float64]
# Relative accuracy of the Hessians: a few ulp (exp, two roundings, the normalisation), plus
# in float32 the rounding of z - m before exp (up to 2**-24 |z - m| absolute: 5e-6 relative in
# p at |z - m| = 87, below which p underflows), as in xent.softmax.
HTOL = {np.float32: 1e-5, np.float64: 4e-14}
TINY = {np.float32: 1e-37, np.float64: 1e-300}  # exp underflow below the smallest normal


# ---- references (long double; no formula shared with the kernels) --------------------------
def ref_sigmoid_hessian(z):
    z = np.asarray(z, dtype=LD)
    with np.errstate(over="ignore"):
        return (1 / ((1 + np.exp(-z)) * (1 + np.exp(z)))).astype(np.float64)


def _probs_rows(z):
    """Rows of softmax in long double, and the sum of the other classes' probabilities
    (1 - p_c without cancellation, from prefix and suffix sums of non-negative terms)."""
    z = np.asarray(z, dtype=LD)
    p = np.zeros_like(z)
    others = np.zeros_like(z)
    for i, r in enumerate(z):
        m = r.max() if r.size else -np.inf
        if m == -np.inf:
            continue
        e = np.exp(r - m)
        s = e.sum()
        pre = np.concatenate([[LD(0)], np.cumsum(e)[:-1]])
        suf = np.concatenate([np.cumsum(e[::-1])[::-1][1:], [LD(0)]])
        p[i] = e / s
        others[i] = (pre + suf) / s
    return p, others


def _rows(x, axis):
    a = np.moveaxis(np.asarray(x), axis, -1)
    return a.reshape(-1, a.shape[-1]) if a.shape[-1] else a.reshape(-1, 0), a.shape


def _back(r, shape, axis):
    return np.moveaxis(np.asarray(r).reshape(shape), -1, axis)


def ref_softmax_hessian_diag(z, axis=-1):
    rows, shape = _rows(z, axis)
    p, others = _probs_rows(rows)
    return _back((p * others).astype(np.float64), shape, axis)


def ref_softmax_hvp(z, v, axis=-1):
    """(H v)_c = p_c sum_k p_k (v_c - v_k) (= p_c v_c - p_c (p . v) as sum p = 1), and the
    scale of its rounding error, p_c (sum_k p_k |v_c - v_k| + |v_c - v_r|), r the argmax."""
    rows, shape = _rows(z, axis)
    vr, _ = _rows(v, axis)
    p, _ = _probs_rows(rows)
    out = np.zeros(rows.shape, dtype=LD)
    scale = np.zeros(rows.shape, dtype=LD)
    for i in range(len(rows)):
        vi = vr[i].astype(LD)
        diff = vi[:, None] - vi[None, :]
        out[i] = p[i] * (diff * p[i][None, :]).sum(1)
        r = int(np.argmax(rows[i])) if rows.shape[1] else 0
        scale[i] = p[i] * ((np.abs(diff) * p[i][None, :]).sum(1) + np.abs(vi - vi[r]) if rows.shape[1] else 0)
    return _back(out.astype(np.float64), shape, axis), _back(scale.astype(np.float64), shape, axis)


def assert_rel(actual, expected, dtype, scale=None):
    actual = np.asarray(actual, dtype=np.float64)
    scale = np.abs(expected) if scale is None else scale
    err = np.abs(actual - expected)
    bad = err > HTOL[dtype] * scale + TINY[dtype]
    assert not bad.any(), (
        f"{bad.sum()} bad, worst at {np.unravel_index(np.argmax(err - HTOL[dtype] * scale), err.shape)}: "
        f"{actual[bad][:5]} vs {expected[bad][:5]}"
    )


def logits(rng, shape, dtype, pattern="random"):
    z = rng.standard_normal(shape) * 4
    if pattern == "big":
        z *= 2500  # |z| ~ 1e4
    elif pattern == "confident":
        z[..., 0] += 40  # p_0 = 1 - 1e-17: 1 - p_0 rounds to 0 in float64
    elif pattern == "masked":
        z[rng.random(shape) < 0.3] = -np.inf
    return z.astype(dtype)


# ---- sigmoid ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 9, 25, 8191, 8193, 20_000])
def test_sigmoid_hessian_random(isa, rng, dtype, n):
    z = (rng.standard_normal(n) * 6).astype(dtype)
    t = rng.random(n).astype(dtype)
    h = xent.sigmoid_hessian(z)
    assert h.dtype == dtype and h.shape == z.shape
    assert_rel(h, ref_sigmoid_hessian(z), dtype)
    h2, g = xent.sigmoid_hessian(z, t, return_grad=True)
    np.testing.assert_array_equal(h2, h)
    _, rg = ref.sigmoid_xent(z, t)
    tol = dict(rtol=4e-6, atol=4e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g, rg, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_hessian_extremes(isa, dtype):
    big = np.finfo(dtype).max
    z = np.array([0, 1e-30, -1e-30, 17, -17, 30, -30, 88, -88, 700, -700, -745, 1e4, -1e4, big, -big], dtype=dtype)
    h = xent.sigmoid_hessian(z)
    assert not np.isnan(h).any() and (h >= 0).all()
    assert_rel(h, ref_sigmoid_hessian(z), dtype)
    assert h[0] == 0.25
    inf = xent.sigmoid_hessian(np.array([np.inf, -np.inf, np.nan], dtype=dtype))
    assert inf[0] == 0 and inf[1] == 0 and np.isnan(inf[2])


def test_sigmoid_hessian_finite_differences(isa, rng):
    z = rng.standard_normal((7, 5)) * 3
    t = rng.random(z.shape)
    sw = rng.random((7, 1))
    h, g = xent.sigmoid_hessian(z, t, sample_weight=sw, return_grad=True)

    def grad_sum(x):  # elementwise: perturbing all entries at once gives the diagonal
        return xent.sigmoid_cross_entropy(x, t, reduction="none", return_grad=True)[1] * sw

    step = 1e-3
    fd = (-grad_sum(z + 2 * step) + 8 * grad_sum(z + step) - 8 * grad_sum(z - step) + grad_sum(z - 2 * step)) / (
        12 * step
    )
    np.testing.assert_allclose(h, fd, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(g, grad_sum(z), rtol=1e-14, atol=1e-16)
    # and the gradient itself by differences of the weighted loss
    num = ref.numeric_grad(lambda x: float((xent.sigmoid_cross_entropy(x, t, reduction="none") * sw).sum()), z)
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_hessian_weights_out_strides(isa, rng, dtype):
    z = logits(rng, (6, 9), dtype)
    t = rng.random(z.shape).astype(dtype)
    sw = rng.random(9).astype(dtype)  # broadcast along rows
    sw[2] = 0
    h, g = xent.sigmoid_hessian(z, t, sample_weight=sw, return_grad=True)
    h0, g0 = xent.sigmoid_hessian(z, t, return_grad=True)
    np.testing.assert_allclose(h, h0 * sw, rtol=1e-6 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(g, g0 * sw, rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert (h[:, 2] == 0).all() and (g[:, 2] == 0).all()
    # strided input and outputs, out= returned, in place over the logits
    zt = np.asfortranarray(z)[:, ::2]
    out = np.empty((9, 6), dtype=dtype).T[:, ::2]
    gout = np.empty_like(out)
    r, rg = xent.sigmoid_hessian(zt, t[:, ::2], out=out, grad_out=gout, return_grad=True)
    assert r is out and rg is gout
    np.testing.assert_array_equal(out, h0[:, ::2])
    np.testing.assert_array_equal(gout, g0[:, ::2])
    zc = z.copy()
    assert xent.sigmoid_hessian(zc, out=zc) is zc
    np.testing.assert_array_equal(zc, xent.sigmoid_hessian(z))


# ---- softmax diagonal ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 3, 7, 8, 9, 25, 2047, 2049, 5000])
@pytest.mark.parametrize("pattern", ["random", "big", "confident", "masked"])
def test_softmax_hessian_diag_reference(isa, rng, dtype, C, pattern):
    R = 5 if C > 2000 else 12
    z = logits(rng, (R, C), dtype, pattern)
    h = xent.softmax_hessian_diag(z)
    assert h.dtype == dtype and h.shape == z.shape and not np.isnan(h).any()
    assert_rel(h, ref_softmax_hessian_diag(z), dtype)
    if pattern == "masked":
        assert (h[np.isneginf(z)] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_hessian_diag_confident_rows_keep_digits(isa, dtype):
    # p_0 ~ 1: p (1 - p) computed plainly is 0 (float64) or garbage; the true value is ~e^-40
    z = np.array([[40.0, 0.0, 0.0], [20.0, -5.0, 1.0], [0.0, 0.0, -1e4]], dtype=dtype)
    h = xent.softmax_hessian_diag(z)
    expected = ref_softmax_hessian_diag(z)
    assert expected[0, 0] > 0
    assert_rel(h, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_hessian_diag_masks_and_nan(isa, dtype):
    z = np.array([[-np.inf] * 4, [0.0, -np.inf, 1.0, -np.inf], [np.nan, 0, 1, 2], [3.0, 3.0, 3.0, 3.0]], dtype=dtype)
    h, g = xent.softmax_hessian_diag(z, np.array([0, 2, 1, 3]), return_grad=True)
    np.testing.assert_array_equal(h[0], 0)
    np.testing.assert_array_equal(g[0], 0)
    assert h[1, 1] == 0 and h[1, 3] == 0 and g[1, 1] == 0 and g[1, 3] == 0
    assert np.isnan(h[2]).all()
    np.testing.assert_allclose(h[3], 0.1875, rtol=1e-7)
    assert not np.isnan(h[[0, 1, 3]]).any() and not np.isnan(g[[0, 1, 3]]).any()


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_hessian_diag_axes_and_gradient(isa, rng, axis):
    z = rng.standard_normal((4, 6, 5)) * 3
    C = z.shape[axis]
    row_shape = tuple(np.delete(z.shape, axis % 3))
    y = rng.integers(0, C, row_shape)
    sw = rng.random(row_shape)
    sw.flat[0] = 0
    h, g = xent.softmax_hessian_diag(z, y, axis=axis, sample_weight=sw, return_grad=True)
    swb = np.expand_dims(sw, axis)
    assert_rel(h, ref_softmax_hessian_diag(z, axis) * swb, np.float64)
    _, g_ref = xent.softmax_cross_entropy(z, y, axis=axis, sample_weight=sw, reduction="sum", return_grad=True)
    np.testing.assert_allclose(g, g_ref, rtol=1e-13, atol=1e-16)
    # a row of weight 0 is exactly 0
    first = np.moveaxis(h, axis, -1).reshape(-1, C)[0]
    np.testing.assert_array_equal(first, 0)


def _fd_hessian(z, labels):
    """Full per-row Hessians (rows, C, C) from 4th-order differences of xent's gradient."""
    R, C = z.shape
    H = np.zeros((R, C, C))

    def grad(x):
        return xent.softmax_cross_entropy(x, labels, reduction="sum", return_grad=True)[1]

    step = 1e-3
    for c in range(C):  # rows are independent: perturb class c of every row at once
        e = np.zeros_like(z)
        e[:, c] = step
        H[:, :, c] = (-grad(z + 2 * e) + 8 * grad(z + e) - 8 * grad(z - e) + grad(z - 2 * e)) / (12 * step)
    return H


def test_softmax_hessian_from_finite_differences(isa, rng):
    z = rng.standard_normal((9, 6)) * 2
    z[3, 4] = -np.inf  # masked class: zero row and column
    y = rng.integers(0, 4, 9)
    v = rng.standard_normal(z.shape)
    H = _fd_hessian(np.where(np.isinf(z), -1e30, z), y)
    np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), atol=1e-10)
    np.testing.assert_allclose(xent.softmax_hessian_diag(z), np.diagonal(H, axis1=1, axis2=2), rtol=1e-8, atol=1e-11)
    hv = xent.softmax_hvp(z, v)
    np.testing.assert_allclose(hv, np.einsum("rij,rj->ri", H, v), rtol=1e-8, atol=1e-10)
    # the gradient those Hessians differentiate is itself checked by differences of the loss
    g = xent.softmax_cross_entropy(z[:2], y[:2], reduction="sum", return_grad=True)[1]
    num = ref.numeric_grad(lambda x: xent.softmax_cross_entropy(x, y[:2], reduction="sum"), z[:2])
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-9)


def test_softmax_hvp_jvp_of_gradient(isa, rng):
    # H v as the directional derivative of the gradient along v, for larger C (several SIMD widths)
    z = rng.standard_normal((5, 37)) * 3
    v = rng.standard_normal(z.shape)
    sw = rng.random(5)
    y = rng.integers(0, 37, 5)

    def grad(x):
        return xent.softmax_cross_entropy(x, y, sample_weight=sw, reduction="sum", return_grad=True)[1]

    step = 1e-3
    jvp = (-grad(z + 2 * step * v) + 8 * grad(z + step * v) - 8 * grad(z - step * v) + grad(z - 2 * step * v)) / (
        12 * step
    )
    np.testing.assert_allclose(xent.softmax_hvp(z, v, sample_weight=sw), jvp, rtol=1e-7, atol=1e-10)


# ---- softmax Hessian-vector product -----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 3, 7, 8, 9, 25, 2049])
@pytest.mark.parametrize("pattern", ["random", "big", "confident", "masked"])
def test_softmax_hvp_reference(isa, rng, dtype, C, pattern):
    R = 3 if C > 2000 else 10
    z = logits(rng, (R, C), dtype, pattern)
    v = rng.standard_normal(z.shape).astype(dtype)
    hv = xent.softmax_hvp(z, v)
    assert hv.dtype == dtype and hv.shape == z.shape and not np.isnan(hv).any()
    expected, scale = ref_softmax_hvp(z, v)
    assert_rel(hv, expected, dtype, scale)
    if pattern == "confident":  # the confident class's entry is tiny and still right
        assert_rel(hv[:, 0], expected[:, 0], dtype)


def test_softmax_hvp_axes_weights_out(isa, rng):
    z = rng.standard_normal((3, 5, 4)) * 2
    v = rng.standard_normal(z.shape)
    sw = rng.random((3, 4))
    hv = xent.softmax_hvp(z, v, axis=1, sample_weight=sw)
    expected, scale = ref_softmax_hvp(z, v, axis=1)
    assert_rel(hv, expected * sw[:, None, :], np.float64, scale * sw[:, None, :])
    # out= may be v or the logits themselves; neither input changes otherwise
    z0, v0 = z.copy(), v.copy()
    vv = v.copy()
    assert xent.softmax_hvp(z, vv, axis=1, sample_weight=sw, out=vv) is vv
    np.testing.assert_array_equal(vv, hv)
    zz = z.copy()
    xent.softmax_hvp(zz, v, axis=1, sample_weight=sw, out=zz)
    np.testing.assert_array_equal(zz, hv)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(v, v0)
    # a strided (transposed) output
    out = np.empty((4, 5, 3)).T
    xent.softmax_hvp(z, v, axis=1, sample_weight=sw, out=out)
    np.testing.assert_array_equal(out, hv)


def test_masked_and_degenerate_rows(isa):
    z = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 0.0], [5.0, 5.0, 5.0]])
    v = np.array([[1.0, 2.0, 3.0], [1.0, 1e30, 3.0], [7.0, 7.0, 7.0]])
    hv = xent.softmax_hvp(z, v)
    np.testing.assert_array_equal(hv[0], 0)
    np.testing.assert_allclose(hv[1], [-0.5, 0, 0.5])
    np.testing.assert_array_equal(hv[2], 0)  # v constant along the row: H v = 0 exactly
    one = np.array([[3.0], [-np.inf]])
    np.testing.assert_array_equal(xent.softmax_hvp(one, np.ones_like(one)), 0)
    np.testing.assert_array_equal(xent.softmax_hessian_diag(one), 0)


def test_empty(isa):
    for shape in [(0, 3), (4, 0), (0, 0)]:
        z = np.zeros(shape)
        assert xent.softmax_hessian_diag(z).shape == shape
        assert xent.softmax_hvp(z, z).shape == shape
        assert xent.sigmoid_hessian(z).shape == shape
    h, g = xent.softmax_hessian_diag(np.zeros((0, 3)), np.zeros(0, dtype=int), return_grad=True)
    assert h.shape == g.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_identical(rng, dtype):
    z = logits(rng, (400, 301), dtype, "masked")
    v = rng.standard_normal(z.shape).astype(dtype)
    y = rng.integers(0, 301, 400)
    sw = rng.random(400).astype(dtype)
    runs = []
    for nt in (1, 2, 3):
        runs.append(
            (
                xent.softmax_hessian_diag(z, y, sample_weight=sw, return_grad=True, n_threads=nt),
                xent.softmax_hvp(z, v, sample_weight=sw, n_threads=nt),
                xent.sigmoid_hessian(z, v, return_grad=True, n_threads=nt),
            )
        )
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            for x, w in zip(*(r if isinstance(r, tuple) else (r,) for r in (a, b))):
                assert x.tobytes() == w.tobytes()


def test_every_isa_matches_scalar(rng):
    from xent import _core

    z = logits(rng, (7, 2051), np.float64, "masked")
    v = rng.standard_normal(z.shape)
    before = _core.config()["isa"]
    res = {}
    try:
        for name in _core.config()["runnable_isas"]:
            assert _core.set_isa(name)
            res[name] = (xent.softmax_hessian_diag(z), xent.softmax_hvp(z, v), xent.sigmoid_hessian(v))
    finally:
        _core.set_isa(before)
    _, hv_scale = ref_softmax_hvp(z, v)
    for name, r in res.items():
        for a, b, scale in zip(r, res["scalar"], (None, hv_scale, None)):
            assert_rel(a, b, np.float64, scale)  # H v: relative to its error scale (sums in another order)


def test_mpmath_hard_cases(isa):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    z = np.array([[38.0, 0.0, -2.0, 1.0], [-700.0, 0.0, 3.0, 3.0], [1e-9, 0.0, -1e-9, 2e-9]])
    v = np.array([[1.5, -2.0, 0.25, 3.0], [1.0, -1.0, 2.0, 2.5], [1.0, 2.0, 3.0, 4.0]])
    h, hv = xent.softmax_hessian_diag(z), xent.softmax_hvp(z, v)
    for i in range(len(z)):
        e = [mp.exp(mp.mpf(float(x))) for x in z[i]]
        s = mp.fsum(e)
        p = [x / s for x in e]
        pv = mp.fsum(pk * mp.mpf(float(vk)) for pk, vk in zip(p, v[i]))
        for c in range(4):
            assert abs(h[i, c] - float(p[c] * (1 - p[c]))) <= 4e-15 * float(p[c] * (1 - p[c]))
            want = float(p[c] * (mp.mpf(float(v[i, c])) - pv))
            assert abs(hv[i, c] - want) <= 1e-14 * abs(want) + 1e-300, (i, c, hv[i, c], want)
    zs = np.array([-745.0, -700.0, -40.0, -1e-8, 0.0, 1e-8, 36.0, 700.0])
    hs = xent.sigmoid_hessian(zs)
    for zi, hi in zip(zs, hs):
        p = 1 / (1 + mp.exp(-mp.mpf(float(zi))))
        want = float(p * (1 - p))
        assert abs(hi - want) <= 4e-15 * want + 1e-300


# ---- bad input -------------------------------------------------------------------------------------
def test_errors():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="return_grad=True needs integer labels"):
        xent.softmax_hessian_diag(z, return_grad=True)
    with pytest.raises(ValueError, match="return_grad=True needs targets"):
        xent.sigmoid_hessian(z, return_grad=True)
    with pytest.raises(ValueError, match=r"labels\[1\] = 4 is out of range"):
        xent.softmax_hessian_diag(z, np.array([0, 4, 1]), return_grad=True)
    with pytest.raises(TypeError, match="labels must be integer"):
        xent.softmax_hessian_diag(z, np.zeros(3), return_grad=True)
    with pytest.raises(ValueError, match="v has shape"):
        xent.softmax_hvp(z, np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"sample_weight\[1\] = -1.0"):
        xent.softmax_hvp(z, z, sample_weight=[1, -1, 1])
    with pytest.raises(ValueError, match="sample_weight has shape"):
        xent.softmax_hessian_diag(z, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="does not broadcast"):
        xent.sigmoid_hessian(z, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="out has shape"):
        xent.softmax_hvp(z, z, out=np.zeros((4, 3)))
    with pytest.raises(TypeError, match="out has dtype"):
        xent.softmax_hessian_diag(z, out=np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="grad_out is given but return_grad is False"):
        xent.sigmoid_hessian(z, z, grad_out=np.zeros_like(z))
    out = np.zeros_like(z)
    with pytest.raises(ValueError, match="must not overlap"):
        xent.sigmoid_hessian(z, z, out=out, grad_out=out, return_grad=True)
    with pytest.raises(TypeError, match="logits must be an array of real numbers"):
        xent.softmax_hvp(np.zeros((2, 2), dtype=complex), z)
    with pytest.raises(ValueError, match="at least one dimension"):
        xent.softmax_hvp(np.float64(1.0), np.float64(1.0))
