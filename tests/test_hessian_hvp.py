"""softmax_hvp against extended-precision references; masks, empty input, thread counts,
every ISA against the scalar one, mpmath cases, and bad input for all three Hessians."""
import numpy as np
import pytest

import xent
from reference_hessian import assert_rel, logits, ref_softmax_hvp

DTYPES = [np.float32, np.float64]


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
    for r in res.values():
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
