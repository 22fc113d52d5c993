"""The accuracy contracts of the vector log_unit and log_1m (cpp/src/simd/math-inl.hpp),
behind the clipped logs of the from-probabilities losses, on every runnable ISA against
extended-precision NumPy."""
import numpy as np
import pytest

from xent import _core

LD = np.longdouble
DTYPES = [np.float32, np.float64]


def _vm(fn, x):
    y = np.empty_like(x)
    _core.vector_math(fn, x, y)
    return y


def _ulp_err(y, ref, dtype):
    ulp = np.spacing(np.abs(ref.astype(dtype))).astype(LD)
    return np.abs(y.astype(LD) - ref) / ulp


def _unit_points(dtype, rng):
    ui = np.uint32 if dtype == np.float32 else np.uint64
    top = np.array(1.0, dtype).view(ui)
    bits = np.linspace(1, int(top), 400_001).astype(ui)  # every binade, subnormals included
    sq = np.sqrt(dtype(0.5))
    near = [np.nextafter(sq, dtype(k)) for k in (0, 1)] + [sq, dtype(0.5), np.nextafter(dtype(1), dtype(0))]
    x = np.concatenate([bits.view(dtype), rng.random(200_000).astype(dtype), np.linspace(0.25, 1, 200_001), near])
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_unit_contract(isa, dtype):
    x = _unit_points(dtype, np.random.default_rng(3))
    x = x[(x > 0) & (x <= 1)]
    y = _vm("log", x)
    ref = np.log(x.astype(LD))
    nz = ref != 0
    err = _ulp_err(y[nz], ref[nz], dtype)
    assert err.max() <= 3.0, f"max error {err.max():.3f} ulp at x={x[nz][err.argmax()]!r}"
    assert _vm("log", np.ones(5, dtype))[0] == 0.0
    assert np.isnan(_vm("log", np.array([np.nan], dtype))[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_1m_contract(isa, dtype):
    rng = np.random.default_rng(4)
    x = _unit_points(dtype, rng)
    p = np.concatenate([x, (1 - x.astype(np.float64)).astype(dtype), [0.0, 0.2928932, 0.5, 0.70710677]]).astype(dtype)
    p = p[(p >= 0) & (p < 1)]
    y = _vm("log1m", p)
    ref = np.log1p(-p.astype(LD))
    nz = ref != 0
    err = _ulp_err(y[nz], ref[nz], dtype)
    assert err.max() <= 3.0, f"max error {err.max():.3f} ulp at p={p[nz][err.argmax()]!r}"
    assert _vm("log1m", np.zeros(5, dtype))[0] == 0.0
    assert np.isnan(_vm("log1m", np.array([np.nan], dtype))[0])


@pytest.mark.parametrize("n", [1, 3, 4, 5, 7, 8, 9, 25])
def test_log_tails(isa, n):
    buf = np.full(n + 8, 7.0)
    x = (np.arange(n) + 1) / (n + 1)
    _core.vector_math("log", x, buf[:n])
    np.testing.assert_allclose(buf[:n], np.log(x), rtol=1e-15)
    assert np.all(buf[n:] == 7.0)
