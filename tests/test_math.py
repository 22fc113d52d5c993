"""The accuracy contracts of xent's own vector exp and log1p (cpp/src/simd/math-inl.hpp),
tested on every runnable ISA against extended-precision NumPy."""
import numpy as np
import pytest

from xent import _core

CUTOFF = {np.float32: -87.33654475, np.float64: -708.3964185322641}
# exp_nonpos clamps its argument here; between the floor and the cutoff the true value is
# below the smallest normal and the result is a subnormal within that of it
FLOOR = {np.float32: -88.0, np.float64: -709.0}


def _vm(fn, x):
    y = np.empty_like(x)
    _core.vector_math(fn, x, y)
    return y


def _ulp_err(y, ref, dtype):
    ref_d = ref.astype(dtype)
    ulp = np.spacing(np.abs(ref_d)).astype(np.longdouble)
    return np.abs(y.astype(np.longdouble) - ref) / ulp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_contract(isa, dtype):
    lo = CUTOFF[dtype]
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.linspace(lo, 0, 400_001),
            -rng.exponential(1.0, 100_000),
            -np.logspace(-30, np.log10(-lo), 10_000),
            [0.0, -0.0, -np.log(2) / 2, np.nextafter(lo, 0)],
        ]
    ).astype(dtype)
    x = x[x >= dtype(lo)]
    y = _vm("exp", x)
    err = _ulp_err(y, np.exp(x.astype(np.longdouble)), dtype)
    assert err.max() <= 2.0, f"max error {err.max():.3f} ulp at x={x[err.argmax()]!r}"
    assert _vm("exp", np.zeros(9, dtype))[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_below_cutoff_and_specials(isa, dtype):
    lo, floor = CUTOFF[dtype], FLOOR[dtype]
    below = [floor, np.nextafter(dtype(floor), dtype(-np.inf)), floor - 1, -1e4, -np.finfo(dtype).max, -np.inf]
    x = np.array(below, dtype)
    assert np.all(_vm("exp", x) == 0)
    x = np.concatenate([np.linspace(floor, lo, 20_001), [np.nextafter(dtype(lo), dtype(-np.inf))]]).astype(dtype)
    x = x[(x > floor) & (x < lo)]
    y = _vm("exp", x)
    ref = np.exp(x.astype(np.longdouble))
    assert np.all(y >= 0)
    assert np.all(np.abs(y.astype(np.longdouble) - ref) < np.finfo(dtype).tiny)
    assert np.any(y > 0)  # the subnormal range is reached, not all flushed
    y = _vm("exp", np.array([np.nan, -1.0, np.nan], dtype))
    assert np.isnan(y[0]) and np.isnan(y[2]) and y[1] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_contract(isa, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            np.linspace(0, 1, 400_001),
            rng.random(100_000),
            np.logspace(-40 if dtype == np.float32 else -300, 0, 20_000),
            [np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 0), np.nextafter(np.sqrt(2) - 1, 1), 1.0],
        ]
    ).astype(dtype)
    x = x[(x >= 0) & (x <= 1)]
    y = _vm("log1p", x)
    ref = np.log1p(x.astype(np.longdouble))
    nz = ref > 0
    err = _ulp_err(y[nz], ref[nz], dtype)
    assert err.max() <= 3.0, f"max error {err.max():.3f} ulp at x={x[nz][err.argmax()]!r}"
    assert _vm("log1p", np.zeros(5, dtype))[0] == 0.0


@pytest.mark.parametrize("n", [1, 3, 4, 5, 7, 8, 9, 25])
def test_tail_lengths_do_not_read_or_write_past_the_end(isa, n):
    # out-of-bounds writes would show up in the guard elements
    buf = np.full(n + 8, 7.0, dtype=np.float32)
    x = -np.arange(n, dtype=np.float32) / 3
    _core.vector_math("exp", x, buf[:n])
    np.testing.assert_allclose(buf[:n], np.exp(x), rtol=3e-7)
    assert np.all(buf[n:] == 7.0)
