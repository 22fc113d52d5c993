"""xent.linear_cross_entropy against the unfused computation (NumPy matmul, then
xent.softmax_cross_entropy) and a float64 NumPy reference: loss and the three gradients, for
the options, reductions, both paths (whole-vocabulary tiles and vocabulary blocks with
recompute, chunk sizes that do and do not divide N and V), masks, extremes; finite
differences in float64."""
import numpy as np
import pytest

import xent
from linear_ref import linear_xent_ref
from reference import numeric_grad
from xent import _linear_blas

N, H, V = 23, 12, 37
OPTIONS = [
    {},
    {"ignore_index": -1},
    {"label_smoothing": 0.2, "ignore_index": 5},
    {"z_loss": 0.05},
    {"softcap": 2.5},
    {"ignore_index": -1, "label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 4.0},
]
# None: default; 7: rows (N % 7 != 0), whole vocabulary; (8, V): one tile per 8 rows;
# (5, 10) and (23, 37 - 1): vocabulary blocks (10 does not divide 37), recompute path
CHUNKS = [None, 7, (8, V), (5, 10), (N, V - 1), (1, 1)]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}


def _data(rng, dtype, n=N, v=V, ignore=None, scale=1.0):
    h = (rng.standard_normal((n, H)) * scale).astype(dtype)
    w = (rng.standard_normal((v, H)) / np.sqrt(H)).astype(dtype)
    b = rng.standard_normal(v).astype(dtype)
    y = rng.integers(0, v, n)
    if ignore is not None and n:
        y[rng.random(n) < 0.3] = ignore
    return h, w, b, y


def _unfused(h, w, b, y, reduction, grad_scale=None, **opts):
    z = h @ w.T
    if b is not None:
        z = z + b
    loss, g = xent.softmax_cross_entropy(z, y, reduction=reduction, return_grad=True, **opts)
    if grad_scale is not None:
        g = g * (grad_scale[:, None] if np.ndim(grad_scale) else grad_scale)
    return loss, (g @ w, g.T @ h, g.sum(axis=0))


