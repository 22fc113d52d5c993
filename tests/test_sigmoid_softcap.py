"""softcap on sigmoid_cross_entropy: the loss of c*tanh(z/c), gradient through the cap."""
import numpy as np
import pytest

import reference as ref
import xent
from conftest import GRAD_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softcap_is_the_loss_of_capped_logits(isa, rng, dtype):
    c = 5.0
    z = (rng.standard_normal((37, 9)) * 8).astype(dtype)
    t = rng.random((37, 9)).astype(dtype)
    loss, grad = xent.sigmoid_cross_entropy(z, t, softcap=c, reduction="none", return_grad=True)
    zc = c * np.tanh(z.astype(np.float64) / c)
    want, want_g = ref.sigmoid_xent(zc, t)
    sech2 = 1 - np.tanh(z.astype(np.float64) / c) ** 2
    tol = dict(rtol=2e-6, atol=4e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(loss, want, **tol)
    np.testing.assert_allclose(grad, want_g * sech2, **(GRAD_TOL[dtype] if dtype == np.float64 else tol))


def test_softcap_with_every_option_by_finite_differences(rng):
    z = rng.standard_normal((6, 5)) * 4
    t = rng.random((6, 5))
    opts = dict(
        softcap=3.0, weight=rng.random(5) + 0.5, pos_weight=rng.random(5) + 0.5,
        sample_weight=rng.random(6) + 0.1, label_smoothing=0.1,
    )
    _, g = xent.sigmoid_cross_entropy(z, t, return_grad=True, **opts)
    num = ref.numeric_grad(lambda x: xent.sigmoid_cross_entropy(x, t, **opts), z)
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-10)
    # the axis form too
    _, g = xent.sigmoid_cross_entropy(z, t, axis=0, softcap=2.0, return_grad=True)
    num = ref.numeric_grad(lambda x: xent.sigmoid_cross_entropy(x, t, axis=0, softcap=2.0), z)
    np.testing.assert_allclose(g, num, rtol=1e-7, atol=1e-10)


def test_softcap_infinities_and_bad_values(isa):
    z = np.array([-np.inf, np.inf, 0.0, 1e30])
    t = np.array([0.0, 1.0, 0.5, 1.0])
    loss, grad = xent.sigmoid_cross_entropy(z, t, softcap=2.0, reduction="none", return_grad=True)
    assert loss[0] == 0 and grad[0] == 0  # -inf stays -inf: probability 0, target 0
    np.testing.assert_allclose(loss[1], np.log1p(np.exp(-2.0)), rtol=1e-15)  # +inf -> c
    np.testing.assert_allclose(loss[3], np.log1p(np.exp(-2.0)), rtol=1e-15)
    assert grad[1] == 0 and grad[3] == 0  # sech^2 of +-inf (and of huge z) is 0
    assert np.isfinite(loss).all() and not np.isnan(grad).any()
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="softcap"):
            xent.sigmoid_cross_entropy(z, t, softcap=bad)


def test_softcap_threads_bit_identical(rng):
    z = (rng.standard_normal((400, 500)) * 6).astype(np.float32)
    t = (rng.random((400, 500)) < 0.3).astype(np.float32)
    one = xent.sigmoid_cross_entropy(z, t, softcap=4.0, return_grad=True, n_threads=1)
    for nt in (2, 3):
        other = xent.sigmoid_cross_entropy(z, t, softcap=4.0, return_grad=True, n_threads=nt)
        assert one[0] == other[0]
        np.testing.assert_array_equal(one[1], other[1])
