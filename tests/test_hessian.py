"""sigmoid_hessian and softmax_hessian_diag (and softmax_hvp by finite differences): against
extended-precision references written independently of the kernels' formulas, and against
finite differences of xent's own gradients in float64, on every runnable ISA."""
import numpy as np
import pytest

import reference as ref
import xent
from reference_hessian import assert_rel, logits, ref_sigmoid_hessian, ref_softmax_hessian_diag

DTYPES = [np.float32, np.float64]


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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, wshape",
    [
        # units of whole rows (30 does not divide them), several tasks; the kernel takes the
        # row weights (rows of a vector or more), vectors spanning two rows blending two
        ((3000, 30), (3000, 1)),
        ((3000, 32), (3000, 1)),  # rows of whole vectors: one broadcast weight per vector
        ((4000, 3), (4000, 1)),  # rows shorter than a vector: the weights spread (not on the scalar ISA)
        ((300, 4, 16), (300, 4, 1)),
        ((400, 7, 9), (400, 7, 1)),
        ((400, 7, 9), (400, 1, 1)),  # rows of 63 elements, a weight per 63
        ((3, 8191), (3, 1)),  # one row per unit
        ((2, 8192), (2, 1)),  # rows of a unit or more: segments
        ((5, 1), (5, 1)),
        ((0, 4), (0, 1)),
    ],
)
@pytest.mark.parametrize("n_threads", [1, 3])
def test_sigmoid_hessian_row_weights(isa, rng, dtype, shape, wshape, n_threads):
    """One weight per row (broadcast along the last axes): the same bits as the weights written
    out per element, and as the unweighted Hessian and gradient times the weight (one rounding)."""
    z = logits(rng, shape, dtype)
    t = rng.random(shape).astype(dtype)
    sw = rng.random(wshape).astype(dtype)
    sw.reshape(-1)[::3] = 0
    z0, t0, sw0 = z.copy(), t.copy(), sw.copy()
    h, g = xent.sigmoid_hessian(z, t, sample_weight=sw, return_grad=True, n_threads=n_threads)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(sw, sw0)
    full = np.ascontiguousarray(np.broadcast_to(sw, shape))
    he, ge = xent.sigmoid_hessian(z, t, sample_weight=full, return_grad=True, n_threads=1)
    np.testing.assert_array_equal(h, he)
    np.testing.assert_array_equal(g, ge)
    h0, g0 = xent.sigmoid_hessian(z, t, return_grad=True)
    np.testing.assert_array_equal(h, h0 * sw)
    np.testing.assert_array_equal(g, g0 * sw)
    assert_rel(h, ref_sigmoid_hessian(z) * sw.astype(np.float64), dtype)
    # without the gradient; into out=, and in place over the logits (out=z) and targets (grad_out=t)
    np.testing.assert_array_equal(xent.sigmoid_hessian(z, sample_weight=sw, n_threads=n_threads), h)
    zc, tc = z.copy(), t.copy()
    r, rg = xent.sigmoid_hessian(zc, tc, sample_weight=sw, return_grad=True, out=zc, grad_out=tc, n_threads=n_threads)
    assert r is zc and rg is tc
    np.testing.assert_array_equal(zc, h)
    np.testing.assert_array_equal(tc, g)
    # a layout that is not dense (the per-row path) gives the same bits
    if z.ndim == 2 and z.size:
        zf = np.asfortranarray(z)
        hf, gf = xent.sigmoid_hessian(zf, t, sample_weight=sw, return_grad=True, n_threads=n_threads)
        np.testing.assert_array_equal(hf, h)
        np.testing.assert_array_equal(gf, g)


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
