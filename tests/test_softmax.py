"""logsumexp, softmax and log_softmax against the float64 reference."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL, LOSS_TOL

DTYPES = [np.float32, np.float64]
# row lengths around the vector widths (W = 2, 4, 8), block edges (2048) and a long row
LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 25, 2047, 2048, 2049, 50_000]


def _logits(rng, shape, dtype, scale=3.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", LENGTHS)
def test_random_rows(isa, rng, dtype, C):
    x = _logits(rng, (3, C), dtype)
    np.testing.assert_allclose(xent.logsumexp(x), ref.logsumexp(x), **LOSS_TOL[dtype])
    np.testing.assert_allclose(xent.softmax(x), ref.softmax(x), **GRAD_TOL[dtype])
    np.testing.assert_allclose(xent.log_softmax(x), ref.log_softmax(x), **LOSS_TOL[dtype])
    assert xent.softmax(x).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_any_axis(isa, rng, dtype, axis):
    x = _logits(rng, (4, 5, 6), dtype)
    np.testing.assert_allclose(xent.logsumexp(x, axis=axis), ref.logsumexp(x, axis), **LOSS_TOL[dtype])
    np.testing.assert_allclose(xent.softmax(x, axis=axis), ref.softmax(x, axis), **GRAD_TOL[dtype])
    np.testing.assert_allclose(xent.log_softmax(x, axis=axis), ref.log_softmax(x, axis), **LOSS_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_and_tiny_logits(isa, dtype):
    big = np.finfo(dtype).max
    x = np.array(
        [
            [1e4, -1e4, 0.0, 1e4 - 1],
            [90.0, 100.0, 80.0, 95.0],  # plain exp would overflow in float32
            [-1e4, -1e4 + 1, -1e4 + 2, -1e4 + 3],
            [big, big / 2, -big, 0.0],
            [1e-30, -1e-30, 0.0, 1e-38],
        ],
        dtype=dtype,
    )
    for fn, rf, tol in (
        (xent.logsumexp, ref.logsumexp, LOSS_TOL),
        (xent.log_softmax, ref.log_softmax, LOSS_TOL),
        (xent.softmax, ref.softmax, GRAD_TOL),
    ):
        got = fn(x)
        assert not np.isnan(got).any()
        # rounded to the output dtype: -big - big overflows to -inf in float32, as it should
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(got, rf(x).astype(dtype), **tol[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_masks(isa, dtype):
    inf = np.inf
    x = np.array([[-inf, 1.0, -inf, 2.0], [-inf, -inf, -inf, -inf], [0.0, -inf, -inf, -inf]], dtype=dtype)
    np.testing.assert_allclose(xent.logsumexp(x), ref.logsumexp(x), **LOSS_TOL[dtype])
    sm = xent.softmax(x)
    assert np.all(sm[1] == 0) and sm[0, 0] == 0 and sm[2, 0] == 1
    np.testing.assert_allclose(sm, ref.softmax(x), **GRAD_TOL[dtype])
    ls = xent.log_softmax(x)
    assert np.all(ls[1] == -inf) and ls[2, 0] == 0
    assert not np.isnan(sm).any() and not np.isnan(ls).any()


def test_long_fully_masked_and_late_max(isa):
    # masked blocks before the first finite value, and the max in the last block
    x = np.full((2, 5000), -np.inf, dtype=np.float32)
    x[0, 4500:] = np.linspace(-3, 3, 500)
    x[1, :] = np.linspace(-50, 50, 5000)
    np.testing.assert_allclose(xent.logsumexp(x), ref.logsumexp(x), **LOSS_TOL[np.float32])
    np.testing.assert_allclose(xent.softmax(x), ref.softmax(x), **GRAD_TOL[np.float32])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_stay_in_their_row(isa, bad):
    x = np.zeros((3, 10), dtype=np.float32)
    x[1, 4] = bad
    assert np.isnan(bad) == np.isnan(xent.logsumexp(x)[1])
    assert xent.logsumexp(x)[1] == bad or np.isnan(bad)
    sm = xent.softmax(x)
    assert np.isnan(sm[1]).all()
    assert np.isfinite(sm[[0, 2]]).all()
    assert np.isfinite(xent.logsumexp(x)[[0, 2]]).all()


def test_nan_in_otherwise_masked_row_is_nan(isa):
    x = np.array([[-np.inf, np.nan, -np.inf]], dtype=np.float32)
    assert np.isnan(xent.logsumexp(x)[0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("C, at_inf, at_nan", [(3, 0, 1), (3, 2, 0), (300, 5, 250), (5000, 10, 4500), (5000, 4500, 10)])
def test_nan_beside_plus_inf_is_nan(isa, dtype, C, at_inf, at_nan):
    """A row holding +inf and NaN: logsumexp is NaN (scipy's answer; it was +inf), as the
    loss, softmax and log_softmax of that row are, in whichever block each one lies; +inf
    without NaN stays +inf; the other rows keep their values."""
    x = np.zeros((3, C), dtype=dtype)
    x[1, at_inf] = np.inf
    x[1, at_nan] = np.nan
    x[2, at_inf] = np.inf
    lse = xent.logsumexp(x)
    assert np.isnan(lse[1]) and lse[2] == np.inf
    np.testing.assert_allclose(float(lse[0]), np.log(C), rtol=1e-3)
    assert np.isnan(xent.softmax_cross_entropy(x, np.array([0, 0, 0]), reduction="none")[1])
    assert np.isnan(xent.softmax(x)[1]).all() and np.isnan(xent.log_softmax(x)[1]).all()
    assert np.isnan(xent.logsumexp(x[1], axis=0))  # one row, another call path


def test_shift_invariance(isa, rng):
    x = rng.standard_normal((5, 33))
    np.testing.assert_allclose(xent.softmax(x + 1000.0), xent.softmax(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(xent.logsumexp(x + 1000.0) - 1000.0, xent.logsumexp(x), rtol=1e-12)


def test_one_class_and_empty(isa):
    x = np.array([[3.0], [-1e30]], dtype=np.float32)
    assert np.all(xent.softmax(x) == 1) and np.all(xent.log_softmax(x) == 0)
    np.testing.assert_array_equal(xent.logsumexp(x), x[:, 0])
    e = np.zeros((0, 5), dtype=np.float32)
    assert xent.softmax(e).shape == (0, 5) and xent.logsumexp(e).shape == (0,)
    assert xent.logsumexp(np.zeros((2, 0))).tolist() == [-np.inf, -np.inf]


def test_scalar_result_for_1d_and_dtypes():
    r = xent.logsumexp(np.array([0.0, 0.0]))
    assert np.ndim(r) == 0 and abs(float(r) - np.log(2)) < 1e-15
    assert xent.softmax(np.array([1, 2, 3])).dtype == np.float64
    # half input is read directly: softmax keeps its dtype, logsumexp is float32 (test_half.py)
    assert xent.softmax(np.array([1, 2], dtype=np.float16)).dtype == np.float16
    assert xent.logsumexp(np.array([1, 2], dtype=np.float16)).dtype == np.float32


def test_out_and_in_place(isa, rng):
    x = rng.standard_normal((6, 40)).astype(np.float32)
    expect = xent.softmax(x)
    out = np.empty_like(x)
    assert xent.softmax(x, out=out) is out
    np.testing.assert_array_equal(out, expect)
    y = x.copy()
    xent.softmax(y, out=y)
    np.testing.assert_array_equal(y, expect)
    y = x.copy()
    xent.log_softmax(y, out=y, axis=0)
    np.testing.assert_allclose(y, ref.log_softmax(x, 0), **LOSS_TOL[np.float32])


def test_non_contiguous_read_only_and_not_modified(isa, rng):
    base = rng.standard_normal((8, 30, 4))
    x = base[::2, 3:27:2, 1]  # strided in both dims
    x.flags.writeable = False
    before = x.copy()
    np.testing.assert_allclose(xent.softmax(x), ref.softmax(x), **GRAD_TOL[np.float64])
    np.testing.assert_allclose(xent.logsumexp(x, axis=0), ref.logsumexp(x, 0), **LOSS_TOL[np.float64])
    np.testing.assert_array_equal(x, before)
    xr = x[::-1, ::-1]  # negative strides
    np.testing.assert_allclose(xent.log_softmax(xr), ref.log_softmax(xr), **LOSS_TOL[np.float64])


def test_big_endian_and_misaligned(isa, rng):
    x = rng.standard_normal((4, 9))
    be = x.astype(">f8")
    np.testing.assert_allclose(xent.softmax(be), ref.softmax(x), **GRAD_TOL[np.float64])
    raw = np.zeros(4 * 9 * 4 + 1, dtype=np.uint8)
    mis = raw[1:].view(np.float32).reshape(4, 9)
    mis[...] = x
    assert not mis.flags.aligned
    np.testing.assert_allclose(xent.softmax(mis), ref.softmax(mis), **GRAD_TOL[np.float32])
