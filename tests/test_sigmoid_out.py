"""out= and grad_out= of the sigmoid losses, and the validation of their options."""
import numpy as np
import pytest

import xent

FUNCS = [xent.sigmoid_cross_entropy, xent.sigmoid_focal_loss]


@pytest.mark.parametrize("f", FUNCS)
@pytest.mark.parametrize("axis", [None, 1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffers_receive_the_same_values(isa, rng, f, axis, dtype):
    z = (rng.standard_normal((9, 6)) * 3).astype(dtype)
    t = rng.random((9, 6)).astype(dtype)
    sw = rng.random(9 if axis in (None, 1) else 6).astype(dtype)
    loss, grad = f(z, t, axis=axis, sample_weight=sw, reduction="none", return_grad=True)
    out = np.full(loss.shape, np.nan, dtype=dtype)
    g = np.full(z.shape, np.nan, dtype=dtype)
    l2, g2 = f(z, t, axis=axis, sample_weight=sw, reduction="none", return_grad=True, out=out, grad_out=g)
    assert l2 is out and g2 is g
    np.testing.assert_array_equal(out, loss)
    np.testing.assert_array_equal(g, grad)
    # strided buffers (views with gaps) are written in place too
    big = np.full((2 * z.shape[0], 3 * z.shape[1]), np.nan, dtype=dtype)
    gv = big[::2, ::3]
    _, g3 = f(z, t, axis=axis, sample_weight=sw, return_grad=True, grad_out=gv)
    assert g3 is gv
    _, gm = f(z, t, axis=axis, sample_weight=sw, return_grad=True)
    np.testing.assert_array_equal(gv, gm)
    assert np.isnan(big[1::2]).all()


@pytest.mark.parametrize("f", FUNCS)
def test_in_place_on_the_logits(isa, rng, f):
    z = rng.standard_normal((40, 5)) * 3
    t = rng.random((40, 5))
    w = rng.random(5)
    loss, grad = f(z, t, weight=w, reduction="none", return_grad=True)
    _, gmean = f(z, t, weight=w, return_grad=True)
    zz = z.copy()
    _, g = f(zz, t, weight=w, return_grad=True, grad_out=zz)
    assert g is zz
    np.testing.assert_array_equal(zz, gmean)
    zz = z.copy()
    out = f(zz, t, weight=w, reduction="none", out=zz)
    assert out is zz
    np.testing.assert_array_equal(zz, loss)
    # non-contiguous logits overwritten in place (gathered, computed, scattered)
    zt = np.asfortranarray(z)
    _, g = f(zt, t, weight=w, reduction="none", return_grad=True, grad_out=zt)
    np.testing.assert_array_equal(zt, grad)


def test_out_and_grad_out_errors(rng):
    f = xent.sigmoid_cross_entropy
    z, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    with pytest.raises(ValueError, match="out has shape"):
        f(z, t, reduction="none", out=np.empty((4,)))
    with pytest.raises(ValueError, match="out has shape"):
        f(z, t, axis=1, reduction="none", out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="out has dtype float32"):
        f(z, t, reduction="none", out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="reduction='none'"):
        f(z, t, out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="grad_out has shape"):
        f(z, t, return_grad=True, grad_out=np.empty((3, 4)))
    with pytest.raises(TypeError, match="grad_out has dtype"):
        f(z.astype(np.float32), t, return_grad=True, grad_out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="return_grad=True"):
        f(z, t, grad_out=np.empty((4, 3)))
    buf = np.empty((4, 3))
    with pytest.raises(ValueError, match="must not overlap"):
        f(z, t, reduction="none", return_grad=True, out=buf, grad_out=buf)
    with pytest.raises(ValueError, match="overlaps an input"):
        f(z, t, axis=1, reduction="none", out=z[:, 0])
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(z, t, return_grad=True, grad_out=ro)
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        f(z, t, reduction="none", out=[0.0] * 12)


def test_inputs_are_not_modified(rng):
    z, t = rng.standard_normal((6, 4)), rng.random((6, 4))
    w, q, sw = rng.random(4), rng.random(4), rng.random(6)
    copies = [a.copy() for a in (z, t, w, q, sw)]
    xent.sigmoid_cross_entropy(z, t, weight=w, pos_weight=q, sample_weight=sw, label_smoothing=0.1,
                               reduction="none", return_grad=True)
    xent.sigmoid_focal_loss(z, t, weight=w, sample_weight=sw, return_grad=True)
    for a, c in zip((z, t, w, q, sw), copies):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_per_class_vector_errors(name):
    z, t = np.zeros((4, 3)), np.zeros((4, 3))
    f = xent.sigmoid_cross_entropy
    msg = rf"{name} has shape \(4,\) but must have shape \(3,\) \(one per class along the last axis\)"
    with pytest.raises(ValueError, match=msg):
        f(z, t, **{name: np.ones(4)})
    msg = rf"{name} has shape \(3,\) but must have shape \(4,\) \(one per class along axis 0\)"
    with pytest.raises(ValueError, match=msg):
        f(z, t, axis=0, **{name: np.ones(3)})
    with pytest.raises(ValueError, match=rf"{name}\[1\] = -1.0: weights must be finite and >= 0"):
        f(z, t, **{name: np.array([1.0, -1.0, 1.0])})
    with pytest.raises(ValueError, match=rf"{name}\[2\] = nan"):
        f(z, t, **{name: np.array([1.0, 1.0, np.nan])})
    with pytest.raises(ValueError, match=rf"{name}\[0\] = inf"):
        f(z, t, **{name: np.array([np.inf, 1.0, 1.0])})
    with pytest.raises(ValueError, match=rf"{name} = inf"):
        f(z, t, **{name: np.inf})
    with pytest.raises(TypeError, match=name):
        f(z, t, **{name: np.array(["a", "b", "c"])})
    # float64 weights that overflow float32 are caught after the conversion
    with pytest.raises(ValueError, match=rf"{name}\[0\] = inf"):
        f(z.astype(np.float32), t, **{name: np.array([1e300, 1.0, 1.0])})


def test_sample_weight_and_smoothing_errors():
    f = xent.sigmoid_cross_entropy
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\) but must have shape \(4,\)"):
        f(z, z, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(4,\) but must have shape \(3,\)"):
        f(z, z, axis=0, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(4,\) but must have shape \(5,\)"):
        f(np.zeros(5), np.zeros(5), sample_weight=np.ones(4))
    with pytest.raises(ValueError, match=r"sample_weight\[2\] = -0.5"):
        f(z, z, sample_weight=np.array([1, 1, -0.5, 1]))
    for eps in (-0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match="label_smoothing"):
            f(z, z, label_smoothing=eps)


@pytest.mark.parametrize("fn", [xent.sigmoid_cross_entropy, xent.sigmoid_focal_loss])
def test_check_finite(fn):
    z = np.zeros((3, 4))
    t = np.full((3, 4), 0.5)
    z[1, 2] = -np.inf  # allowed (with target 0 it costs 0)
    t[1, 2] = 0.0
    assert np.isfinite(fn(z, t, check_finite=True))
    for bad in (np.nan, np.inf):
        zz = z.copy()
        zz[2, 1] = bad
        with pytest.raises(ValueError, match=r"logits has the value .* at index \(2, 1\)"):
            fn(zz, t, check_finite=True)
        fn(zz, t)  # off by default: the value stays in its own element
    tt = t.copy()
    tt[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"targets has the value nan at index \(0, 3\)"):
        fn(z, tt, check_finite=True)