def _close(got, want, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk", CHUNKS)
def test_matches_unfused_and_reference(rng, dtype, opts, reduction, chunk):
    h, w, b, y = _data(rng, dtype, ignore=opts.get("ignore_index"))
    for bias in (b, None):
        gs = rng.random(N) + 0.5 if reduction == "none" else 1.5
        loss, g = xent.linear_cross_entropy(h, w, y, bias=bias, reduction=reduction, return_grad=True,
                                            grad_scale=gs, chunk_size=chunk, **opts)
        assert isinstance(g, xent.LinearCrossEntropyGrads)
        assert (g.bias is None) == (bias is None)
        assert g.hidden.dtype == g.weight.dtype == dtype and g.hidden.shape == h.shape and g.weight.shape == w.shape
        if reduction == "none":
            assert loss.dtype == dtype and loss.shape == (N,)
        else:
            assert isinstance(loss, float)
        ref_loss, ref_g = linear_xent_ref(h, w, y, bias, reduction=reduction, grad_scale=gs, **opts)
        un_loss, un_g = _unfused(h, w, bias, y, reduction, np.asarray(gs, dtype), **opts)
        _close(loss, ref_loss, dtype, scale=N)
        _close(loss, un_loss, dtype, scale=N)
        assert loss == pytest.approx(xent.linear_cross_entropy(h, w, y, bias=bias, reduction=reduction,
                                                               chunk_size=chunk, **opts))
        for got, want, unf in zip(g, ref_g, un_g):
            if want is None or got is None:
                continue
            _close(got, want, dtype, scale=10)
            _close(got, unf, dtype, scale=10)


@pytest.mark.parametrize("chunk", [None, (4, 6)])
def test_finite_differences_float64(rng, chunk):
    h, w, b, y = _data(rng, np.float64, n=6, v=9, ignore=-1)
    opts = dict(ignore_index=-1, label_smoothing=0.15, z_loss=0.03, softcap=3.0)

    def f(hh, ww, bb):
        return xent.linear_cross_entropy(hh, ww, y, bias=bb, chunk_size=chunk, **opts)

    _, g = xent.linear_cross_entropy(h, w, y, bias=b, chunk_size=chunk, return_grad=True, **opts)
    np.testing.assert_allclose(g.hidden, numeric_grad(lambda x: f(x, w, b), h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.weight, numeric_grad(lambda x: f(h, x, b), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.bias, numeric_grad(lambda x: f(h, w, x), b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("chunk", [None, (3, 4)])
@pytest.mark.parametrize("opts", [{}, {"label_smoothing": 0.3, "softcap": 2.0, "z_loss": 0.1}])
def test_minus_inf_bias_masks_its_class(rng, chunk, opts):
    h, w, b, y = _data(rng, np.float64, n=10, v=11)
    b[[0, 4, 5]] = -np.inf
    y[np.isin(y, [0, 4, 5])] = 1
    loss, g = xent.linear_cross_entropy(h, w, y, bias=b, reduction="none", return_grad=True, chunk_size=chunk, **opts)
    ref_loss, ref_g = linear_xent_ref(h, w, y, b, reduction="none", **opts)
    _close(loss, ref_loss, np.float64)
    for got, want in zip(g, ref_g):
        _close(got, want, np.float64)
    assert np.all(g.bias[[0, 4, 5]] == 0) and np.all(g.weight[[0, 4, 5]] == 0)
    # a label on a masked class costs +inf, as in softmax_cross_entropy
    y[0] = 4
    row = xent.linear_cross_entropy(h, w, y, bias=b, reduction="none", chunk_size=chunk, **opts)
    assert row[0] == np.inf and np.all(np.isfinite(row[1:]))


@pytest.mark.parametrize("chunk", [None, (2, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_and_empty(rng, chunk, reduction):
    h, w, b, y = _data(rng, np.float32, n=5, v=7)
    y[:] = -100
    loss, g = xent.linear_cross_entropy(h, w, y, bias=b, ignore_index=-100, reduction=reduction, return_grad=True,
                                        chunk_size=chunk)
    assert np.all(np.asarray(loss) == 0) and np.asarray(loss).shape == ((5,) if reduction == "none" else ())
    assert not g.hidden.any() and not g.weight.any() and not g.bias.any()
    h0, y0 = h[:0], y[:0]
    loss, g = xent.linear_cross_entropy(h0, w, y0, bias=b, reduction=reduction, return_grad=True, chunk_size=chunk)
    assert np.asarray(loss).size == 0 if reduction == "none" else loss == 0.0
    assert g.hidden.shape == (0, H) and not g.weight.any() and not g.bias.any()
    assert xent.linear_cross_entropy(h0, w[:0], y0, reduction=reduction, chunk_size=chunk) is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_class(rng, dtype):
    h, w, b, y = _data(rng, dtype, n=4, v=1)
    for chunk in (None, (3, 1)):
        loss, g = xent.linear_cross_entropy(h, w, y, bias=b, z_loss=0.1, reduction="none", return_grad=True,
                                            chunk_size=chunk)
        z = (h.astype(np.float64) @ w.T.astype(np.float64) + b)[:, 0]
        _close(loss, 0.1 * z * z, dtype)
        _close(g.bias, [np.sum(0.2 * z)], dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk", [None, (6, 5)])
def test_huge_logits(rng, dtype, chunk):
    h, w, b, y = _data(rng, dtype, scale=3e3)  # logits of order 1e4: a plain exp overflows
    loss, g = xent.linear_cross_entropy(h, w, y, bias=b, reduction="none", return_grad=True, chunk_size=chunk)
    ref_loss, ref_g = linear_xent_ref(h, w, y, b, reduction="none")
    assert np.all(np.isfinite(loss)) and all(np.all(np.isfinite(x)) for x in g)
    np.testing.assert_allclose(loss, ref_loss, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"])
    for got, want in zip(g, ref_g):
        np.testing.assert_allclose(got, want, rtol=1e-3 if dtype == np.float32 else 1e-9,
                                   atol=1e-2 if dtype == np.float32 else 1e-9)


def test_numpy_fallback_without_scipy_gemm(rng, monkeypatch):
    h, w, b, y = _data(rng, np.float64, n=40, v=30)
    want = xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, chunk_size=(7, 8))
    monkeypatch.setattr(_linear_blas, "_scipy_gemm", lambda dtype: None)
    monkeypatch.setattr(_linear_blas, "SLAB", 3)  # several slabs of the accumulation
    for chunk in ((7, 8), 9):
        got = xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, chunk_size=chunk)
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        for x, y_ in zip(got[1], want[1]):
            _close(x, y_, np.float64)


def test_threads_and_float16(rng):
    h, w, b, y = _data(rng, np.float32)
    one = xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, n_threads=1, chunk_size=(4, 9))
    two = xent.linear_cross_entropy(h, w, y, bias=b, return_grad=True, n_threads=2, chunk_size=(4, 9))
    assert one[0] == pytest.approx(two[0], rel=1e-6)
    for a, c in zip(one[1], two[1]):
        _close(a, c, np.float32)
    half = xent.linear_cross_entropy(h.astype(np.float16), w.astype(np.float16), y, bias=b.astype(np.float16),
                                     return_grad=True)
    assert half[1].weight.dtype == np.float32
